//! One training run in memory: model, EMA, Adam state and the step that reads as the
//! DDPM algorithm does.

use super::checkpoint::Checkpoint;
use super::config::{LabelDrop, TrainConfig};
use super::optim::{self, AdamState};
use super::params;
use crate::data::Dataset;
use crate::diffusion::sampler::{SampleRequest, grid_id, initial_noise, sample};
use crate::diffusion::{SamplerKind, Schedule};
use crate::error::{Error, Result};
use crate::model::{ClassCond, UNet, UNetConfig};
use crate::rng::{self, Stream};
use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
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
}

pub struct Trainer<B: AutodiffBackend> {
    pub cfg: TrainConfig,
    pub data: Dataset,
    by_class: Vec<Vec<usize>>,
    pub schedule: Schedule,
    pub model_config: UNetConfig,
    pub model: UNet<B>,
    pub ema: UNet<B::InnerBackend>,
    adam: AdamState<B::InnerBackend>,
    /// Steps completed.
    pub step: u64,
    pub device: B::Device,
}

impl<B: AutodiffBackend> Trainer<B> {
    /// A fresh run: model initialised from the run seed, EMA = model.
    pub fn new(cfg: TrainConfig, data: Dataset, device: B::Device) -> Result<Self> {
        let model_config = model_config(&cfg, &data)?;
        B::seed(&device, rng::derive_seed(cfg.seed, Stream::Init, 0));
        let model: UNet<B> = model_config.init(&device);
        let ema = model.valid();
        Ok(Self {
            by_class: data.indices_by_class(),
            schedule: Schedule::linear(cfg.diffusion.timesteps, cfg.diffusion.beta_start, cfg.diffusion.beta_end),
            cfg,
            data,
            model_config,
            model,
            ema,
            adam: AdamState::default(),
            step: 0,
            device,
        })
    }

    /// A run restored from a checkpoint.
    pub fn restore(cfg: TrainConfig, data: Dataset, device: B::Device, ckpt: &Checkpoint) -> Result<Self> {
        let mut t = Self::new(cfg, data, device)?;
        if ckpt.seed != t.cfg.seed {
            return Err(Error::Other(format!("checkpoint seed {} differs from the run's seed {}", ckpt.seed, t.cfg.seed)));
        }
        let dev = t.device.clone();
        t.model = params::load(t.model, ckpt.params::<B>("model", &dev))?;
        t.ema = params::load(t.ema, ckpt.params::<B::InnerBackend>("ema", &dev))?;
        t.adam = ckpt.adam(&dev);
        t.step = ckpt.step;
        Ok(t)
    }

    pub fn checkpoint(&self) -> Checkpoint {
        let (c, k) = (self.data.num_classes(), self.cfg.log.grid_per_class);
        let len = self.data.image_len();
        let noise = (0..c).flat_map(|cl| (0..k).flat_map(move |s| initial_noise(self.cfg.seed, grid_id(cl, s), len))).collect();
        let shape = vec![c * k, self.data.channels, self.data.size, self.data.size];
        Checkpoint::gather(self.step, self.cfg.seed, &self.model, &self.ema, &self.adam, (shape, noise))
    }

    /// One optimisation step; returns what it logged. A non-finite loss or gradient leaves the
    /// model untouched and returns [`Error::NonFinite`].
    pub fn train_step(&mut self) -> Result<StepRecord> {
        let started = Instant::now();
        let cfg = &self.cfg;
        let (b, len, t_total) = (cfg.batch, self.data.image_len(), self.schedule.len());
        let step = self.step;

        // The batch and all randomness of this step derive from (seed, step).
        let idx = cfg.batch_sampler.batch(&self.data.labels, &self.by_class, b, cfg.seed, step);
        let mut r = rng::rng(cfg.seed, Stream::Noise, step);
        let mut x0 = Vec::with_capacity(b * len);
        for &i in &idx {
            let flip = cfg.data.hflip && r.random::<bool>();
            self.data.image_f32(i, flip, &mut x0);
        }
        let t: Vec<usize> = (0..b).map(|_| r.random_range(0..t_total)).collect();
        let eps = rng::normal_vec(&mut r, b * len);
        let labels: Vec<i64> = idx.iter().map(|&i| self.data.labels[i] as i64).collect();
        let labels = Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [b]), &self.device);
        let p = cfg.diffusion.label_drop_p;
        let cond = match cfg.diffusion.label_drop {
            LabelDrop::PerBatch if r.random::<f64>() < p => ClassCond::Uncond,
            LabelDrop::PerBatch => ClassCond::Labels(labels),
            LabelDrop::PerSample => {
                let keep: Vec<f32> = (0..b).map(|_| if r.random::<f64>() < p { 0.0 } else { 1.0 }).collect();
                ClassCond::Masked { labels, keep: Tensor::from_data(TensorData::new(keep, [b]), &self.device) }
            }
        };
        let uncond_batch = matches!(cond, ClassCond::Uncond);
        // Dropout draws from the backend's generator: seed it per step so resume is exact.
        B::seed(&self.device, rng::derive_seed(cfg.seed, Stream::Backend, step));

        let shape = [b, self.data.channels, self.data.size, self.data.size];
        let x0 = Tensor::<B, 4>::from_data(TensorData::new(x0, shape), &self.device);
        let eps = Tensor::<B, 4>::from_data(TensorData::new(eps, shape), &self.device);
        let x_t = self.schedule.noise(x0, eps.clone(), &t);
        let pred = self.model.forward(x_t, &t, &cond, false).eps;
        let per_sample = (pred - eps).powi_scalar(2).reshape([b, len]).mean_dim(1).reshape([b]);
        let loss = per_sample.clone().mean();

        let per_sample: Vec<f32> = per_sample.inner().into_data().convert::<f32>().to_vec().expect("f32");
        let mse = per_sample.iter().map(|&v| v as f64).sum::<f64>() / b as f64;
        let non_finite = |value: f64| Error::NonFinite { step: step + 1, value, checkpoint: String::new() };
        if !mse.is_finite() {
            return Err(non_finite(mse));
        }
        let grads = loss.backward();
        let grad_norm = optim::grad_norm(&self.model, &grads);
        if !grad_norm.is_finite() {
            return Err(non_finite(grad_norm));
        }
        let lr = cfg.optim.lr_at(step);
        let scale = optim::clip_scale(grad_norm, cfg.optim.grad_clip);
        let (model, updated) = optim::adam_step(self.model.clone(), &grads, &mut self.adam, &cfg.optim, lr, step + 1, scale);
        self.model = model;
        self.ema = optim::ema_update(self.ema.clone(), updated, cfg.optim.ema_decay);
        self.step += 1;

        let mut sums = [(0.0f64, 0usize); T_BUCKETS];
        for (&ti, &l) in t.iter().zip(&per_sample) {
            let k = ti * T_BUCKETS / t_total;
            sums[k].0 += l as f64;
            sums[k].1 += 1;
        }
        Ok(StepRecord {
            step: self.step,
            losses: BTreeMap::from([("mse".to_string(), mse), ("total".to_string(), mse)]),
            loss_by_t: sums.iter().map(|&(s, n)| (n > 0).then(|| s / n as f64)).collect(),
            lr,
            grad_norm,
            images_per_s: b as f64 / started.elapsed().as_secs_f64(),
            uncond_batch,
        })
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
        let req = SampleRequest {
            labels,
            ids,
            omega,
            sampler,
            seed: self.cfg.seed,
            channels: self.data.channels,
            size: self.data.size,
            batch: 256,
        };
        let raw;
        let model = match weights {
            Weights::Ema => &self.ema,
            Weights::Raw => {
                raw = self.model.valid();
                &raw
            }
        };
        let out = sample(model, &self.schedule, &req, &self.device, progress)?;
        Ok(out.map(|x| x.into_data().convert::<f32>().to_vec().expect("f32")))
    }

    pub fn parameters(&self) -> usize {
        params::count(&self.ema)
    }
}

/// The U-Net a config asks for, checked against the data.
pub fn model_config(cfg: &TrainConfig, data: &Dataset) -> Result<UNetConfig> {
    let mut m = cfg.model.preset.config(data.channels, data.num_classes(), data.size)?;
    if let Some(d) = cfg.model.dropout {
        m.dropout = d;
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{DataConfig, DatasetKind};
    use crate::train::config::{DiffusionConfig, LogConfig, ModelConfig};
    use crate::data::sampler::BatchSampler;
    use crate::model::Preset;
    type B = burn::backend::Autodiff<burn::backend::Flex>;

    fn config(label_drop: LabelDrop) -> TrainConfig {
        let mut data = DataConfig::new(DatasetKind::Synthetic, 0.5);
        data.image_size = Some(8);
        data.synthetic_per_class = 4;
        data.hflip = true;
        TrainConfig {
            name: "t".into(),
            seed: 3,
            steps: 10,
            batch: 3,
            backend: Default::default(),
            data,
            model: ModelConfig { preset: Preset::Tiny, dropout: None },
            optim: Default::default(),
            diffusion: DiffusionConfig { label_drop, label_drop_p: 0.5, ..Default::default() },
            batch_sampler: BatchSampler::Balanced,
            log: LogConfig { grid_per_class: 2, ..Default::default() },
            record: None,
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
