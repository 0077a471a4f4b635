//! The lab's panels. Each owns its runtime state (textures, hover) in its own struct, takes its
//! persisted settings from `LabState` by `&mut`, reads the run store through a [`ViewCtx`] and
//! returns what it wants done (host commands, the figures and tables it drew) rather than
//! reaching into the lab.

pub(crate) mod compare;
pub(crate) mod controls;
pub(crate) mod export_menu;
pub(crate) mod grids;
pub(crate) mod latent;
pub(crate) mod losses;
pub(crate) mod scrubber;
pub(crate) mod training;
pub(crate) mod transfer;

use crate::command::UiCommand;
use crate::export::{Figure, Table};
use crate::store::HostCommand;
use crate::store::{JobKind, JobView, RunData, RunId};
use std::collections::{BTreeMap, BTreeSet};

/// The run store and the scrubbed step as every panel reads them, for one frame.
pub(crate) struct ViewCtx<'a> {
    pub runs: &'a [RunData],
    /// Runs shown in the plots and grids.
    pub selected: &'a BTreeSet<RunId>,
    /// The host's background jobs by id.
    pub jobs: &'a BTreeMap<u64, JobView>,
    /// Steps the scrubber can stop at: checkpoints, grids and last steps of the selected runs.
    pub marks: Vec<u64>,
    /// The step every panel shows.
    pub scrub: u64,
}

impl<'a> ViewCtx<'a> {
    /// `scrub` is the persisted scrubber position (`None` follows the newest mark).
    pub fn new(runs: &'a [RunData], selected: &'a BTreeSet<RunId>, jobs: &'a BTreeMap<u64, JobView>, scrub: Option<u64>) -> Self {
        let mut marks = BTreeSet::new();
        for r in runs.iter().filter(|r| selected.contains(&r.header.id)) {
            marks.extend(r.marks());
            marks.insert(r.last_step());
        }
        let marks: Vec<u64> = marks.into_iter().collect();
        let mut ctx = Self { runs, selected, jobs, marks, scrub: 0 };
        ctx.scrub = ctx.step_of(scrub);
        ctx
    }

    /// The step a scrubber position shows (the scrubber moves within a frame).
    pub fn step_of(&self, scrub: Option<u64>) -> u64 {
        scrub.unwrap_or_else(|| self.marks.last().copied().unwrap_or(0))
    }

    pub fn selected_runs(&self) -> impl Iterator<Item = &'a RunData> + '_ {
        self.runs.iter().filter(|r| self.selected.contains(&r.header.id))
    }

    /// The run's job of this kind, if one is running.
    pub fn job(&self, run: RunId, kind: JobKind) -> Option<&'a JobView> {
        self.jobs.values().find(|j| j.run == run && j.kind == kind)
    }
}

/// What a central view returns each frame: commands for the host, and the plots and tables it
/// drew (the export menu offers them next frame).
#[derive(Default)]
pub(crate) struct ViewOutput {
    pub commands: Vec<UiCommand>,
    pub figures: Vec<Figure>,
    pub tables: Vec<Table>,
}

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
pub(crate) fn job_progress(j: &JobView, width: f32, cancel: bool, ui: &mut egui::Ui, commands: &mut Vec<UiCommand>) {
    ui.horizontal(|ui| {
        ui.add(egui::ProgressBar::new(j.progress).text(format!("{} {:.0} %", j.label, 100.0 * j.progress)).desired_width(width));
        if cancel && ui.button("Cancel").clicked() {
            commands.push(UiCommand::Host(HostCommand::CancelJob(j.id)));
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
    use super::*;

    #[test]
    fn the_context_marks_the_selected_runs_and_follows_the_newest() {
        let mut a = RunData::new(RunId(1), "a", "/runs/a");
        a.header.checkpoints.extend([100, 200]);
        let mut b = RunData::new(RunId(2), "b", "/runs/b");
        b.header.checkpoints.insert(300);
        let runs = [a, b];
        let selected = BTreeSet::from([RunId(1)]);
        let job = JobView { id: 5, run: RunId(1), label: String::new(), progress: 0.0, preview: None, kind: JobKind::Sample };
        let jobs = BTreeMap::from([(5, job)]);
        // Run b is not selected: its checkpoint is no mark; a's last step (0, no records) is.
        let ctx = ViewCtx::new(&runs, &selected, &jobs, None);
        assert_eq!((ctx.marks.as_slice(), ctx.scrub), ([0, 100, 200].as_slice(), 200));
        assert_eq!(ctx.selected_runs().map(|r| r.header.name.as_str()).collect::<Vec<_>>(), ["a"]);
        assert_eq!(ViewCtx::new(&runs, &selected, &jobs, Some(100)).scrub, 100);
        assert_eq!(ctx.job(RunId(1), JobKind::Sample).map(|j| j.id), Some(5));
        assert!(ctx.job(RunId(1), JobKind::Latent).is_none());
    }

    #[test]
    fn planar_images_side_by_side() {
        // Two grey 1 × 1 images, then one RGB 2 × 2 image (planes R, G, B).
        let grey = planar_rgba(&[10, 200], 2, 1, 1);
        assert_eq!((grey.size, grey.pixels.iter().map(|c| c.to_array()).collect::<Vec<_>>()), ([2, 1], vec![[10, 10, 10, 255], [200, 200, 200, 255]]));
        let rgb = planar_rgba(&[1, 2, 3, 4, 11, 12, 13, 14, 21, 22, 23, 24], 1, 3, 2);
        assert_eq!(rgb.pixels[3].to_array(), [4, 14, 24, 255]);
    }
}
