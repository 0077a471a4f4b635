//! The export menu: a PNG of the central view or the whole window (from a screenshot the lab
//! asks egui for), every plot the view drew as SVG or CSV, every table as CSV, Markdown or LaTeX.

use crate::command::{ExportData, UiCommand};
use crate::export::{Figure, Table};
use std::sync::{Arc, Mutex};

pub(crate) struct ExportMenu {
    /// The plots and tables of the last frame's view (the menu is drawn before the view).
    pub shown: (Vec<Figure>, Vec<Table>),
    /// Where the central view was drawn, for its PNG.
    pub view_rect: egui::Rect,
    /// A screenshot asked for: the region to keep and its file name.
    pending_shot: Option<(egui::Rect, String)>,
    /// Where the integration puts the screenshot (it may call back from another thread).
    screenshot: Arc<Mutex<Option<Arc<egui::ColorImage>>>>,
}

impl Default for ExportMenu {
    fn default() -> Self {
        Self { shown: Default::default(), view_rect: egui::Rect::NOTHING, pending_shot: None, screenshot: Default::default() }
    }
}

impl ExportMenu {
    /// The menu's contents; files are named `DIR/PREFIX-NAME-stepSTEP.EXT` after the view's
    /// export prefix and the scrubbed step.
    pub fn ui(&mut self, export_dir: &mut String, prefix: &str, step: u64, ui: &mut egui::Ui) -> Vec<UiCommand> {
        ui.horizontal(|ui| {
            let label = ui.label("folder");
            ui.text_edit_singleline(export_dir).labelled_by(label.id);
        });
        let path = |name: &str, ext: &str| export_path(export_dir, prefix, name, step, ext);
        for (what, rect) in [("PNG of this view", self.view_rect), ("PNG of the window", ui.ctx().content_rect())] {
            if ui.button(what).clicked() {
                let name = if what.ends_with("view") { "view" } else { "window" };
                self.pending_shot = Some((rect, path(name, "png")));
                let (slot, ctx) = (self.screenshot.clone(), ui.ctx().clone());
                ui.ctx().request_screenshot(move |image| {
                    *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(image);
                    ctx.request_repaint();
                });
                ui.close();
            }
        }
        let mut out = Vec::new();
        for f in &self.shown.0 {
            ui.horizontal(|ui| {
                ui.label(&f.name);
                if ui.small_button("SVG").clicked() {
                    out.push((path(&f.name, "svg"), f.svg()));
                }
                if ui.small_button("CSV").clicked() {
                    out.push((path(&f.name, "csv"), f.csv()));
                }
            });
        }
        for t in &self.shown.1 {
            ui.horizontal(|ui| {
                ui.label(&t.name);
                for (fmt, ext) in [("CSV", "csv"), ("Markdown", "md"), ("LaTeX", "tex")] {
                    if ui.small_button(fmt).clicked() {
                        let text = match ext {
                            "csv" => t.csv(),
                            "md" => t.markdown(),
                            _ => t.latex(),
                        };
                        out.push((path(&t.name, ext), text));
                    }
                }
            });
        }
        if !out.is_empty() {
            ui.close();
        }
        out.into_iter().map(|(path, text)| UiCommand::Export { path, data: ExportData::Text(text) }).collect()
    }

    /// Turns a screenshot the menu asked for into a PNG export of its region.
    pub fn take_screenshot(&mut self, ui: &egui::Ui) -> Option<UiCommand> {
        let image = self.screenshot.lock().unwrap_or_else(|e| e.into_inner()).take()?;
        let (rect, path) = self.pending_shot.take()?;
        Some(UiCommand::Export { path, data: crop(&image, rect, ui.ctx().pixels_per_point()) })
    }
}

/// `DIR/PREFIX-NAME-stepSTEP.EXT`, the stem reduced to characters safe in a file name.
fn export_path(dir: &str, prefix: &str, name: &str, step: u64, ext: &str) -> String {
    let stem: String = format!("{prefix}-{name}-step{step}").chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    format!("{}/{stem}.{ext}", dir.trim_end_matches('/'))
}

/// The region `rect` (points) of a screenshot (pixels) as RGBA.
fn crop(image: &egui::ColorImage, rect: egui::Rect, pixels_per_point: f32) -> ExportData {
    let [w, h] = image.size;
    let px = |v: f32, max: usize| ((v * pixels_per_point).round().max(0.0) as usize).min(max);
    let (x0, x1, y0, y1) = (px(rect.min.x, w), px(rect.max.x, w), px(rect.min.y, h), px(rect.max.y, h));
    let mut rgba = Vec::with_capacity((x1 - x0) * (y1 - y0) * 4);
    for y in y0..y1 {
        for c in &image.pixels[y * w + x0..y * w + x1] {
            rgba.extend_from_slice(&c.to_srgba_unmultiplied());
        }
    }
    ExportData::Image { width: x1.saturating_sub(x0), height: y1.saturating_sub(y0), rgba }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_takes_the_region_in_pixels() {
        // 4 × 2 pixels, each pixel's red channel its index; 2 pixels per point.
        let pixels = (0..8).map(|i| egui::Color32::from_rgb(i as u8, 0, 0)).collect();
        let image = egui::ColorImage { size: [4, 2], source_size: egui::vec2(4.0, 2.0), pixels };
        let rect = egui::Rect::from_min_max(egui::pos2(0.5, 0.0), egui::pos2(1.5, 1.0));
        match crop(&image, rect, 2.0) {
            ExportData::Image { width, height, rgba } => {
                assert_eq!((width, height), (2, 2));
                let reds: Vec<u8> = rgba.chunks(4).map(|p| p[0]).collect();
                assert_eq!(reds, [1, 2, 5, 6]);
            }
            other => panic!("{other:?}"),
        }
        // A region past the edge is clipped to the image.
        let rect = egui::Rect::from_min_max(egui::pos2(1.0, 0.0), egui::pos2(9.0, 9.0));
        assert!(matches!(crop(&image, rect, 2.0), ExportData::Image { width: 2, height: 2, .. }));
    }

    #[test]
    fn export_paths_name_view_plot_and_step() {
        assert_eq!(export_path("exports/", "latent", "latent-map-demo run", 250, "svg"), "exports/latent-latent-map-demo_run-step250.svg");
        assert_eq!(export_path("out", "compare", "metrics", 0, "tex"), "out/compare-metrics-step0.tex");
    }
}
