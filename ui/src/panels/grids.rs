//! Per-class sample grids of every selected run at the scrubbed step (head class at the top,
//! class counts as bars, fixed-noise columns, EMA model): either the grids written during
//! training, or the scrubbed checkpoint sampled at view time with another ω, sampler or number
//! of steps (a cancellable background job of the host).

use super::ViewCtx;
use crate::command::UiCommand;
use crate::store::{GridImage, JobKind, RunData, RunId, SampleSettings};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What the grids panel shows.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GridSettings {
    /// Grids sampled at view time with `sample` instead of training's.
    pub view_sampling: bool,
    pub sample: SampleSettings,
}

/// Grid textures by run and grid key ([`training_key`] or a view grid's file name), made once
/// per key and forgotten when the host sends that grid again.
#[derive(Default)]
pub(crate) struct GridTextures(HashMap<(RunId, String), egui::TextureHandle>);

impl GridTextures {
    pub fn forget(&mut self, run: RunId, key: &str) {
        self.0.remove(&(run, key.to_string()));
    }

    /// One grid at integer zoom (square pixels).
    fn show(&mut self, run: RunId, key: String, img: &GridImage, ui: &mut egui::Ui) {
        let tex = self.0.entry((run, key)).or_insert_with_key(|(run, key)| {
            let ci = egui::ColorImage::from_rgba_unmultiplied([img.width, img.height], &img.rgba);
            ui.ctx().load_texture(format!("grid-{}-{key}", run.0), ci, egui::TextureOptions::NEAREST)
        });
        let zoom = (360.0 / img.width.max(1) as f32).floor().max(1.0);
        ui.image((tex.id(), egui::vec2(img.width as f32 * zoom, img.height as f32 * zoom)));
    }
}

/// The texture key of the grid training wrote at `step`.
pub(crate) fn training_key(step: u64) -> String {
    format!("train-{step}")
}

/// The grids of the selected runs, training's or sampled now; returns the host commands.
pub(crate) fn grids(s: &mut GridSettings, textures: &mut GridTextures, ctx: &ViewCtx, ui: &mut egui::Ui) -> Vec<UiCommand> {
    ui.horizontal_wrapped(|ui| {
        ui.strong("samples");
        ui.selectable_value(&mut s.view_sampling, false, "written in training");
        ui.selectable_value(&mut s.view_sampling, true, "sampled now");
        if s.view_sampling {
            sample_settings(&mut s.sample, ui);
        }
    });
    let step = ctx.scrub;
    let mut commands = Vec::new();
    if !s.view_sampling {
        let runs: Vec<&RunData> = ctx.selected_runs().collect();
        grid_row(&runs, step, textures, ui);
        return commands;
    }
    let sample = &s.sample;
    ui.horizontal_top(|ui| {
        for r in ctx.selected_runs() {
            ui.vertical(|ui| {
                let title = format!("{} [{}]", r.name, r.methods);
                let Some(ck) = r.checkpoint_at(step) else {
                    ui.strong(title);
                    ui.label(format!("no checkpoint at or before step {step} yet"));
                    return;
                };
                ui.horizontal(|ui| {
                    ui.strong(title);
                    let cli = sample.cli(&r.dir, ck);
                    if ui.small_button("Copy CLI").on_hover_text(&cli).clicked() {
                        ui.ctx().copy_text(cli);
                    }
                });
                let job = ctx.job(r.id, JobKind::Sample);
                if let Some(j) = job {
                    super::job_progress(j, 220.0, true, ui, &mut commands);
                }
                match r.view_grid_at(step, sample) {
                    Some(g) => {
                        ui.label(format!("step {} · {}", g.step, g.settings.label()));
                        textures.show(r.id, g.settings.file_name(g.step), &g.image, ui);
                        if job.is_none() && ui.small_button("Resample").clicked() {
                            commands.push(UiCommand::Sample { run: r.id, step: ck, settings: sample.clone() });
                        }
                    }
                    None if job.is_none() => {
                        let asked = ui.button(format!("Sample step {ck}")).on_hover_text(sample.label()).clicked();
                        if asked {
                            commands.push(UiCommand::Sample { run: r.id, step: ck, settings: sample.clone() });
                        }
                    }
                    None => {}
                }
            });
        }
    });
    commands
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
pub(crate) fn grid_row(runs: &[&RunData], step: u64, textures: &mut GridTextures, ui: &mut egui::Ui) {
    ui.horizontal_top(|ui| {
        for r in runs {
            ui.vertical(|ui| {
                ui.strong(format!("{} [{}]", r.name, r.methods));
                match r.grid_at(step) {
                    Some((s, img)) => {
                        ui.label(format!("samples at step {s}"));
                        textures.show(r.id, training_key(s), img, ui);
                    }
                    None => {
                        ui.label(format!("no samples at or before step {step} yet"));
                    }
                }
            });
        }
    });
}
