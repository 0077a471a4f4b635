//! An image folder: one sub-folder per class (sorted by name), images resized to the model size.

use super::Dataset;
use crate::error::{Error, Result};
use std::path::Path;

const EXTENSIONS: &[&str] = &["png", "jpg", "jpeg"];

/// Images for evaluation: a folder with one sub-folder per class (labelled), or a flat folder
/// of images (one class, `unlabelled`). `size`: side length, default the first image's width.
/// Returns the images and whether they carry classes.
pub fn load_for_eval(root: &Path, size: Option<usize>) -> Result<(Dataset, bool)> {
    let flat = images_in(root)?;
    let size = match size {
        Some(s) => s,
        None => {
            let first = match flat.first() {
                Some(f) => f.clone(),
                None => first_in_subfolders(root)?,
            };
            image::image_dimensions(&first).map_err(|e| Error::data(&first, format!("cannot read image size: {e}")))?.0 as usize
        }
    };
    if flat.is_empty() {
        return Ok((load(root, size)?, true));
    }
    let mut pixels = Vec::new();
    for f in &flat {
        push_image(f, size, &mut pixels)?;
    }
    let ds = Dataset {
        name: format!("folder:{}", root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()),
        class_names: vec!["unlabelled".into()],
        channels: 3,
        size,
        pixels,
        labels: vec![0; flat.len()],
        resembles: Vec::new(),
    };
    Ok((ds, false))
}

fn first_in_subfolders(root: &Path) -> Result<std::path::PathBuf> {
    let mut dirs: Vec<_> = std::fs::read_dir(root).map_err(|e| Error::io(root, e))?.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    for d in dirs {
        if let Some(f) = images_in(&d)?.into_iter().next() {
            return Ok(f);
        }
    }
    Err(Error::data(root, "no .png/.jpg images in the folder or its sub-folders"))
}

/// The images directly inside `dir`, sorted by name.
fn images_in(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    if !dir.is_dir() {
        return Err(Error::data(dir, "does not exist or is not a folder"));
    }
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().and_then(|x| x.to_str()).is_some_and(|x| EXTENSIONS.contains(&x.to_ascii_lowercase().as_str())))
        .collect();
    files.sort();
    Ok(files)
}

fn push_image(f: &Path, size: usize, pixels: &mut Vec<u8>) -> Result<()> {
    let img = image::open(f)
        .map_err(|e| Error::data(f, format!("cannot decode image: {e}")))?
        .resize_exact(size as u32, size as u32, image::imageops::FilterType::Triangle)
        .to_rgb8();
    // HWC → CHW planes.
    for ch in 0..3 {
        pixels.extend(img.pixels().map(|p| p.0[ch]));
    }
    Ok(())
}

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
        let files = images_in(&dir)?;
        if files.is_empty() {
            return Err(Error::data(&dir, "class folder has no .png/.jpg images"));
        }
        for f in files {
            push_image(&f, size, &mut pixels)?;
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
