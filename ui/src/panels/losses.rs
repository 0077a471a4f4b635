//! Loss curves: every logged term of every selected run, smoothed (debiased EMA over the whole
//! series, extended as steps arrive) with the raw series faint behind it; log axis; hover shows
//! the values at the nearest step. Long series are drawn decimated to the plot's width (the min
//! and max of each pixel column; every point once zoomed in). Beside them the base loss per
//! diffusion-time bucket over the steps up to the scrubbed one.

use super::ViewCtx;
use crate::export::{Figure, Series, Style};
use crate::series::{Smoothed, decimate, nearest};
use crate::store::RunId;
use ltlab_types::T_BUCKETS;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

/// How the loss plots draw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LossSettings {
    /// β of the debiased EMA of the loss curves.
    pub smoothing: f64,
    pub log_y: bool,
    pub show_raw: bool,
    /// Steps averaged (ending at the scrubbed step) in the loss-per-t plot.
    pub t_window: u64,
    /// Loss terms hidden from the plot.
    pub hidden_terms: BTreeSet<String>,
    /// One legend entry and colour per (method stack, term), for a study's many runs; clicking
    /// an entry hides or shows the whole group.
    pub by_method: bool,
}

impl Default for LossSettings {
    fn default() -> Self {
        Self { smoothing: 0.9, log_y: true, show_raw: true, t_window: 200, hidden_terms: BTreeSet::new(), by_method: false }
    }
}

/// The loss plot's runtime state: each series' smoothing, its drawn points (redone only when
/// the series grew or the view changed), and what the plot showed last frame.
#[derive(Default)]
pub(crate) struct LossCurves {
    smoothed: HashMap<(RunId, String), Smoothed>,
    /// By (run, term, smoothed?).
    drawn: HashMap<(RunId, String, bool), Drawn>,
    /// The x range shown and the plot's width in points, last frame.
    view: Option<([f64; 2], f32)>,
}

/// A series' drawn points and what they were drawn for.
struct Drawn {
    key: DrawnKey,
    points: Vec<[f64; 2]>,
}

/// What a series' drawn points depend on.
#[derive(Debug, Clone, Copy, PartialEq)]
struct DrawnKey {
    len: usize,
    range: [f64; 2],
    columns: usize,
    log_y: bool,
    smoothing: f64,
}

/// The two loss plots; returns them for the export menu.
pub(crate) fn losses(s: &mut LossSettings, state: &mut LossCurves, ctx: &ViewCtx, ui: &mut egui::Ui) -> [Figure; 2] {
    ui.horizontal(|ui| {
        ui.strong("loss");
        ui.add(egui::Slider::new(&mut s.smoothing, 0.0..=0.999).text("smoothing"));
        ui.checkbox(&mut s.log_y, "log y");
        ui.checkbox(&mut s.show_raw, "raw");
        ui.checkbox(&mut s.by_method, "legend by method")
            .on_hover_text("one entry and colour per method stack and term; click an entry to hide or show the group");
        ui.add(egui::DragValue::new(&mut s.t_window).range(1..=100_000).prefix("loss by t over last ").suffix(" steps"));
    });
    let mut terms: Vec<String> = Vec::new();
    for r in ctx.selected_runs() {
        for t in r.loss_terms() {
            if !terms.contains(&t) {
                terms.push(t);
            }
        }
    }
    ui.horizontal_wrapped(|ui| {
        for t in &terms {
            let mut on = !s.hidden_terms.contains(t);
            if ui.checkbox(&mut on, t.as_str()).changed() {
                if on {
                    s.hidden_terms.remove(t)
                } else {
                    s.hidden_terms.insert(t.clone())
                };
            }
        }
    });
    let log = s.log_y;
    let y = move |v: f64| if log { v.max(1e-12).log10() } else { v };
    let h = ui.available_height();
    let w = ui.available_width();
    let curves = curves(s, state, ctx, &terms, &y);
    let by_t = by_t(s, ctx, &y);
    ui.horizontal_top(|ui| {
        ui.allocate_ui(egui::vec2(w * 0.68, h), |ui| {
            let shown = curves.draw("losses", ui, |p| p, |pu| pu.pointer_coordinate());
            let bounds = shown.transform.bounds();
            state.view = Some(([bounds.min()[0], bounds.max()[0]], shown.response.rect.width()));
            if let Some(at) = shown.inner.filter(|_| shown.response.hovered()) {
                hover_readout(s, state, ctx, &terms, at.x, ui);
            }
        });
        ui.allocate_ui(egui::vec2(w * 0.3, h), |ui| by_t.draw("loss-by-t", ui, |p| p, |_| ()));
    });
    [curves, by_t]
}

/// The values of every drawn series at the logged step nearest the pointer.
fn hover_readout(s: &LossSettings, state: &LossCurves, ctx: &ViewCtx, terms: &[String], x: f64, ui: &mut egui::Ui) {
    let mut lines = Vec::new();
    for r in ctx.selected_runs() {
        let Some(i) = nearest(r.metrics.steps(), x) else { continue };
        for t in terms.iter().filter(|t| !s.hidden_terms.contains(*t)) {
            let Some(raw) = r.metrics.term(t) else { continue };
            let smooth = state.smoothed.get(&(r.header.id, t.clone())).and_then(|sm| sm.values.get(i)).copied().unwrap_or(f32::NAN);
            if raw[i].is_finite() {
                lines.push(format!("{} · {t} at step {}: {:.5} (smoothed {:.5})", r.header.name, r.metrics.steps()[i], raw[i], smooth));
            }
        }
    }
    if !lines.is_empty() {
        egui::Tooltip::always_open(ui.ctx().clone(), ui.layer_id(), ui.scope_id().with("loss-readout"), egui::PopupAnchor::Pointer).show(|ui| {
            for l in lines {
                ui.label(l);
            }
        });
    }
}

/// Every visible term of every selected run: smoothed, and raw (faint) if asked, decimated to
/// last frame's view (the whole run on the first frame).
fn curves(s: &LossSettings, state: &mut LossCurves, ctx: &ViewCtx, terms: &[String], y: &dyn Fn(f64) -> f64) -> Figure {
    let mut f = Figure::new("loss-curves", "step", "loss").log_y(s.log_y);
    f.marker_x = Some(ctx.scrub as f64);
    let last = ctx.selected_runs().map(|r| r.last_step()).max().unwrap_or(1) as f64;
    let (range, width) = state.view.unwrap_or(([0.0, last], 600.0));
    // A view that still ends at the newest step follows it as the run grows.
    let range = if range[1] >= last * 0.98 { [range[0], range[1].max(last)] } else { range };
    let columns = width.max(50.0) as usize;
    let (mut k, mut groups) = (0, Vec::<String>::new());
    for r in ctx.selected_runs() {
        let steps = r.metrics.steps();
        for t in terms.iter().filter(|t| !s.hidden_terms.contains(*t)) {
            let Some(raw) = r.metrics.term(t) else { continue };
            // egui_plot merges the legend entries of same-named lines: a method's runs share one.
            let name = if s.by_method { format!("{} · {t}", r.header.methods) } else { format!("{} · {t}", r.header.name) };
            let c = if s.by_method {
                let g = groups.iter().position(|g| *g == name).unwrap_or_else(|| {
                    groups.push(name.clone());
                    groups.len() - 1
                });
                super::colour(g)
            } else {
                k += 1;
                super::colour(k - 1)
            };
            let key = DrawnKey { len: raw.len(), range, columns, log_y: s.log_y, smoothing: s.smoothing };
            let mut drawn = |smoothed: bool, values: &[f32]| -> Vec<[f64; 2]> {
                let entry = state
                    .drawn
                    .entry((r.header.id, t.clone(), smoothed))
                    .or_insert_with(|| Drawn { key: DrawnKey { len: usize::MAX, ..key }, points: Vec::new() });
                if entry.key != key {
                    *entry = Drawn { key, points: decimate(steps, values, range, columns).into_iter().map(|[x, v]| [x, y(v)]).collect() };
                }
                entry.points.clone()
            };
            if s.show_raw {
                f.series.push(Series::line("", c, drawn(false, raw)).style(Style::Faint));
            }
            let smooth = state.smoothed.entry((r.header.id, t.clone())).or_insert_with(|| Smoothed::new(s.smoothing));
            smooth.update(raw, s.smoothing);
            let smooth = &smooth.values;
            f.series.push(Series::line(name, c, drawn(true, smooth)));
        }
    }
    f
}

/// Mean base loss per t-bucket (bucket centres on t/T) at the scrubbed step, one line per run;
/// the first window of the run dashed behind it, for how far each t has come.
fn by_t(s: &LossSettings, ctx: &ViewCtx, y: &dyn Fn(f64) -> f64) -> Figure {
    let step = ctx.scrub;
    let window = s.t_window.max(1);
    let x = |k: usize| (k as f64 + 0.5) / T_BUCKETS as f64;
    let mut f = Figure::new("loss-by-t", "t / T", "loss by t").log_y(s.log_y);
    f.include = vec![[0.0, f64::NAN], [1.0, f64::NAN]];
    let profile = |v: Vec<Option<f64>>| v.iter().enumerate().filter_map(|(b, v)| v.map(|v| [x(b), y(v)])).collect();
    for (k, r) in ctx.selected_runs().enumerate() {
        let c = super::colour(k);
        let first = r.metrics.first_step().unwrap_or(0) + window - 1;
        if first < step {
            f.series.push(
                Series::line(format!("{} · steps ..{first}", r.header.name), c.gamma_multiply(0.5), profile(r.loss_by_t_at(first, window)))
                    .style(Style::Dashed),
            );
        }
        f.series.push(Series::line(format!("{} · step {step}", r.header.name), c, profile(r.loss_by_t_at(step, window))));
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RunData;
    use ltlab_types::StepRecord;
    use std::collections::BTreeMap;

    fn run(id: u64, name: &str, methods: &str) -> RunData {
        let mut r = RunData::new(RunId(id), name, format!("/runs/{name}"));
        r.header.methods = methods.into();
        for step in 1..=5 {
            r.metrics.push(&StepRecord {
                step,
                losses: [("mse".to_string(), 1.0 / step as f64), ("total".to_string(), 1.0 / step as f64)].into_iter().collect(),
                loss_by_t: vec![None; T_BUCKETS],
                lr: 1e-3,
                grad_norm: 1.0,
                images_per_s: 1.0,
                uncond_batch: false,
                loss_by_class: Vec::new(),
                transfers: None,
            });
        }
        r
    }

    /// By run, every run's terms have a name and colour of their own; by method, the runs of a
    /// method stack share one name (one legend entry) and one colour per term.
    #[test]
    fn legend_by_run_or_by_method() {
        let runs = vec![run(1, "a", "coral"), run(2, "b", "coral"), run(3, "c", "ddpm")];
        let selected = runs.iter().map(|r| r.header.id).collect();
        let jobs = BTreeMap::new();
        let ctx = ViewCtx::new(&runs, &selected, &jobs, None);
        let terms = vec!["mse".to_string()];
        let names = |by_method: bool| {
            let s = LossSettings { by_method, show_raw: false, ..Default::default() };
            let f = curves(&s, &mut LossCurves::default(), &ctx, &terms, &|v| v);
            f.series.iter().map(|x| (x.name.clone(), x.colour)).collect::<Vec<_>>()
        };
        let by_run = names(false);
        assert_eq!(by_run.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(), ["a · mse", "b · mse", "c · mse"]);
        assert!(by_run[0].1 != by_run[1].1 && by_run[1].1 != by_run[2].1);
        let by_method = names(true);
        assert_eq!(by_method.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(), ["coral · mse", "coral · mse", "ddpm · mse"]);
        assert!(by_method[0].1 == by_method[1].1 && by_method[1].1 != by_method[2].1);
    }
}
