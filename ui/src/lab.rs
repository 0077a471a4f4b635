//! The lab: one persisted UI state (made of each panel's settings), the run store, and the
//! panels, each with its own runtime state. Intake and drawing are separate (`intake` then
//! `ui`), so tests drive it frame by frame without threads.

use crate::panels::compare::CompareView;
use crate::panels::controls::Controls;
use crate::panels::export_menu::ExportMenu;
use crate::panels::grids::{GridSettings, training_key, view_key};
use crate::panels::latent::LatentView;
use crate::panels::losses::LossSettings;
use crate::panels::scrubber::Scrubber;
use crate::panels::training::TrainingView;
use crate::panels::transfer::TransferView;
use crate::panels::{ViewCtx, ViewOutput};
use crate::store::{Intake, JobView, LatentSettings, RunData, RunId, TransferSettings};
use ltlab_types::{BackendChoice, Offer};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

pub use crate::command::{ExportData, UiCommand};
pub use crate::panels::controls::NewRun;

/// What persists between sessions: one part per panel. Every part defaults field by field, so a
/// file from an older layout loads (losing at most the settings that moved).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LabState {
    /// The controls' new-run form.
    pub new_run: NewRun,
    /// The controls' "open run" text field.
    pub open_path: String,
    /// Run directories open in the lab.
    pub open_runs: Vec<String>,
    /// The global step every panel shows; `None` follows the newest.
    pub scrub: Option<u64>,
    /// What the central area shows.
    pub view: View,
    pub losses: LossSettings,
    pub grids: GridSettings,
    pub latent: LatentSettings,
    pub transfer: TransferSettings,
    /// Folder the export menu writes to.
    pub export_dir: String,
}

impl Default for LabState {
    fn default() -> Self {
        Self {
            new_run: NewRun::default(),
            open_path: String::new(),
            open_runs: Vec::new(),
            scrub: None,
            view: View::Training,
            losses: LossSettings::default(),
            grids: GridSettings::default(),
            latent: LatentSettings::default(),
            transfer: TransferSettings::default(),
            export_dir: "exports".into(),
        }
    }
}

/// The central area's views, by the id the state persists; [`VIEWS`] says everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum View {
    /// Loss curves over sample grids.
    Training,
    LatentMap,
    Transfer,
    Compare,
}

/// One central view: its tab, its export file names and how it is drawn (which settings it
/// gets).
pub struct ViewEntry {
    pub id: View,
    pub title: &'static str,
    /// The first part of exported file names.
    pub export_prefix: &'static str,
    draw: fn(&mut Views, &mut LabState, &ViewCtx, &mut egui::Ui) -> ViewOutput,
}

/// The central views in tab order: the tabs, the drawing and the export names all read this.
pub static VIEWS: &[ViewEntry] = &[
    ViewEntry { id: View::Training, title: "Training", export_prefix: "training", draw: |v, s, ctx, ui| v.training.ui(&mut s.losses, &mut s.grids, ctx, ui) },
    ViewEntry { id: View::LatentMap, title: "Latent map", export_prefix: "latent", draw: |v, s, ctx, ui| v.latent.ui(&mut s.latent, ctx, ui) },
    ViewEntry { id: View::Transfer, title: "Transfer (OC)", export_prefix: "transfer", draw: |v, s, ctx, ui| v.transfer.ui(&mut s.transfer, ctx, ui) },
    ViewEntry { id: View::Compare, title: "Compare", export_prefix: "compare", draw: |v, s, ctx, ui| v.compare.ui(&s.latent, ctx, ui) },
];

impl View {
    /// This view's entry in [`VIEWS`].
    pub fn entry(self) -> &'static ViewEntry {
        VIEWS.iter().find(|e| e.id == self).expect("every view is listed in VIEWS")
    }
}

/// The central views' runtime state.
#[derive(Default)]
pub(crate) struct Views {
    training: TrainingView,
    latent: LatentView,
    transfer: TransferView,
    compare: CompareView,
}

impl Views {
    /// The host sent this grid again (training's, or one sampled at view time).
    fn forget_grid(&mut self, run: RunId, key: &str) {
        self.training.grids.forget(run, key);
        self.compare.grids.forget(run, key);
    }
}

pub struct Lab {
    pub state: LabState,
    pub runs: Vec<RunData>,
    /// Runs shown in the plots and grids.
    pub selected: BTreeSet<RunId>,
    /// What the host can start: configs, the methods a run can stack with their parameters'
    /// defaults, backends (set with [`Lab::set_offer`]).
    pub offer: Offer,
    /// The host's background jobs by id.
    pub jobs: BTreeMap<u64, JobView>,
    scrubber: Scrubber,
    controls: Controls,
    views: Views,
    export_menu: ExportMenu,
}

impl Lab {
    pub fn new(state: LabState) -> Self {
        Self {
            state,
            runs: Vec::new(),
            selected: BTreeSet::new(),
            offer: Offer::default(),
            jobs: BTreeMap::new(),
            scrubber: Scrubber::default(),
            controls: Controls::default(),
            views: Views::default(),
            export_menu: ExportMenu::default(),
        }
    }

    /// What the host can start. A new run's backend that this host lacks (or none chosen yet)
    /// becomes the host's preferred one: a real GPU if it has one, else flex.
    pub fn set_offer(&mut self, offer: Offer) {
        let run = &mut self.state.new_run;
        if !run.backend_kind.is_some_and(|k| offer.backends.iter().any(|b| b.kind == k)) {
            run.backend_kind = Some(BackendChoice::preferred(&offer.backends));
        }
        self.offer = offer;
    }

    /// Closes a run in this front end (its engine, if any, keeps running).
    pub fn close(&mut self, id: RunId) {
        self.runs.retain(|r| r.header.id != id);
        self.selected.remove(&id);
        let dirs: Vec<String> = self.runs.iter().map(|r| r.header.dir.clone()).collect();
        self.state.open_runs.retain(|d| dirs.contains(d));
    }

    pub fn run(&self, id: RunId) -> Option<&RunData> {
        self.runs.iter().find(|r| r.header.id == id)
    }

    /// Takes one message from the host: the store changes, and the panel whose runtime state
    /// depends on it hears of it.
    pub fn intake(&mut self, msg: Intake) {
        match msg {
            Intake::Opened(run) => {
                if !self.state.open_runs.contains(&run.header.dir) {
                    self.state.open_runs.push(run.header.dir.clone());
                }
                self.selected.insert(run.header.id);
                self.runs.retain(|r| r.header.id != run.header.id);
                self.runs.push(*run);
            }
            Intake::Engine(id, ev) => {
                if let Some(r) = self.runs.iter_mut().find(|r| r.header.id == id) {
                    r.apply(&ev);
                }
            }
            Intake::Metrics(id, m) => {
                if let Some(r) = self.runs.iter_mut().find(|r| r.header.id == id) {
                    r.metrics = *m;
                }
            }
            Intake::Grid(id, step, img) => {
                if let Some(r) = self.runs.iter_mut().find(|r| r.header.id == id) {
                    r.grids.insert(step, img);
                    self.views.forget_grid(id, &training_key(step));
                }
            }
            Intake::Latent(id, map) => {
                if let Some(r) = self.runs.iter_mut().find(|r| r.header.id == id) {
                    r.add_latent(map);
                }
            }
            Intake::ViewGrid(id, g) => {
                if let Some(r) = self.runs.iter_mut().find(|r| r.header.id == id) {
                    self.views.forget_grid(id, &view_key(g.step, &g.settings));
                    r.add_view_grid(g);
                }
            }
            Intake::Entanglement(id, t, cond, list) => {
                if let Some(r) = self.runs.iter_mut().find(|r| r.header.id == id) {
                    r.header.entanglement.insert((t, cond), list);
                }
            }
            Intake::Transfer(id, a) => {
                if let Some(r) = self.runs.iter_mut().find(|r| r.header.id == id) {
                    let same = TransferSettings::of(&a);
                    r.header.transfers.retain(|x| !same.matches(x));
                    r.header.transfers.push(a);
                }
            }
            Intake::DataPreview(p) => self.controls.set_preview(p),
            Intake::Job(j) => {
                self.jobs.insert(j.id, j);
            }
            Intake::JobEnded(id) => {
                self.jobs.remove(&id);
            }
            Intake::Exported(path) => self.scrubber.notice = Some(format!("wrote {path}")),
            Intake::Error(e) => self.controls.errors.push(e),
        }
    }

    /// Records one frame's CPU time (the last 240 are kept).
    pub fn record_frame(&mut self, ms: f32) {
        self.scrubber.frame_times.record(ms);
    }

    /// (median, 95th percentile, max) of the recorded frame times.
    pub fn frame_stats(&self) -> Option<(f32, f32, f32)> {
        self.scrubber.frame_times.stats()
    }

    /// The store as the panels read it this frame.
    fn ctx(&self) -> ViewCtx<'_> {
        ViewCtx::new(&self.runs, &self.selected, &self.jobs, self.state.scrub)
    }

    /// Steps the scrubber can stop at, over the selected runs.
    pub fn marks(&self) -> Vec<u64> {
        self.ctx().marks
    }

    /// The step every panel shows.
    pub fn scrub_step(&self) -> u64 {
        self.ctx().scrub
    }

    /// Moves the scrubber to the previous (−1) or next (+1) mark.
    pub fn scrub_by(&mut self, dir: i32) {
        let ctx = self.ctx();
        let now = ctx.scrub;
        let to = if dir < 0 { ctx.marks.iter().rev().find(|&&m| m < now) } else { ctx.marks.iter().find(|&&m| m > now) };
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
        let mut commands: Vec<UiCommand> = self.export_menu.take_screenshot(ui).into_iter().collect();
        let ctx = ViewCtx::new(&self.runs, &self.selected, &self.jobs, self.state.scrub);
        egui::Panel::top("scrubber").show(ui, |ui| self.scrubber.ui(&mut self.state.scrub, &ctx, ui));
        let controls = egui::Panel::left("controls").resizable(true).default_size(300.0).show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| self.controls.ui(&mut self.state.new_run, &mut self.state.open_path, &self.offer, &ctx, ui)).inner
        });
        commands.extend(controls.inner.commands);
        for (id, on) in controls.inner.selection {
            if on {
                self.selected.insert(id)
            } else {
                self.selected.remove(&id)
            };
        }
        // The views see this frame's selection and scrubber.
        let ctx = ViewCtx::new(&self.runs, &self.selected, &self.jobs, self.state.scrub);
        egui::CentralPanel::default().show(ui, |ui| {
            ui.horizontal(|ui| {
                for v in VIEWS {
                    ui.selectable_value(&mut self.state.view, v.id, v.title);
                }
                let prefix = self.state.view.entry().export_prefix;
                ui.menu_button("Export", |ui| commands.extend(self.export_menu.ui(&mut self.state.export_dir, prefix, ctx.scrub, ui)));
            });
            ui.separator();
            self.export_menu.view_rect = ui.available_rect_before_wrap();
            let out = (self.state.view.entry().draw)(&mut self.views, &mut self.state, &ctx, ui);
            commands.extend(out.commands);
            self.export_menu.shown = (out.figures, out.tables);
        });
        commands
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_are_listed_once_with_distinct_tabs_and_file_names() {
        for (i, e) in VIEWS.iter().enumerate() {
            assert!(VIEWS[..i].iter().all(|o| o.id != e.id && o.title != e.title && o.export_prefix != e.export_prefix), "{} is listed twice", e.title);
            assert_eq!(e.id.entry().title, e.title);
            assert!(e.export_prefix.chars().all(|c| c.is_ascii_lowercase()), "{}", e.export_prefix);
        }
    }

    #[test]
    fn state_of_an_older_layout_still_loads() {
        // Before the panels owned their settings, the loss and grid settings sat at the top.
        let old = r#"{"new_run": {"config": "demo-fashion-mnist", "steps": 10}, "smoothing": 0.5, "log_y": false, "view_sampling": true, "sample": {"omega": 2.0}, "view": "Compare", "latent": {"method": "pca"}, "scrub": 250}"#;
        let s: LabState = serde_json::from_str(old).unwrap();
        assert_eq!((s.new_run.config.as_str(), s.new_run.steps, s.new_run.batch), ("demo-fashion-mnist", 10, 32));
        assert_eq!((s.view, s.scrub, s.latent.method), (View::Compare, Some(250), ltlab_types::EmbedMethod::Pca));
        assert_eq!((s.losses, s.grids), (LossSettings::default(), GridSettings::default()));
        // Keys this build does not know are ignored.
        assert!(serde_json::from_str::<LabState>(r#"{"whatever": 1}"#).is_ok());
    }
}
