//! IDX files (MNIST, Fashion-MNIST, KMNIST), gzip-compressed or raw.

use super::Dataset;
use crate::error::{Error, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

pub const IMAGES_MAGIC: u32 = 0x0000_0803;
pub const LABELS_MAGIC: u32 = 0x0000_0801;

pub const FASHION_MNIST_CLASSES: &[&str] = &["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
pub const MNIST_CLASSES: &[&str] = &["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// Finds `stem` or `stem.gz` in `root`.
fn find(root: &Path, stem: &str) -> Result<PathBuf> {
    if !root.is_dir() {
        return Err(Error::data(root, "dataset root does not exist or is not a folder"));
    }
    for name in [stem.to_string(), format!("{stem}.gz")] {
        let p = root.join(&name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(Error::data(root, format!("no `{stem}` or `{stem}.gz` in this folder")))
}

/// The most a gzip-compressed IDX file may unpack to (Fashion-MNIST's images are 47 MB): a small
/// file that unpacks to more is refused, not unpacked into memory.
pub const MAX_UNPACKED: u64 = 1 << 30;

/// Reads a whole file, gunzipping it if it starts with the gzip magic.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    read_maybe_gz_at_most(path, MAX_UNPACKED)
}

fn read_maybe_gz_at_most(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|e| Error::data(path, format!("gzip stream is corrupt or truncated: {e}")))?;
        if out.len() as u64 > limit {
            return Err(Error::data(path, format!("unpacks to more than {} bytes; not an IDX file of a dataset ltlab reads", limit)));
        }
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parses an IDX image file: returns (count, rows, cols, pixels).
pub fn parse_images(path: &Path, b: &[u8]) -> Result<(usize, usize, usize, Vec<u8>)> {
    if b.len() < 16 {
        return Err(Error::data(path, format!("{} bytes; an IDX image file has a 16-byte header", b.len())));
    }
    let magic = be_u32(b, 0);
    if magic != IMAGES_MAGIC {
        return Err(Error::data(path, format!("magic 0x{magic:08x}; expected 0x{IMAGES_MAGIC:08x} (IDX images)")));
    }
    let (n, r, c) = (be_u32(b, 4) as usize, be_u32(b, 8) as usize, be_u32(b, 12) as usize);
    let want = n.checked_mul(r).and_then(|v| v.checked_mul(c)).and_then(|v| v.checked_add(16));
    if want != Some(b.len()) {
        let want = want.map_or("more than memory holds".to_string(), |w| w.to_string());
        return Err(Error::data(path, format!("{} bytes; expected {want} for {n} images of {r}×{c} (truncated or wrong file)", b.len())));
    }
    if r != c {
        return Err(Error::data(path, format!("images are {r}×{c}; only square images are supported")));
    }
    Ok((n, r, c, b[16..].to_vec()))
}

pub fn parse_labels(path: &Path, b: &[u8]) -> Result<Vec<u8>> {
    if b.len() < 8 {
        return Err(Error::data(path, format!("{} bytes; an IDX label file has an 8-byte header", b.len())));
    }
    let magic = be_u32(b, 0);
    if magic != LABELS_MAGIC {
        return Err(Error::data(path, format!("magic 0x{magic:08x}; expected 0x{LABELS_MAGIC:08x} (IDX labels)")));
    }
    let n = be_u32(b, 4) as usize;
    if b.len() != 8usize.saturating_add(n) {
        return Err(Error::data(path, format!("{} bytes; expected {} for {n} labels (truncated?)", b.len(), 8 + n)));
    }
    Ok(b[8..].to_vec())
}

/// Loads `train-images-idx3-ubyte[.gz]` and `train-labels-idx1-ubyte[.gz]` from `root`.
pub fn load_train(root: &Path, name: &str, classes: &[&str]) -> Result<Dataset> {
    let ip = find(root, "train-images-idx3-ubyte")?;
    let lp = find(root, "train-labels-idx1-ubyte")?;
    let (n, size, _, pixels) = parse_images(&ip, &read_maybe_gz(&ip)?)?;
    let labels = parse_labels(&lp, &read_maybe_gz(&lp)?)?;
    if labels.len() != n {
        return Err(Error::data(&lp, format!("{} labels but {} has {n} images", labels.len(), ip.display())));
    }
    if let Some(&bad) = labels.iter().find(|&&y| y as usize >= classes.len()) {
        return Err(Error::data(&lp, format!("label {bad}; expected 0..{}", classes.len() - 1)));
    }
    Ok(Dataset {
        name: name.to_string(),
        class_names: classes.iter().map(|s| s.to_string()).collect(),
        channels: 1,
        size,
        pixels,
        labels: labels.into_iter().map(usize::from).collect(),
        resembles: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images_file(n: u32, side: u32) -> Vec<u8> {
        let mut b = Vec::new();
        for v in [IMAGES_MAGIC, n, side, side] {
            b.extend(v.to_be_bytes());
        }
        b.extend((0..n * side * side).map(|i| i as u8));
        b
    }

    #[test]
    fn parses_and_rejects() {
        let p = Path::new("x");
        let (n, r, _, px) = parse_images(p, &images_file(2, 3)).unwrap();
        assert_eq!((n, r, px.len()), (2, 3, 18));
        let mut trunc = images_file(2, 3);
        trunc.pop();
        let e = parse_images(p, &trunc).unwrap_err().to_string();
        assert!(e.contains("33 bytes; expected 34"), "{e}");
        let mut bad = images_file(1, 2);
        bad[3] = 0x01;
        assert!(parse_images(p, &bad).unwrap_err().to_string().contains("magic 0x00000801"));
    }

    /// Headers whose sizes overflow, and gzip streams that unpack past the limit, are errors
    /// that name the file: nothing is allocated from them.
    #[test]
    fn oversized_headers_and_gzip_bombs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("train-images-idx3-ubyte");
        let mut h = vec![0, 0, 8, 3];
        h.extend([0xff; 12]);
        let e = parse_images(&p, &h).unwrap_err().to_string();
        assert!(e.contains("train-images-idx3-ubyte") && e.contains("more than memory holds"), "{e}");
        let e = parse_labels(&p, &[0, 0, 8, 1, 0xff, 0xff, 0xff, 0xff]).unwrap_err().to_string();
        assert!(e.contains("expected"), "{e}");
        // 2 MiB of zeros packs to a few KiB; with a 1 MiB limit it is refused.
        let gz = dir.path().join("bomb.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut enc, &vec![0u8; 2 << 20]).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        assert!(std::fs::metadata(&gz).unwrap().len() < 64 << 10);
        let e = read_maybe_gz_at_most(&gz, 1 << 20).unwrap_err().to_string();
        assert!(e.contains("bomb.gz") && e.contains("unpacks to more than"), "{e}");
        assert_eq!(read_maybe_gz_at_most(&gz, 4 << 20).unwrap().len(), 2 << 20);
    }
}
