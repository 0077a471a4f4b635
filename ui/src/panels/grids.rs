//! Per-class sample grids of every selected run at the scrubbed step (head class at the top,
//! class counts as bars, fixed-noise columns, EMA model): either the grids written during
//! training, or the scrubbed checkpoint sampled at view time with another ω, sampler or number
//! of steps (a cancellable background job of the host).

use crate::lab::{Lab, UiCommand};
use crate::store::{GridImage, JobKind, RunData, RunId, SampleSettings};
use std::collections::HashMap;

type Textures = HashMap<(RunId, String), egui::TextureHandle>;

pub(crate) fn grids(lab: &mut Lab, ui: &mut egui::Ui) {
    ui.horizontal_wrapped(|ui| {
        ui.strong("samples");
        ui.selectable_value(&mut lab.state.view_sampling, false, "written in training");
        ui.selectable_value(&mut lab.state.view_sampling, true, "sampled now");
        if lab.state.view_sampling {
            sample_settings(&mut lab.state.sample, ui);
        }
    });
    let step = lab.scrub_step();
    if !lab.state.view_sampling {
        let Lab { runs, selected, textures, .. } = lab;
        let runs: Vec<&RunData> = runs.iter().filter(|r| selected.contains(&r.id)).collect();
        grid_row(&runs, step, textures, ui);
        return;
    }
    let Lab { runs, selected, textures, jobs, state, commands, .. } = lab;
    ui.horizontal_top(|ui| {
        for r in runs.iter().filter(|r| selected.contains(&r.id)) {
            ui.vertical(|ui| {
                let title = format!("{} [{}]", r.name, r.methods);
                let Some(ck) = r.checkpoint_at(step) else {
                    ui.strong(title);
                    ui.label(format!("no checkpoint at or before step {step} yet"));
                    return;
                };
                ui.horizontal(|ui| {
                    ui.strong(title);
                    let cli = state.sample.cli(&r.dir, ck);
                    if ui.small_button("Copy CLI").on_hover_text(&cli).clicked() {
                        ui.ctx().copy_text(cli);
                    }
                });
                if let Some(j) = jobs.values().find(|j| j.run == r.id && j.kind == JobKind::Sample) {
                    super::job_progress(j, 220.0, true, ui, commands);
                }
                let busy = jobs.values().any(|j| j.run == r.id && j.kind == JobKind::Sample);
                match r.view_grid_at(step, &state.sample) {
                    Some(g) => {
                        ui.label(format!("step {} · {}", g.step, g.settings.label()));
                        show_grid(textures, r.id, g.settings.file_name(g.step), &g.image, ui);
                        if !busy && ui.small_button("Resample").clicked() {
                            commands.push(UiCommand::Sample { run: r.id, step: ck, settings: state.sample.clone() });
                        }
                    }
                    None if !busy => {
                        if ui.button(format!("Sample step {ck}")).on_hover_text(state.sample.label()).clicked() {
                            commands.push(UiCommand::Sample { run: r.id, step: ck, settings: state.sample.clone() });
                        }
                    }
                    None => {}
                }
            });
        }
    });
}

fn sample_settings(s: &mut SampleSettings, ui: &mut egui::Ui) {
    egui::ComboBox::from_label("sampler").selected_text(s.sampler.as_str()).show_ui(ui, |ui| {
        for k in ["ddim", "ddpm"] {
            ui.selectable_value(&mut s.sampler, k.to_string(), k);
        }
    });
    if s.sampler == "ddim" {
        ui.add(egui::DragValue::new(&mut s.ddim_steps).range(1..=1000).prefix("steps "));
    }
    ui.checkbox(&mut s.clip, "clip x0").on_hover_text("clip the predicted x0 to [-1, 1] at every step");
    ui.add(egui::DragValue::new(&mut s.omega).range(0.0..=20.0).speed(0.05).prefix("omega "));
    ui.add(egui::DragValue::new(&mut s.per_class).range(1..=64).prefix("per class "));
}

/// The runs' training grids side by side at `step`.
pub(crate) fn grid_row(runs: &[&RunData], step: u64, textures: &mut Textures, ui: &mut egui::Ui) {
    ui.horizontal_top(|ui| {
        for r in runs {
            ui.vertical(|ui| {
                ui.strong(format!("{} [{}]", r.name, r.methods));
                match r.grid_at(step) {
                    Some((s, img)) => {
                        ui.label(format!("samples at step {s}"));
                        show_grid(textures, r.id, format!("train-{s}"), img, ui);
                    }
                    None => {
                        ui.label(format!("no samples at or before step {step} yet"));
                    }
                }
            });
        }
    });
}

/// One grid at integer zoom (square pixels); its texture is made once per key.
fn show_grid(textures: &mut Textures, run: RunId, key: String, img: &GridImage, ui: &mut egui::Ui) {
    let tex = textures.entry((run, key)).or_insert_with_key(|(run, key)| {
        let ci = egui::ColorImage::from_rgba_unmultiplied([img.width, img.height], &img.rgba);
        ui.ctx().load_texture(format!("grid-{}-{key}", run.0), ci, egui::TextureOptions::NEAREST)
    });
    let zoom = (360.0 / img.width.max(1) as f32).floor().max(1.0);
    ui.image((tex.id(), egui::vec2(img.width as f32 * zoom, img.height as f32 * zoom)));
}
