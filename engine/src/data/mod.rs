//! Datasets, the long-tail profile and batch samplers.
//!
//! Every loader returns the full, balanced training set as a [`Dataset`] of 8-bit pixels;
//! [`profile::apply`] then keeps the long-tailed subset. Pixels become [−1, 1] floats only when
//! a batch is built.

pub mod cifar;
pub mod folder;
pub mod idx;
pub mod profile;
pub mod sampler;
pub mod synthetic;

use crate::error::{Error, Result};
use ltlab_types::{DatasetSummary, Resemblance};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// Where `fashion-mnist` is looked for when no root is given (Debian's dataset-fashion-mnist).
pub const FASHION_MNIST_ROOT: &str = "/usr/share/datasets/fashion-mnist";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    Synthetic,
    FashionMnist,
    Mnist,
    Cifar10,
    Cifar100,
    Folder,
}

impl DatasetKind {
    pub const NAMES: &'static str = "synthetic, fashion-mnist, mnist, cifar10, cifar100, folder";

    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "synthetic" => Self::Synthetic,
            "fashion-mnist" => Self::FashionMnist,
            "mnist" => Self::Mnist,
            "cifar10" => Self::Cifar10,
            "cifar100" => Self::Cifar100,
            "folder" => Self::Folder,
            other => {
                return Err(Error::option("dataset", format!("unknown dataset `{other}`; expected one of {}", Self::NAMES)));
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Synthetic => "synthetic",
            Self::FashionMnist => "fashion-mnist",
            Self::Mnist => "mnist",
            Self::Cifar10 => "cifar10",
            Self::Cifar100 => "cifar100",
            Self::Folder => "folder",
        }
    }
}

/// The long-tail profile of SPEC §1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// n_i = floor(N_max · ρ^(i/(C−1))).
    #[default]
    Exp,
    /// First half of the classes at N_max, the rest at floor(N_max · ρ).
    Step,
}

impl Profile {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "exp" => Ok(Self::Exp),
            "step" => Ok(Self::Step),
            other => Err(Error::option("profile", format!("unknown profile `{other}`; expected exp or step"))),
        }
    }
}

/// Which data a run trains on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    pub dataset: DatasetKind,
    /// Folder with the dataset files; defaults: fashion-mnist → Debian's path, others required
    /// (synthetic needs none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<PathBuf>,
    /// ρ = 1/IR, in (0, 1]; 1 keeps the balanced set.
    pub imbalance: f64,
    #[serde(default)]
    pub profile: Profile,
    /// Seed of the per-class selection (kept separate from the training seed so that runs
    /// with different training seeds see the same images).
    #[serde(default)]
    pub seed: u64,
    /// Side length images are resized to; `None` keeps the native size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<usize>,
    /// Random horizontal flip during training.
    #[serde(default)]
    pub hflip: bool,
    /// Images per class the synthetic generator makes before the profile is applied.
    #[serde(default = "default_synthetic_per_class")]
    pub synthetic_per_class: usize,
}

fn default_synthetic_per_class() -> usize {
    1000
}

impl DataConfig {
    pub fn new(dataset: DatasetKind, imbalance: f64) -> Self {
        Self {
            dataset,
            root: None,
            imbalance,
            profile: Profile::default(),
            seed: 0,
            image_size: None,
            hflip: false,
            synthetic_per_class: default_synthetic_per_class(),
        }
    }

    pub fn validate(&self) -> Result<()> {
        if !(self.imbalance > 0.0 && self.imbalance <= 1.0) {
            return Err(Error::option("imbalance", format!("ρ = {} is outside (0, 1]; ρ = 1/IR, e.g. 0.01 for IR 100", self.imbalance)));
        }
        if let Some(s) = self.image_size
            && !(4..=512).contains(&s)
        {
            return Err(Error::option("image-size", format!("{s} is outside 4..=512")));
        }
        if self.dataset == DatasetKind::Folder && self.root.is_none() {
            return Err(Error::option("root", "the folder dataset needs --root DIR (one sub-folder per class)"));
        }
        if matches!(self.dataset, DatasetKind::Cifar10 | DatasetKind::Cifar100 | DatasetKind::Mnist) && self.root.is_none() {
            return Err(Error::option("root", format!("{} needs --root DIR pointing at its files", self.dataset.name())));
        }
        Ok(())
    }

    /// The folder the data is read from (Debian's for Fashion-MNIST); none for the synthetic set.
    pub fn effective_root(&self) -> Option<PathBuf> {
        match (self.dataset, &self.root) {
            (DatasetKind::Synthetic, _) => None,
            (DatasetKind::FashionMnist, None) => Some(PathBuf::from(FASHION_MNIST_ROOT)),
            (_, r) => r.clone(),
        }
    }

    /// Loads the balanced training set and applies the long-tail profile.
    pub fn load(&self) -> Result<Dataset> {
        self.validate()?;
        let full = self.load_balanced()?;
        profile::apply(&full, self.imbalance, self.profile, self.seed)
    }

    /// The full balanced training set (the real reference for evaluation), resized.
    pub fn load_balanced(&self) -> Result<Dataset> {
        self.validate()?;
        let ds = match self.dataset {
            DatasetKind::Synthetic => synthetic::generate(self.image_size.unwrap_or(32), self.synthetic_per_class, self.seed)?,
            DatasetKind::FashionMnist => {
                let root = self.root.clone().unwrap_or_else(|| PathBuf::from(FASHION_MNIST_ROOT));
                idx::load_train(&root, "fashion-mnist", idx::FASHION_MNIST_CLASSES)?
            }
            DatasetKind::Mnist => idx::load_train(self.root.as_ref().unwrap(), "mnist", idx::MNIST_CLASSES)?,
            DatasetKind::Cifar10 => cifar::load_train(self.root.as_ref().unwrap(), cifar::Variant::Cifar10)?,
            DatasetKind::Cifar100 => cifar::load_train(self.root.as_ref().unwrap(), cifar::Variant::Cifar100)?,
            DatasetKind::Folder => folder::load(self.root.as_ref().unwrap(), self.image_size.unwrap_or(32))?,
        };
        match self.image_size {
            Some(s) if s != ds.size => Ok(ds.resized(s)),
            _ => Ok(ds),
        }
    }
}

/// Images with labels, stored as 8-bit pixels in N × C × S × S order.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: String,
    pub class_names: Vec<String>,
    pub channels: usize,
    pub size: usize,
    pub pixels: Vec<u8>,
    pub labels: Vec<usize>,
    pub resembles: Vec<Resemblance>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }
    pub fn image_len(&self) -> usize {
        self.channels * self.size * self.size
    }
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    pub fn counts(&self) -> Vec<usize> {
        let mut c = vec![0; self.num_classes()];
        for &y in &self.labels {
            c[y] += 1;
        }
        c
    }

    /// Indices of the images of each class, in dataset order.
    pub fn indices_by_class(&self) -> Vec<Vec<usize>> {
        let mut by = vec![Vec::new(); self.num_classes()];
        for (i, &y) in self.labels.iter().enumerate() {
            by[y].push(i);
        }
        by
    }

    /// The subset at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let mut pixels = Vec::with_capacity(indices.len() * self.image_len());
        for &i in indices {
            pixels.extend_from_slice(self.image(i));
        }
        Dataset {
            name: self.name.clone(),
            class_names: self.class_names.clone(),
            channels: self.channels,
            size: self.size,
            pixels,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            resembles: self.resembles.clone(),
        }
    }

    /// Every image resized to `size`×`size` (bilinear).
    pub fn resized(&self, size: usize) -> Dataset {
        let (c, s) = (self.channels, self.size as u32);
        let mut pixels = Vec::with_capacity(self.len() * c * size * size);
        for i in 0..self.len() {
            let img = self.image(i);
            let mut planes = Vec::with_capacity(c);
            for ch in 0..c {
                let plane = img[ch * (s * s) as usize..(ch + 1) * (s * s) as usize].to_vec();
                let gray = image::GrayImage::from_raw(s, s, plane).expect("plane size matches");
                planes.push(image::imageops::resize(&gray, size as u32, size as u32, image::imageops::FilterType::Triangle));
            }
            for p in planes {
                pixels.extend_from_slice(p.as_raw());
            }
        }
        Dataset { size, pixels, ..self.clone() }
    }

    /// Hash of the pixels, labels and shape (first 16 hex digits of SHA-256).
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.name.as_bytes());
        h.update((self.channels as u64).to_le_bytes());
        h.update((self.size as u64).to_le_bytes());
        for &y in &self.labels {
            h.update((y as u32).to_le_bytes());
        }
        h.update(&self.pixels);
        let d = h.finalize();
        d.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }

    pub fn summary(&self) -> DatasetSummary {
        let counts = self.counts();
        let total = self.len();
        DatasetSummary {
            name: self.name.clone(),
            class_names: self.class_names.clone(),
            q: counts.iter().map(|&c| c as f64 / total.max(1) as f64).collect(),
            counts,
            total,
            fingerprint: self.fingerprint(),
            channels: self.channels,
            image_size: self.size,
            resembles: self.resembles.clone(),
        }
    }

    /// Image `i` as floats in [−1, 1], horizontally flipped if asked.
    pub fn image_f32(&self, i: usize, flip: bool, out: &mut Vec<f32>) {
        let img = self.image(i);
        let s = self.size;
        for ch in 0..self.channels {
            for row in 0..s {
                for col in 0..s {
                    let src = if flip { s - 1 - col } else { col };
                    let v = img[ch * s * s + row * s + src];
                    out.push(v as f32 / 127.5 - 1.0);
                }
            }
        }
    }
}
