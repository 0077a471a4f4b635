//! The lab: one persisted UI state, the run store, and the panels drawn from them. Intake and
//! drawing are separate (`intake` then `ui`), so tests drive it frame by frame without threads.

use crate::export::{Figure, Table};
use crate::panels;
use crate::store::{DataPreview, Intake, JobView, LatentSettings, RunData, RunId, SampleSettings, TransferSettings};
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
    /// `flex`, `wgpu` or `cuda`; empty: the config's.
    pub backend: String,
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
            backend: String::new(),
        }
    }
}

/// The methods a new run can stack (the CLI's `--method` names, in the host's registry order),
/// each with its hyper-parameters: (config key, default as TOML).
pub type MethodParams = Vec<(String, Vec<(String, String)>)>;

/// The hyper-parameters of method `name`.
pub fn params_of<'a>(all: &'a MethodParams, name: &str) -> &'a [(String, String)] {
    all.iter().find(|(m, _)| m == name).map_or(&[], |(_, p)| p.as_slice())
}

impl NewRun {
    /// The `ltlab train` arguments of this run; `defaults` tells which parameters are changed.
    pub fn args(&self, defaults: &MethodParams) -> Vec<String> {
        let mut a: Vec<String> = ["ltlab", "train", "--config", &self.config].iter().map(|s| s.to_string()).collect();
        for (k, v) in [("--steps", self.steps.to_string()), ("--batch", self.batch.to_string()), ("--imbalance", self.imbalance.to_string()), ("--seed", self.seed.to_string())] {
            a.extend([k.to_string(), v]);
        }
        if !self.backend.is_empty() {
            a.extend(["--backend".to_string(), self.backend.clone()]);
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

/// What persists between sessions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LabState {
    pub new_run: NewRun,
    /// β of the debiased EMA of the loss curves.
    pub smoothing: f64,
    pub log_y: bool,
    pub show_raw: bool,
    /// Steps averaged (ending at the scrubbed step) in the loss-per-t plot.
    pub t_window: u64,
    /// The global step every panel shows; `None` follows the newest.
    pub scrub: Option<u64>,
    /// Loss terms hidden from the plot.
    pub hidden_terms: BTreeSet<String>,
    /// Run directories open in the lab.
    pub open_runs: Vec<String>,
    /// The text field of "open run".
    pub open_path: String,
    /// What the central area shows.
    pub view: View,
    pub latent: LatentSettings,
    pub transfer: TransferSettings,
    /// The grids panel shows grids sampled at view time with `sample` instead of training's.
    pub view_sampling: bool,
    pub sample: SampleSettings,
    /// Folder the export menu writes to.
    pub export_dir: String,
}

/// The central area's views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum View {
    /// Loss curves over sample grids.
    Training,
    LatentMap,
    Transfer,
    Compare,
}

impl Default for LabState {
    fn default() -> Self {
        Self {
            new_run: NewRun::default(),
            smoothing: 0.9,
            log_y: true,
            show_raw: true,
            t_window: 200,
            scrub: None,
            hidden_terms: BTreeSet::new(),
            open_runs: Vec::new(),
            open_path: String::new(),
            view: View::Training,
            latent: LatentSettings::default(),
            transfer: TransferSettings::default(),
            view_sampling: false,
            sample: SampleSettings::default(),
            export_dir: "exports".into(),
        }
    }
}

/// What the lab asks its host to do.
#[derive(Debug, Clone, PartialEq)]
pub enum UiCommand {
    /// Start a run with these `ltlab train` arguments.
    Start(Vec<String>),
    /// Load the config's dataset at ρ for the controls' histogram and images.
    PreviewData { config: String, imbalance: f64 },
    Pause(RunId),
    Resume(RunId),
    Stop(RunId),
    SampleNow(RunId),
    /// Open the run directory at this path.
    Open(String),
    /// Close the run (its engine keeps running if live).
    Close(RunId),
    /// Compute a latent map of the run's checkpoint at `step`.
    LatentMap { run: RunId, step: u64, settings: LatentSettings },
    /// Compute the entanglement at every checkpoint of the run.
    Entanglement { run: RunId, settings: LatentSettings },
    /// Compute OC's transfer probability on the run's training data.
    Transfer { run: RunId, settings: TransferSettings },
    /// Sample the run's checkpoint `step` into a per-class grid with these settings.
    Sample { run: RunId, step: u64, settings: SampleSettings },
    CancelJob(u64),
    /// Write this file (the host reports back with `Intake::Exported`).
    Export { path: String, data: ExportData },
}

/// The contents of an exported file.
#[derive(Debug, Clone, PartialEq)]
pub enum ExportData {
    Text(String),
    /// An RGBA image, to be written as PNG.
    Image { width: usize, height: usize, rgba: Vec<u8> },
}

/// The texture key of the controls' data preview (no run has id 0).
pub(crate) const PREVIEW: RunId = RunId(0);

pub struct Lab {
    pub state: LabState,
    pub runs: Vec<RunData>,
    /// Runs shown in the plots and grids.
    pub selected: BTreeSet<RunId>,
    /// Built-in configs the controls offer.
    pub configs: Vec<String>,
    /// The methods a run can stack and their hyper-parameters with defaults (from the host).
    pub method_params: MethodParams,
    /// Backends this build can run.
    pub backends: Vec<String>,
    /// The dataset of the new run's config at its ρ, once the host has loaded it.
    pub data_preview: Option<DataPreview>,
    /// The (config, ρ) last asked for, so the preview is asked once per change.
    pub(crate) preview_asked: Option<(String, f64)>,
    pub errors: Vec<String>,
    /// The host's background jobs by id.
    pub jobs: BTreeMap<u64, JobView>,
    /// CPU time of the last frames in ms (layout, tessellation, paint submission), as the host
    /// measures it.
    pub frame_ms: std::collections::VecDeque<f32>,
    /// Grid textures by run and grid key (`train-STEP` or a view grid's file name).
    pub(crate) textures: HashMap<(RunId, String), egui::TextureHandle>,
    /// Thumbnail of the hovered latent-map point: (run, step, point) and its texture.
    pub(crate) hover_texture: Option<((RunId, u64, usize), egui::TextureHandle)>,
    pub(crate) commands: Vec<UiCommand>,
    /// Plots and tables drawn this frame, and those of the last frame (the export menu's).
    pub(crate) figures: Vec<Figure>,
    pub(crate) tables: Vec<Table>,
    pub(crate) shown: (Vec<Figure>, Vec<Table>),
    /// Where the central view was drawn, for its PNG.
    pub(crate) view_rect: egui::Rect,
    /// A screenshot asked for: the region to keep and its file name.
    pub(crate) pending_shot: Option<(egui::Rect, String)>,
    /// Where the integration puts the screenshot (it may call back from another thread).
    screenshot: std::sync::Arc<std::sync::Mutex<Option<std::sync::Arc<egui::ColorImage>>>>,
    /// The last thing the host reported done (an export written).
    pub notice: Option<String>,
}

impl Lab {
    pub fn new(state: LabState, configs: Vec<String>) -> Self {
        Self {
            state,
            runs: Vec::new(),
            selected: BTreeSet::new(),
            configs,
            method_params: MethodParams::new(),
            backends: vec!["flex".into()],
            data_preview: None,
            preview_asked: None,
            errors: Vec::new(),
            jobs: BTreeMap::new(),
            frame_ms: std::collections::VecDeque::new(),
            textures: HashMap::new(),
            hover_texture: None,
            commands: Vec::new(),
            figures: Vec::new(),
            tables: Vec::new(),
            shown: (Vec::new(), Vec::new()),
            view_rect: egui::Rect::NOTHING,
            pending_shot: None,
            screenshot: Default::default(),
            notice: None,
        }
    }

    pub fn run(&self, id: RunId) -> Option<&RunData> {
        self.runs.iter().find(|r| r.id == id)
    }

    /// Takes one message from the host.
    pub fn intake(&mut self, msg: Intake) {
        match msg {
            Intake::Opened(run) => {
                if !self.state.open_runs.contains(&run.dir) {
                    self.state.open_runs.push(run.dir.clone());
                }
                self.selected.insert(run.id);
                self.runs.retain(|r| r.id != run.id);
                self.runs.push(run);
            }
            Intake::Engine(id, ev) => {
                if let Some(r) = self.runs.iter_mut().find(|r| r.id == id) {
                    r.apply(&ev);
                }
            }
            Intake::Grid(id, step, img) => {
                if let Some(r) = self.runs.iter_mut().find(|r| r.id == id) {
                    r.grids.insert(step, img);
                    self.textures.remove(&(id, format!("train-{step}")));
                }
            }
            Intake::Latent(id, map) => {
                if let Some(r) = self.runs.iter_mut().find(|r| r.id == id) {
                    r.add_latent(map);
                }
            }
            Intake::ViewGrid(id, g) => {
                if let Some(r) = self.runs.iter_mut().find(|r| r.id == id) {
                    self.textures.remove(&(id, g.settings.file_name(g.step)));
                    r.add_view_grid(g);
                }
            }
            Intake::Entanglement(id, t, cond, list) => {
                if let Some(r) = self.runs.iter_mut().find(|r| r.id == id) {
                    r.entanglement.insert((t, cond), list);
                }
            }
            Intake::Transfer(id, a) => {
                if let Some(r) = self.runs.iter_mut().find(|r| r.id == id) {
                    let same = TransferSettings::of(&a);
                    r.transfers.retain(|x| !same.matches(x));
                    r.transfers.push(a);
                }
            }
            Intake::DataPreview(p) => {
                self.data_preview = Some(p);
                self.textures.retain(|k, _| k.0 != PREVIEW);
            }
            Intake::Job(j) => {
                self.jobs.insert(j.id, j);
            }
            Intake::JobEnded(id) => {
                self.jobs.remove(&id);
            }
            Intake::Exported(path) => self.notice = Some(format!("wrote {path}")),
            Intake::Error(e) => self.errors.push(e),
        }
    }

    /// Records one frame's CPU time (the last 240 are kept).
    pub fn record_frame(&mut self, ms: f32) {
        if self.frame_ms.len() == 240 {
            self.frame_ms.pop_front();
        }
        self.frame_ms.push_back(ms);
    }

    /// (median, 95th percentile, max) of the recorded frame times.
    pub fn frame_stats(&self) -> Option<(f32, f32, f32)> {
        let mut v: Vec<f32> = self.frame_ms.iter().copied().collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f32::total_cmp);
        let at = |q: f32| v[((v.len() - 1) as f32 * q).round() as usize];
        Some((at(0.5), at(0.95), v[v.len() - 1]))
    }

    /// Steps the scrubber can stop at, over the selected runs.
    pub fn marks(&self) -> Vec<u64> {
        let mut all = BTreeSet::new();
        for r in self.runs.iter().filter(|r| self.selected.contains(&r.id)) {
            all.extend(r.marks());
            all.insert(r.last_step());
        }
        all.into_iter().collect()
    }

    /// The step every panel shows.
    pub fn scrub_step(&self) -> u64 {
        self.state.scrub.unwrap_or_else(|| self.marks().last().copied().unwrap_or(0))
    }

    /// Moves the scrubber to the previous (−1) or next (+1) mark.
    pub fn scrub_by(&mut self, dir: i32) {
        let marks = self.marks();
        let now = self.scrub_step();
        let to = if dir < 0 { marks.iter().rev().find(|&&m| m < now) } else { marks.iter().find(|&&m| m > now) };
        if let Some(&m) = to {
            self.state.scrub = Some(m);
        }
    }

    /// Draws the whole lab; returns what the host should do.
    pub fn ui(&mut self, ui: &mut egui::Ui) -> Vec<UiCommand> {
        if ui.input(|i| i.key_pressed(egui::Key::ArrowLeft)) {
            self.scrub_by(-1);
        }
        if ui.input(|i| i.key_pressed(egui::Key::ArrowRight)) {
            self.scrub_by(1);
        }
        self.take_screenshot(ui);
        egui::Panel::top("scrubber").show(ui, |ui| panels::scrubber(self, ui));
        egui::Panel::left("controls").resizable(true).default_size(300.0).show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| panels::controls(self, ui));
        });
        egui::CentralPanel::default().show(ui, |ui| {
            ui.horizontal(|ui| {
                for (v, name) in [(View::Training, "Training"), (View::LatentMap, "Latent map"), (View::Transfer, "Transfer (OC)"), (View::Compare, "Compare")] {
                    ui.selectable_value(&mut self.state.view, v, name);
                }
                ui.menu_button("Export", |ui| self.export_menu(ui));
            });
            ui.separator();
            self.view_rect = ui.available_rect_before_wrap();
            match self.state.view {
                View::Training => {
                    let h = ui.available_height();
                    ui.allocate_ui(egui::vec2(ui.available_width(), h * 0.5), |ui| panels::losses(self, ui));
                    ui.separator();
                    egui::ScrollArea::both().id_salt("grids").show(ui, |ui| panels::grids(self, ui));
                }
                View::LatentMap => panels::latent(self, ui),
                View::Transfer => panels::transfer(self, ui),
                View::Compare => panels::compare(self, ui),
            }
        });
        self.shown = (std::mem::take(&mut self.figures), std::mem::take(&mut self.tables));
        std::mem::take(&mut self.commands)
    }

    fn export_path(&self, name: &str, ext: &str) -> String {
        let view = match self.state.view {
            View::Training => "training",
            View::LatentMap => "latent",
            View::Transfer => "transfer",
            View::Compare => "compare",
        };
        let stem: String = format!("{view}-{name}-step{}", self.scrub_step()).chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
        format!("{}/{stem}.{ext}", self.state.export_dir.trim_end_matches('/'))
    }

    /// PNG of the view or window; every plot of the view as SVG or CSV; every table as CSV,
    /// Markdown or LaTeX.
    fn export_menu(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let label = ui.label("folder");
            ui.text_edit_singleline(&mut self.state.export_dir).labelled_by(label.id);
        });
        for (what, rect) in [("PNG of this view", self.view_rect), ("PNG of the window", ui.ctx().content_rect())] {
            if ui.button(what).clicked() {
                let name = if what.ends_with("view") { "view" } else { "window" };
                self.pending_shot = Some((rect, self.export_path(name, "png")));
                let (slot, ctx) = (self.screenshot.clone(), ui.ctx().clone());
                ui.ctx().request_screenshot(move |image| {
                    *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(image);
                    ctx.request_repaint();
                });
                ui.close();
            }
        }
        let mut out = Vec::new();
        for f in &self.shown.0 {
            ui.horizontal(|ui| {
                ui.label(&f.name);
                if ui.small_button("SVG").clicked() {
                    out.push((self.export_path(&f.name, "svg"), f.svg()));
                }
                if ui.small_button("CSV").clicked() {
                    out.push((self.export_path(&f.name, "csv"), f.csv()));
                }
            });
        }
        for t in &self.shown.1 {
            ui.horizontal(|ui| {
                ui.label(&t.name);
                for (fmt, ext) in [("CSV", "csv"), ("Markdown", "md"), ("LaTeX", "tex")] {
                    if ui.small_button(fmt).clicked() {
                        let text = match ext {
                            "csv" => t.csv(),
                            "md" => t.markdown(),
                            _ => t.latex(),
                        };
                        out.push((self.export_path(&t.name, ext), text));
                    }
                }
            });
        }
        if !out.is_empty() {
            ui.close();
        }
        for (path, text) in out {
            self.commands.push(UiCommand::Export { path, data: ExportData::Text(text) });
        }
    }

    /// Turns a screenshot the lab asked for into a PNG export of its region.
    fn take_screenshot(&mut self, ui: &egui::Ui) {
        let Some(image) = self.screenshot.lock().unwrap_or_else(|e| e.into_inner()).take() else { return };
        if let Some((rect, path)) = self.pending_shot.take() {
            let data = crop(&image, rect, ui.ctx().pixels_per_point());
            self.commands.push(UiCommand::Export { path, data });
        }
    }
}

/// The region `rect` (points) of a screenshot (pixels) as RGBA.
pub(crate) fn crop(image: &egui::ColorImage, rect: egui::Rect, pixels_per_point: f32) -> ExportData {
    let [w, h] = image.size;
    let px = |v: f32, max: usize| ((v * pixels_per_point).round().max(0.0) as usize).min(max);
    let (x0, x1, y0, y1) = (px(rect.min.x, w), px(rect.max.x, w), px(rect.min.y, h), px(rect.max.y, h));
    let mut rgba = Vec::with_capacity((x1 - x0) * (y1 - y0) * 4);
    for y in y0..y1 {
        for c in &image.pixels[y * w + x0..y * w + x1] {
            rgba.extend_from_slice(&c.to_srgba_unmultiplied());
        }
    }
    ExportData::Image { width: x1.saturating_sub(x0), height: y1.saturating_sub(y0), rgba }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_takes_the_region_in_pixels() {
        // 4 × 2 pixels, each pixel's red channel its index; 2 pixels per point.
        let pixels = (0..8).map(|i| egui::Color32::from_rgb(i as u8, 0, 0)).collect();
        let image = egui::ColorImage { size: [4, 2], source_size: egui::vec2(4.0, 2.0), pixels };
        let rect = egui::Rect::from_min_max(egui::pos2(0.5, 0.0), egui::pos2(1.5, 1.0));
        match crop(&image, rect, 2.0) {
            ExportData::Image { width, height, rgba } => {
                assert_eq!((width, height), (2, 2));
                let reds: Vec<u8> = rgba.chunks(4).map(|p| p[0]).collect();
                assert_eq!(reds, [1, 2, 5, 6]);
            }
            other => panic!("{other:?}"),
        }
        // A region past the edge is clipped to the image.
        let rect = egui::Rect::from_min_max(egui::pos2(1.0, 0.0), egui::pos2(9.0, 9.0));
        assert!(matches!(crop(&image, rect, 2.0), ExportData::Image { width: 2, height: 2, .. }));
    }
}
