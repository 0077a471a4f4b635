//! The lab's panels: each draws from the lab's state and store and pushes commands.

mod compare;
mod controls;
pub(crate) mod grids;
mod latent;
mod losses;
mod scrubber;
mod transfer;

pub(crate) use compare::compare;
pub(crate) use controls::controls;
pub(crate) use grids::grids;
pub(crate) use latent::latent;
pub(crate) use losses::losses;
pub(crate) use scrubber::scrubber;
pub(crate) use transfer::transfer;

/// A distinct colour per index (runs, loss terms).
pub(crate) fn colour(i: usize) -> egui::Color32 {
    const P: [egui::Color32; 8] = [
        egui::Color32::from_rgb(86, 156, 214),
        egui::Color32::from_rgb(230, 126, 34),
        egui::Color32::from_rgb(46, 204, 113),
        egui::Color32::from_rgb(231, 76, 60),
        egui::Color32::from_rgb(155, 89, 182),
        egui::Color32::from_rgb(241, 196, 15),
        egui::Color32::from_rgb(26, 188, 156),
        egui::Color32::from_rgb(149, 165, 166),
    ];
    P[i % P.len()]
}

/// A class's colour (the same as in `ltlab analyze latents` PNGs).
pub(crate) fn class_colour(c: usize) -> egui::Color32 {
    let [r, g, b] = ltlab_types::class_colour(c);
    egui::Color32::from_rgb(r, g, b)
}

/// A background job's progress bar; with `cancel`, its Cancel button beside it.
pub(crate) fn job_progress(j: &crate::store::JobView, width: f32, cancel: bool, ui: &mut egui::Ui, commands: &mut Vec<crate::lab::UiCommand>) {
    ui.horizontal(|ui| {
        ui.add(egui::ProgressBar::new(j.progress).text(format!("{} {:.0} %", j.label, 100.0 * j.progress)).desired_width(width));
        if cancel && ui.button("Cancel").clicked() {
            commands.push(crate::lab::UiCommand::CancelJob(j.id));
        }
    });
}

/// `k` 8-bit images (channels × size × size) side by side as one RGBA image.
pub(crate) fn planar_rgba(imgs: &[u8], k: usize, channels: usize, size: usize) -> egui::ColorImage {
    let plane = size * size;
    let mut rgba = vec![0u8; k * plane * 4];
    for i in 0..k {
        let im = &imgs[i * channels * plane..(i + 1) * channels * plane];
        for y in 0..size {
            for x in 0..size {
                let px = |ch: usize| im[ch * plane + y * size + x];
                let rgb = if channels == 1 { [px(0); 3] } else { [px(0), px(1), px(2)] };
                let o = 4 * (y * k * size + i * size + x);
                rgba[o..o + 3].copy_from_slice(&rgb);
                rgba[o + 3] = 255;
            }
        }
    }
    egui::ColorImage::from_rgba_unmultiplied([k * size, size], &rgba)
}

#[cfg(test)]
mod tests {
    #[test]
    fn planar_images_side_by_side() {
        // Two grey 1 × 1 images, then one RGB 2 × 2 image (planes R, G, B).
        let grey = super::planar_rgba(&[10, 200], 2, 1, 1);
        assert_eq!((grey.size, grey.pixels.iter().map(|c| c.to_array()).collect::<Vec<_>>()), ([2, 1], vec![[10, 10, 10, 255], [200, 200, 200, 255]]));
        let rgb = super::planar_rgba(&[1, 2, 3, 4, 11, 12, 13, 14, 21, 22, 23, 24], 1, 3, 2);
        assert_eq!(rgb.pixels[3].to_array(), [4, 14, 24, 255]);
    }
}
