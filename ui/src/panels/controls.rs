//! Run controls: a new run (config, backend, steps, batch, ρ, seed, method stack and every
//! stacked method's hyper-parameters) with its dataset's class counts and a few real images per
//! class, started with one click or copied as its CLI command; every open run with status,
//! progress, images/s, ETA and pause / resume / stop / sample-now; open a run directory.

use crate::lab::{Lab, PREVIEW, UiCommand, params_of};
use crate::store::{DataPreview, RunStatus};

pub(crate) fn controls(lab: &mut Lab, ui: &mut egui::Ui) {
    ui.heading("new run");
    let n = &mut lab.state.new_run;
    egui::ComboBox::from_label("config").selected_text(n.config.clone()).show_ui(ui, |ui| {
        for c in &lab.configs {
            ui.selectable_value(&mut n.config, c.clone(), c.as_str());
        }
    });
    let shown = if n.backend.is_empty() { "the config's".to_string() } else { n.backend.clone() };
    egui::ComboBox::from_label("backend").selected_text(shown).show_ui(ui, |ui| {
        ui.selectable_value(&mut n.backend, String::new(), "the config's");
        for b in &lab.backends {
            ui.selectable_value(&mut n.backend, b.clone(), b.as_str());
        }
    });
    ui.add(egui::DragValue::new(&mut n.steps).range(1..=10_000_000).prefix("steps "));
    ui.add(egui::DragValue::new(&mut n.batch).range(1..=4096).prefix("batch "));
    let rho = ui.add(egui::DragValue::new(&mut n.imbalance).range(0.0001..=1.0).speed(0.001).prefix("ρ "));
    ui.add(egui::DragValue::new(&mut n.seed).prefix("seed "));
    // One load per settled (config, ρ): not while ρ is being dragged.
    let key = (n.config.clone(), n.imbalance);
    if lab.preview_asked.as_ref() != Some(&key) && !rho.dragged() {
        lab.preview_asked = Some(key.clone());
        lab.commands.push(UiCommand::PreviewData { config: key.0.clone(), imbalance: key.1 });
    }
    let Lab { data_preview, textures, state, method_params, .. } = lab;
    match data_preview {
        Some(p) => {
            let stale = (p.config.as_str(), p.imbalance) != (key.0.as_str(), key.1);
            data_view(p, stale, textures, ui);
        }
        None => {
            ui.weak("loading the dataset...");
        }
    }
    let n = &mut state.new_run;
    ui.label("methods (stacked on the config's):");
    ui.horizontal_wrapped(|ui| {
        for (m, _) in method_params.iter() {
            let mut on = n.methods.iter().any(|x| x == m);
            if ui.checkbox(&mut on, m.as_str()).changed() {
                if on { n.methods.push(m.to_string()) } else { n.methods.retain(|x| x != m) }
            }
        }
    });
    for m in n.methods.clone() {
        let params = params_of(method_params, &m);
        if params.is_empty() {
            continue;
        }
        egui::CollapsingHeader::new(format!("{m} hyper-parameters")).default_open(true).show(ui, |ui| {
            egui::Grid::new(("params", m.as_str())).num_columns(2).show(ui, |ui| {
                for (key, default) in params {
                    let short = key.rsplit('.').next().unwrap_or(key);
                    let label = ui.label(short).on_hover_text(format!("{key} (default {default})"));
                    let v = n.params.entry(key.clone()).or_insert_with(|| default.clone());
                    let changed = v.trim() != default;
                    let edit = egui::TextEdit::singleline(v).desired_width(90.0).text_color_opt(changed.then_some(egui::Color32::from_rgb(241, 196, 15)));
                    ui.add(edit).labelled_by(label.id);
                    ui.end_row();
                }
            });
        });
    }
    ui.horizontal(|ui| {
        let label = ui.label("--set");
        ui.add(egui::TextEdit::singleline(&mut n.extra).hint_text("KEY=VALUE ...").desired_width(200.0)).labelled_by(label.id).on_hover_text("any config key by its TOML path, e.g. optim.lr=0.0001");
    });
    ui.horizontal(|ui| {
        let cli = lab.state.new_run.cli(&lab.method_params);
        if ui.button("Start").clicked() {
            lab.commands.push(UiCommand::Start(lab.state.new_run.args(&lab.method_params)));
        }
        if ui.button("Copy CLI").on_hover_text(&cli).clicked() {
            ui.ctx().copy_text(cli);
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
                let eta = r.eta_seconds().filter(|_| r.status.is_live()).map_or(String::new(), |s| format!(", ETA {:.0} s", s));
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

/// The class counts as a bar per class (head first) with the class's first images beside it.
fn data_view(p: &DataPreview, stale: bool, textures: &mut std::collections::HashMap<(crate::store::RunId, String), egui::TextureHandle>, ui: &mut egui::Ui) {
    let total: usize = p.counts.iter().sum();
    let max = p.counts.iter().copied().max().unwrap_or(1).max(1);
    let min = p.counts.iter().copied().filter(|&c| c > 0).min().unwrap_or(0);
    ui.label(format!("{} · {} classes · {total} images · head/tail {max}/{min}{}", p.dataset, p.counts.len(), if stale { " (updating...)" } else { "" }));
    let mut order: Vec<usize> = (0..p.counts.len()).collect();
    order.sort_by(|&a, &b| p.counts[b].cmp(&p.counts[a]).then(a.cmp(&b)));
    let thumb = (p.size as f32 * (20.0 / p.size.max(1) as f32).ceil()).min(40.0);
    egui::ScrollArea::vertical().id_salt("data-preview").max_height(260.0).show(ui, |ui| {
        egui::Grid::new("class-counts").num_columns(4).spacing([6.0, 2.0]).show(ui, |ui| {
            for c in order {
                let name = p.class_names.get(c).cloned().unwrap_or_else(|| c.to_string());
                ui.label(egui::RichText::new(name).small()).on_hover_text(format!("class {c}: {} images", p.counts[c]));
                let (rect, _) = ui.allocate_exact_size(egui::vec2(70.0, thumb * 0.6), egui::Sense::hover());
                let w = rect.width() * p.counts[c] as f32 / max as f32;
                ui.painter().rect_filled(egui::Rect::from_min_size(rect.min, egui::vec2(w.max(1.0), rect.height())), 1.0, egui::Color32::from_rgb(86, 156, 214));
                ui.label(egui::RichText::new(p.counts[c].to_string()).small());
                let imgs = &p.images[c];
                let len = p.channels * p.size * p.size;
                if len > 0 && !imgs.is_empty() {
                    let k = imgs.len() / len;
                    let tex = textures.entry((PREVIEW, format!("class-{c}"))).or_insert_with(|| {
                        ui.ctx().load_texture(format!("preview-{c}"), super::planar_rgba(imgs, k, p.channels, p.size), egui::TextureOptions::NEAREST)
                    });
                    ui.image((tex.id(), egui::vec2(thumb * k as f32, thumb)));
                } else {
                    ui.label("");
                }
                ui.end_row();
            }
        });
    });
}
