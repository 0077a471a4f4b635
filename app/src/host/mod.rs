//! The engine host: what the front ends (the desktop lab, the headless commands, the web
//! server) share — opening runs and reading run directories, the background jobs (grids, latent
//! maps, entanglement, transfer), and starting runs from `ltlab train` options. It sits below
//! them: nothing here imports a front end.

pub mod jobs;
pub mod latents;
pub mod launch;
pub mod runs;

use jobs::Jobs;
use launch::{method_params, train_config};
use ltlab_engine::train::config::BUILTIN_PRESETS;
use ltlab_engine::train::engine::{self, EngineHandle};
use ltlab_types::{Command, Event, HostCommand, Intake, Offer, RunData, RunId, RunStatus};
use runs::decode_grid;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The engine threads of the live runs, the background jobs, and the runs opened so far, for
/// one front end (the desktop window, or the web server's every page).
pub struct Host {
    engines: HashMap<RunId, EngineHandle>,
    jobs: Jobs,
    /// Directory of every run opened or started, by id.
    dirs: HashMap<RunId, String>,
    /// Messages made while carrying out a command (a run just started), delivered with the next
    /// drain.
    pending: Vec<Intake>,
    next_id: u64,
    runs_root: PathBuf,
}

/// What the new-run controls can offer on this host: the built-in configs, the registry's
/// methods with their parameters, and the backends this machine can train on (each probed for
/// its device).
pub fn offer() -> Offer {
    Offer {
        configs: BUILTIN_PRESETS.iter().map(|(n, _)| n.to_string()).collect(),
        method_params: method_params(),
        backends: ltlab_engine::backend::available(),
    }
}

impl Host {
    /// Runs started from a front end go under `runs_root`.
    pub fn new(runs_root: PathBuf) -> Self {
        Self { engines: HashMap::new(), jobs: Jobs::default(), dirs: HashMap::new(), pending: Vec::new(), next_id: 0, runs_root }
    }

    pub fn runs_root(&self) -> &Path {
        &self.runs_root
    }

    fn fresh_id(&mut self) -> RunId {
        self.next_id += 1;
        RunId(self.next_id)
    }

    /// Carries out one command; what comes of it arrives through [`Host::drain`].
    pub fn execute(&mut self, c: HostCommand) {
        let send = |engines: &HashMap<RunId, EngineHandle>, id: RunId, cmd: Command| {
            if let Some(e) = engines.get(&id) {
                let _ = e.commands.send(cmd);
            }
        };
        match c {
            HostCommand::Start(args) => self.start(&args),
            HostCommand::PreviewData { config, imbalance } => self.jobs.preview(config, imbalance),
            HostCommand::Pause(id) => send(&self.engines, id, Command::Pause),
            HostCommand::Resume(id) => send(&self.engines, id, Command::Resume),
            HostCommand::Stop(id) => send(&self.engines, id, Command::Stop),
            HostCommand::SampleNow(id) => send(&self.engines, id, Command::SampleNow),
            HostCommand::Open(dir) => self.open(&dir),
            HostCommand::LatentMap { run, step, settings } => {
                if let Some(dir) = self.dirs.get(&run) {
                    self.jobs.latent_map(run, dir, step, &settings);
                }
            }
            HostCommand::Entanglement { run, settings } => {
                if let Some(dir) = self.dirs.get(&run) {
                    self.jobs.entanglement(run, dir, &settings);
                }
            }
            HostCommand::Transfer { run, settings } => {
                if let Some(dir) = self.dirs.get(&run) {
                    self.jobs.transfer(run, dir, &settings);
                }
            }
            HostCommand::Sample { run, step, settings } => {
                if let Some(dir) = self.dirs.get(&run) {
                    self.jobs.sample(run, dir, step, &settings);
                }
            }
            HostCommand::CancelJob(id) => self.jobs.cancel(id),
        }
    }

    /// Reads the run directory on a job thread (grids, maps and their images can take a while);
    /// the run arrives as `Intake::Opened` when read. A directory already open is not read again.
    fn open(&mut self, dir: &str) {
        if self.dirs.values().any(|d| d == dir) {
            return;
        }
        let id = self.fresh_id();
        self.jobs.open(id, dir);
    }

    /// The front end closed the run: it may be opened again (its engine, if any, keeps running).
    pub fn forget(&mut self, id: RunId) {
        if !self.engines.contains_key(&id) {
            self.dirs.remove(&id);
        }
    }

    /// A new run exactly as its CLI command would start it, in a fresh folder under the runs
    /// root.
    fn start(&mut self, args: &[String]) {
        let config = match train_config(args) {
            Ok(c) => c,
            Err(e) => return self.pending.push(Intake::Error(format!("start: {e:#}"))),
        };
        let mut out = self.runs_root.join(&config.name);
        let mut k = 2;
        while out.exists() || self.dirs.values().any(|d| Path::new(d) == out) {
            out = self.runs_root.join(format!("{}-{k}", config.name));
            k += 1;
        }
        let id = self.fresh_id();
        let mut run = RunData::new(id, config.name.clone(), out.display().to_string());
        run.header.methods = config.methods.label();
        run.header.total_steps = config.steps;
        run.header.batch = config.batch;
        run.header.status = RunStatus::Starting;
        self.dirs.insert(id, run.header.dir.clone());
        self.engines.insert(id, engine::spawn(engine::Launch::New { config, out }));
        self.pending.push(Intake::Opened(Box::new(run)));
    }

    /// Every message since the last drain: runs read or started, engine events (with the grids
    /// they wrote, decoded), job progress and results.
    pub fn drain(&mut self) -> Vec<Intake> {
        let mut msgs = std::mem::take(&mut self.pending);
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
        for m in self.jobs.drain() {
            if let Intake::Opened(run) = &m {
                self.dirs.insert(run.header.id, run.header.dir.clone());
            }
            msgs.push(m);
        }
        for id in ended {
            if let Some(e) = self.engines.remove(&id) {
                e.join();
            }
        }
        msgs
    }

    /// Whether any engine or job is still at work (the front end keeps polling while so).
    pub fn busy(&self) -> bool {
        !self.engines.is_empty() || self.jobs.busy()
    }
}
