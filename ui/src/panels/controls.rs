//! Run controls: a new run (config, backend, steps, batch, ρ, seed, method stack and every
//! stacked method's hyper-parameters) with its dataset's class counts and a few real images per
//! class, started with one click or copied as its CLI command; every open run with status,
//! progress, images/s, ETA and pause / resume / stop / sample-now; open a run directory; the
//! host's errors.

use super::ViewCtx;
use crate::command::UiCommand;
use crate::store::{DataPreview, HostCommand, RunData, RunId, RunStatus};
use ltlab_types::{BackendChoice, BackendKind, DeviceClass, MethodParams, Offer, params_of};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The run the controls will start; also its CLI command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewRun {
    /// A built-in config (preset) name.
    pub config: String,
    pub steps: u64,
    pub batch: usize,
    pub imbalance: f64,
    pub seed: u64,
    pub methods: Vec<String>,
    /// Method hyper-parameters by config key (`methods.coral.weight`), as TOML values; only
    /// those of stacked methods that differ from the method's default reach the command.
    pub params: BTreeMap<String, String>,
    /// Any other `KEY=VALUE` config settings, space-separated.
    pub extra: String,
    /// What to train on; `None` until the host says what this machine has (then its preferred:
    /// a real GPU if there is one, else flex).
    pub backend_kind: Option<BackendKind>,
}

impl Default for NewRun {
    fn default() -> Self {
        Self {
            config: "demo-synthetic".into(),
            steps: 1500,
            batch: 32,
            imbalance: 0.01,
            seed: 0,
            methods: Vec::new(),
            params: BTreeMap::new(),
            extra: String::new(),
            backend_kind: None,
        }
    }
}

impl NewRun {
    /// The `ltlab train` arguments of this run; `defaults` tells which parameters are changed.
    pub fn args(&self, defaults: &MethodParams) -> Vec<String> {
        let mut a: Vec<String> = ["ltlab", "train", "--config", &self.config].iter().map(|s| s.to_string()).collect();
        for (k, v) in [
            ("--steps", self.steps.to_string()),
            ("--batch", self.batch.to_string()),
            ("--imbalance", self.imbalance.to_string()),
            ("--seed", self.seed.to_string()),
        ] {
            a.extend([k.to_string(), v]);
        }
        if let Some(b) = self.backend_kind {
            a.extend(["--backend".to_string(), b.name().to_string()]);
        }
        for m in &self.methods {
            a.extend(["--method".to_string(), m.clone()]);
        }
        let mut sets = BTreeSet::new();
        for m in &self.methods {
            for (key, default) in params_of(defaults, m) {
                if let Some(v) = self.params.get(key).map(|v| v.trim()).filter(|v| !v.is_empty() && v != default) {
                    sets.insert(format!("{key}={v}"));
                }
            }
        }
        for kv in sets.into_iter().chain(self.extra.split_whitespace().map(String::from)) {
            a.extend(["--set".to_string(), kv]);
        }
        a
    }

    /// The same run as a shell command (arguments with quotes or spaces single-quoted).
    pub fn cli(&self, defaults: &MethodParams) -> String {
        let quote = |s: &String| if s.contains(['"', ' ', '\'', '*', '$']) { format!("'{}'", s.replace('\'', "'\\''")) } else { s.clone() };
        self.args(defaults).iter().map(quote).collect::<Vec<_>>().join(" ")
    }
}

/// What the controls ask for this frame.
#[derive(Default)]
pub(crate) struct ControlsOutput {
    pub commands: Vec<UiCommand>,
    /// Runs checked (true) or unchecked in the run list.
    pub selection: Vec<(RunId, bool)>,
}

#[derive(Default)]
pub(crate) struct Controls {
    /// The dataset of the new run's config at its ρ, once the host has loaded it.
    data_preview: Option<DataPreview>,
    /// The (config, ρ) last asked for, so the preview is asked once per change.
    preview_asked: Option<(String, f64)>,
    /// The preview's images, one texture per class.
    preview_textures: HashMap<usize, egui::TextureHandle>,
    /// What the host reported failing, oldest first.
    pub errors: Vec<String>,
}

impl Controls {
    pub fn set_preview(&mut self, p: DataPreview) {
        self.data_preview = Some(p);
        self.preview_textures.clear();
    }

    /// `new_run` and `open_path` are the persisted form fields.
    pub fn ui(&mut self, new_run: &mut NewRun, open_path: &mut String, offer: &Offer, ctx: &ViewCtx, ui: &mut egui::Ui) -> ControlsOutput {
        let mut out = ControlsOutput::default();
        ui.heading("new run");
        let n = new_run;
        egui::ComboBox::from_label("config").selected_text(n.config.clone()).show_ui(ui, |ui| {
            for c in &offer.configs {
                ui.selectable_value(&mut n.config, c.clone(), c.as_str());
            }
        });
        let chosen = offer.backends.iter().find(|b| Some(b.kind) == n.backend_kind);
        let shown = chosen.map_or_else(|| n.backend_kind.map_or("the config's", |k| k.name()).to_string(), BackendChoice::label);
        egui::ComboBox::from_label("backend").selected_text(shown).show_ui(ui, |ui| {
            for b in &offer.backends {
                ui.selectable_value(&mut n.backend_kind, Some(b.kind), b.label()).on_hover_text(match b.class {
                    DeviceClass::Software => "a CPU implementing the GPU API: correct, but slower than flex",
                    DeviceClass::Gpu => "this machine's GPU",
                    DeviceClass::Cpu => "the CPU backend",
                });
            }
        });
        ui.add(egui::DragValue::new(&mut n.steps).range(1..=10_000_000).prefix("steps "));
        ui.add(egui::DragValue::new(&mut n.batch).range(1..=4096).prefix("batch "));
        let rho = ui.add(egui::DragValue::new(&mut n.imbalance).range(0.0001..=1.0).speed(0.001).prefix("ρ "));
        ui.add(egui::DragValue::new(&mut n.seed).prefix("seed "));
        // One load per settled (config, ρ): not while ρ is being dragged.
        let key = (n.config.clone(), n.imbalance);
        if self.preview_asked.as_ref() != Some(&key) && !rho.dragged() {
            self.preview_asked = Some(key.clone());
            out.commands.push(UiCommand::Host(HostCommand::PreviewData { config: key.0.clone(), imbalance: key.1 }));
        }
        match &self.data_preview {
            Some(p) => {
                let stale = (p.config.as_str(), p.imbalance) != (key.0.as_str(), key.1);
                data_view(p, stale, &mut self.preview_textures, ui);
            }
            None => {
                ui.weak("loading the dataset...");
            }
        }
        ui.label("methods (stacked on the config's):");
        ui.horizontal_wrapped(|ui| {
            for (m, _) in offer.method_params.iter() {
                let mut on = n.methods.iter().any(|x| x == m);
                if ui.checkbox(&mut on, m.as_str()).changed() {
                    if on { n.methods.push(m.to_string()) } else { n.methods.retain(|x| x != m) }
                }
            }
        });
        for m in n.methods.clone() {
            let params = params_of(&offer.method_params, &m);
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
            ui.add(egui::TextEdit::singleline(&mut n.extra).hint_text("KEY=VALUE ...").desired_width(200.0))
                .labelled_by(label.id)
                .on_hover_text("any config key by its TOML path, e.g. optim.lr=0.0001");
        });
        ui.horizontal(|ui| {
            let cli = n.cli(&offer.method_params);
            if ui.button("Start").clicked() {
                out.commands.push(UiCommand::Host(HostCommand::Start(n.args(&offer.method_params))));
            }
            if ui.button("Copy CLI").on_hover_text(&cli).clicked() {
                ui.ctx().copy_text(cli);
            }
        });
        ui.separator();
        ui.heading("runs");
        ui.horizontal(|ui| {
            let label = ui.label("run dir");
            ui.add(egui::TextEdit::singleline(open_path).hint_text("runs/NAME").desired_width(160.0)).labelled_by(label.id);
            if ui.button("Open").clicked() && !open_path.trim().is_empty() {
                out.commands.push(UiCommand::Host(HostCommand::Open(open_path.trim().to_string())));
            }
        });
        // Grouped by method stack, so that a study's dozen runs stay readable; a group's
        // checkbox shows or hides all of its runs.
        let mut groups: BTreeMap<&str, Vec<&RunData>> = BTreeMap::new();
        for r in ctx.runs {
            groups.entry(r.header.methods.as_str()).or_default().push(r);
        }
        for (methods, runs) in groups {
            let shown = runs.iter().filter(|r| ctx.selected.contains(&r.header.id)).count();
            let id = ui.make_persistent_id(("runs-of", methods));
            egui::collapsing_header::CollapsingState::load_with_default_open(ui.ctx(), id, runs.len() <= 4)
                .show_header(ui, |ui| {
                    let mut all = shown == runs.len();
                    if ui.checkbox(&mut all, egui::RichText::new(methods).strong()).on_hover_text("show or hide every run of this method").changed() {
                        out.selection.extend(runs.iter().map(|r| (r.header.id, all)));
                    }
                    let n = runs.len();
                    ui.label(format!("{n} run{}, {shown} shown", if n == 1 { "" } else { "s" }));
                })
                .body(|ui| {
                    for r in runs {
                        run_card(r, ctx, &mut out, ui);
                    }
                });
        }
        for e in &self.errors {
            ui.colored_label(egui::Color32::LIGHT_RED, e);
        }
        out
    }
}

/// One run: shown or not, methods and status, warnings, progress, throughput and ETA, its
/// controls and folder.
fn run_card(r: &RunData, ctx: &ViewCtx, out: &mut ControlsOutput, ui: &mut egui::Ui) {
    ui.group(|ui| {
        let mut on = ctx.selected.contains(&r.header.id);
        if ui.checkbox(&mut on, egui::RichText::new(&r.header.name).strong()).changed() {
            out.selection.push((r.header.id, on));
        }
        ui.label(format!("{} · {}", r.header.methods, r.header.status.label()));
        for w in &r.header.warnings {
            ui.colored_label(egui::Color32::from_rgb(241, 196, 15), w);
        }
        ui.add(egui::ProgressBar::new(r.progress()).text(format!("{} / {}", r.last_step(), r.header.total_steps)));
        if let Some(ips) = r.images_per_s() {
            let eta = r.eta_seconds().filter(|_| r.header.status.is_live()).map_or(String::new(), |s| format!(", ETA {:.0} s", s));
            ui.label(format!("{ips:.1} images/s{eta}"));
        }
        ui.horizontal(|ui| {
            let toggle = match r.header.status {
                RunStatus::Training | RunStatus::Starting => ui.button("Pause").clicked().then_some(UiCommand::Host(HostCommand::Pause(r.header.id))),
                RunStatus::Paused => ui.button("Resume").clicked().then_some(UiCommand::Host(HostCommand::Resume(r.header.id))),
                _ => None,
            };
            out.commands.extend(toggle);
            if r.header.status.is_live() {
                if ui.button("Stop").clicked() {
                    out.commands.push(UiCommand::Host(HostCommand::Stop(r.header.id)));
                }
                if ui.button("Sample now").clicked() {
                    out.commands.push(UiCommand::Host(HostCommand::SampleNow(r.header.id)));
                }
            }
            if ui.small_button("Close").clicked() {
                out.commands.push(UiCommand::Close(r.header.id));
            }
        });
        ui.small(&r.header.dir);
    });
}

/// The class counts as a bar per class (head first) with the class's first images beside it.
fn data_view(p: &DataPreview, stale: bool, textures: &mut HashMap<usize, egui::TextureHandle>, ui: &mut egui::Ui) {
    let total: usize = p.counts.iter().sum();
    let max = p.counts.iter().copied().max().unwrap_or(1).max(1);
    let min = p.counts.iter().copied().filter(|&c| c > 0).min().unwrap_or(0);
    ui.label(format!("{} · {} classes · {total} images · head/tail {max}/{min}{}", p.dataset, p.counts.len(), if stale { " (updating...)" } else { "" }));
    let mut order: Vec<usize> = (0..p.counts.len()).collect();
    order.sort_by(|&a, &b| p.counts[b].cmp(&p.counts[a]).then(a.cmp(&b)));
    // Small enough that ten classes fit without scrolling; a longer list (CIFAR-100) scrolls,
    // with its bar always shown and the hint saying so.
    let thumb = (p.size as f32 * (20.0 / p.size.max(1) as f32).ceil()).min(22.0);
    const SHOWN: usize = 10;
    let row = thumb.max(ui.text_style_height(&egui::TextStyle::Small)) + 2.0;
    let scrolls = p.counts.len() > SHOWN;
    if scrolls {
        ui.small(format!("showing {SHOWN} of {} classes: scroll the list for the rest", p.counts.len()));
    }
    let bar = if scrolls { egui::scroll_area::ScrollBarVisibility::AlwaysVisible } else { egui::scroll_area::ScrollBarVisibility::AlwaysHidden };
    egui::ScrollArea::vertical().id_salt("data-preview").max_height(row * SHOWN as f32 + 4.0).scroll_bar_visibility(bar).show(ui, |ui| {
        egui::Grid::new("class-counts").num_columns(4).spacing([6.0, 2.0]).show(ui, |ui| {
            for c in order {
                let name = p.class_names.get(c).cloned().unwrap_or_else(|| c.to_string());
                ui.label(egui::RichText::new(name).small()).on_hover_text(format!("class {c}: {} images", p.counts[c]));
                let (rect, _) = ui.allocate_exact_size(egui::vec2(70.0, thumb * 0.6), egui::Sense::hover());
                let w = rect.width() * p.counts[c] as f32 / max as f32;
                ui.painter().rect_filled(
                    egui::Rect::from_min_size(rect.min, egui::vec2(w.max(1.0), rect.height())),
                    1.0,
                    egui::Color32::from_rgb(86, 156, 214),
                );
                ui.label(egui::RichText::new(p.counts[c].to_string()).small());
                let imgs = &p.images[c];
                let len = p.channels * p.size * p.size;
                if len > 0 && !imgs.is_empty() {
                    let k = imgs.len() / len;
                    let tex = textures.entry(c).or_insert_with(|| {
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
