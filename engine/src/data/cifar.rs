//! CIFAR-10/100 binary version: per record the label byte(s), then 3072 bytes of R, G, B planes.

use super::Dataset;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Cifar10,
    Cifar100,
}

const PIXELS: usize = 3 * 32 * 32;

impl Variant {
    /// Bytes per record: CIFAR-100 stores the coarse label before the fine one.
    pub fn record_len(self) -> usize {
        match self {
            Self::Cifar10 => 1 + PIXELS,
            Self::Cifar100 => 2 + PIXELS,
        }
    }
    fn train_files(self) -> &'static [&'static str] {
        match self {
            Self::Cifar10 => &["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"],
            Self::Cifar100 => &["train.bin"],
        }
    }
    /// The sub-folder the official archive unpacks to.
    fn archive_dir(self) -> &'static str {
        match self {
            Self::Cifar10 => "cifar-10-batches-bin",
            Self::Cifar100 => "cifar-100-binary",
        }
    }
    fn classes(self) -> usize {
        match self {
            Self::Cifar10 => 10,
            Self::Cifar100 => 100,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Self::Cifar10 => "cifar10",
            Self::Cifar100 => "cifar100",
        }
    }
}

pub const CIFAR10_CLASSES: &[&str] = &["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// Accepts the folder with the .bin files or its parent holding the archive's folder.
fn resolve_root(root: &Path, v: Variant) -> Result<PathBuf> {
    if !root.is_dir() {
        return Err(Error::data(root, "dataset root does not exist or is not a folder"));
    }
    let first = v.train_files()[0];
    for cand in [root.to_path_buf(), root.join(v.archive_dir())] {
        if cand.join(first).is_file() {
            return Ok(cand);
        }
    }
    Err(Error::data(root, format!("no `{first}` here or in `{}/` (the CIFAR binary version is expected)", v.archive_dir())))
}

/// Class names from the archive's meta file if present (one name per line), else built-ins.
fn class_names(dir: &Path, v: Variant) -> Vec<String> {
    let meta = match v {
        Variant::Cifar10 => "batches.meta.txt",
        Variant::Cifar100 => "fine_label_names.txt",
    };
    if let Ok(text) = std::fs::read_to_string(dir.join(meta)) {
        let names: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
        if names.len() == v.classes() {
            return names;
        }
    }
    match v {
        Variant::Cifar10 => CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect(),
        Variant::Cifar100 => (0..100).map(|i| format!("class_{i:02}")).collect(),
    }
}

/// Parses the records of one file, appending pixels and labels.
pub fn parse_records(path: &Path, bytes: &[u8], v: Variant, pixels: &mut Vec<u8>, labels: &mut Vec<usize>) -> Result<()> {
    let rec = v.record_len();
    if bytes.is_empty() || !bytes.len().is_multiple_of(rec) {
        return Err(Error::data(
            path,
            format!(
                "{} bytes is not a whole number of {rec}-byte {} records ({} full records and {} extra bytes); truncated or wrong format?",
                bytes.len(),
                v.name(),
                bytes.len() / rec,
                bytes.len() % rec
            ),
        ));
    }
    for (k, r) in bytes.chunks_exact(rec).enumerate() {
        let label = r[rec - PIXELS - 1] as usize; // CIFAR-100: the fine label
        if label >= v.classes() {
            return Err(Error::data(path, format!("record {k}: label {label}; expected 0..{}", v.classes() - 1)));
        }
        labels.push(label);
        pixels.extend_from_slice(&r[rec - PIXELS..]);
    }
    Ok(())
}

pub fn load_train(root: &Path, v: Variant) -> Result<Dataset> {
    let dir = resolve_root(root, v)?;
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for f in v.train_files() {
        let p = dir.join(f);
        let bytes = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
        parse_records(&p, &bytes, v, &mut pixels, &mut labels)?;
    }
    Ok(Dataset { name: v.name().to_string(), class_names: class_names(&dir, v), channels: 3, size: 32, pixels, labels, resembles: Vec::new() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_file_names_sizes() {
        let (mut px, mut lb) = (Vec::new(), Vec::new());
        let bytes = vec![0u8; 3073 * 2 + 5];
        let e = parse_records(Path::new("data_batch_1.bin"), &bytes, Variant::Cifar10, &mut px, &mut lb).unwrap_err().to_string();
        assert!(e.contains("data_batch_1.bin") && e.contains("3073-byte") && e.contains("5 extra"), "{e}");
    }

    #[test]
    fn cifar100_reads_fine_label() {
        let mut rec = vec![0u8; 3074];
        rec[0] = 3; // coarse
        rec[1] = 42; // fine
        rec[2] = 200; // first red pixel
        let (mut px, mut lb) = (Vec::new(), Vec::new());
        parse_records(Path::new("train.bin"), &rec, Variant::Cifar100, &mut px, &mut lb).unwrap();
        assert_eq!(lb, vec![42]);
        assert_eq!(px[0], 200);
        assert_eq!(px.len(), 3072);
    }
}
