//! The top bar: the global step scrubber (one slider over the checkpoint and grid steps of the
//! selected runs; ← / → jump between them; "follow" tracks the newest step), the host's last
//! notice and the frame times.

use super::ViewCtx;
use std::collections::VecDeque;

#[derive(Default)]
pub(crate) struct Scrubber {
    /// The last thing the host reported done (an export written).
    pub notice: Option<String>,
    pub frame_times: FrameTimes,
}

impl Scrubber {
    /// `scrub` is the persisted position (`None` follows the newest step).
    pub fn ui(&mut self, scrub: &mut Option<u64>, ctx: &ViewCtx, ui: &mut egui::Ui) {
        let marks = &ctx.marks;
        ui.horizontal(|ui| {
            ui.strong("step");
            let max = marks.last().copied().unwrap_or(0);
            let mut step = ctx.step_of(*scrub);
            let slider = ui.add_enabled(max > 0, egui::Slider::new(&mut step, 0..=max.max(1)).text("scrub (arrow keys)"));
            if slider.changed() {
                // Snap to the nearest mark so that every panel has something at that step.
                let snapped = marks.iter().min_by_key(|&&m| m.abs_diff(step)).copied().unwrap_or(step);
                *scrub = Some(snapped);
            }
            let mut follow = scrub.is_none();
            if ui.checkbox(&mut follow, "follow newest").changed() {
                *scrub = if follow { None } else { Some(ctx.step_of(*scrub)) };
            }
            ui.label(format!("showing step {}", ctx.step_of(*scrub)));
            if let Some(n) = &self.notice {
                ui.weak(n);
            }
            if let Some((p50, p95, max)) = self.frame_times.stats() {
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    ui.small(format!("frame CPU {p50:.1} ms median, {p95:.1} ms p95, {max:.1} ms max"));
                });
            }
        });
    }
}

/// CPU time of the last frames in ms (layout, tessellation, paint submission), as the host
/// measures it.
#[derive(Default)]
pub(crate) struct FrameTimes(VecDeque<f32>);

impl FrameTimes {
    /// Records one frame (the last 240 are kept).
    pub fn record(&mut self, ms: f32) {
        if self.0.len() == 240 {
            self.0.pop_front();
        }
        self.0.push_back(ms);
    }

    /// (median, 95th percentile, max) of the recorded frames.
    pub fn stats(&self) -> Option<(f32, f32, f32)> {
        let mut v: Vec<f32> = self.0.iter().copied().collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f32::total_cmp);
        let at = |q: f32| v[((v.len() - 1) as f32 * q).round() as usize];
        Some((at(0.5), at(0.95), v[v.len() - 1]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_times_keep_the_last_240() {
        let mut f = FrameTimes::default();
        assert_eq!(f.stats(), None);
        // 1..=300 ms: the first 60 fall out, leaving 61..=300.
        for ms in 1..=300 {
            f.record(ms as f32);
        }
        assert_eq!(f.stats(), Some((181.0, 288.0, 300.0)));
    }
}
