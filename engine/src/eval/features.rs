//! Feature extractors (SPEC §5): the FID Inception-V3 from a user's weights file, or ltlab's
//! domain network. Every number a report shows names the extractor that made it.

use super::domain::{self, Domain};
use super::inception::FidInception;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::geometry::Features;
use crate::ops::FastBackend;
use burn::prelude::*;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use std::path::{Path, PathBuf};

/// The usual weights file of pytorch-fid / torch-fidelity.
pub const INCEPTION_FILE: &str = "pt_inception-2015-12-05-6726825d.pth";

/// Host images in [0, 1], N × C × S × S.
#[derive(Debug, Clone, PartialEq)]
pub struct Images {
    pub n: usize,
    pub channels: usize,
    pub size: usize,
    pub data: Vec<f32>,
}

impl Images {
    pub fn new(n: usize, channels: usize, size: usize, data: Vec<f32>) -> Result<Self> {
        if data.len() != n * channels * size * size {
            return Err(Error::Other(format!("images: {} values for {n} images of {channels}×{size}×{size}", data.len())));
        }
        Ok(Self { n, channels, size, data })
    }

    /// The dataset's images at `idx`.
    pub fn from_dataset(data: &Dataset, idx: &[usize]) -> Self {
        let mut v = Vec::with_capacity(idx.len() * data.image_len());
        for &i in idx {
            v.extend(data.image(i).iter().map(|&p| p as f32 / 255.0));
        }
        Self { n: idx.len(), channels: data.channels, size: data.size, data: v }
    }

    /// Generated samples in [−1, 1].
    pub fn from_samples(samples: &[f32], channels: usize, size: usize) -> Result<Self> {
        let n = samples.len() / (channels * size * size).max(1);
        Self::new(n, channels, size, samples.iter().map(|&v| ((v + 1.0) * 0.5).clamp(0.0, 1.0)).collect())
    }

    fn image_len(&self) -> usize {
        self.channels * self.size * self.size
    }

    /// Grey → RGB repeats the plane; RGB → grey averages the planes (exact for grey images
    /// stored as RGB, as image folders are).
    pub fn with_channels(&self, channels: usize) -> Result<Images> {
        let plane = self.size * self.size;
        let data = match (self.channels, channels) {
            (a, b) if a == b => return Ok(self.clone()),
            (1, 3) => self.data.chunks(plane).flat_map(|p| p.iter().chain(p).chain(p)).copied().collect(),
            (3, 1) => self.data.chunks(3 * plane).flat_map(|img| (0..plane).map(move |k| (img[k] + img[plane + k] + img[2 * plane + k]) / 3.0)).collect(),
            (a, b) => return Err(Error::Other(format!("images have {a} channels; the feature network expects {b}"))),
        };
        Ok(Images { channels, data, ..*self })
    }

    /// Every plane resized to `size`×`size` (bilinear with a triangle filter, as the datasets).
    pub fn resized(&self, size: usize) -> Images {
        if size == self.size {
            return self.clone();
        }
        let s = self.size as u32;
        let mut data = Vec::with_capacity(self.n * self.channels * size * size);
        for plane in self.data.chunks(self.size * self.size) {
            let img = image::ImageBuffer::<image::Luma<f32>, Vec<f32>>::from_raw(s, s, plane.to_vec()).expect("plane size");
            let out = image::imageops::resize(&img, size as u32, size as u32, image::imageops::FilterType::Triangle);
            data.extend(out.into_raw());
        }
        Images { size, data, ..*self }
    }

    /// Index ranges of consecutive batches.
    pub fn chunks(&self, batch: usize) -> Vec<(usize, usize)> {
        (0..self.n).step_by(batch.max(1)).map(|a| (a, (a + batch.max(1)).min(self.n))).collect()
    }

    /// Images `a..b` as a tensor.
    pub fn tensor<B: FastBackend>(&self, a: usize, b: usize, device: &B::Device) -> Tensor<B, 4> {
        let len = self.image_len();
        Tensor::from_data(TensorData::new(self.data[a * len..b * len].to_vec(), [b - a, self.channels, self.size, self.size]), device)
    }
}

/// SPEC §5's Inception preprocessing of [0, 1] images: bilinear resize to 299 (half-pixel
/// centres, as PyTorch's `align_corners=False`), then to [−1, 1].
pub fn inception_input<B: FastBackend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let opts = InterpolateOptions::new(InterpolateMode::Bilinear).with_align_corners(false);
    interpolate(x, [299, 299], opts).mul_scalar(2.0).sub_scalar(1.0)
}

/// Which features to use, as the user writes it: `inception[:PATH]`, `domain[:PATH]` or
/// `auto` (Inception if its weights file is found, else the domain network).
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureChoice {
    Auto,
    Inception(Option<PathBuf>),
    Domain(Option<PathBuf>),
}

impl FeatureChoice {
    pub fn parse(s: &str) -> Result<Self> {
        let (kind, path) = match s.split_once(':') {
            Some((k, p)) => (k, Some(PathBuf::from(p))),
            None => (s, None),
        };
        match kind {
            "auto" if path.is_none() => Ok(Self::Auto),
            "inception" => Ok(Self::Inception(path)),
            "domain" => Ok(Self::Domain(path)),
            _ => Err(Error::option("features", format!("`{s}`: expected inception[:PATH], domain[:PATH] or auto"))),
        }
    }
}

/// Where ltlab caches what it computes once per dataset: `$LTLAB_CACHE`, else
/// `$XDG_CACHE_HOME/ltlab`, else `~/.cache/ltlab`.
pub fn cache_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("LTLAB_CACHE") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(p).join("ltlab");
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/ltlab")).unwrap_or_else(|| PathBuf::from(".ltlab-cache"))
}

/// The default place of the Inception weights: `$LTLAB_INCEPTION`, else the cache folder.
pub fn default_inception_path() -> PathBuf {
    std::env::var_os("LTLAB_INCEPTION").map(PathBuf::from).unwrap_or_else(|| cache_dir().join(INCEPTION_FILE))
}

/// The folders that may hold a dataset's domain network and reference features, in the order
/// they are searched: beside the data (`ROOT/ltlab-features/<fingerprint>`) when the data has a
/// folder, then the cache (`<cache>/<name>-<fingerprint>`).
pub fn dataset_dirs(root: Option<&Path>, data: &Dataset) -> Vec<PathBuf> {
    let fp = data.fingerprint();
    let mut out = Vec::new();
    if let Some(r) = root {
        out.push(r.join("ltlab-features").join(&fp));
    }
    let name: String = data.name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    out.push(cache_dir().join(format!("{name}-{fp}")));
    out
}

/// The first of `dirs` that can be written (created if needed).
pub fn writable_dir(dirs: &[PathBuf]) -> Result<PathBuf> {
    for d in dirs {
        if std::fs::create_dir_all(d).is_ok() && tempfile_probe(d) {
            return Ok(d.clone());
        }
    }
    Err(Error::Other(format!("none of these folders can be written: {}", dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "))))
}

fn tempfile_probe(dir: &Path) -> bool {
    let p = dir.join(".ltlab-write-probe");
    let ok = std::fs::write(&p, b"").is_ok();
    let _ = std::fs::remove_file(&p);
    ok
}

/// Features (and class logits) of a set of images.
pub struct Extracted {
    pub features: Features,
    /// N × classes: Inception's 1008 logits without the fc bias, or the domain classifier's.
    pub logits: Vec<f32>,
    pub classes: usize,
}

#[expect(clippy::large_enum_variant, reason = "one extractor per evaluation, never moved in bulk")]
pub enum Extractor<B: Backend> {
    Inception { net: FidInception<B>, file: PathBuf },
    Domain { domain: Domain<B>, file: PathBuf },
}

impl<B: FastBackend> Extractor<B> {
    pub fn inception(path: &Path, device: &B::Device) -> Result<Self> {
        Ok(Self::Inception { net: FidInception::load(path, device)?, file: path.to_path_buf() })
    }

    pub fn domain(path: &Path, device: &B::Device) -> Result<Self> {
        Ok(Self::Domain { domain: Domain::load(path, device)?, file: path.to_path_buf() })
    }

    /// How reports name these features.
    pub fn label(&self) -> String {
        match self {
            Self::Inception { file, .. } => format!("inception-v3-tf ({})", file.display()),
            Self::Domain { domain, .. } => domain.info.label(),
        }
    }

    /// A short key for file names: `inception` or `domain`.
    pub fn key(&self) -> &'static str {
        match self {
            Self::Inception { .. } => "inception",
            Self::Domain { .. } => "domain",
        }
    }

    pub fn file(&self) -> &Path {
        match self {
            Self::Inception { file, .. } | Self::Domain { file, .. } => file,
        }
    }

    /// The domain network's record (it classifies the dataset's own classes).
    pub fn domain_info(&self) -> Option<&domain::DomainInfo> {
        match self {
            Self::Domain { domain, .. } => Some(&domain.info),
            Self::Inception { .. } => None,
        }
    }

    pub fn extract(&self, images: &Images, batch: usize, device: &B::Device, progress: &mut dyn FnMut(usize, usize)) -> Result<Extracted> {
        let (features, logits, d, classes) = match self {
            Self::Domain { domain, .. } => {
                let (f, l) = domain.extract(images, batch, device, progress)?;
                (f, l, domain.info.width * 4, domain.info.class_names.len())
            }
            Self::Inception { net, .. } => {
                let rgb = images.with_channels(3)?;
                let (mut f, mut l) = (Vec::new(), Vec::new());
                for (a, b) in rgb.chunks(batch) {
                    let out = net.forward(inception_input(rgb.tensor::<B>(a, b, device)));
                    f.extend(out.features.into_data().convert::<f32>().to_vec::<f32>().expect("f32"));
                    l.extend(out.logits.into_data().convert::<f32>().to_vec::<f32>().expect("f32"));
                    progress(b, rgb.n);
                }
                (f, l, 2048, 1008)
            }
        };
        Ok(Extracted { features: Features::new(images.n, d, features)?, logits, classes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    type F = burn::backend::Flex;

    #[test]
    fn bilinear_resize_uses_half_pixel_centres() {
        // Source coordinate (i + ½)·in/out − ½, clamped at the borders; the same numbers come
        // out of PyTorch's F.interpolate(mode="bilinear", align_corners=False).
        let dev = Default::default();
        let x = Tensor::<F, 4>::from_data(TensorData::new(vec![0.0f32, 1.0, 4.0, 2.0, 3.0, 9.0], [1, 1, 2, 3]), &dev);
        let opts = InterpolateOptions::new(InterpolateMode::Bilinear).with_align_corners(false);
        let y: Vec<f32> = interpolate(x, [3, 5], opts.clone()).into_data().to_vec().unwrap();
        let want = [0.0, 0.4, 1.0, 2.8, 4.0, 1.0, 1.4, 2.0, 4.7, 6.5, 2.0, 2.4, 3.0, 6.6, 9.0];
        for (a, b) in y.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{y:?}");
        }
        // Downscaling 4×4 → 3×3: no anti-aliasing, plain interpolation at (i + ½)·4/3 − ½.
        let x = Tensor::<F, 4>::from_data(TensorData::new((0..16).map(|v| v as f32).collect::<Vec<_>>(), [1, 1, 4, 4]), &dev);
        let y: Vec<f32> = interpolate(x, [3, 3], opts).into_data().to_vec().unwrap();
        let c = [1.0f32 / 6.0, 1.5, 2.0 + 5.0 / 6.0];
        for i in 0..3 {
            for j in 0..3 {
                assert!((y[i * 3 + j] - (4.0 * c[i] + c[j])).abs() < 1e-5, "{y:?}");
            }
        }
        // The whole preprocessing: a constant ½ image stays ½ → 0 in [−1, 1], at 299×299.
        let x = Tensor::<F, 4>::full([2, 3, 8, 8], 0.5, &dev);
        let y = inception_input(x);
        assert_eq!(y.dims(), [2, 3, 299, 299]);
        assert!(y.abs().max().into_scalar() < 1e-6);
    }

    #[test]
    fn channel_conversion_and_feature_choice() {
        let grey = Images::new(1, 1, 2, vec![0.0, 0.25, 0.5, 1.0]).unwrap();
        let rgb = grey.with_channels(3).unwrap();
        assert_eq!(rgb.data, [0.0, 0.25, 0.5, 1.0, 0.0, 0.25, 0.5, 1.0, 0.0, 0.25, 0.5, 1.0]);
        assert_eq!(rgb.with_channels(1).unwrap(), grey);
        assert!(Images::new(1, 2, 2, vec![0.0; 8]).unwrap().with_channels(3).is_err());
        assert!(Images::new(2, 1, 2, vec![0.0; 7]).is_err());
        assert_eq!(FeatureChoice::parse("inception:/w/x.pth").unwrap(), FeatureChoice::Inception(Some("/w/x.pth".into())));
        assert_eq!(FeatureChoice::parse("domain").unwrap(), FeatureChoice::Domain(None));
        assert!(FeatureChoice::parse("clip").unwrap_err().to_string().contains("features"));
        let s = Images::from_samples(&[-1.0, 0.0, 1.0, 3.0], 1, 2).unwrap();
        assert_eq!(s.data, [0.0, 0.5, 1.0, 1.0]);
    }
}
