//! One training run in memory: model, EMA, Adam state and the step that reads as the
//! DDPM algorithm does.

use super::checkpoint::Checkpoint;
use super::config::{LabelDrop, TrainConfig};
use super::optim::{self, Adam};
use crate::backend::Flex;
use crate::data::Dataset;
use crate::data::sampler::{BatchSampler, DrawBatches};
use crate::diffusion::sampler::{SampleRequest, grid_id, initial_noise, sample};
use crate::diffusion::{SamplerKind, Schedule};
use crate::error::{Error, NonFinite, Result};
use crate::methods::{Batch, Forwards, HostBatch, MAIN, Method, PassRows, StepContext, per_sample_mean};
use crate::model::{UNet, UNetConfig};
use crate::ops::TrainBackend;
use crate::rng::{self, Stream};
use crate::weights;
use burn::module::AutodiffModule;
use burn::prelude::*;
use ltlab_types::{StepRecord, T_BUCKETS};
use rand::Rng;
use std::collections::BTreeMap;
use std::time::Instant;

/// Which weights to sample with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weights {
    /// The parameter EMA (what evaluation and grids use).
    Ema,
    /// The raw trained parameters.
    Raw,
    /// The EMA without CM's experts: θ^g alone (the paper's ablation).
    EmaBase,
}

pub struct Trainer<B: TrainBackend> {
    pub cfg: TrainConfig,
    pub data: Dataset,
    by_class: Vec<Vec<usize>>,
    pub schedule: Schedule,
    pub model_config: UNetConfig,
    pub model: UNet<B>,
    pub ema: UNet<B::InnerBackend>,
    adam: Adam<B>,
    methods: Vec<Box<dyn Method<B>>>,
    batch_sampler: BatchSampler,
    counts: Vec<usize>,
    q: Vec<f64>,
    /// Steps completed.
    pub step: u64,
    pub device: B::Device,
    /// Images through the network by kind of pass, over the steps this trainer ran (cost
    /// accounting for `bench methods`; not saved).
    pub pass_rows: PassRows,
}

impl<B: TrainBackend> Trainer<B> {
    /// A fresh run: model initialised from the run seed, EMA = model.
    pub fn new(cfg: TrainConfig, data: Dataset, device: B::Device) -> Result<Self> {
        let model_config = model_config(&cfg, &data)?;
        let batch_sampler = cfg.methods.check(cfg.batch_sampler)?;
        let counts = data.counts();
        if let Some(c) = counts.iter().position(|&n| n == 0) {
            return Err(Error::Other(format!("class {c} has no training image: every class needs at least one")));
        }
        let total: usize = counts.iter().sum();
        let q = counts.iter().map(|&n| n as f64 / total as f64).collect();
        let methods = cfg.methods.build();
        let adam = Adam::new(&cfg.optim);
        let model = initial_model::<B>(&model_config, cfg.seed, &device)?;
        let ema = model.valid();
        Ok(Self {
            by_class: data.indices_by_class(),
            schedule: Schedule::linear(cfg.diffusion.timesteps, cfg.diffusion.beta_start, cfg.diffusion.beta_end),
            cfg,
            data,
            model_config,
            model,
            ema,
            adam,
            methods,
            batch_sampler,
            counts,
            q,
            step: 0,
            device,
            pass_rows: PassRows::default(),
        })
    }

    /// A run restored from a checkpoint.
    pub fn restore(cfg: TrainConfig, data: Dataset, device: B::Device, ckpt: &Checkpoint) -> Result<Self> {
        let mut t = Self::new(cfg, data, device)?;
        if ckpt.seed != t.cfg.seed {
            return Err(Error::Other(format!("checkpoint seed {} differs from the run's seed {}", ckpt.seed, t.cfg.seed)));
        }
        let dev = t.device.clone();
        t.model = weights::load(t.model, ckpt.params::<B>("model", &dev))?;
        t.ema = weights::load(t.ema, ckpt.params::<B::InnerBackend>("ema", &dev))?;
        t.adam = Adam::resume(&t.cfg.optim, ckpt.adam(&dev));
        t.step = ckpt.step;
        Ok(t)
    }

    pub fn checkpoint(&self) -> Checkpoint {
        let (c, k) = (self.data.num_classes(), self.cfg.log.grid_per_class);
        let len = self.data.image_len();
        let noise = (0..c).flat_map(|cl| (0..k).flat_map(move |s| initial_noise(self.cfg.seed, grid_id(cl, s), len))).collect();
        let shape = vec![c * k, self.data.channels, self.data.size, self.data.size];
        Checkpoint::gather(self.step, self.cfg.seed, &self.model, &self.ema, &self.adam.state, (shape, noise))
    }

    /// One optimisation step, as the DDPM algorithm reads; returns what it logged. A non-finite
    /// loss or gradient leaves the model untouched and returns [`NonFinite`].
    pub fn train_step(&mut self) -> std::result::Result<StepRecord, NonFinite> {
        let started = Instant::now();
        let host = self.batch();
        self.step_on(host, started)
    }

    /// The step on a given batch: losses, gradients, the update, the record.
    fn step_on(&mut self, host: HostBatch, started: Instant) -> std::result::Result<StepRecord, NonFinite> {
        let losses = self.losses(host);
        let grads = losses.total().backward();
        let read = losses.read_back(optim::grad_squares(&self.model, &grads, &self.device));
        for &value in read.terms.values().chain([&read.grad_norm]) {
            self.check_finite(value)?;
        }
        let lr = self.apply(grads, read.grad_norm);
        Ok(self.record(&losses, read, lr, started))
    }

    /// What every method may read about the run at this step.
    fn context(&self) -> StepContext<'_> {
        StepContext { schedule: &self.schedule, counts: &self.counts, q: &self.q, seed: self.cfg.seed, step: self.step }
    }

    /// The batch of this step and its randomness, all derived from (seed, step), then the
    /// methods' host transforms (OC's target swaps).
    fn batch(&mut self) -> HostBatch {
        let mut host = self.draw_batch(self.step);
        // The methods are taken out while they read the context (a borrow of the trainer).
        let mut methods = std::mem::take(&mut self.methods);
        let ctx = self.context();
        for m in methods.iter_mut() {
            m.transform(&mut host, &ctx);
        }
        self.methods = methods;
        host
    }

    /// Every forward pass of the step (main + what the methods ask for) in one batched call,
    /// and the loss terms: the ε MSE, then each method's.
    fn losses(&mut self, host: HostBatch) -> Losses<B> {
        // Dropout draws from the backend's generator: seed it per step so resume is exact.
        B::seed(&self.device, rng::derive_seed(self.cfg.seed, Stream::Backend, self.step));
        let dev = &self.device;
        let (x0, eps, target) = (Batch::images(&host, &host.x0, dev), Batch::images(&host, &host.eps, dev), Batch::images(&host, &host.target, dev));
        // x_t = q(x₀, t, ε) = √ᾱ_t·x₀ + √(1 − ᾱ_t)·ε
        let x_t = self.schedule.noise(x0.clone(), eps.clone(), &host.t);
        let batch = Batch { host, x0, eps, x_t, target };
        let mut methods = std::mem::take(&mut self.methods);
        let ctx = self.context();
        let mut fw = Forwards::new(&batch);
        for m in methods.iter_mut() {
            m.request(&batch, &ctx, &mut fw);
        }
        let rows = fw.rows();
        let out = fw.run(&self.model);
        let per_sample = per_sample_mean((out.eps(MAIN) - batch.target.clone()).powi_scalar(2));
        let mut terms = vec![("mse", per_sample.clone().mean())];
        for m in methods.iter_mut() {
            terms.extend(m.losses(&batch, &ctx, &out, &self.model));
        }
        self.methods = methods;
        self.pass_rows += rows;
        Losses { terms, per_sample, batch }
    }

    /// Global-norm clip, Adam and the EMA; then the step is done. Returns the learning rate.
    fn apply(&mut self, grads: B::Gradients, grad_norm: f64) -> f64 {
        let step = self.step;
        let cfg = &self.cfg.optim;
        let lr = cfg.lr_at(step);
        let scale = optim::clip_scale(grad_norm, cfg.grad_clip);
        let (model, values) = self.adam.step(self.model.clone(), &grads, lr, scale);
        self.model = model;
        self.ema = optim::ema_update(self.ema.clone(), values, cfg.ema_decay_at(step));
        self.step += 1;
        lr
    }

    /// The step's log: its terms, the MSE by t bucket and by class, lr, gradient norm, speed.
    fn record(&mut self, losses: &Losses<B>, read: ReadBack, lr: f64, started: Instant) -> StepRecord {
        let ReadBack { terms: logged, per_sample, grad_norm } = read;
        let h = &losses.batch.host;
        let t_total = self.schedule.len();
        let bucket = |t: usize| t * T_BUCKETS / t_total;
        let mut record = StepRecord {
            step: self.step,
            losses: logged,
            loss_by_t: group_mean(T_BUCKETS, h.t.iter().map(|&t| bucket(t)).zip(&per_sample)),
            lr,
            grad_norm,
            images_per_s: self.cfg.batch as f64 / started.elapsed().as_secs_f64(),
            uncond_batch: h.uncond_batch,
            loss_by_class: group_mean(self.counts.len(), h.labels.iter().copied().zip(&per_sample)),
            transfers: None,
        };
        for m in self.methods.iter_mut() {
            m.record(&mut record);
        }
        record
    }

    /// `Ok` if `value` is finite, else the error that stops the run at the step under way.
    fn check_finite(&self, value: f64) -> std::result::Result<(), NonFinite> {
        if value.is_finite() { Ok(()) } else { Err(NonFinite { step: self.step + 1, value }) }
    }

    /// The images, t, ε and label drop of step `step`.
    fn draw_batch(&self, step: u64) -> HostBatch {
        let cfg = &self.cfg;
        let (b, len) = (cfg.batch, self.data.image_len());
        let idx = self.batch_sampler.batch(&self.data.labels, &self.by_class, b, cfg.seed, step);
        let mut r = rng::rng(cfg.seed, Stream::Noise, step);
        let mut x0 = Vec::with_capacity(b * len);
        for &i in &idx {
            let flip = cfg.data.hflip && r.random::<bool>();
            self.data.image_f32(i, flip, &mut x0);
        }
        let t: Vec<usize> = (0..b).map(|_| r.random_range(0..self.schedule.len())).collect();
        let eps = rng::normal_vec(&mut r, b * len);
        let p = cfg.diffusion.label_drop_p;
        let (keep, uncond_batch) = match cfg.diffusion.label_drop {
            LabelDrop::PerBatch => {
                let drop = r.random::<f64>() < p;
                (vec![!drop; b], drop)
            }
            LabelDrop::PerSample => ((0..b).map(|_| r.random::<f64>() >= p).collect(), false),
        };
        HostBatch {
            shape: [b, self.data.channels, self.data.size, self.data.size],
            target: eps.clone(),
            x0,
            eps,
            t,
            labels: idx.iter().map(|&i| self.data.labels[i]).collect(),
            indices: idx,
            keep,
            uncond_batch,
        }
    }

    /// Samples for `per_class` fixed-noise slots of every class: the images (N×C×S×S in
    /// [−1, 1], class-major) or `None` if cancelled.
    pub fn sample_classes(
        &self,
        classes: &[usize],
        per_class: usize,
        sampler: SamplerKind,
        omega: f64,
        weights: Weights,
        progress: &mut dyn FnMut(usize, usize) -> bool,
    ) -> Result<Option<Vec<f32>>> {
        let labels: Vec<usize> = classes.iter().flat_map(|&c| std::iter::repeat_n(c, per_class)).collect();
        let ids = classes.iter().flat_map(|&c| (0..per_class).map(move |s| grid_id(c, s))).collect();
        let req = SampleRequest { labels, ids, omega, sampler, seed: self.cfg.seed, channels: self.data.channels, size: self.data.size, batch: 256 };
        // Experts are folded into their base weights: sampling costs what the base model costs.
        let model = match weights {
            Weights::Ema => self.ema.clone().merge_experts(),
            Weights::Raw => self.model.valid().merge_experts(),
            Weights::EmaBase => self.ema.clone().without_experts(),
        };
        let out = sample(&model, &self.schedule, &req, &self.device, progress)?;
        Ok(out.map(|x| x.into_data().convert::<f32>().to_vec().expect("f32")))
    }

    pub fn parameters(&self) -> usize {
        weights::count(&self.ema)
    }
}

/// The loss terms of a step, on the batch they were computed on.
struct Losses<B: TrainBackend> {
    /// By name, as they enter the total; a name may repeat.
    terms: Vec<(&'static str, Tensor<B, 1>)>,
    /// The ε MSE of each sample.
    per_sample: Tensor<B, 1>,
    batch: Batch<B>,
}

impl<B: TrainBackend> Losses<B> {
    /// The optimised loss: the sum of the terms.
    fn total(&self) -> Tensor<B, 1> {
        self.terms.iter().map(|(_, v)| v.clone()).reduce(|a, b| a + b).expect("mse")
    }

    /// What the log needs from the device, in one transfer: each term (by name, repeats
    /// summed, and their `total`), each sample's ε MSE, and the gradient norm from the sum of
    /// squares `grad_squares`.
    fn read_back(&self, grad_squares: Tensor<B::InnerBackend, 1>) -> ReadBack {
        let mut parts: Vec<Tensor<B::InnerBackend, 1>> = self.terms.iter().map(|(_, v)| v.clone().inner().reshape([1])).collect();
        parts.push(self.per_sample.clone().inner());
        parts.push(grad_squares.reshape([1]));
        let values: Vec<f32> = Tensor::cat(parts, 0).into_data().convert::<f32>().to_vec().expect("f32");
        let (term_values, rest) = values.split_at(self.terms.len());
        let mut terms = BTreeMap::new();
        for ((name, _), &v) in self.terms.iter().zip(term_values) {
            *terms.entry(name.to_string()).or_insert(0.0) += v as f64;
        }
        let total: f64 = terms.values().sum();
        terms.insert("total".to_string(), total);
        let (per_sample, grad_squares) = rest.split_at(rest.len() - 1);
        ReadBack { terms, per_sample: per_sample.to_vec(), grad_norm: (grad_squares[0] as f64).sqrt() }
    }
}

/// A step's numbers on the host.
struct ReadBack {
    terms: BTreeMap<String, f64>,
    per_sample: Vec<f32>,
    grad_norm: f64,
}

/// Mean of the values per group (`None` for an empty group).
fn group_mean<'a>(groups: usize, items: impl Iterator<Item = (usize, &'a f32)>) -> Vec<Option<f64>> {
    let mut sums = vec![(0.0f64, 0usize); groups];
    for (g, &v) in items {
        sums[g].0 += v as f64;
        sums[g].1 += 1;
    }
    sums.iter().map(|&(s, n)| (n > 0).then(|| s / n as f64)).collect()
}

/// The network a run starts from, the same on every backend (their generators differ): drawn
/// on flex from the run seed, then moved to `device`.
fn initial_model<B: TrainBackend>(config: &UNetConfig, seed: u64, device: &B::Device) -> Result<UNet<B>> {
    let cpu = Default::default();
    let drawn: Vec<weights::NamedParam<Flex>> = {
        let _draws = rng::flex_draws();
        <Flex as Backend>::seed(&cpu, rng::derive_seed(seed, Stream::Init, 0));
        // Burn draws parameters when first read: collecting them draws them all, in order.
        weights::collect(&config.init::<Flex>(&cpu))
    };
    let values = drawn
        .into_iter()
        .map(|p| (p.path.clone(), weights::NamedParam { path: p.path, shape: p.shape, value: Tensor::from_data(p.value.into_data(), device) }))
        .collect();
    weights::load(config.init(device), values)
}

/// The U-Net a config asks for, checked against the data.
pub fn model_config(cfg: &TrainConfig, data: &Dataset) -> Result<UNetConfig> {
    let classes = if cfg.model.conditional { data.num_classes() } else { 0 };
    let mut m = match &cfg.model.architecture {
        None => cfg.model.preset.config(data.channels, classes, data.size)?,
        Some(a) => {
            let m = UNetConfig::new(data.channels, classes, a.base_channels, a.channel_mults.clone(), a.res_blocks, a.attn_levels.clone())
                .with_time_mult(a.time_mult);
            m.check_image_size(data.size).map_err(|e| Error::option("model.architecture", e))?;
            m
        }
    };
    if let Some(d) = cfg.model.dropout {
        m.dropout = d;
    }
    m.attn_out_gain = cfg.model.attn_out_init.gain();
    let needs = cfg.methods.needs();
    m.low_rank_expert = needs.experts;
    m.projection_dim = needs.projection_dim;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::sampler::BatchSampler;
    use crate::data::{DataConfig, DatasetKind};
    use crate::model::Preset;
    use crate::train::config::{DiffusionConfig, LogConfig, ModelConfig};
    type B = burn::backend::Autodiff<burn::backend::Flex>;

    fn config(label_drop: LabelDrop) -> TrainConfig {
        let mut data = DataConfig::new(DatasetKind::Synthetic, 0.5);
        data.image_size = Some(8);
        data.synthetic_per_class = 4;
        data.hflip = true;
        TrainConfig {
            seed: 3,
            diffusion: DiffusionConfig { label_drop, label_drop_p: 0.5, ..Default::default() },
            batch_sampler: Some(BatchSampler::Balanced),
            log: LogConfig { grid_per_class: 2, ..Default::default() },
            ..TrainConfig::new("t", data, ModelConfig::new(Preset::Tiny), 10, 3)
        }
    }

    fn trainer(label_drop: LabelDrop) -> Trainer<B> {
        let cfg = config(label_drop);
        let data = cfg.data.load().unwrap();
        Trainer::new(cfg, data, Default::default()).unwrap()
    }

    #[test]
    fn checkpoint_roundtrip_continues_exactly() {
        for drop in [LabelDrop::PerBatch, LabelDrop::PerSample] {
            let mut a = trainer(drop);
            for _ in 0..2 {
                a.train_step().unwrap();
            }
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("c.safetensors");
            a.checkpoint().save(&path).unwrap();
            let ck = Checkpoint::read(&path).unwrap();
            assert_eq!(ck.step, 2);
            let mut b = Trainer::<B>::restore(a.cfg.clone(), a.data.clone(), Default::default(), &ck).unwrap();
            for _ in 0..2 {
                let (ra, rb) = (a.train_step().unwrap(), b.train_step().unwrap());
                assert_eq!(ra.losses, rb.losses);
                assert_eq!(ra.grad_norm, rb.grad_norm);
                assert_eq!(ra.step, rb.step);
            }
        }
    }

    /// Two steps of a stack: finite, every expected term logged, total = Σ terms, swaps
    /// recorded exactly when OC acts.
    fn check_stack_trains(methods: &crate::methods::MethodsConfig, what: &str, terms: &[&str]) {
        let mut cfg = config(LabelDrop::PerBatch);
        cfg.batch_sampler = None;
        cfg.diffusion.label_drop_p = 0.0;
        cfg.methods = methods.clone();
        cfg.validate().unwrap_or_else(|e| panic!("{what}: {e}"));
        let data = cfg.data.load().unwrap();
        let oc = cfg.methods.effective().oc.is_some();
        let mut t = Trainer::<B>::new(cfg, data, Default::default()).unwrap();
        for _ in 0..2 {
            let r = t.train_step().unwrap_or_else(|e| panic!("{what}: {e}"));
            for n in terms {
                assert!(r.losses.contains_key(*n), "{what}: no `{n}` in {:?}", r.losses);
            }
            let sum: f64 = r.losses.iter().filter(|(k, _)| *k != "total").map(|(_, v)| v).sum();
            assert!((sum - r.losses["total"]).abs() < 1e-9, "total = Σ terms");
            assert!(r.losses.values().all(|v| v.is_finite()));
            assert_eq!(r.transfers.is_some(), oc, "{what}");
        }
    }

    /// Every registered method, under each of its names, trains and logs the terms it declares.
    /// 20 steps with the fast ops (engine/src/ops) and 20 with Burn's own ops, from the same
    /// seed: the same losses and the same weights, within float tolerance.
    #[test]
    fn fast_ops_train_like_burns_own_ops() {
        // Both runs start from the same weights: a fresh init draws from Burn's process-wide
        // generator, which the tests running beside this one reseed.
        let start = trainer(LabelDrop::PerBatch).checkpoint();
        let run = || {
            let cfg = config(LabelDrop::PerBatch);
            let data = cfg.data.load().unwrap();
            let mut t = Trainer::<B>::restore(cfg, data, Default::default(), &start).unwrap();
            let losses: Vec<f64> = (0..20).map(|_| t.train_step().unwrap().losses["total"]).collect();
            let weights: Vec<f32> = weights::collect(&t.model).into_iter().flat_map(|p| p.value.into_data().to_vec::<f32>().unwrap()).collect();
            (losses, weights)
        };
        let (fast, plain) = (run(), crate::ops::with_plain_ops(run));
        for (step, (a, b)) in fast.0.iter().zip(&plain.0).enumerate() {
            assert!((a - b).abs() <= 1e-4 * b.abs().max(1e-3), "step {}: loss {a} vs {b}", step + 1);
        }
        assert_eq!(fast.1.len(), plain.1.len());
        assert_ne!(fast.1, plain.1, "the two runs took different ops, so their rounding differs");
        let worst = fast.1.iter().zip(&plain.1).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        let scale = plain.1.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(worst <= 1e-4 * scale, "weights differ by {worst} (largest weight {scale})");
    }

    /// Training lowers the loss: one batch (images, t, ε, OC's swapped targets) trained on
    /// again and again, the plain objective and every registered method stack; the ε-MSE of
    /// the last steps must be under a twentieth of the first steps' (measured: 120× for CM, 390×
    /// for DiffROP, over 1,800× for the others). CM runs with the demos'
    /// clamp: its diversity term is an unbounded negative MSE, which at this lr drives the
    /// ε-MSE of one batch from 0.95 to 10.8 in 60 steps without it.
    #[test]
    fn every_stack_overfits_one_batch() {
        let mut stacks = vec![("ddpm".to_string(), crate::methods::MethodsConfig::default())];
        for entry in crate::methods::REGISTRY {
            for name in entry.names {
                let mut m = crate::methods::MethodsConfig::default();
                m.add(name).unwrap();
                if let Some(cm) = m.cm.as_mut() {
                    cm.clamp = Some(1.0);
                }
                stacks.push((name.to_string(), m));
            }
        }
        const STEPS: usize = 60;
        for (what, methods) in stacks {
            let mut cfg = config(LabelDrop::PerBatch);
            cfg.batch = 6;
            cfg.batch_sampler = None;
            cfg.diffusion.label_drop_p = 0.0;
            cfg.optim = crate::train::optim::OptimConfig { lr: 2e-3, warmup: 0, ..Default::default() };
            cfg.methods = methods;
            let data = cfg.data.load().unwrap();
            let mut t = Trainer::<B>::new(cfg, data, Default::default()).unwrap();
            let host = t.batch();
            let mse: Vec<f64> = (0..STEPS).map(|_| t.step_on(host.clone(), Instant::now()).unwrap_or_else(|e| panic!("{what}: {e}")).losses["mse"]).collect();
            let (first, last) = (mse[..3].iter().sum::<f64>() / 3.0, mse[STEPS - 3..].iter().sum::<f64>() / 3.0);
            assert!(last < first / 20.0, "{what}: ε-MSE {first:.4} → {last:.4} over {STEPS} steps on one batch");
        }
    }

    /// The base MSE is taken against the batch's target (OC's swapped ε̂), not ε: by hand from
    /// the network's own ε on x_t.
    #[test]
    fn the_base_mse_uses_the_batchs_target() {
        let mut cfg = config(LabelDrop::PerBatch);
        cfg.diffusion.label_drop_p = 0.0;
        cfg.model.dropout = Some(0.0);
        let data = cfg.data.load().unwrap();
        let mut t = Trainer::<B>::new(cfg, data, Default::default()).unwrap();
        let mut host = t.batch();
        host.target = host.eps.iter().enumerate().map(|(k, e)| e + 0.5 * (k % 3) as f32).collect();
        let dev = Default::default();
        let x0 = Tensor::<B, 4>::from_data(TensorData::new(host.x0.clone(), host.shape), &dev);
        let eps = Tensor::<B, 4>::from_data(TensorData::new(host.eps.clone(), host.shape), &dev);
        let x_t = t.schedule.noise(x0, eps, &host.t);
        let labels = Tensor::<B, 1, Int>::from_data(TensorData::new(host.labels.iter().map(|&y| y as i64).collect::<Vec<_>>(), [host.len()]), &dev);
        let out: Vec<f32> = t.model.forward(x_t, &host.t, &crate::model::ClassCond::Labels(labels), false).eps.into_data().to_vec().unwrap();
        let mean_sq = |target: &[f32]| out.iter().zip(target).map(|(o, y)| ((o - y) as f64).powi(2)).sum::<f64>() / out.len() as f64;
        let (want, against_eps) = (mean_sq(&host.target), mean_sq(&host.eps));
        let losses = t.losses(host);
        let got = losses.terms[0].1.clone().into_scalar() as f64;
        assert_eq!(losses.terms[0].0, "mse");
        assert!((got - want).abs() < 1e-5 * want, "{got} vs {want}");
        assert!((got - against_eps).abs() > 0.1, "ε would give {against_eps}");
    }

    /// After a step the EMA of the real U-Net is decay·EMA + (1 − decay)·model, parameter by
    /// parameter, and the step did move the model.
    #[test]
    fn the_ema_after_a_step_by_hand() {
        let mut cfg = config(LabelDrop::PerBatch);
        cfg.optim = crate::train::optim::OptimConfig { lr: 1e-3, warmup: 0, ema_decay: 0.9, ..Default::default() };
        let data = cfg.data.load().unwrap();
        let mut t = Trainer::<B>::new(cfg, data, Default::default()).unwrap();
        let values = |ps: Vec<weights::NamedParam<_>>| -> BTreeMap<String, Vec<f32>> {
            ps.into_iter().map(|p| (p.path, p.value.into_data().to_vec::<f32>().unwrap())).collect()
        };
        let ema0 = values(weights::collect(&t.ema));
        t.train_step().unwrap();
        let (model1, ema1) = (values(weights::collect(&t.model.valid())), values(weights::collect(&t.ema)));
        assert_eq!(ema0.len(), ema1.len());
        let mut moved = 0;
        for (path, e1) in &ema1 {
            let (e0, m1) = (&ema0[path], &model1[path]);
            moved += e0.iter().zip(m1).filter(|(a, b)| a != b).count();
            for k in 0..e1.len() {
                let want = 0.9 * e0[k] as f64 + 0.1 * m1[k] as f64;
                assert!((e1[k] as f64 - want).abs() <= 1e-6 * (1.0 + want.abs()), "{path}[{k}]: {} vs {want}", e1[k]);
            }
        }
        assert!(moved > 1000, "the step moved {moved} weights");
    }

    /// The clip factor reaches Adam: a clip far below the gradient norm makes the scaled
    /// gradients small against Adam's eps, so the update shrinks by orders of magnitude.
    #[test]
    fn the_gradient_clip_reaches_adam() {
        let start = trainer(LabelDrop::PerBatch).checkpoint();
        let moved = |clip: f64| {
            let mut cfg = config(LabelDrop::PerBatch);
            cfg.optim = crate::train::optim::OptimConfig { lr: 1e-3, warmup: 0, grad_clip: clip, ..Default::default() };
            let data = cfg.data.load().unwrap();
            let mut t = Trainer::<B>::restore(cfg, data, Default::default(), &start).unwrap();
            let before: Vec<f32> = weights::collect(&t.model).into_iter().flat_map(|p| p.value.into_data().to_vec::<f32>().unwrap()).collect();
            let r = t.train_step().unwrap();
            let after: Vec<f32> = weights::collect(&t.model).into_iter().flat_map(|p| p.value.into_data().to_vec::<f32>().unwrap()).collect();
            (before.iter().zip(&after).map(|(a, b)| (a - b).abs() as f64).sum::<f64>(), r.grad_norm)
        };
        let ((free, norm), (clipped, _)) = (moved(0.0), moved(1e-9));
        assert!(norm > 1e-3, "a real gradient ({norm})");
        assert!(clipped < 0.05 * free, "clipped update {clipped} vs {free} without the clip");
        assert!(clipped > 0.0);
    }

    #[test]
    fn every_registered_method_trains() {
        for entry in crate::methods::REGISTRY {
            for name in entry.names {
                let mut m = crate::methods::MethodsConfig::default();
                m.add(name).unwrap();
                check_stack_trains(&m, name, entry.terms);
            }
        }
    }

    /// The documented combinations and non-default options.
    #[test]
    fn method_combinations_and_options_train() {
        let stacks: &[(&[&str], &[&str])] = &[
            (&["methods.oc = { mode = \"h2t\", cutoff = 800 }"], &[]),
            (&["methods.oc = { mode = \"full\", beta = 1.0 }"], &[]),
            (&["methods.diffrop = { form = \"reciprocal\", partners = \"all\" }"], &["diffrop"]),
            (&["methods.diffrop = { form = \"hinge\", margin = 50.0, partner_grad = false }"], &["diffrop"]),
            (&["methods.ccua = { brs = 0.1 }"], &["ccua_ucl", "ccua_al"]),
            (&["methods.coral = { lambda = \"batch-mean\", scale_by_temperature = true }"], &["coral"]),
            (&["methods.cm = { clamp = 1.0 }"], &["cm"]),
            (&["methods.cm = { with_t2h = false }", "methods.cbdm = {}"], &["cm", "cbdm_reg"]),
            (&["methods.cbdm = {}", "methods.diffrop = {}"], &["cbdm_reg", "diffrop"]),
            (&["methods.cbdm = {}", "methods.coral = {}"], &["cbdm_reg", "coral"]),
            (&["methods.cbdm = {}", "methods.ccua = {}"], &["cbdm_reg", "ccua_ucl"]),
        ];
        let mut base = config(LabelDrop::PerBatch);
        base.batch_sampler = None;
        for (lines, names) in stacks {
            let text = format!("{}\n{}", lines.join("\n"), base.to_toml());
            let cfg = TrainConfig::from_toml(&text, "test").unwrap_or_else(|e| panic!("{lines:?}: {e}"));
            check_stack_trains(&cfg.methods, &format!("{lines:?}"), names);
        }
    }

    #[test]
    fn every_builtin_preset_parses_and_names_its_methods() {
        use crate::train::config::BUILTIN_PRESETS;
        for (name, _) in BUILTIN_PRESETS {
            let c = TrainConfig::load(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(&c.name, name);
            let label = c.methods.label();
            let suffix = name.rsplit('-').next().unwrap();
            let want = match suffix {
                "synthetic" | "mnist" | "ddpm" => "ddpm",
                "cm" => "t2h+cm",
                s => s,
            };
            assert_eq!(label, want, "{name}");
        }
        assert!(BUILTIN_PRESETS.len() >= 25);
    }

    #[test]
    fn method_stack_resumes_exactly() {
        let mut cfg = config(LabelDrop::PerSample);
        cfg.batch_sampler = None;
        let text = format!("methods.cbdm = {{}}\nmethods.coral = {{}}\nmethods.cm = {{}}\n{}", cfg.to_toml());
        let cfg = TrainConfig::from_toml(&text, "test").unwrap();
        let data = cfg.data.load().unwrap();
        let mut a = Trainer::<B>::new(cfg.clone(), data.clone(), Default::default()).unwrap();
        a.train_step().unwrap();
        let ck = a.checkpoint();
        let mut b = Trainer::<B>::restore(cfg, data, Default::default(), &ck).unwrap();
        for _ in 0..2 {
            let (ra, rb) = (a.train_step().unwrap(), b.train_step().unwrap());
            assert_eq!(ra.losses, rb.losses);
            assert_eq!(ra.transfers, rb.transfers);
        }
    }

    #[test]
    fn unknown_and_conflicting_method_options_are_errors() {
        let base = config(LabelDrop::PerBatch).to_toml();
        let err = |extra: &str| TrainConfig::from_toml(&format!("{extra}\n{base}"), "run.toml").unwrap_err().to_string();
        let e = err("methods.coral = { wieght = 0.1 }");
        assert!(e.contains("wieght") && e.contains("run.toml"), "{e}");
        let e = err("methods.dpo = {}");
        assert!(e.contains("dpo"), "{e}");
        // The test config asks for the balanced sampler; CCUA's brs conflicts with it.
        let e = err("methods.ccua = { brs = 0.1 }");
        assert!(e.contains("methods.ccua.brs") && e.contains("batch_sampler"), "{e}");
        let e = err("methods.oc = { beta = 0.5 }");
        assert!(e.contains("methods.oc.beta"), "{e}");
        let e = err("methods.oc = {}\nmethods.cm = { with_t2h = false }");
        assert!(e.contains("with_t2h"), "{e}");
        let e = err("methods.cbdm = { tau = -1 }");
        assert!(e.contains("methods.cbdm.tau"), "{e}");
        // --set reaches every key and reports bad ones.
        let c = config(LabelDrop::PerBatch);
        let set = c.with_override("methods.coral.weight=0.02").unwrap();
        assert_eq!(set.methods.coral.unwrap().weight, 0.02);
        let e = c.with_override("methods.coral.wieght=1").unwrap_err().to_string();
        assert!(e.contains("wieght"), "{e}");
        let e = c.with_override("optim.lr=fast").unwrap_err().to_string();
        assert!(e.contains("optim.lr"), "{e}");
    }

    /// CFG label drop over many steps: per batch, whole batches go unconditional at rate p;
    /// per sample, each label at rate p independently.
    #[test]
    fn label_drop_rates() {
        let steps = 4000u64;
        for (drop, p) in [(LabelDrop::PerBatch, 0.1), (LabelDrop::PerSample, 0.3)] {
            let mut t = trainer(drop);
            t.cfg.diffusion.label_drop_p = p;
            let (mut dropped, mut uncond_batches, mut samples) = (0usize, 0usize, 0usize);
            for step in 0..steps {
                let h = t.draw_batch(step);
                let d = h.keep.iter().filter(|&&k| !k).count();
                match drop {
                    LabelDrop::PerBatch => {
                        assert!(d == 0 || d == h.len(), "all or nothing");
                        assert_eq!(h.uncond_batch, d == h.len());
                    }
                    LabelDrop::PerSample => assert!(!h.uncond_batch),
                }
                dropped += d;
                uncond_batches += h.uncond_batch as usize;
                samples += h.len();
            }
            // Within 4 standard errors of p.
            let (rate, n) = match drop {
                LabelDrop::PerBatch => (uncond_batches as f64 / steps as f64, steps as f64),
                LabelDrop::PerSample => (dropped as f64 / samples as f64, samples as f64),
            };
            let se = (p * (1.0 - p) / n).sqrt();
            assert!((rate - p).abs() < 4.0 * se, "{drop:?}: rate {rate} vs p {p}");
        }
    }

    #[test]
    fn step_record_buckets_and_lr() {
        let mut t = trainer(LabelDrop::PerBatch);
        let r = t.train_step().unwrap();
        assert_eq!(r.step, 1);
        assert_eq!(r.loss_by_t.len(), T_BUCKETS);
        let filled = r.loss_by_t.iter().flatten().count();
        assert!((1..=3).contains(&filled), "3 samples fill 1 to 3 buckets");
        assert_eq!(r.lr, t.cfg.optim.lr_at(0));
        // Untrained ε-prediction ≈ 0, so the MSE is ≈ E[ε²] = 1.
        assert!((r.losses["mse"] - 1.0).abs() < 0.5, "{:?}", r.losses);
    }

    #[test]
    fn corrupt_checkpoint_is_rejected_with_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.safetensors");
        std::fs::write(&p, b"garbage").unwrap();
        let e = Checkpoint::read(&p).err().unwrap().to_string();
        assert!(e.contains("bad.safetensors") && e.contains("safetensors"), "{e}");
    }

    #[test]
    fn checkpoint_of_another_preset_is_rejected() {
        let mut a = trainer(LabelDrop::PerBatch);
        a.train_step().unwrap();
        let ck = a.checkpoint();
        let mut cfg = a.cfg.clone();
        cfg.model.preset = Preset::Small;
        let e = Trainer::<B>::restore(cfg, a.data.clone(), Default::default(), &ck).err().unwrap().to_string();
        assert!(e.contains("parameter"), "{e}");
    }
}
