//! Compare: every selected run side by side (no cap) at the scrubbed step — the config keys that
//! differ, whether they share classes and seed, metric overlays from `ltlab eval` (FID, KID,
//! precision/recall, Many/Medium/Few, per-class FID), FID and bottleneck purity over steps, and
//! the sample grids.

use super::grids::{GridTextures, grid_row};
use super::{ViewCtx, ViewOutput};
use crate::export::{Figure, Series, Style, Table};
use crate::store::{EvalSummary, LatentSettings, RunData, config_diff};

#[derive(Default)]
pub(crate) struct CompareView {
    pub grids: GridTextures,
}

impl CompareView {
    /// `latent` picks the entanglement measure of the purity plot (the latent view's settings).
    pub fn ui(&mut self, latent: &LatentSettings, ctx: &ViewCtx, ui: &mut egui::Ui) -> ViewOutput {
        let mut out = ViewOutput::default();
        let step = ctx.scrub;
        let runs: Vec<&RunData> = ctx.selected_runs().collect();
        if runs.len() < 2 {
            ui.label("Select two or more runs on the left to compare them.");
            return out;
        }
        egui::ScrollArea::vertical().id_salt("compare").show(ui, |ui| {
            same_footing(&runs, ui);
            ui.heading("config: keys that differ");
            let texts: Vec<&str> = runs.iter().map(|r| r.header.config_text.as_str()).collect();
            let diff = config_diff(&texts);
            let header = std::iter::once("key".to_string()).chain(runs.iter().map(|r| r.header.name.clone())).collect();
            let rows =
                diff.iter().map(|(key, vals)| std::iter::once(key.clone()).chain(vals.iter().map(|v| v.clone().unwrap_or("—".into()))).collect()).collect();
            let diff_table = Table { name: "config-diff".into(), header, rows };
            show_table("config-diff", &diff_table, ui);
            if diff.is_empty() {
                ui.label("(the configs are identical)");
            }
            out.tables.push(diff_table);

            ui.separator();
            let evals: Vec<Option<&EvalSummary>> = runs.iter().map(|r| r.header.evals.iter().filter(|e| e.step <= step).max_by_key(|e| e.step)).collect();
            ui.heading(format!("metrics at step {step} (newest `ltlab eval` at or before it)"));
            if evals.iter().all(Option::is_none) {
                ui.label("No evaluations yet: run `ltlab eval --run DIR --per-class` on these runs.");
            } else {
                let labels: Vec<&str> = evals.iter().flatten().map(|e| e.label.as_str()).collect();
                if labels.iter().any(|l| *l != labels[0]) {
                    ui.colored_label(
                        egui::Color32::from_rgb(230, 126, 34),
                        "The evaluations differ in features, sampler, ω or sample count (see the last row).",
                    );
                }
                let table = metrics_table(&runs, &evals);
                show_table("compare-metrics", &table, ui);
                out.tables.push(table);
                out.figures.extend(class_fid_plot(&runs, &evals, ui));
            }
            out.figures.extend(over_steps(latent, &runs, step, ui));
            ui.separator();
            ui.heading("samples");
            grid_row(&runs, step, &mut self.grids, ui);
        });
        out
    }
}

/// Warns when the runs do not share dataset, classes or seed (the comparison is then unfair).
fn same_footing(runs: &[&RunData], ui: &mut egui::Ui) {
    let fingerprints: Vec<Option<&str>> = runs.iter().map(|r| r.header.dataset.as_ref().map(|d| d.fingerprint.as_str())).collect();
    if fingerprints.iter().any(Option::is_none) {
        ui.label("The training data of some runs is not recorded yet (they have not started).");
    } else if fingerprints.iter().any(|f| f != &fingerprints[0]) {
        ui.colored_label(
            egui::Color32::from_rgb(230, 126, 34),
            "The runs train on different data (dataset fingerprints differ): per-class numbers are not comparable.",
        );
    } else {
        ui.label("Same training data and classes in every run.");
    }
}

fn fmt(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{v:.3}"))
}

/// FID, KID, precision/recall and the split FIDs of every run's eval, as one table.
fn metrics_table(runs: &[&RunData], evals: &[Option<&EvalSummary>]) -> Table {
    let split_names: Vec<String> = evals.iter().flatten().flat_map(|e| e.splits.iter().map(|s| s.0.clone())).fold(Vec::new(), |mut v, n| {
        if !v.contains(&n) {
            v.push(n);
        }
        v
    });
    let header = std::iter::once(String::new()).chain(runs.iter().map(|r| r.header.name.clone())).collect();
    let row = |name: String, get: &dyn Fn(&EvalSummary) -> String| {
        std::iter::once(name).chain(evals.iter().map(|e| e.map_or("—".into(), get))).collect::<Vec<String>>()
    };
    let mut rows = vec![
        row("step".into(), &|e| e.step.to_string()),
        row("FID".into(), &|e| fmt(Some(e.fid))),
        row("KID".into(), &|e| fmt(Some(e.kid))),
        row("precision".into(), &|e| fmt(Some(e.precision))),
        row("recall".into(), &|e| fmt(Some(e.recall))),
    ];
    for s in &split_names {
        let split = |e: &EvalSummary| e.splits.iter().find(|x| &x.0 == s).cloned();
        rows.push(row(format!("{s} FID"), &|e| fmt(split(e).and_then(|x| x.1))));
        rows.push(row(format!("{s} mean class FID"), &|e| fmt(split(e).and_then(|x| x.2))));
    }
    rows.push(row("evaluated with".into(), &|e| e.label.clone()));
    Table { name: "metrics".into(), header, rows }
}

/// A table as a striped grid, header in bold.
fn show_table(id: &str, t: &Table, ui: &mut egui::Ui) {
    egui::Grid::new(id).striped(true).show(ui, |ui| {
        for h in &t.header {
            ui.strong(h);
        }
        ui.end_row();
        for r in &t.rows {
            for v in r {
                ui.label(v);
            }
            ui.end_row();
        }
    });
}

/// Per-class FID of every run, classes ordered from head to tail (by training count).
fn class_fid_plot(runs: &[&RunData], evals: &[Option<&EvalSummary>], ui: &mut egui::Ui) -> Option<Figure> {
    if evals.iter().flatten().all(|e| e.class_fid.iter().all(Option::is_none)) {
        ui.label("(per-class FID needs `ltlab eval --per-class`)");
        return None;
    }
    // Rank of every class by training count (head first), from the first run that knows it.
    let counts = runs.iter().find_map(|r| r.header.dataset.as_ref().map(|d| d.counts.clone())).unwrap_or_default();
    let mut order: Vec<usize> = (0..counts.len()).collect();
    order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
    let rank = |c: usize| order.iter().position(|&o| o == c).unwrap_or(c) as f64;
    let x_label = if counts.is_empty() { "class" } else { "class rank by training count (head first)" };
    let mut fig = Figure::new("class-fid", x_label, "FID");
    for (k, (r, e)) in runs.iter().zip(evals).enumerate() {
        let Some(e) = e else { continue };
        let mut pts: Vec<[f64; 2]> = e.class_fid.iter().enumerate().filter_map(|(c, v)| v.map(|v| [rank(c), v])).collect();
        pts.sort_by(|a, b| a[0].total_cmp(&b[0]));
        let c = super::colour(k);
        fig.series.push(Series::line(r.header.name.clone(), c, pts.clone()));
        fig.series.push(Series::line("", c, pts).style(Style::Points { radius: 3.0 }));
    }
    fig.draw("class-fid", ui, |p| p.height(220.0), |_| ());
    Some(fig)
}

/// FID over evaluated steps and mean bottleneck purity over checkpoints, one line per run.
fn over_steps(s: &LatentSettings, runs: &[&RunData], step: u64, ui: &mut egui::Ui) -> Vec<Figure> {
    let mut fid = Figure::new("fid-over-steps", "step", "FID");
    let mut purity = Figure::new("purity-over-steps", "step", format!("mean k-NN purity, t = {}", s.t));
    for (k, r) in runs.iter().enumerate() {
        if r.header.evals.len() > 1 {
            let mut e: Vec<&EvalSummary> = r.header.evals.iter().collect();
            e.sort_by_key(|e| e.step);
            fid.series.push(Series::line(r.header.name.clone(), super::colour(k), e.iter().map(|e| [e.step as f64, e.fid]).collect()));
        }
        let list: Vec<_> = r.header.entanglement.get(&(s.t, s.conditional)).into_iter().flatten().filter(|e| e.same_measure(s.k, s.per_class)).collect();
        if !list.is_empty() {
            let pts = list.iter().map(|e| [e.step as f64, e.purity.iter().sum::<f64>() / e.purity.len().max(1) as f64]).collect();
            purity.series.push(Series::line(r.header.name.clone(), super::colour(k), pts));
        }
    }
    fid.marker_x = Some(step as f64);
    purity.marker_x = Some(step as f64);
    let figs: Vec<Figure> = [fid, purity].into_iter().filter(|f| !f.series.is_empty()).collect();
    if !figs.is_empty() {
        ui.horizontal_top(|ui| {
            let w = ui.available_width() / 2.0 - 8.0;
            for f in &figs {
                f.draw(f.name.as_str(), ui, |p| p.width(w).height(200.0), |_| ());
            }
        });
    }
    figs
}
