//! The desktop lab: `ltlab-ui`'s panels in an eframe window, fed from run directories and from
//! engine threads (one per live run). Engine events are drained once per frame; nothing here
//! waits on training.

use crate::host::jobs::Jobs;
use crate::host::launch::{method_params, train_config};
use crate::host::runs::decode_grid;
use eframe::egui;
use ltlab_engine::train::config::BUILTIN_PRESETS;
use ltlab_engine::train::engine::{self, EngineHandle};
use ltlab_types::{Command, Event};
use ltlab_ui::{ExportData, Intake, Lab, LabState, RunData, RunId, UiCommand};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub struct LabApp {
    lab: Lab,
    engines: HashMap<RunId, EngineHandle>,
    jobs: Jobs,
    next_id: u64,
    runs_root: PathBuf,
}

/// Writes an export atomically (images as PNG).
fn write_export(path: &Path, data: ExportData) -> anyhow::Result<()> {
    let bytes = match data {
        ExportData::Text(t) => t.into_bytes(),
        ExportData::Image { width, height, rgba } => {
            let img = image::RgbaImage::from_raw(width as u32, height as u32, rgba)
                .ok_or_else(|| anyhow::anyhow!("image of {width} × {height} has the wrong number of pixels"))?;
            let mut bytes = Vec::new();
            img.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)?;
            bytes
        }
    };
    Ok(ltlab_engine::error::write_atomic(path, &bytes)?)
}

impl LabApp {
    pub fn new(state: LabState, runs_root: PathBuf) -> Self {
        let configs = BUILTIN_PRESETS.iter().map(|(n, _)| n.to_string()).collect();
        let reopen = state.open_runs.clone();
        let mut lab = Lab::new(LabState { open_runs: Vec::new(), ..state }, configs);
        lab.method_params = method_params();
        lab.backends = ["flex", "wgpu", "cuda"]
            .iter()
            .filter(|b| ltlab_engine::backend::BackendKind::parse(b).is_ok_and(|k| k.compiled()))
            .map(|b| b.to_string())
            .collect();
        let mut app = Self { lab, engines: HashMap::new(), jobs: Jobs::default(), next_id: 1, runs_root };
        for dir in reopen {
            app.open(&dir);
        }
        app
    }

    fn fresh_id(&mut self) -> RunId {
        self.next_id += 1;
        RunId(self.next_id)
    }

    /// Reads the run directory on a job thread (grids, maps and their images can take a while);
    /// the run appears when read.
    fn open(&mut self, dir: &str) {
        if self.lab.runs.iter().any(|r| r.dir == dir) {
            return;
        }
        let id = self.fresh_id();
        self.jobs.open(id, dir);
    }

    /// A new run exactly as its CLI command would start it, in a fresh folder under the runs
    /// root.
    fn start(&mut self, args: &[String]) {
        let config = match train_config(args) {
            Ok(c) => c,
            Err(e) => return self.lab.intake(Intake::Error(format!("start: {e:#}"))),
        };
        let mut out = self.runs_root.join(&config.name);
        let mut k = 2;
        while out.exists() {
            out = self.runs_root.join(format!("{}-{k}", config.name));
            k += 1;
        }
        let id = self.fresh_id();
        let mut run = RunData::new(id, config.name.clone(), out.display().to_string());
        run.methods = config.methods.label();
        run.total_steps = config.steps;
        run.batch = config.batch;
        run.status = ltlab_ui::RunStatus::Starting;
        self.engines.insert(id, engine::spawn(engine::Launch::New { config, out }));
        self.lab.intake(Intake::Opened(Box::new(run)));
    }

    fn execute(&mut self, c: UiCommand) {
        let send = |engines: &HashMap<RunId, EngineHandle>, id: RunId, cmd: Command| {
            if let Some(e) = engines.get(&id) {
                let _ = e.commands.send(cmd);
            }
        };
        match c {
            UiCommand::Start(args) => self.start(&args),
            UiCommand::PreviewData { config, imbalance } => self.jobs.preview(config, imbalance),
            UiCommand::Pause(id) => send(&self.engines, id, Command::Pause),
            UiCommand::Resume(id) => send(&self.engines, id, Command::Resume),
            UiCommand::Stop(id) => send(&self.engines, id, Command::Stop),
            UiCommand::SampleNow(id) => send(&self.engines, id, Command::SampleNow),
            UiCommand::Open(dir) => self.open(&dir),
            UiCommand::LatentMap { run, step, settings } => {
                if let Some(r) = self.lab.run(run) {
                    let dir = r.dir.clone();
                    self.jobs.latent_map(run, &dir, step, &settings);
                }
            }
            UiCommand::Entanglement { run, settings } => {
                if let Some(r) = self.lab.run(run) {
                    let dir = r.dir.clone();
                    self.jobs.entanglement(run, &dir, &settings);
                }
            }
            UiCommand::Transfer { run, settings } => {
                if let Some(r) = self.lab.run(run) {
                    let dir = r.dir.clone();
                    self.jobs.transfer(run, &dir, &settings);
                }
            }
            UiCommand::Sample { run, step, settings } => {
                if let Some(r) = self.lab.run(run) {
                    let dir = r.dir.clone();
                    self.jobs.sample(run, &dir, step, &settings);
                }
            }
            UiCommand::CancelJob(id) => self.jobs.cancel(id),
            UiCommand::Export { path, data } => match write_export(Path::new(&path), data) {
                Ok(()) => self.lab.intake(Intake::Exported(path)),
                Err(e) => self.lab.intake(Intake::Error(format!("export {path}: {e:#}"))),
            },
            UiCommand::Close(id) => {
                self.lab.runs.retain(|r| r.id != id);
                self.lab.selected.remove(&id);
                let dirs: Vec<String> = self.lab.runs.iter().map(|r| r.dir.clone()).collect();
                self.lab.state.open_runs.retain(|d| dirs.contains(d));
            }
        }
    }

    /// Moves every pending engine event into the lab; true while any engine is alive.
    pub fn drain(&mut self) -> bool {
        let mut msgs = Vec::new();
        let mut ended = Vec::new();
        for (&id, e) in &self.engines {
            for ev in e.events.try_iter() {
                if let Event::SamplesWritten { step, path } = &ev {
                    match decode_grid(Path::new(path)) {
                        Ok(g) => msgs.push(Intake::Grid(id, *step, g)),
                        Err(err) => msgs.push(Intake::Error(err.to_string())),
                    }
                }
                if matches!(ev, Event::Finished { .. } | Event::Failed { .. }) {
                    ended.push(id);
                }
                msgs.push(Intake::Engine(id, ev));
            }
        }
        msgs.extend(self.jobs.drain());
        for m in msgs {
            self.lab.intake(m);
        }
        for id in ended {
            if let Some(e) = self.engines.remove(&id) {
                e.join();
            }
        }
        !self.engines.is_empty() || self.jobs.busy()
    }

    /// One frame's UI; the host then carries out the commands.
    pub fn frame(&mut self, ui: &mut egui::Ui) {
        for c in self.lab.ui(ui) {
            self.execute(c);
        }
    }
}

impl eframe::App for LabApp {
    fn logic(&mut self, ctx: &egui::Context, _: &mut eframe::Frame) {
        if self.drain() {
            ctx.request_repaint_after(std::time::Duration::from_millis(100));
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        if let Some(s) = frame.info().cpu_usage {
            self.lab.record_frame(1000.0 * s);
        }
        self.frame(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, &self.lab.state);
    }
}

/// The desktop lab's options (`ltlab` without a command).
#[derive(clap::Args, Debug)]
pub struct LabArgs {
    /// Where the lab puts the runs it starts.
    #[arg(long, default_value = "runs")]
    runs: PathBuf,
    /// The lab's settings file (default: the platform's app-data folder).
    #[arg(long)]
    settings: Option<PathBuf>,
    /// Open the lab and start the new run its controls hold at once (as if Start was clicked).
    #[arg(long)]
    start: bool,
}

/// Opens the lab window; runs started from it go under `--runs`.
pub fn run(args: LabArgs) -> anyhow::Result<()> {
    let LabArgs { runs: runs_root, settings: persistence, start } = args;
    let mut options =
        eframe::NativeOptions { viewport: egui::ViewportBuilder::default().with_title("ltlab").with_inner_size([1400.0, 900.0]), ..Default::default() };
    if let Some(p) = persistence {
        options.persistence_path = Some(p);
    }
    eframe::run_native(
        "ltlab",
        options,
        Box::new(move |cc| {
            let state: LabState = cc.storage.and_then(|s| eframe::get_value(s, eframe::APP_KEY)).unwrap_or_default();
            let mut app = LabApp::new(state, runs_root);
            if start {
                let args = app.lab.state.new_run.args(&app.lab.method_params);
                app.start(&args);
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("the lab window could not open: {e}"))
}
