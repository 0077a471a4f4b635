//! Image grids as PNG: rows = classes (head at the top), columns = images.

use crate::error::{Error, Result, write_atomic};

/// Writes a grid of images given in [−1, 1] as N×C×S×S floats, `rows[r]` listing the image
/// indices of row r. A bar left of each row shows its class count on a log scale.
pub fn write_png(path: &std::path::Path, images: &[f32], channels: usize, size: usize, rows: &[Vec<usize>], counts: &[usize]) -> Result<()> {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let pad = 1;
    let bar = size.max(8);
    let width = bar + pad + cols * (size + pad);
    let height = rows.len() * (size + pad) + pad;
    let mut img = image::RgbImage::from_pixel(width as u32, height as u32, image::Rgb([24, 24, 28]));
    let max_count = counts.iter().copied().max().unwrap_or(1).max(2) as f64;
    let plane = size * size;
    for (r, row) in rows.iter().enumerate() {
        let y0 = pad + r * (size + pad);
        if let Some(&count) = counts.get(r) {
            let len = ((count.max(1) as f64).ln() / max_count.ln() * (bar - 2) as f64).round() as usize;
            for y in y0 + size / 3..y0 + 2 * size / 3 {
                for x in 1..1 + len.min(bar - 2) {
                    img.put_pixel(x as u32, y as u32, image::Rgb([120, 170, 230]));
                }
            }
        }
        for (c, &i) in row.iter().enumerate() {
            let x0 = bar + pad + c * (size + pad);
            let im = &images[i * channels * plane..(i + 1) * channels * plane];
            for y in 0..size {
                for x in 0..size {
                    let px = |ch: usize| (((im[ch * plane + y * size + x] + 1.0) * 127.5).round().clamp(0.0, 255.0)) as u8;
                    let rgb = if channels == 1 { [px(0); 3] } else { [px(0), px(1), px(2)] };
                    img.put_pixel((x0 + x) as u32, (y0 + y) as u32, image::Rgb(rgb));
                }
            }
        }
    }
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png).map_err(|e| Error::data(path, format!("PNG encoding failed: {e}")))?;
    write_atomic(path, &bytes)
}

/// Class order for grids: by count, largest first (ties by class index).
pub fn head_first(counts: &[usize]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..counts.len()).collect();
    order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
    order
}
