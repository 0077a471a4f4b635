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
