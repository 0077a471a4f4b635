//! Loss curves: every logged term of every selected run, smoothed (debiased EMA over the whole
//! series) with the raw series faint behind it; log axis; hover shows values. Beside them the
//! base loss per diffusion-time bucket over the steps up to the scrubbed one.

use crate::lab::Lab;
use crate::smooth::debiased_ema;
use egui_plot::{Line, Plot, PlotPoints, VLine};
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
    ui.horizontal_top(|ui| {
        ui.allocate_ui(egui::vec2(w * 0.68, h), |ui| curves(lab, &terms, &y, scrub, ui));
        ui.allocate_ui(egui::vec2(w * 0.3, h), |ui| by_t(lab, &y, ui));
    });
}

fn curves(lab: &Lab, terms: &[String], y: &dyn Fn(f64) -> f64, scrub: f64, ui: &mut egui::Ui) {
    let log = lab.state.log_y;
    Plot::new("losses").legend(egui_plot::Legend::default()).y_axis_label(if log { "log10 loss" } else { "loss" }).x_axis_label("step").show(ui, |plot| {
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
                    let raw: PlotPoints = xs.iter().zip(&vs).map(|(&x, &v)| [x, y(v)]).collect();
                    plot.line(Line::new("", raw).color(c.gamma_multiply(0.25)).allow_hover(false));
                }
                let smooth = debiased_ema(&vs, lab.state.smoothing);
                let pts: PlotPoints = xs.iter().zip(&smooth).map(|(&x, &v)| [x, y(v)]).collect();
                plot.line(Line::new(format!("{} · {t}", r.name), pts).color(c));
            }
        }
        plot.vline(VLine::new("scrub", scrub).color(egui::Color32::GRAY));
    });
}

/// Mean base loss per t-bucket (bucket centres on t/T) at the scrubbed step, one line per run;
/// the first window of the run faint behind it, for how far each t has come.
fn by_t(lab: &Lab, y: &dyn Fn(f64) -> f64, ui: &mut egui::Ui) {
    let step = lab.scrub_step();
    let window = lab.state.t_window.max(1);
    let x = |k: usize| (k as f64 + 0.5) / T_BUCKETS as f64;
    Plot::new("loss-by-t").include_x(0.0).include_x(1.0).legend(egui_plot::Legend::default()).x_axis_label("t / T").y_axis_label("loss by t").show(ui, |plot| {
        for (k, r) in lab.runs.iter().filter(|r| lab.selected.contains(&r.id)).enumerate() {
            let c = super::colour(k);
            let first = r.records.first().map_or(0, |f| f.step) + window - 1;
            if first < step {
                let pts: PlotPoints = r.loss_by_t_at(first, window).iter().enumerate().filter_map(|(b, v)| v.map(|v| [x(b), y(v)])).collect();
                plot.line(Line::new(format!("{} · steps ..{first}", r.name), pts).color(c.gamma_multiply(0.3)).style(egui_plot::LineStyle::dashed_dense()));
            }
            let pts: PlotPoints = r.loss_by_t_at(step, window).iter().enumerate().filter_map(|(b, v)| v.map(|v| [x(b), y(v)])).collect();
            plot.line(Line::new(format!("{} · step {step}", r.name), pts).color(c));
        }
    });
}
