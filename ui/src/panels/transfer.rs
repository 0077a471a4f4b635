//! OC's transfer view (SPEC §4.2): the probability that an anchor's target is swapped for
//! another image, over diffusion time t, overall and per class, for T2H / H2T / Full with the
//! batch size and sampler chosen here; the class→class matrix at one t as a heatmap; and for
//! runs trained with OC the swaps they actually made up to the scrubbed step.

use super::{ViewCtx, ViewOutput};
use crate::command::UiCommand;
use crate::export::{Figure, Series, Style, Table};
use crate::store::HostCommand;
use crate::store::{JobKind, RealisedSwaps, TransferSettings};
use ltlab_types::{BatchSampler, OcMode, T_BUCKETS, TransferAnalysis};

/// The batch samplers offered (the CLI takes any `brs:F`).
const SAMPLERS: [BatchSampler; 3] = [BatchSampler::Uniform, BatchSampler::Balanced, BatchSampler::Brs { f: 0.5 }];

/// No runtime state: the analyses live in the store, the job in the context.
#[derive(Default)]
pub(crate) struct TransferView;

impl TransferView {
    pub fn ui(&mut self, s: &mut TransferSettings, ctx: &ViewCtx, ui: &mut egui::Ui) -> ViewOutput {
        let mut out = ViewOutput::default();
        let step = ctx.scrub;
        ui.horizontal_wrapped(|ui| {
            egui::ComboBox::from_label("gate").selected_text(s.mode.name()).show_ui(ui, |ui| {
                for m in OcMode::ALL {
                    ui.selectable_value(&mut s.mode, m, m.name());
                }
            });
            egui::ComboBox::from_label("batch sampler").selected_text(s.sampler.label()).show_ui(ui, |ui| {
                for m in SAMPLERS {
                    ui.selectable_value(&mut s.sampler, m, m.label());
                }
            });
            ui.add(egui::DragValue::new(&mut s.batch).range(2..=4096).prefix("batch "));
            ui.add(egui::DragValue::new(&mut s.matrix_t).range(0..=999).prefix("matrix at t "));
        });
        let Some(run) = ctx.selected_runs().next() else {
            ui.label("Select a run on the left: the view uses its training data (and its logged swaps).");
            return out;
        };
        ui.label(format!("{} [{}]: training data of this run; P(t) needs no model", run.header.name, run.header.methods));
        let analysis = run.header.transfers.iter().rev().find(|a| s.matches(a));
        match ctx.job(run.header.id, JobKind::Transfer) {
            // Short: it runs to its end, no Cancel.
            Some(j) => super::job_progress(j, 260.0, false, ui, &mut out.commands),
            None => {
                if ui.button(if analysis.is_some() { "Recompute" } else { "Compute P(t)" }).clicked() {
                    out.commands.push(UiCommand::Host(HostCommand::Transfer { run: run.header.id, settings: s.clone() }));
                }
            }
        }
        let realised = run.realised_swaps(step);
        let names: Vec<String> = run.header.dataset.as_ref().map(|d| d.class_names.clone()).unwrap_or_default();
        let h = (ui.available_height() - 8.0).max(240.0);
        ui.horizontal_top(|ui| {
            let w = ui.available_width() * 0.55;
            ui.allocate_ui(egui::vec2(w, h), |ui| {
                ui.vertical(|ui| out.figures.push(p_of_t(analysis, realised.as_ref(), &names, ui)));
            });
            ui.vertical(|ui| {
                match analysis {
                    Some(a) => {
                        ui.strong(format!("class -> class at t = {} (row: anchor class; where its target comes from)", a.matrix_t));
                        let rows: Vec<Vec<Option<f64>>> =
                            a.matrix.iter().map(|r| r.as_ref().map_or(vec![None; a.matrix.len()], |r| r.iter().map(|&v| Some(v)).collect())).collect();
                        heatmap(ui, "predicted", &rows, &names);
                        out.tables.push(matrix_table(format!("class-matrix-t{}", a.matrix_t), &rows, &names));
                    }
                    None => {
                        ui.label("No P(t) with these settings yet.");
                    }
                }
                if let Some(sw) = &realised {
                    ui.separator();
                    ui.strong(format!("swaps made by {} up to step {step} (row: anchor class)", run.header.name));
                    let rows = realised_matrix(sw, names.len());
                    heatmap(ui, "realised", &rows, &names);
                    out.tables.push(matrix_table(format!("swaps-made-{}", run.header.name), &rows, &names));
                }
            });
        });
        out
    }
}

/// Predicted P(t) (overall thick, per class thin) and, for OC runs, the realised swap rate per
/// t bucket.
fn p_of_t(a: Option<&TransferAnalysis>, realised: Option<&RealisedSwaps>, names: &[String], ui: &mut egui::Ui) -> Figure {
    let mut fig = Figure::new("p-transfer", "diffusion time t", "P(transfer)");
    fig.include = vec![[f64::NAN, 0.0], [f64::NAN, 1.0]];
    if let Some(a) = a {
        let classes = a.per_class.first().map_or(0, Vec::len);
        for c in 0..classes {
            let pts = a.t.iter().zip(&a.per_class).filter_map(|(&t, row)| row[c].map(|p| [t as f64, p])).collect();
            let name = names.get(c).map_or(format!("{c}"), |n| format!("{c} {n}"));
            fig.series.push(Series::line(name, super::class_colour(c), pts).style(Style::Line { width: 1.0 }));
        }
        let pts = a.t.iter().zip(&a.p_transfer).map(|(&t, &p)| [t as f64, p]).collect();
        let white = if ui.visuals().dark_mode { egui::Color32::WHITE } else { egui::Color32::BLACK };
        fig.series.push(Series::line(format!("all anchors ({})", a.mode.name()), white, pts).style(Style::Line { width: 3.0 }));
    }
    if let Some(sw) = realised {
        let t_total = a.map_or(1000, |a| a.timesteps) as f64;
        let width = t_total / T_BUCKETS as f64;
        let pts = (0..T_BUCKETS)
            .filter(|&k| sw.samples_by_t[k] > 0)
            .map(|k| [(k as f64 + 0.5) * width, sw.swaps_by_t[k] as f64 / sw.samples_by_t[k] as f64])
            .collect();
        fig.series.push(Series::line("swaps made (per t bucket)", egui::Color32::from_rgb(255, 215, 0), pts).style(Style::Points { radius: 4.0 }));
    }
    fig.draw("p-transfer", ui, |p| p, |_| ());
    fig
}

/// A class→class matrix as a table: a row per anchor class, a column per target class.
fn matrix_table(name: String, rows: &[Vec<Option<f64>>], names: &[String]) -> Table {
    let label = |c: usize| names.get(c).map_or(c.to_string(), |n| format!("{c} {n}"));
    let header = std::iter::once("anchor \\ target".to_string()).chain((0..rows.len()).map(label)).collect();
    let rows = rows
        .iter()
        .enumerate()
        .map(|(a, r)| std::iter::once(label(a)).chain(r.iter().map(|v| v.map_or("—".into(), |v| format!("{v:.3}")))).collect())
        .collect();
    Table { name, header, rows }
}

/// Row-normalised class→class fractions of the realised swaps.
fn realised_matrix(sw: &RealisedSwaps, classes: usize) -> Vec<Vec<Option<f64>>> {
    let c = classes.max(sw.pairs.keys().map(|&(a, b)| a.max(b) + 1).max().unwrap_or(0));
    let mut m = vec![vec![0.0f64; c]; c];
    for (&(a, b), &n) in &sw.pairs {
        m[a][b] += n as f64;
    }
    m.into_iter()
        .map(|row| {
            let s: f64 = row.iter().sum();
            row.into_iter().map(|v| (s > 0.0).then(|| v / s)).collect()
        })
        .collect()
}

/// A C × C heatmap (dark → bright with the value in [0, 1]; grey where undefined), class
/// indices on the axes, the value and class names on hover.
fn heatmap(ui: &mut egui::Ui, id: &str, m: &[Vec<Option<f64>>], names: &[String]) {
    let c = m.len();
    if c == 0 {
        return;
    }
    let cell = ((ui.available_width().min(420.0) - 24.0) / c as f32).clamp(4.0, 36.0);
    let (rect, resp) = ui.allocate_exact_size(egui::vec2(24.0 + cell * c as f32, 16.0 + cell * c as f32), egui::Sense::hover());
    let p = ui.painter_at(rect);
    let origin = rect.min + egui::vec2(24.0, 16.0);
    let font = egui::FontId::monospace((cell * 0.5).clamp(8.0, 12.0));
    for (i, row) in m.iter().enumerate() {
        let text = ui.visuals().text_color();
        p.text(egui::pos2(rect.min.x + 12.0, origin.y + (i as f32 + 0.5) * cell), egui::Align2::CENTER_CENTER, i.to_string(), font.clone(), text);
        p.text(egui::pos2(origin.x + (i as f32 + 0.5) * cell, rect.min.y + 8.0), egui::Align2::CENTER_CENTER, i.to_string(), font.clone(), text);
        for j in 0..c {
            let r = egui::Rect::from_min_size(origin + egui::vec2(j as f32 * cell, i as f32 * cell), egui::vec2(cell, cell));
            p.rect_filled(r.shrink(0.5), 0.0, heat(row.get(j).copied().flatten()));
        }
    }
    colour_scale(ui, id, 24.0, cell * c as f32);
    if let Some(pos) = resp.hover_pos() {
        let (j, i) = (((pos.x - origin.x) / cell).floor(), ((pos.y - origin.y) / cell).floor());
        if i >= 0.0 && j >= 0.0 && (i as usize) < c && (j as usize) < c {
            let (i, j) = (i as usize, j as usize);
            let name = |k: usize| names.get(k).cloned().unwrap_or_else(|| k.to_string());
            let v = m[i].get(j).copied().flatten().map_or("—".to_string(), |v| format!("{v:.3}"));
            resp.on_hover_text(format!("{id}: {} -> {}: {v}", name(i), name(j)));
        }
    }
}

/// The heatmaps' colour scale under the matrix (`indent` px in, `width` wide): the ramp from 0 to
/// 1 with its values, and grey's meaning.
fn colour_scale(ui: &mut egui::Ui, id: &str, indent: f32, width: f32) {
    let width = width.max(120.0);
    let (rect, _) = ui.allocate_exact_size(egui::vec2(indent + width, 24.0), egui::Sense::hover());
    let p = ui.painter_at(rect);
    let bar = egui::Rect::from_min_size(rect.min + egui::vec2(indent, 2.0), egui::vec2(width, 8.0));
    const SLICES: usize = 64;
    for k in 0..SLICES {
        let x = bar.min.x + bar.width() * k as f32 / SLICES as f32;
        let slice = egui::Rect::from_min_max(egui::pos2(x, bar.min.y), egui::pos2(x + bar.width() / SLICES as f32 + 0.5, bar.max.y));
        p.rect_filled(slice, 0.0, heat(Some(k as f64 / (SLICES - 1) as f64)));
    }
    let font = egui::FontId::proportional(10.0);
    for v in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let x = bar.min.x + bar.width() * v as f32;
        p.line_segment([egui::pos2(x, bar.max.y), egui::pos2(x, bar.max.y + 3.0)], (1.0, ui.visuals().text_color()));
        p.text(egui::pos2(x, bar.max.y + 3.0), egui::Align2::CENTER_TOP, crate::export::significant(v), font.clone(), ui.visuals().text_color());
    }
    ui.small(format!("{id}: colour = share of the row's targets, from 0 to 1 (grey: none)"));
}

/// Viridis-like ramp from dark blue (0) through teal to yellow (1).
fn heat(v: Option<f64>) -> egui::Color32 {
    let Some(v) = v else { return egui::Color32::from_gray(60) };
    let v = v.clamp(0.0, 1.0) as f32;
    let stops = [(68.0, 1.0, 84.0), (59.0, 82.0, 139.0), (33.0, 145.0, 140.0), (94.0, 201.0, 98.0), (253.0, 231.0, 37.0)];
    let x = v * (stops.len() - 1) as f32;
    let k = (x.floor() as usize).min(stops.len() - 2);
    let f = x - k as f32;
    let (a, b) = (stops[k], stops[k + 1]);
    let mix = |p: f32, q: f32| (p + (q - p) * f) as u8;
    egui::Color32::from_rgb(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}
