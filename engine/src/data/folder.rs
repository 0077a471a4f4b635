//! An image folder: one sub-folder per class (sorted by name), images resized to the model size.

use super::Dataset;
use crate::error::{Error, Result};
use std::path::Path;

const EXTENSIONS: &[&str] = &["png", "jpg", "jpeg"];

pub fn load(root: &Path, size: usize) -> Result<Dataset> {
    if !root.is_dir() {
        return Err(Error::data(root, "dataset root does not exist or is not a folder"));
    }
    let mut classes: Vec<_> = std::fs::read_dir(root)
        .map_err(|e| Error::io(root, e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    classes.sort();
    if classes.is_empty() {
        return Err(Error::data(root, "no class sub-folders; expected one sub-folder of images per class"));
    }
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for (c, name) in classes.iter().enumerate() {
        let dir = root.join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .map_err(|e| Error::io(&dir, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.extension()
                    .and_then(|x| x.to_str())
                    .is_some_and(|x| EXTENSIONS.contains(&x.to_ascii_lowercase().as_str()))
            })
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(Error::data(&dir, "class folder has no .png/.jpg images"));
        }
        for f in files {
            let img = image::open(&f)
                .map_err(|e| Error::data(&f, format!("cannot decode image: {e}")))?
                .resize_exact(size as u32, size as u32, image::imageops::FilterType::Triangle)
                .to_rgb8();
            // HWC → CHW planes.
            for ch in 0..3 {
                pixels.extend(img.pixels().map(|p| p.0[ch]));
            }
            labels.push(c);
        }
    }
    Ok(Dataset {
        name: format!("folder:{}", root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()),
        class_names: classes,
        channels: 3,
        size,
        pixels,
        labels,
        resembles: Vec::new(),
    })
}
