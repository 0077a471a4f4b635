//! Loss curves: every logged term of every selected run, smoothed (debiased EMA over the whole
//! series) with the raw series faint behind it; log axis; hover shows values. Beside them the
//! base loss per diffusion-time bucket over the steps up to the scrubbed one.

use crate::lab::Lab;
use crate::smooth::debiased_ema;
use crate::export::{Figure, Series, Style};
use ltlab_types::T_BUCKETS;

pub(crate) fn losses(lab: &mut Lab, ui: &mut egui::Ui) {
    ui.horizontal(|ui| {
        ui.strong("loss");
        ui.add(egui::Slider::new(&mut lab.state.smoothing, 0.0..=0.999).text("smoothing"));
        ui.checkbox(&mut lab.state.log_y, "log10 y");
        ui.checkbox(&mut lab.state.show_raw, "raw");
        ui.add(egui::DragValue::new(&mut lab.state.t_window).range(1..=100_000).prefix("loss by t over last ").suffix(" steps"));
    });
    let mut terms: Vec<String> = Vec::new();
    for r in lab.runs.iter().filter(|r| lab.selected.contains(&r.id)) {
        for t in r.loss_terms() {
            if !terms.contains(&t) {
                terms.push(t);
            }
        }
    }
    ui.horizontal_wrapped(|ui| {
        for t in &terms {
            let mut on = !lab.state.hidden_terms.contains(t);
            if ui.checkbox(&mut on, t.as_str()).changed() {
                if on { lab.state.hidden_terms.remove(t) } else { lab.state.hidden_terms.insert(t.clone()) };
            }
        }
    });
    let log = lab.state.log_y;
    let y = move |v: f64| if log { v.max(1e-12).log10() } else { v };
    let scrub = lab.scrub_step() as f64;
    let h = ui.available_height();
    let w = ui.available_width();
    let curves = curves(lab, &terms, &y, scrub);
    let by_t = by_t(lab, &y);
    ui.horizontal_top(|ui| {
        ui.allocate_ui(egui::vec2(w * 0.68, h), |ui| curves.draw("losses", ui, |p| p, |_| ()));
        ui.allocate_ui(egui::vec2(w * 0.3, h), |ui| by_t.draw("loss-by-t", ui, |p| p, |_| ()));
    });
    lab.figures.extend([curves, by_t]);
}

/// Every visible term of every selected run: smoothed, and raw (faint) if asked.
fn curves(lab: &Lab, terms: &[String], y: &dyn Fn(f64) -> f64, scrub: f64) -> Figure {
    let mut f = Figure::new("loss-curves", "step", if lab.state.log_y { "log10 loss" } else { "loss" });
    f.marker_x = Some(scrub);
    let mut k = 0;
    for r in lab.runs.iter().filter(|r| lab.selected.contains(&r.id)) {
        for t in terms.iter().filter(|t| !lab.state.hidden_terms.contains(*t)) {
            let (xs, vs) = r.series(t);
            if xs.is_empty() {
                continue;
            }
            let c = super::colour(k);
            k += 1;
            if lab.state.show_raw {
                f.series.push(Series::line("", c, xs.iter().zip(&vs).map(|(&x, &v)| [x, y(v)]).collect()).style(Style::Faint));
            }
            let smooth = debiased_ema(&vs, lab.state.smoothing);
            f.series.push(Series::line(format!("{} · {t}", r.name), c, xs.iter().zip(&smooth).map(|(&x, &v)| [x, y(v)]).collect()));
        }
    }
    f
}

/// Mean base loss per t-bucket (bucket centres on t/T) at the scrubbed step, one line per run;
/// the first window of the run dashed behind it, for how far each t has come.
fn by_t(lab: &Lab, y: &dyn Fn(f64) -> f64) -> Figure {
    let step = lab.scrub_step();
    let window = lab.state.t_window.max(1);
    let x = |k: usize| (k as f64 + 0.5) / T_BUCKETS as f64;
    let mut f = Figure::new("loss-by-t", "t / T", if lab.state.log_y { "log10 loss by t" } else { "loss by t" });
    f.include = vec![[0.0, f64::NAN], [1.0, f64::NAN]];
    let profile = |v: Vec<Option<f64>>| v.iter().enumerate().filter_map(|(b, v)| v.map(|v| [x(b), y(v)])).collect();
    for (k, r) in lab.runs.iter().filter(|r| lab.selected.contains(&r.id)).enumerate() {
        let c = super::colour(k);
        let first = r.records.first().map_or(0, |f| f.step) + window - 1;
        if first < step {
            f.series.push(Series::line(format!("{} · steps ..{first}", r.name), c.gamma_multiply(0.5), profile(r.loss_by_t_at(first, window))).style(Style::Dashed));
        }
        f.series.push(Series::line(format!("{} · step {step}", r.name), c, profile(r.loss_by_t_at(step, window))));
    }
    f
}
