//! The desktop lab: `ltlab-ui`'s panels in an eframe window, fed from run directories and from
//! engine threads (one per live run). Engine events are drained once per frame; nothing here
//! waits on training.

use ltlab_engine::train::config::BUILTIN_PRESETS;
use ltlab_engine::train::engine::{self, EngineHandle};
use ltlab_engine::train::run_dir::RunDir;
use ltlab_types::{Command, Event};
use ltlab_ui::{GridImage, Intake, Lab, LabState, NewRun, RunData, RunId, UiCommand};
use eframe::egui;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub struct LabApp {
    lab: Lab,
    engines: HashMap<RunId, EngineHandle>,
    next_id: u64,
    runs_root: PathBuf,
}

/// A grid PNG as RGBA.
fn decode_grid(path: &Path) -> anyhow::Result<GridImage> {
    let img = image::open(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?.to_rgba8();
    Ok(GridImage { width: img.width() as usize, height: img.height() as usize, rgba: img.into_raw() })
}

/// Everything a run directory holds that the panels show.
pub fn read_run(id: RunId, dir: &Path) -> anyhow::Result<RunData> {
    let rd = RunDir::open(dir)?;
    let cfg = rd.read_config()?;
    let mut run = RunData::new(id, cfg.name.clone(), dir.display().to_string());
    run.config_text = std::fs::read_to_string(rd.config_path()).unwrap_or_default();
    run.methods = cfg.methods.label();
    run.dataset = cfg.record.as_ref().map(|r| r.dataset.clone());
    run.total_steps = cfg.steps;
    run.records = rd.read_metrics()?;
    run.checkpoints = rd.checkpoints().into_iter().map(|c| c.0).collect();
    if let Ok(entries) = std::fs::read_dir(dir.join("samples")) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let step = name.strip_prefix("step-").and_then(|s| s.strip_suffix(".png")).and_then(|s| s.parse::<u64>().ok());
            if let Some(step) = step {
                run.grids.insert(step, decode_grid(&e.path())?);
            }
        }
    }
    Ok(run)
}

impl LabApp {
    pub fn new(state: LabState, runs_root: PathBuf) -> Self {
        let configs = BUILTIN_PRESETS.iter().map(|(n, _)| n.to_string()).collect();
        let reopen = state.open_runs.clone();
        let mut app = Self { lab: Lab::new(LabState { open_runs: Vec::new(), ..state }, configs), engines: HashMap::new(), next_id: 1, runs_root };
        for dir in reopen {
            app.open(&dir);
        }
        app
    }

    fn fresh_id(&mut self) -> RunId {
        self.next_id += 1;
        RunId(self.next_id)
    }

    fn open(&mut self, dir: &str) {
        if self.lab.runs.iter().any(|r| r.dir == dir) {
            return;
        }
        let id = self.fresh_id();
        match read_run(id, Path::new(dir)) {
            Ok(run) => self.lab.intake(Intake::Opened(run)),
            Err(e) => self.lab.intake(Intake::Error(format!("open {dir}: {e:#}"))),
        }
    }

    /// A new run exactly as its CLI command would start it, in a fresh folder under the runs
    /// root.
    fn start(&mut self, n: &NewRun) {
        let mut args: Vec<String> = n.cli().split_whitespace().map(String::from).collect();
        let config = match crate::cli::train_config(&args) {
            Ok(c) => c,
            Err(e) => return self.lab.intake(Intake::Error(format!("start: {e:#}"))),
        };
        let mut out = self.runs_root.join(&config.name);
        let mut k = 2;
        while out.exists() {
            out = self.runs_root.join(format!("{}-{k}", config.name));
            k += 1;
        }
        args.extend(["--out".to_string(), out.display().to_string()]);
        let id = self.fresh_id();
        let mut run = RunData::new(id, config.name.clone(), out.display().to_string());
        run.methods = config.methods.label();
        run.total_steps = config.steps;
        run.status = ltlab_ui::RunStatus::Starting;
        self.engines.insert(id, engine::spawn(engine::Launch::New { config, out }));
        self.lab.intake(Intake::Opened(run));
    }

    fn execute(&mut self, c: UiCommand) {
        let send = |engines: &HashMap<RunId, EngineHandle>, id: RunId, cmd: Command| {
            if let Some(e) = engines.get(&id) {
                let _ = e.commands.send(cmd);
            }
        };
        match c {
            UiCommand::Start(n) => self.start(&n),
            UiCommand::Pause(id) => send(&self.engines, id, Command::Pause),
            UiCommand::Resume(id) => send(&self.engines, id, Command::Resume),
            UiCommand::Stop(id) => send(&self.engines, id, Command::Stop),
            UiCommand::SampleNow(id) => send(&self.engines, id, Command::SampleNow),
            UiCommand::Open(dir) => self.open(&dir),
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
        for m in msgs {
            self.lab.intake(m);
        }
        for id in ended {
            if let Some(e) = self.engines.remove(&id) {
                e.join();
            }
        }
        !self.engines.is_empty()
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

    fn ui(&mut self, ui: &mut egui::Ui, _: &mut eframe::Frame) {
        self.frame(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, &self.lab.state);
    }
}

/// Opens the lab window; runs started from it go under `runs_root`.
pub fn run(runs_root: PathBuf, persistence: Option<PathBuf>) -> anyhow::Result<()> {
    let mut options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default().with_title("ltlab").with_inner_size([1400.0, 900.0]),
        ..Default::default()
    };
    if let Some(p) = persistence {
        options.persistence_path = Some(p);
    }
    eframe::run_native(
        "ltlab",
        options,
        Box::new(move |cc| {
            let state: LabState = cc.storage.and_then(|s| eframe::get_value(s, eframe::APP_KEY)).unwrap_or_default();
            Ok(Box::new(LabApp::new(state, runs_root)))
        }),
    )
    .map_err(|e| anyhow::anyhow!("the lab window could not open: {e}"))
}
