//! An image folder: one sub-folder per class (sorted by name), images resized to the model size.

use super::Dataset;
use crate::error::{Error, Result};
use std::path::Path;

const EXTENSIONS: &[&str] = &["png", "jpg", "jpeg"];

/// The largest side an image of a folder may have: its header is checked before any pixel is
/// decoded, so a small file that claims a huge image (a decompression bomb) is refused.
pub const MAX_IMAGE_SIDE: u32 = 8192;

/// The largest side images are read at for evaluation.
pub const MAX_EVAL_SIZE: usize = 1024;

/// An image's size from its header, refused past [`MAX_IMAGE_SIDE`].
fn checked_dimensions(f: &Path) -> Result<(u32, u32)> {
    let (w, h) = image::image_dimensions(f).map_err(|e| Error::data(f, format!("cannot decode image: {e}")))?;
    if w == 0 || h == 0 || w > MAX_IMAGE_SIDE || h > MAX_IMAGE_SIDE {
        return Err(Error::data(f, format!("header says {w} × {h} pixels; images may be at most {MAX_IMAGE_SIDE} × {MAX_IMAGE_SIDE}")));
    }
    Ok((w, h))
}

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
            checked_dimensions(&first)?.0 as usize
        }
    };
    if !(1..=MAX_EVAL_SIZE).contains(&size) {
        return Err(Error::option("image-size", format!("{size}: images are read at 1 to {MAX_EVAL_SIZE} pixels a side")));
    }
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
    checked_dimensions(f)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A PNG whose header claims `w` × `h` pixels, with almost no data: a decompression bomb.
    fn png_claiming(w: u32, h: u32) -> Vec<u8> {
        let chunk = |kind: &[u8], data: &[u8]| {
            let mut crc = flate2::Crc::new();
            crc.update(kind);
            crc.update(data);
            let mut c = (data.len() as u32).to_be_bytes().to_vec();
            c.extend_from_slice(kind);
            c.extend_from_slice(data);
            c.extend(crc.sum().to_be_bytes());
            c
        };
        let mut ihdr = w.to_be_bytes().to_vec();
        ihdr.extend(h.to_be_bytes());
        ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB, no interlace
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut z, &[0u8; 1024]).unwrap();
        let mut png = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
        png.extend(chunk(b"IHDR", &ihdr));
        png.extend(chunk(b"IDAT", &z.finish().unwrap()));
        png.extend(chunk(b"IEND", &[]));
        png
    }

    #[test]
    fn a_decompression_bomb_is_refused_from_its_header() {
        let dir = tempfile::tempdir().unwrap();
        let class = dir.path().join("cat");
        std::fs::create_dir(&class).unwrap();
        let bomb = class.join("bomb.png");
        std::fs::write(&bomb, png_claiming(100_000, 100_000)).unwrap();
        assert!(std::fs::metadata(&bomb).unwrap().len() < 1024, "a small file");
        assert_eq!(image::image_dimensions(&bomb).unwrap(), (100_000, 100_000), "the header says so");
        // Evaluation reading the folder, at its own size or a given one; training's loader.
        for e in [load_for_eval(dir.path(), None).unwrap_err(), load_for_eval(dir.path(), Some(32)).unwrap_err(), load(dir.path(), 32).unwrap_err()] {
            let e = e.to_string();
            assert!(e.contains("bomb.png") && e.contains("100000 × 100000") && e.contains("at most 8192"), "{e}");
        }
        let e = load_for_eval(dir.path(), Some(5000)).unwrap_err().to_string();
        assert!(e.contains("image-size") && e.contains("1024"), "{e}");
    }
}
