//! Compare: every selected run side by side (no cap) at the scrubbed step — the config keys that
//! differ, whether they share classes and seed, metric overlays from `ltlab eval` (FID, KID,
//! precision/recall, Many/Medium/Few, per-class FID), FID and bottleneck purity over steps, and
//! the sample grids.

use crate::lab::Lab;
use crate::store::{EvalSummary, LatentSettings, RunData, config_diff};
use egui_plot::{Legend, Line, Plot, PlotPoints, Points, VLine};

pub(crate) fn compare(lab: &mut Lab, ui: &mut egui::Ui) {
    let step = lab.scrub_step();
    let latent = lab.state.latent.clone();
    let Lab { runs: all, selected, textures, .. } = lab;
    let runs: Vec<&RunData> = all.iter().filter(|r| selected.contains(&r.id)).collect();
    if runs.len() < 2 {
        ui.label("Select two or more runs on the left to compare them.");
        return;
    }
    egui::ScrollArea::vertical().id_salt("compare").show(ui, |ui| {
        same_footing(&runs, ui);
        ui.heading("config: keys that differ");
        let texts: Vec<&str> = runs.iter().map(|r| r.config_text.as_str()).collect();
        let diff = config_diff(&texts);
        egui::Grid::new("config-diff").striped(true).show(ui, |ui| {
            ui.strong("key");
            for r in &runs {
                ui.strong(&r.name);
            }
            ui.end_row();
            for (key, vals) in &diff {
                ui.label(key);
                for v in vals {
                    ui.monospace(v.as_deref().unwrap_or("—"));
                }
                ui.end_row();
            }
        });
        if diff.is_empty() {
            ui.label("(the configs are identical)");
        }

        ui.separator();
        let evals: Vec<Option<&EvalSummary>> = runs.iter().map(|r| r.evals.iter().filter(|e| e.step <= step).max_by_key(|e| e.step)).collect();
        ui.heading(format!("metrics at step {step} (newest `ltlab eval` at or before it)"));
        if evals.iter().all(Option::is_none) {
            ui.label("No evaluations yet: run `ltlab eval --run DIR --per-class` on these runs.");
        } else {
            metrics_table(&runs, &evals, ui);
            class_fid_plot(&runs, &evals, ui);
        }
        over_steps(&latent, &runs, step, ui);
        ui.separator();
        ui.heading("samples");
        super::grids::grid_row(&runs, step, textures, ui);
    });
}

/// Warns when the runs do not share dataset, classes or seed (the comparison is then unfair).
fn same_footing(runs: &[&RunData], ui: &mut egui::Ui) {
    let fingerprints: Vec<Option<&str>> = runs.iter().map(|r| r.dataset.as_ref().map(|d| d.fingerprint.as_str())).collect();
    if fingerprints.iter().any(Option::is_none) {
        ui.label("The training data of some runs is not recorded yet (they have not started).");
    } else if fingerprints.iter().any(|f| f != &fingerprints[0]) {
        ui.colored_label(egui::Color32::from_rgb(230, 126, 34), "The runs train on different data (dataset fingerprints differ): per-class numbers are not comparable.");
    } else {
        ui.label("Same training data and classes in every run.");
    }
}

fn fmt(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{v:.3}"))
}

fn metrics_table(runs: &[&RunData], evals: &[Option<&EvalSummary>], ui: &mut egui::Ui) {
    let labels: Vec<&str> = evals.iter().flatten().map(|e| e.label.as_str()).collect();
    if labels.iter().any(|l| *l != labels[0]) {
        ui.colored_label(egui::Color32::from_rgb(230, 126, 34), "The evaluations differ in features, sampler, ω or sample count (see the last row).");
    }
    let split_names: Vec<String> = evals.iter().flatten().flat_map(|e| e.splits.iter().map(|s| s.0.clone())).fold(Vec::new(), |mut v, n| {
        if !v.contains(&n) {
            v.push(n);
        }
        v
    });
    egui::Grid::new("compare-metrics").striped(true).show(ui, |ui| {
        ui.strong("");
        for r in runs {
            ui.strong(&r.name);
        }
        ui.end_row();
        type Get = fn(&EvalSummary) -> Option<f64>;
        let rows: [(&str, Get); 5] = [
            ("step", |e| Some(e.step as f64)),
            ("FID", |e| Some(e.fid)),
            ("KID", |e| Some(e.kid)),
            ("precision", |e| Some(e.precision)),
            ("recall", |e| Some(e.recall)),
        ];
        for (name, get) in rows {
            ui.label(name);
            for e in evals {
                ui.label(e.map_or("—".into(), |e| if name == "step" { format!("{}", e.step) } else { fmt(get(e)) }));
            }
            ui.end_row();
        }
        for s in &split_names {
            for (what, pick) in [("FID", 0), ("mean class FID", 1)] {
                ui.label(format!("{s} {what}"));
                for e in evals {
                    let v = e.and_then(|e| e.splits.iter().find(|x| &x.0 == s)).and_then(|x| if pick == 0 { x.1 } else { x.2 });
                    ui.label(fmt(v));
                }
                ui.end_row();
            }
        }
        ui.label("evaluated with");
        for e in evals {
            ui.small(e.map_or("—", |e| e.label.as_str()));
        }
        ui.end_row();
    });
}

/// Per-class FID of every run, classes ordered from head to tail (by training count).
fn class_fid_plot(runs: &[&RunData], evals: &[Option<&EvalSummary>], ui: &mut egui::Ui) {
    if evals.iter().flatten().all(|e| e.class_fid.iter().all(Option::is_none)) {
        ui.label("(per-class FID needs `ltlab eval --per-class`)");
        return;
    }
    // Rank of every class by training count (head first), from the first run that knows it.
    let counts = runs.iter().find_map(|r| r.dataset.as_ref().map(|d| d.counts.clone())).unwrap_or_default();
    let mut order: Vec<usize> = (0..counts.len()).collect();
    order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
    let rank = |c: usize| order.iter().position(|&o| o == c).unwrap_or(c) as f64;
    let x_label = if counts.is_empty() { "class" } else { "class rank by training count (head first)" };
    Plot::new("class-fid").legend(Legend::default()).height(220.0).x_axis_label(x_label).y_axis_label("FID").show(ui, |plot| {
        for (k, (r, e)) in runs.iter().zip(evals).enumerate() {
            let Some(e) = e else { continue };
            let mut pts: Vec<[f64; 2]> = e.class_fid.iter().enumerate().filter_map(|(c, v)| v.map(|v| [rank(c), v])).collect();
            pts.sort_by(|a, b| a[0].total_cmp(&b[0]));
            let c = super::colour(k);
            plot.line(Line::new(r.name.clone(), PlotPoints::from(pts.clone())).color(c));
            plot.points(Points::new("", PlotPoints::from(pts)).color(c).radius(3.0));
        }
    });
}

/// FID over evaluated steps and mean bottleneck purity over checkpoints, one line per run.
fn over_steps(s: &LatentSettings, runs: &[&RunData], step: u64, ui: &mut egui::Ui) {
    let any_fid = runs.iter().any(|r| r.evals.len() > 1);
    let any_purity = runs.iter().any(|r| r.entanglement.get(&(s.t, s.conditional)).is_some_and(|l| !l.is_empty()));
    if !any_fid && !any_purity {
        return;
    }
    ui.horizontal_top(|ui| {
        let w = ui.available_width() / 2.0 - 8.0;
        if any_fid {
            Plot::new("fid-steps").legend(Legend::default()).width(w).height(200.0).x_axis_label("step").y_axis_label("FID").show(ui, |plot| {
                for (k, r) in runs.iter().enumerate() {
                    let mut e: Vec<&EvalSummary> = r.evals.iter().collect();
                    e.sort_by_key(|e| e.step);
                    let pts: PlotPoints = e.iter().map(|e| [e.step as f64, e.fid]).collect();
                    plot.line(Line::new(r.name.clone(), pts).color(super::colour(k)));
                }
                plot.vline(VLine::new("scrub", step as f64).color(egui::Color32::GRAY));
            });
        }
        if any_purity {
            Plot::new("purity-steps").legend(Legend::default()).width(w).height(200.0).x_axis_label("step").y_axis_label(format!("mean k-NN purity, t = {}", s.t)).show(ui, |plot| {
                for (k, r) in runs.iter().enumerate() {
                    let Some(list) = r.entanglement.get(&(s.t, s.conditional)) else { continue };
                    let pts: PlotPoints = list.iter().map(|e| [e.step as f64, e.purity.iter().sum::<f64>() / e.purity.len().max(1) as f64]).collect();
                    plot.line(Line::new(r.name.clone(), pts).color(super::colour(k)));
                }
                plot.vline(VLine::new("scrub", step as f64).color(egui::Color32::GRAY));
            });
        }
    });
}
