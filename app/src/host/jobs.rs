//! The lab's background jobs (latent maps, entanglement sweeps, transfer probabilities, grids
//! sampled at view time): each
//! runs on its own thread (on the run's backend where it needs the model), reports progress
//! through a channel drained once per frame, and stops at its next progress report once
//! cancelled (the transfer job is short and runs to its end).

use super::latents::{compute_latent_map, entanglement_sweep};
use super::runs::{decode_grid, read_run};
use crossbeam_channel::{Receiver, Sender, unbounded};
use ltlab_engine::analysis::latents::LatentSetup;
use ltlab_engine::analysis::transfer::{TransferSetup, transfer_curve, transfer_matrix};
use ltlab_engine::backend::{WithBackend, dispatch};
use ltlab_engine::diffusion::Schedule;
use ltlab_engine::methods::oc::Gate;
use ltlab_engine::ops::TrainBackend;
use ltlab_engine::train::TrainConfig;
use ltlab_engine::train::engine::write_class_grid;
use ltlab_engine::train::run_dir::RunDir;
use ltlab_engine::train::trainer::Weights;
use ltlab_types::{DataPreview, Intake, JobKind, JobView, LatentSettings, RunId, SampleSettings, TransferSettings, ViewGrid};
use ltlab_types::{EmbedMethod, TransferAnalysis};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub struct Jobs {
    tx: Sender<Intake>,
    rx: Receiver<Intake>,
    cancel: HashMap<u64, Arc<AtomicBool>>,
    next: u64,
    /// Requests to the dataset-preview thread (started on the first one).
    preview: Option<Sender<(String, f64)>>,
    /// Run directories being read.
    opening: Arc<Mutex<HashSet<String>>>,
}

enum Work {
    Map {
        step: u64,
        method: EmbedMethod,
        setup: LatentSetup,
    },
    Sweep {
        setup: LatentSetup,
    },
    /// A per-class grid of the checkpoint `step` with other sampling settings than training's.
    Sample {
        step: u64,
        settings: SampleSettings,
    },
}

struct Job {
    id: u64,
    run: RunId,
    dir: PathBuf,
    work: Work,
    kind: JobKind,
    label: String,
    tx: Sender<Intake>,
    cancel: Arc<AtomicBool>,
}

impl Default for Jobs {
    fn default() -> Self {
        let (tx, rx) = unbounded();
        Self { tx, rx, cancel: HashMap::new(), next: 0, preview: None, opening: Default::default() }
    }
}

fn setup_of(s: &LatentSettings) -> LatentSetup {
    LatentSetup { per_class: s.per_class.max(2), t: s.t, k: s.k.max(1), conditional: s.conditional, seed: 0 }
}

impl Jobs {
    pub fn latent_map(&mut self, run: RunId, dir: &str, step: u64, s: &LatentSettings) {
        let label = format!("{} at step {step}", s.method.name());
        self.spawn(run, dir, Work::Map { step, method: s.method, setup: setup_of(s) }, JobKind::Latent, label);
    }

    pub fn entanglement(&mut self, run: RunId, dir: &str, s: &LatentSettings) {
        self.spawn(run, dir, Work::Sweep { setup: setup_of(s) }, JobKind::Latent, "entanglement at every checkpoint".into());
    }

    /// The checkpoint's per-class grid sampled with `s` (EMA weights), written to the run's
    /// `analysis/` under `RunDir`'s name for these settings (where `ltlab sample` writes it too).
    pub fn sample(&mut self, run: RunId, dir: &str, step: u64, s: &SampleSettings) {
        self.spawn(run, dir, Work::Sample { step, settings: s.clone() }, JobKind::Sample, format!("sampling step {step}, {}", s.label()));
    }

    /// OC's transfer probability on the run's training data: no model, no backend.
    pub fn transfer(&mut self, run: RunId, dir: &str, s: &TransferSettings) {
        self.next += 1;
        let id = self.next;
        let label = format!("P(t), {} with {} batches of {}", s.mode.name(), s.sampler.label(), s.batch);
        let _ = self.tx.send(Intake::Job(JobView { id, run, label: label.clone(), progress: 0.0, preview: None, kind: JobKind::Transfer }));
        self.cancel.insert(id, Arc::new(AtomicBool::new(false)));
        let (tx, dir, s) = (self.tx.clone(), PathBuf::from(dir), s.clone());
        std::thread::spawn(move || {
            let work = || -> anyhow::Result<TransferAnalysis> {
                let cfg = RunDir::open(&dir)?.read_config()?;
                let data = cfg.data.load()?;
                let schedule = Schedule::linear(cfg.diffusion.timesteps, cfg.diffusion.beta_start, cfg.diffusion.beta_end);
                if s.matrix_t >= schedule.len() {
                    anyhow::bail!("matrix t = {} is outside 0..{}", s.matrix_t, schedule.len());
                }
                let setup = TransferSetup {
                    gate: Gate { mode: s.mode, beta: None, cutoff: None },
                    sampler: s.sampler,
                    batch: s.batch.max(2),
                    batches: 20,
                    t_step: 10,
                    seed: 0,
                };
                let curve = transfer_curve(&data, &schedule, &setup, &mut |done, total| {
                    let _ = tx.send(Intake::Job(JobView {
                        id,
                        run,
                        label: label.clone(),
                        progress: done as f32 / total.max(1) as f32,
                        preview: None,
                        kind: JobKind::Transfer,
                    }));
                });
                let matrix = transfer_matrix(&data, &schedule, &setup, s.matrix_t);
                Ok(TransferAnalysis {
                    mode: s.mode,
                    sampler: s.sampler,
                    batch: s.batch,
                    t: curve.t,
                    p_transfer: curve.p_transfer,
                    per_class: curve.per_class,
                    matrix_t: s.matrix_t,
                    matrix,
                    timesteps: schedule.len(),
                })
            };
            match work() {
                Ok(a) => {
                    let _ = tx.send(Intake::Transfer(run, a));
                }
                Err(e) => {
                    let _ = tx.send(Intake::Error(format!("{}: {e:#}", dir.display())));
                }
            }
            let _ = tx.send(Intake::JobEnded(id));
        });
    }

    /// Reads a run directory for the lab, once per directory at a time.
    pub fn open(&mut self, id: RunId, dir: &str) {
        if !self.opening.lock().unwrap_or_else(|e| e.into_inner()).insert(dir.to_string()) {
            return;
        }
        let (tx, dir, opening) = (self.tx.clone(), dir.to_string(), self.opening.clone());
        std::thread::spawn(move || {
            let msg = match read_run(id, std::path::Path::new(&dir)) {
                Ok(run) => Intake::Opened(Box::new(run)),
                Err(e) => Intake::Error(format!("open {dir}: {e:#}")),
            };
            let _ = tx.send(msg);
            opening.lock().unwrap_or_else(|e| e.into_inner()).remove(&dir);
        });
    }

    /// Loads the config's dataset at ρ for the controls. One thread serves every request and
    /// skips to the newest waiting, so a stream of ρ changes costs one load at a time.
    pub fn preview(&mut self, config: String, imbalance: f64) {
        let sender = self.preview.get_or_insert_with(|| {
            let (req_tx, req_rx) = unbounded::<(String, f64)>();
            let tx = self.tx.clone();
            std::thread::spawn(move || {
                while let Ok(mut req) = req_rx.recv() {
                    if let Some(newest) = req_rx.try_iter().last() {
                        req = newest;
                    }
                    let msg = match data_preview(&req.0, req.1) {
                        Ok(p) => Intake::DataPreview(p),
                        Err(e) => Intake::Error(format!("dataset of {} at ρ = {}: {e:#}", req.0, req.1)),
                    };
                    if tx.send(msg).is_err() {
                        break;
                    }
                }
            });
            req_tx
        });
        let _ = sender.send((config, imbalance));
    }

    pub fn cancel(&mut self, id: u64) {
        if let Some(c) = self.cancel.get(&id) {
            c.store(true, Ordering::Relaxed);
        }
    }

    fn spawn(&mut self, run: RunId, dir: &str, work: Work, kind: JobKind, label: String) {
        self.next += 1;
        let id = self.next;
        let cancel = Arc::new(AtomicBool::new(false));
        self.cancel.insert(id, cancel.clone());
        let _ = self.tx.send(Intake::Job(JobView { id, run, label: label.clone(), progress: 0.0, preview: None, kind }));
        let job = Job { id, run, dir: PathBuf::from(dir), work, kind, label, tx: self.tx.clone(), cancel };
        std::thread::spawn(move || {
            let (id, tx) = (job.id, job.tx.clone());
            let dir = job.dir.clone();
            let result = RunDir::open(&dir).and_then(|d| d.read_config()).map_err(anyhow::Error::from).and_then(|cfg| dispatch(cfg.backend, job)?);
            match result {
                Ok(()) => {}
                Err(e) if e.downcast_ref::<ltlab_engine::error::Error>().is_some_and(|e| matches!(e, ltlab_engine::error::Error::Cancelled)) => {}
                Err(e) => {
                    let _ = tx.send(Intake::Error(format!("{}: {e:#}", dir.display())));
                }
            }
            let _ = tx.send(Intake::JobEnded(id));
        });
    }

    /// Every message the jobs sent since the last frame.
    pub fn drain(&mut self) -> Vec<Intake> {
        let msgs: Vec<Intake> = self.rx.try_iter().collect();
        for m in &msgs {
            if let Intake::JobEnded(id) = m {
                self.cancel.remove(id);
            }
        }
        msgs
    }

    pub fn busy(&self) -> bool {
        !self.cancel.is_empty() || !self.opening.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
    }
}

/// Images per class in the controls' preview.
const PREVIEW_IMAGES: usize = 4;

fn data_preview(config: &str, imbalance: f64) -> anyhow::Result<DataPreview> {
    let mut cfg = TrainConfig::load(config)?;
    cfg.data.imbalance = imbalance;
    cfg.validate()?;
    let data = cfg.data.load()?;
    let images = data.indices_by_class().iter().map(|idx| idx.iter().take(PREVIEW_IMAGES).flat_map(|&i| data.image(i).iter().copied()).collect()).collect();
    Ok(DataPreview {
        config: config.to_string(),
        imbalance,
        dataset: data.name.clone(),
        class_names: data.class_names.clone(),
        counts: data.counts(),
        images,
        channels: data.channels,
        size: data.size,
    })
}

impl WithBackend for Job {
    type Output = anyhow::Result<()>;
    fn run<B: TrainBackend>(self, device: B::Device, _: String) -> anyhow::Result<()> {
        let view = |progress: f32, preview| JobView { id: self.id, run: self.run, label: self.label.clone(), progress, preview, kind: self.kind };
        match self.work {
            Work::Map { step, method, setup } => {
                // Labels of the points, for the live preview (the same seeded choice as the map).
                let labels: Vec<usize> = {
                    let cfg = RunDir::open(&self.dir)?.read_config()?;
                    let real = cfg.data.load_balanced()?;
                    ltlab_engine::analysis::latents::stratified(&real, setup.per_class, setup.seed).iter().map(|&i| real.labels[i]).collect()
                };
                let mut last = -1.0f32;
                let (map, all) = compute_latent_map::<B>(&self.dir, Some(step), &setup, method, &device, &mut |p, snap| {
                    if snap.is_some() || p - last >= 0.01 {
                        last = p;
                        let _ = self.tx.send(Intake::Job(view(p, snap.map(|xy| (labels.clone(), xy.to_vec())))));
                    }
                    !self.cancel.load(Ordering::Relaxed)
                })?;
                let _ = self.tx.send(Intake::Latent(self.run, map));
                let _ = self.tx.send(Intake::Entanglement(self.run, setup.t, setup.conditional, all));
            }
            Work::Sweep { setup } => {
                let all = entanglement_sweep::<B>(&self.dir, &setup, &device, &mut |done, total| {
                    let _ = self.tx.send(Intake::Job(view(done as f32 / total.max(1) as f32, None)));
                    !self.cancel.load(Ordering::Relaxed)
                })?;
                let _ = self.tx.send(Intake::Entanglement(self.run, setup.t, setup.conditional, all));
            }
            Work::Sample { step, settings } => {
                let sampler = settings.sampler;
                let (trainer, _) = RunDir::open(&self.dir)?.trainer::<B>(Some(step), device)?;
                let path = RunDir::open(&self.dir)?.view_grid_path(step, &sampler, settings.omega, settings.per_class);
                let done = write_class_grid(&trainer, &path, settings.per_class, sampler, settings.omega, Weights::Ema, &mut |done, all| {
                    let _ = self.tx.send(Intake::Job(view(done as f32 / all.max(1) as f32, None)));
                    !self.cancel.load(Ordering::Relaxed)
                })?;
                if done {
                    let image = decode_grid(&path)?;
                    let _ = self.tx.send(Intake::ViewGrid(self.run, ViewGrid { step, settings, image }));
                }
            }
        }
        Ok(())
    }
}
