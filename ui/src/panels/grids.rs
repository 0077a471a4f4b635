//! Per-class sample grids of every selected run at the scrubbed step (head class at the top,
//! class counts as bars, fixed-noise columns; the engine writes them from the EMA model).

use crate::lab::Lab;

pub(crate) fn grids(lab: &mut Lab, ui: &mut egui::Ui) {
    let step = lab.scrub_step();
    ui.horizontal_top(|ui| {
        for r in lab.runs.iter().filter(|r| lab.selected.contains(&r.id)) {
            ui.vertical(|ui| {
                ui.strong(format!("{} [{}]", r.name, r.methods));
                match r.grid_at(step) {
                    Some((s, img)) => {
                        ui.label(format!("samples at step {s}"));
                        let tex = lab.textures.entry((r.id, s)).or_insert_with(|| {
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
