//! Per-class sample grids of every selected run at the scrubbed step (head class at the top,
//! class counts as bars, fixed-noise columns; the engine writes them from the EMA model).

use crate::lab::Lab;
use crate::store::{RunData, RunId};
use std::collections::HashMap;

pub(crate) fn grids(lab: &mut Lab, ui: &mut egui::Ui) {
    let step = lab.scrub_step();
    let Lab { runs, selected, textures, .. } = lab;
    let runs: Vec<&RunData> = runs.iter().filter(|r| selected.contains(&r.id)).collect();
    grid_row(&runs, step, textures, ui);
}

/// The runs' grids side by side at `step`; textures are made once per (run, grid step).
pub(crate) fn grid_row(runs: &[&RunData], step: u64, textures: &mut HashMap<(RunId, u64), egui::TextureHandle>, ui: &mut egui::Ui) {
    ui.horizontal_top(|ui| {
        for r in runs {
            ui.vertical(|ui| {
                ui.strong(format!("{} [{}]", r.name, r.methods));
                match r.grid_at(step) {
                    Some((s, img)) => {
                        ui.label(format!("samples at step {s}"));
                        let tex = textures.entry((r.id, s)).or_insert_with(|| {
                            let ci = egui::ColorImage::from_rgba_unmultiplied([img.width, img.height], &img.rgba);
                            ui.ctx().load_texture(format!("grid-{}-{s}", r.id.0), ci, egui::TextureOptions::NEAREST)
                        });
                        // Integer zoom keeps the pixels square.
                        let zoom = (360.0 / img.width.max(1) as f32).floor().max(1.0);
                        ui.image((tex.id(), egui::vec2(img.width as f32 * zoom, img.height as f32 * zoom)));
                    }
                    None => {
                        ui.label(format!("no samples at or before step {step} yet"));
                    }
                }
            });
        }
    });
}
