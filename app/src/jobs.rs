//! The lab's background jobs (latent maps, entanglement sweeps, transfer probabilities): each
//! runs on its own thread (on the run's backend where it needs the model), reports progress
//! through a channel drained once per frame, and stops at its next progress report once
//! cancelled (the transfer job is short and runs to its end).

use crate::cli::analyze::{compute_latent_map, entanglement_sweep};
use crossbeam_channel::{Receiver, Sender, unbounded};
use ltlab_engine::analysis::embed::EmbedMethod;
use ltlab_engine::analysis::latents::LatentSetup;
use ltlab_engine::backend::{WithBackend, dispatch};
use ltlab_engine::burn::tensor::backend::AutodiffBackend;
use ltlab_engine::train::run_dir::RunDir;
use ltlab_engine::analysis::transfer::{TransferSetup, transfer_curve, transfer_matrix};
use ltlab_engine::data::sampler::BatchSampler;
use ltlab_engine::diffusion::Schedule;
use ltlab_engine::methods::oc::{Gate, OcMode};
use ltlab_types::TransferAnalysis;
use ltlab_ui::{Intake, JobView, LatentSettings, RunId, TransferSettings};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub struct Jobs {
    tx: Sender<Intake>,
    rx: Receiver<Intake>,
    cancel: HashMap<u64, Arc<AtomicBool>>,
    next: u64,
}

enum Work {
    Map { step: u64, method: EmbedMethod },
    Sweep,
}

struct Job {
    id: u64,
    run: RunId,
    dir: PathBuf,
    setup: LatentSetup,
    work: Work,
    label: String,
    tx: Sender<Intake>,
    cancel: Arc<AtomicBool>,
}

impl Default for Jobs {
    fn default() -> Self {
        let (tx, rx) = unbounded();
        Self { tx, rx, cancel: HashMap::new(), next: 0 }
    }
}

fn setup_of(s: &LatentSettings) -> LatentSetup {
    LatentSetup { per_class: s.per_class.max(2), t: s.t, k: s.k.max(1), conditional: s.conditional, seed: 0 }
}

impl Jobs {
    pub fn latent_map(&mut self, run: RunId, dir: &str, step: u64, s: &LatentSettings) {
        match EmbedMethod::parse(&s.method) {
            Ok(method) => self.spawn(run, dir, setup_of(s), Work::Map { step, method }, format!("{} at step {step}", method.name())),
            Err(e) => {
                let _ = self.tx.send(Intake::Error(e.to_string()));
            }
        }
    }

    pub fn entanglement(&mut self, run: RunId, dir: &str, s: &LatentSettings) {
        self.spawn(run, dir, setup_of(s), Work::Sweep, "entanglement at every checkpoint".into());
    }

    /// OC's transfer probability on the run's training data: no model, no backend.
    pub fn transfer(&mut self, run: RunId, dir: &str, s: &TransferSettings) {
        self.next += 1;
        let id = self.next;
        let label = format!("P(t), {} with {} batches of {}", s.mode, s.sampler, s.batch);
        let _ = self.tx.send(Intake::Job(JobView { id, run, label: label.clone(), progress: 0.0, preview: None }));
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
                    gate: Gate { mode: OcMode::parse(&s.mode)?, beta: None, cutoff: None },
                    sampler: BatchSampler::parse(&s.sampler)?,
                    batch: s.batch.max(2),
                    batches: 20,
                    t_step: 10,
                    seed: 0,
                };
                let curve = transfer_curve(&data, &schedule, &setup, &mut |done, total| {
                    let _ = tx.send(Intake::Job(JobView { id, run, label: label.clone(), progress: done as f32 / total.max(1) as f32, preview: None }));
                });
                let matrix = transfer_matrix(&data, &schedule, &setup, s.matrix_t);
                Ok(TransferAnalysis {
                    mode: s.mode.clone(),
                    sampler: s.sampler.clone(),
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

    pub fn cancel(&mut self, id: u64) {
        if let Some(c) = self.cancel.get(&id) {
            c.store(true, Ordering::Relaxed);
        }
    }

    fn spawn(&mut self, run: RunId, dir: &str, setup: LatentSetup, work: Work, label: String) {
        self.next += 1;
        let id = self.next;
        let cancel = Arc::new(AtomicBool::new(false));
        self.cancel.insert(id, cancel.clone());
        let _ = self.tx.send(Intake::Job(JobView { id, run, label: label.clone(), progress: 0.0, preview: None }));
        let job = Job { id, run, dir: PathBuf::from(dir), setup, work, label, tx: self.tx.clone(), cancel };
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
        !self.cancel.is_empty()
    }
}

impl WithBackend for Job {
    type Output = anyhow::Result<()>;
    fn run<B: AutodiffBackend>(self, device: B::Device, _: String) -> anyhow::Result<()> {
        let view = |progress: f32, preview| JobView { id: self.id, run: self.run, label: self.label.clone(), progress, preview };
        match self.work {
            Work::Map { step, method } => {
                // Labels of the points, for the live preview (the same seeded choice as the map).
                let labels: Vec<usize> = {
                    let cfg = RunDir::open(&self.dir)?.read_config()?;
                    let real = cfg.data.load_balanced()?;
                    ltlab_engine::analysis::latents::stratified(&real, self.setup.per_class, self.setup.seed).iter().map(|&i| real.labels[i]).collect()
                };
                let mut last = -1.0f32;
                let (map, all) = compute_latent_map::<B>(&self.dir, Some(step), &self.setup, method, &device, &mut |p, snap| {
                    if snap.is_some() || p - last >= 0.01 {
                        last = p;
                        let _ = self.tx.send(Intake::Job(view(p, snap.map(|xy| (labels.clone(), xy.to_vec())))));
                    }
                    !self.cancel.load(Ordering::Relaxed)
                })?;
                let _ = self.tx.send(Intake::Latent(self.run, map));
                let _ = self.tx.send(Intake::Entanglement(self.run, self.setup.t, self.setup.conditional, all));
            }
            Work::Sweep => {
                let all = entanglement_sweep::<B>(&self.dir, &self.setup, &device, &mut |done, total| {
                    let _ = self.tx.send(Intake::Job(view(done as f32 / total.max(1) as f32, None)));
                    !self.cancel.load(Ordering::Relaxed)
                })?;
                let _ = self.tx.send(Intake::Entanglement(self.run, self.setup.t, self.setup.conditional, all));
            }
        }
        Ok(())
    }
}
