//! Run controls: a new run (config, steps, batch, ρ, seed, method stack) started with one
//! click or copied as its CLI command; every open run with status, progress, images/s, ETA
//! and pause / resume / stop / sample-now; open a run directory.

use crate::lab::{Lab, METHODS, UiCommand};
use crate::store::RunStatus;

pub(crate) fn controls(lab: &mut Lab, ui: &mut egui::Ui) {
    ui.heading("new run");
    let n = &mut lab.state.new_run;
    egui::ComboBox::from_label("config").selected_text(n.config.clone()).show_ui(ui, |ui| {
        for c in &lab.configs {
            ui.selectable_value(&mut n.config, c.clone(), c.as_str());
        }
    });
    ui.add(egui::DragValue::new(&mut n.steps).range(1..=10_000_000).prefix("steps "));
    ui.add(egui::DragValue::new(&mut n.batch).range(1..=4096).prefix("batch "));
    ui.add(egui::DragValue::new(&mut n.imbalance).range(0.0001..=1.0).speed(0.001).prefix("ρ "));
    ui.add(egui::DragValue::new(&mut n.seed).prefix("seed "));
    ui.label("methods (stacked on the config's):");
    ui.horizontal_wrapped(|ui| {
        for m in METHODS {
            let mut on = n.methods.iter().any(|x| x == m);
            if ui.checkbox(&mut on, *m).changed() {
                if on { n.methods.push(m.to_string()) } else { n.methods.retain(|x| x != m) }
            }
        }
    });
    ui.horizontal(|ui| {
        if ui.button("Start").clicked() {
            lab.commands.push(UiCommand::Start(lab.state.new_run.clone()));
        }
        if ui.button("Copy CLI").on_hover_text(lab.state.new_run.cli()).clicked() {
            ui.ctx().copy_text(lab.state.new_run.cli());
        }
    });
    ui.separator();
    ui.heading("runs");
    ui.horizontal(|ui| {
        let label = ui.label("run dir");
        ui.add(egui::TextEdit::singleline(&mut lab.state.open_path).hint_text("runs/NAME").desired_width(160.0)).labelled_by(label.id);
        if ui.button("Open").clicked() && !lab.state.open_path.trim().is_empty() {
            lab.commands.push(UiCommand::Open(lab.state.open_path.trim().to_string()));
        }
    });
    let mut toggles = Vec::new();
    for r in &lab.runs {
        ui.group(|ui| {
            let mut on = lab.selected.contains(&r.id);
            if ui.checkbox(&mut on, egui::RichText::new(&r.name).strong()).changed() {
                toggles.push((r.id, on));
            }
            ui.label(format!("{} · {}", r.methods, r.status.label()));
            ui.add(egui::ProgressBar::new(r.progress()).text(format!("{} / {}", r.last_step(), r.total_steps)));
            if let Some(ips) = r.images_per_s() {
                let batch = lab.state.new_run.batch.max(1);
                let eta = r.eta_seconds(batch).filter(|_| r.status.is_live()).map_or(String::new(), |s| format!(", ETA {:.0} s", s));
                ui.label(format!("{ips:.1} images/s{eta}"));
            }
            ui.horizontal(|ui| {
                match r.status {
                    RunStatus::Training | RunStatus::Starting => {
                        if ui.button("Pause").clicked() {
                            lab.commands.push(UiCommand::Pause(r.id));
                        }
                    }
                    RunStatus::Paused => {
                        if ui.button("Resume").clicked() {
                            lab.commands.push(UiCommand::Resume(r.id));
                        }
                    }
                    _ => {}
                }
                if r.status.is_live() {
                    if ui.button("Stop").clicked() {
                        lab.commands.push(UiCommand::Stop(r.id));
                    }
                    if ui.button("Sample now").clicked() {
                        lab.commands.push(UiCommand::SampleNow(r.id));
                    }
                }
                if ui.small_button("Close").clicked() {
                    lab.commands.push(UiCommand::Close(r.id));
                }
            });
            ui.small(&r.dir);
        });
    }
    for (id, on) in toggles {
        if on { lab.selected.insert(id) } else { lab.selected.remove(&id) };
    }
    for e in &lab.errors {
        ui.colored_label(egui::Color32::LIGHT_RED, e);
    }
}
