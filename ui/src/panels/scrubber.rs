//! The global step scrubber: one slider over the checkpoint and grid steps of the selected
//! runs; ← / → jump between them; "follow" tracks the newest step.

use crate::lab::Lab;

pub(crate) fn scrubber(lab: &mut Lab, ui: &mut egui::Ui) {
    let marks = lab.marks();
    ui.horizontal(|ui| {
        ui.strong("step");
        let max = marks.last().copied().unwrap_or(0);
        let mut step = lab.scrub_step();
        let slider = ui.add_enabled(max > 0, egui::Slider::new(&mut step, 0..=max.max(1)).text("scrub (arrow keys)"));
        if slider.changed() {
            // Snap to the nearest mark so that every panel has something at that step.
            let snapped = marks.iter().min_by_key(|&&m| m.abs_diff(step)).copied().unwrap_or(step);
            lab.state.scrub = Some(snapped);
        }
        let mut follow = lab.state.scrub.is_none();
        if ui.checkbox(&mut follow, "follow newest").changed() {
            lab.state.scrub = if follow { None } else { Some(lab.scrub_step()) };
        }
        ui.label(format!("showing step {}", lab.scrub_step()));
        if let Some(n) = &lab.notice {
            ui.weak(n);
        }
        if let Some((p50, p95, max)) = lab.frame_stats() {
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                ui.small(format!("frame CPU {p50:.1} ms median, {p95:.1} ms p95, {max:.1} ms max"));
            });
        }
    });
}
