//! The server's one engine host, on its own thread: it carries out the pages' commands, drains
//! the host, keeps a mirror of every run (the same store the panels use), numbers each change
//! and broadcasts it to every open page. A page that reads the mirror at `seq` and then applies
//! the live messages after `seq` sees exactly what the server saw.

use crate::host::{self, Host};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use ltlab_types::{Hello, HostCommand, Intake, Live, LiveMsg, RunData, RunId, RunSnapshot, ThumbnailShape};
use ltlab_ui::{Lab, LabState};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// How often the runs folder is looked at for runs started outside the server.
const RESCAN: Duration = Duration::from_secs(2);

/// Every run the server has, as the panels' store holds it.
pub struct Mirror {
    pub lab: Lab,
    /// Number of the last live message sent.
    pub seq: u64,
}

impl Mirror {
    pub fn run(&self, id: RunId) -> Option<&RunData> {
        self.lab.run(id)
    }

    pub fn hello(&self, read_only: bool) -> Hello {
        Hello {
            seq: self.seq,
            offer: self.lab.offer.clone(),
            runs: self.lab.runs.iter().map(RunSnapshot::of).collect(),
            jobs: self.lab.jobs.values().cloned().collect(),
            read_only,
        }
    }

    /// Takes one host message into the store; the live message that tells the pages, if any.
    fn apply(&mut self, m: Intake) -> Option<LiveMsg> {
        let msg = match &m {
            Intake::Opened(run) => LiveMsg::Run(RunSnapshot::of(run)),
            Intake::Engine(id, ev) => LiveMsg::Engine(*id, ev.clone()),
            Intake::Grid(id, step, _) => LiveMsg::Grid(*id, *step),
            Intake::Latent(..) | Intake::ViewGrid(..) => return self.apply_indexed(m),
            Intake::DataPreview(p) => LiveMsg::DataPreview(p.clone()),
            Intake::Transfer(id, a) => LiveMsg::Transfer(*id, a.clone()),
            Intake::Entanglement(id, t, c, list) => LiveMsg::Entanglement(*id, *t, *c, list.clone()),
            Intake::Job(j) => LiveMsg::Job(j.clone()),
            Intake::JobEnded(id) => LiveMsg::JobEnded(*id),
            // Errors go to the pages only: the mirror has no one to show them to.
            Intake::Error(e) => return Some(LiveMsg::Error(e.clone())),
            // Neither comes from the host: exports are the desktop's, whole logs the page's.
            Intake::Exported(_) | Intake::Metrics(..) => return None,
        };
        self.lab.intake(m);
        Some(msg)
    }

    /// Latent maps and view grids are fetched by their index in the run, known once stored.
    fn apply_indexed(&mut self, m: Intake) -> Option<LiveMsg> {
        match m {
            Intake::Latent(id, map) => {
                let thumbnails = ThumbnailShape::of(&map);
                let bare = map.without_images();
                self.lab.intake(Intake::Latent(id, map));
                let index = self.lab.run(id)?.latent_maps.len().checked_sub(1)?;
                Some(LiveMsg::Latent { run: id, index, map: bare, thumbnails })
            }
            Intake::ViewGrid(id, g) => {
                let (step, settings) = (g.step, g.settings.clone());
                self.lab.intake(Intake::ViewGrid(id, g));
                let index = self.lab.run(id)?.view_grids.len().checked_sub(1)?;
                Some(LiveMsg::ViewGrid { run: id, index, step, settings })
            }
            _ => None,
        }
    }
}

/// What the HTTP handlers share with the hub.
pub struct Shared {
    pub mirror: RwLock<Mirror>,
    pub live: broadcast::Sender<Arc<str>>,
    pub commands: Sender<HostCommand>,
    /// Canonical runs folder.
    pub root: PathBuf,
    pub read_only: bool,
}

impl Shared {
    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, Mirror> {
        self.mirror.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// Starts the hub thread over the runs folder `root` (canonical); every run directory in it is
/// opened, now and whenever a new one appears.
pub fn start(root: PathBuf, read_only: bool) -> Arc<Shared> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let (live, _) = broadcast::channel(4096);
    let mut lab = Lab::new(LabState::default());
    lab.set_offer(host::offer());
    let shared = Arc::new(Shared { mirror: RwLock::new(Mirror { lab, seq: 0 }), live, commands: tx, root: root.clone(), read_only });
    let hub = shared.clone();
    std::thread::Builder::new().name("ltlab-hub".into()).spawn(move || run(&hub, Host::new(root), &rx)).expect("the hub thread starts");
    shared
}

fn run(shared: &Shared, mut host: Host, rx: &Receiver<HostCommand>) {
    let mut last_scan: Option<Instant> = None;
    // Each directory found is opened once: one that does not read says so once, not every scan.
    let mut found = std::collections::HashSet::new();
    loop {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(c) => host.execute(c),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        for c in rx.try_iter() {
            host.execute(c);
        }
        if last_scan.is_none_or(|t| t.elapsed() >= RESCAN) {
            for dir in run_dirs(host.runs_root()).into_iter().filter(|d| found.insert(d.clone())) {
                host.execute(HostCommand::Open(dir));
            }
            last_scan = Some(Instant::now());
        }
        let msgs = host.drain();
        if msgs.is_empty() {
            continue;
        }
        let mut mirror = shared.mirror.write().unwrap_or_else(|e| e.into_inner());
        for m in msgs {
            if let Some(msg) = mirror.apply(m) {
                mirror.seq += 1;
                let text = serde_json::to_string(&Live { seq: mirror.seq, msg }).expect("live messages serialise");
                // No page open is fine: the message is in the mirror.
                let _ = shared.live.send(text.into());
            }
        }
    }
}

/// The run directories directly inside `root`, by name.
fn run_dirs(root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root) else { return Vec::new() };
    let mut dirs: Vec<String> =
        entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.join("config.toml").is_file()).map(|p| p.display().to_string()).collect();
    dirs.sort();
    dirs
}
