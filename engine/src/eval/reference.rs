//! Features of the real balanced data, computed by ltlab once per (dataset, feature network)
//! and cached by the dataset's fingerprint and the network file's digest.

use super::features::{Extractor, Images};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::geometry::Features;
use crate::ops::FastBackend;
use crate::weights::file::{read_tensors, write_tensors};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

const FORMAT: &str = "ltlab-reference-features-1";

/// Real features with their classes.
#[derive(Debug, Clone, PartialEq)]
pub struct Labelled {
    pub features: Features,
    pub labels: Vec<usize>,
}

/// First 16 hex digits of the SHA-256 of a file.
pub fn file_digest(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect())
}

/// The cache file name of `data`'s features under the network in `network_file`.
pub fn cache_name(extractor_key: &str, network_digest: &str) -> String {
    format!("reference-{extractor_key}-{network_digest}.safetensors")
}

fn read_cached(path: &Path, fingerprint: &str) -> Option<Labelled> {
    let (meta, tensors) = read_tensors(path).ok()?;
    if meta.get("format").map(String::as_str) != Some(FORMAT) || meta.get("dataset").map(String::as_str) != Some(fingerprint) {
        return None;
    }
    let get = |k: &str| tensors.iter().find(|t| t.0 == k);
    let (_, fs, fd) = get("features")?;
    let (_, _, ld) = get("labels")?;
    let features = Features::new(fs[0], fs[1], fd.clone()).ok()?;
    (ld.len() == features.n).then(|| Labelled { features, labels: ld.iter().map(|&v| v as usize).collect() })
}

/// The real reference features of `data`: read from the first of `dirs` that holds them, or
/// computed and written to the first writable one. Returns them, the cache file, and whether
/// they came from the cache.
pub fn reference_features<B: FastBackend>(
    extractor: &Extractor<B>,
    data: &Dataset,
    dirs: &[PathBuf],
    batch: usize,
    device: &B::Device,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Labelled, PathBuf, bool)> {
    let name = cache_name(extractor.key(), &file_digest(extractor.file())?);
    let fingerprint = data.fingerprint();
    for d in dirs {
        let p = d.join(&name);
        if let Some(r) = read_cached(&p, &fingerprint) {
            return Ok((r, p, true));
        }
    }
    let all: Vec<usize> = (0..data.len()).collect();
    let mut features = Vec::new();
    // A slice at a time so that the host copy of the images stays small.
    const SLICE: usize = 4096;
    for part in all.chunks(SLICE) {
        let images = Images::from_dataset(data, part);
        let done = part[0];
        let out = extractor.extract(&images, batch, device, &mut |k, _| progress(done + k, data.len()))?;
        features.extend(out.features.data);
    }
    let d = features.len() / data.len().max(1);
    let labelled = Labelled { features: Features::new(data.len(), d, features)?, labels: data.labels.clone() };
    let dir = super::features::writable_dir(dirs)?;
    let path = dir.join(&name);
    let tensors = vec![
        ("features".to_string(), vec![labelled.features.n, d], labelled.features.data.clone()),
        ("labels".to_string(), vec![data.len()], data.labels.iter().map(|&y| y as f32).collect()),
    ];
    let meta = HashMap::from([("format".to_string(), FORMAT.to_string()), ("dataset".to_string(), fingerprint), ("features".to_string(), extractor.label())]);
    write_tensors(&path, &tensors, meta)?;
    Ok((labelled, path, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_features_are_found_only_for_their_dataset() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(cache_name("domain", "abc"));
        let tensors = vec![("features".to_string(), vec![2, 3], vec![1.0f32; 6]), ("labels".to_string(), vec![2], vec![0.0, 4.0])];
        let meta = HashMap::from([("format".to_string(), FORMAT.to_string()), ("dataset".to_string(), "fp1".to_string())]);
        write_tensors(&p, &tensors, meta).unwrap();
        let r = read_cached(&p, "fp1").unwrap();
        assert_eq!((r.features.n, r.features.d, r.labels.clone()), (2, 3, vec![0, 4]));
        assert!(read_cached(&p, "fp2").is_none());
        std::fs::write(&p, b"garbage").unwrap();
        assert!(read_cached(&p, "fp1").is_none());
        assert_eq!(file_digest(&p).unwrap().len(), 16);
    }
}
