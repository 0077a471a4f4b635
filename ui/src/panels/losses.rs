//! Loss curves: every logged term of every selected run, smoothed (debiased EMA over the whole
//! series) with the raw series faint behind it; log axis; hover shows values.

use crate::lab::Lab;
use crate::smooth::debiased_ema;
use egui_plot::{Line, Plot, PlotPoints, VLine};

pub(crate) fn losses(lab: &mut Lab, ui: &mut egui::Ui) {
    ui.horizontal(|ui| {
        ui.strong("loss");
        ui.add(egui::Slider::new(&mut lab.state.smoothing, 0.0..=0.999).text("smoothing"));
        ui.checkbox(&mut lab.state.log_y, "log10 y");
        ui.checkbox(&mut lab.state.show_raw, "raw");
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
