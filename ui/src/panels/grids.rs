//! Per-class sample grids of every selected run at the scrubbed step (head class at the top,
//! class counts as bars, fixed-noise columns, EMA model): either the grids written during
//! training, or the scrubbed checkpoint sampled at view time with another ω, sampler or number
//! of steps (a cancellable background job of the host).

use super::ViewCtx;
use crate::command::UiCommand;
use crate::store::HostCommand;
use crate::store::{GridImage, JobKind, RunData, RunId, SampleSettings};
use ltlab_types::SamplerKind;
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

/// Grid textures by run and grid key ([`training_key`] or [`view_key`]), made once
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

/// The texture key of a grid sampled at view time from the checkpoint `step` with `s`.
pub(crate) fn view_key(step: u64, s: &SampleSettings) -> String {
    format!("view-{step}-{}", s.label())
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
                let title = format!("{} [{}]", r.header.name, r.header.methods);
                let Some(ck) = r.checkpoint_at(step) else {
                    ui.strong(title);
                    ui.label(format!("no checkpoint at or before step {step} yet"));
                    return;
                };
                ui.horizontal(|ui| {
                    ui.strong(title);
                    let cli = sample.cli(&r.header.dir, ck);
                    if ui.small_button("Copy CLI").on_hover_text(&cli).clicked() {
                        ui.ctx().copy_text(cli);
                    }
                });
                let job = ctx.job(r.header.id, JobKind::Sample);
                if let Some(j) = job {
                    super::job_progress(j, 220.0, true, ui, &mut commands);
                }
                match r.view_grid_at(step, sample) {
                    Some(g) => {
                        ui.label(format!("step {} · {}", g.step, g.settings.label()));
                        textures.show(r.header.id, view_key(g.step, &g.settings), &g.image, ui);
                        if job.is_none() && ui.small_button("Resample").clicked() {
                            commands.push(UiCommand::Host(HostCommand::Sample { run: r.header.id, step: ck, settings: sample.clone() }));
                        }
                    }
                    None if job.is_none() => {
                        let asked = ui.button(format!("Sample step {ck}")).on_hover_text(sample.label()).clicked();
                        if asked {
                            commands.push(UiCommand::Host(HostCommand::Sample { run: r.header.id, step: ck, settings: sample.clone() }));
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
    let mut c = SamplerControls::of(s.sampler);
    egui::ComboBox::from_label("sampler").selected_text(if c.ddim { "ddim" } else { "ddpm" }).show_ui(ui, |ui| {
        ui.selectable_value(&mut c.ddim, true, "ddim");
        ui.selectable_value(&mut c.ddim, false, "ddpm");
    });
    if c.ddim {
        ui.add(egui::DragValue::new(&mut c.steps).range(1..=1000).prefix("steps "));
    }
    ui.checkbox(&mut c.clip, "clip x0").on_hover_text("clip the predicted x0 to [-1, 1] at every step");
    s.sampler = c.kind();
    ui.add(egui::DragValue::new(&mut s.omega).range(0.0..=20.0).speed(0.05).prefix("omega "));
    ui.add(egui::DragValue::new(&mut s.per_class).range(1..=64).prefix("per class "));
}

/// The panel's sampler controls over a [`SamplerKind`]: DDIM or DDPM, DDIM's steps, clipping
/// x̂₀. DDIM's ending (`final_x0`; the reference code's `ref` is not offered) is kept as it was.
#[derive(Debug, Clone, Copy, PartialEq)]
struct SamplerControls {
    ddim: bool,
    /// DDIM's steps, also while DDPM is chosen (the lab's default after DDPM).
    steps: usize,
    clip: bool,
    final_x0: bool,
}

/// DDIM's steps when the sampler was DDPM before.
const DDIM_STEPS: usize = 50;

impl SamplerControls {
    fn of(kind: SamplerKind) -> Self {
        match kind {
            SamplerKind::Ddpm { clip_x0 } => Self { ddim: false, steps: DDIM_STEPS, clip: clip_x0, final_x0: true },
            SamplerKind::Ddim { steps, final_x0, clip_x0 } => Self { ddim: true, steps, clip: clip_x0, final_x0 },
        }
    }

    fn kind(self) -> SamplerKind {
        if self.ddim {
            SamplerKind::Ddim { steps: self.steps.max(1), final_x0: self.final_x0, clip_x0: self.clip }
        } else {
            SamplerKind::Ddpm { clip_x0: self.clip }
        }
    }
}

/// The runs' training grids side by side at `step`.
pub(crate) fn grid_row(runs: &[&RunData], step: u64, textures: &mut GridTextures, ui: &mut egui::Ui) {
    ui.horizontal_top(|ui| {
        for r in runs {
            ui.vertical(|ui| {
                ui.strong(format!("{} [{}]", r.header.name, r.header.methods));
                match r.grid_at(step) {
                    Some((s, img)) => {
                        ui.label(format!("samples at step {s}"));
                        textures.show(r.header.id, training_key(s), img, ui);
                    }
                    None => {
                        ui.label(format!("no samples at or before step {step} yet"));
                    }
                }
            });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the controls make is what `ltlab sample --sampler` reads from the copied command.
    #[test]
    fn sampler_controls_make_what_the_cli_parses() {
        let start = SamplerControls::of(SampleSettings::default().sampler);
        assert_eq!((start.ddim, start.steps, start.clip), (true, 50, true));
        let cases = [
            (start, "ddim:50:clip"),
            (SamplerControls { steps: 20, clip: false, ..start }, "ddim:20"),
            (SamplerControls { steps: 0, ..start }, "ddim:1:clip"),
            (SamplerControls { ddim: false, ..start }, "ddpm:clip"),
            (SamplerControls { ddim: false, clip: false, steps: 7, ..start }, "ddpm"),
            (SamplerControls::of(SamplerKind::Ddim { steps: 10, final_x0: false, clip_x0: false }), "ddim:10:ref"),
        ];
        for (controls, label) in cases {
            let kind = controls.kind();
            assert_eq!(kind.label(), label);
            let s = SampleSettings { sampler: kind, ..Default::default() };
            let cli = s.cli("runs/a", 100);
            let spelled = cli.split(" --sampler ").nth(1).and_then(|rest| rest.split(' ').next()).unwrap();
            assert_eq!(SamplerKind::parse(spelled), Ok(kind), "{cli}");
            // The controls show a kind as they made it.
            assert_eq!(SamplerControls::of(kind).kind(), kind);
        }
        // DDPM and back: DDIM's steps start again at the lab's default.
        let back = SamplerControls { ddim: true, ..SamplerControls::of(SamplerControls { ddim: false, steps: 20, ..start }.kind()) };
        assert_eq!(back.kind().label(), "ddim:50:clip");
    }

    #[test]
    fn view_grids_have_one_texture_key_per_step_and_settings() {
        let s = SampleSettings::default();
        let keys = [
            view_key(100, &s),
            view_key(200, &s),
            view_key(100, &SampleSettings { omega: 1.5, ..s.clone() }),
            view_key(100, &SampleSettings { sampler: SamplerKind::Ddpm { clip_x0: true }, ..s.clone() }),
            view_key(100, &SampleSettings { per_class: 4, ..s.clone() }),
            training_key(100),
        ];
        for (i, k) in keys.iter().enumerate() {
            assert!(keys[..i].iter().all(|o| o != k), "{k} twice");
        }
    }
}
