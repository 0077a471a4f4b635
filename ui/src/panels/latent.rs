//! The latent map: the bottleneck of real images (the same number per class) at the chosen t,
//! laid out by PCA, t-SNE or UMAP, one column per selected run at the scrubbed checkpoint.
//! Points are coloured by class; hovering shows the image. Below, the per-class entanglement
//! (k-NN purity, silhouette) over checkpoints, as Many/Medium/Few means.

use super::{ViewCtx, ViewOutput};
use crate::command::UiCommand;
use crate::export::{Figure, Series, Style, Table};
use crate::store::HostCommand;
use crate::store::{JobKind, JobView, LatentSettings, RunData, RunId};
use egui_plot::{Plot, PlotPoints, Points};
use ltlab_types::{EmbedMethod, LatentMap, Thumbnails};

/// Thumbnail of the hovered point: (run, step, point) and its texture.
type HoverTexture = Option<((RunId, u64, usize), egui::TextureHandle)>;

#[derive(Default)]
pub(crate) struct LatentView {
    hover: HoverTexture,
}

impl LatentView {
    pub fn ui(&mut self, s: &mut LatentSettings, ctx: &ViewCtx, ui: &mut egui::Ui) -> ViewOutput {
        let mut out = ViewOutput::default();
        ui.horizontal_wrapped(|ui| {
            egui::ComboBox::from_label("layout").selected_text(s.method.name()).show_ui(ui, |ui| {
                for m in EmbedMethod::ALL {
                    ui.selectable_value(&mut s.method, m, m.name());
                }
            });
            ui.add(egui::DragValue::new(&mut s.t).range(0..=999).prefix("t "));
            ui.add(egui::DragValue::new(&mut s.per_class).range(2..=5000).prefix("images per class "));
            ui.add(egui::DragValue::new(&mut s.k).range(1..=100).prefix("k "));
            ui.checkbox(&mut s.conditional, "class given to the network");
        });
        let runs: Vec<&RunData> = ctx.selected_runs().collect();
        if runs.is_empty() {
            ui.label("Select a run on the left to map its bottleneck.");
            return out;
        }
        let width = (ui.available_width() / runs.len() as f32 - 8.0).max(320.0);
        let height = ui.available_height();
        egui::ScrollArea::horizontal().id_salt("latent-runs").show(ui, |ui| {
            ui.horizontal_top(|ui| {
                for run in runs {
                    ui.allocate_ui(egui::vec2(width, height), |ui| {
                        ui.vertical(|ui| self.run_column(s, run, ctx, ui, &mut out));
                    });
                }
            });
        });
        out
    }

    fn run_column(&mut self, settings: &LatentSettings, run: &RunData, ctx: &ViewCtx, ui: &mut egui::Ui, out: &mut ViewOutput) {
        let (id, step) = (run.header.id, ctx.scrub);
        let title = format!("{} [{}]", run.header.name, run.header.methods);
        let Some(ck) = run.checkpoint_at(step) else {
            ui.strong(title);
            ui.label(format!("no checkpoint at or before step {step} yet"));
            return;
        };
        ui.horizontal(|ui| {
            ui.strong(title);
            let cli = settings.cli(&run.header.dir, ck);
            if ui.small_button("Copy CLI").on_hover_text(&cli).clicked() {
                ui.ctx().copy_text(cli);
            }
        });
        let job = ctx.job(id, JobKind::Latent);
        let map_h = (ui.available_height() * 0.62).max(200.0);
        match (job, run.latent_at(step, settings)) {
            (Some(j), _) => job_view(j, run, map_h, ui, &mut out.commands),
            (None, Some(map)) => {
                ui.horizontal(|ui| {
                    ui.label(format!("{} of {} images at step {}, t = {}", map.method.name(), map.labels.len(), map.step, map.t));
                    if ui.small_button("Recompute").clicked() {
                        out.commands.push(UiCommand::Host(HostCommand::LatentMap { run: id, step: ck, settings: settings.clone() }));
                    }
                });
                out.figures.push(scatter(&mut self.hover, id, &run.header.name, map, map_h, ui));
                let table = entanglement_table(&run.header.name, map);
                per_class_table(id, &table, ui);
                out.tables.push(table);
            }
            (None, None) => {
                ui.label(format!("no {} map at checkpoint {ck} with these settings", settings.method.name()));
                if ui.button(format!("Compute {} at step {ck}", settings.method.name())).clicked() {
                    out.commands.push(UiCommand::Host(HostCommand::LatentMap { run: id, step: ck, settings: settings.clone() }));
                }
            }
        }
        ui.separator();
        if let Some(fig) = entanglement_plot(run, settings, ck, ui) {
            out.figures.push(fig);
        }
        if job.is_none() && ui.small_button("Entanglement at every checkpoint").clicked() {
            out.commands.push(UiCommand::Host(HostCommand::Entanglement { run: id, settings: settings.clone() }));
        }
    }
}

fn job_view(j: &JobView, run: &RunData, h: f32, ui: &mut egui::Ui, commands: &mut Vec<UiCommand>) {
    super::job_progress(j, 220.0, true, ui, commands);
    if let Some((labels, xy)) = &j.preview {
        let classes = run.header.dataset.as_ref().map_or(0, |d| d.class_names.len()).max(labels.iter().max().map_or(0, |m| m + 1));
        Plot::new(("latent-preview", run.header.id.0)).height(h).data_aspect(1.0).show_axes(false).show(ui, |plot| {
            for c in 0..classes {
                let pts: PlotPoints = labels.iter().enumerate().filter(|(_, l)| **l == c).map(|(i, _)| [xy[2 * i] as f64, xy[2 * i + 1] as f64]).collect();
                plot.points(Points::new("", pts).color(super::class_colour(c)).radius(1.5));
            }
        });
    }
}

/// The map itself: one point series per class (legend with training counts), hover → image.
fn scatter(hover_texture: &mut HoverTexture, id: RunId, run_name: &str, map: &LatentMap, h: f32, ui: &mut egui::Ui) -> Figure {
    let mut fig = Figure::new(format!("latent-map-{run_name}"), format!("{} 1", map.method.name()), format!("{} 2", map.method.name()));
    for (c, name) in map.class_names.iter().enumerate() {
        let pts = map.labels.iter().enumerate().filter(|(_, l)| **l == c).map(|(i, _)| [map.xy[2 * i] as f64, map.xy[2 * i + 1] as f64]).collect();
        // The index first keeps the legend (sorted by name) in class order.
        let label = format!("{c} {name} ({})", map.train_counts.get(c).copied().unwrap_or(0));
        fig.series.push(Series::line(label, super::class_colour(c), pts).style(Style::Points { radius: 1.8 }));
    }
    let resp = fig.draw(
        ("latent", id.0),
        ui,
        |p| p.height(h).data_aspect(1.0).show_axes(false),
        |plot| {
            // The point under the pointer, within 6 screen pixels.
            let pointer = plot.pointer_coordinate()?;
            let at = plot.screen_from_plot(pointer);
            (0..map.labels.len())
                .map(|i| (i, plot.screen_from_plot(egui_plot::PlotPoint::new(map.xy[2 * i], map.xy[2 * i + 1])).distance_sq(at)))
                .filter(|&(_, d)| d < 36.0)
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(i, _)| i)
        },
    );
    if let Some(i) = resp.inner {
        let key = (id, map.step, i);
        let tex = match (&*hover_texture, &map.images) {
            (Some((k, t)), _) if *k == key => Some(t.clone()),
            (_, Some(thumbs)) => {
                let t = ui.ctx().load_texture("latent-hover", thumbnail(thumbs, i), egui::TextureOptions::NEAREST);
                *hover_texture = Some((key, t.clone()));
                Some(t)
            }
            _ => None,
        };
        let l = map.labels[i];
        resp.response.on_hover_ui_at_pointer(|ui| {
            ui.label(format!("{} (class {l}), image {}", map.class_names[l], map.indices[i]));
            if let Some(t) = tex {
                let s = t.size_vec2();
                ui.image((t.id(), s * (96.0 / s.x.max(1.0)).floor().max(1.0)));
            }
        });
    }
    fig
}

/// The map's per-class entanglement, as the export menu writes it.
fn entanglement_table(run_name: &str, map: &LatentMap) -> Table {
    let e = &map.entanglement;
    let rows = map
        .class_names
        .iter()
        .enumerate()
        .map(|(c, name)| {
            vec![
                name.clone(),
                map.train_counts.get(c).map_or(String::new(), |n| n.to_string()),
                format!("{:.3}", e.purity[c]),
                format!("{:.3}", e.silhouette[c]),
            ]
        })
        .collect();
    Table { name: format!("entanglement-{run_name}"), header: ["class", "train", "purity", "silhouette"].map(String::from).to_vec(), rows }
}

fn per_class_table(id: RunId, table: &Table, ui: &mut egui::Ui) {
    egui::CollapsingHeader::new("per-class entanglement at this step").id_salt(("ent-table", id.0)).show(ui, |ui| {
        egui::Grid::new(("ent-grid", id.0)).striped(true).show(ui, |ui| {
            for h in &table.header {
                ui.strong(h);
            }
            ui.end_row();
            for (c, row) in table.rows.iter().enumerate() {
                ui.colored_label(super::class_colour(c), &row[0]);
                for v in &row[1..] {
                    ui.label(v);
                }
                ui.end_row();
            }
        });
    });
}

/// One image of the thumbnails as an egui image.
fn thumbnail(t: &Thumbnails, i: usize) -> egui::ColorImage {
    let len = t.channels * t.size * t.size;
    super::planar_rgba(&t.pixels[i * len..(i + 1) * len], 1, t.channels, t.size)
}

/// Mean purity (solid) and silhouette (dashed) of the Many/Medium/Few classes over the
/// checkpoints computed so far.
fn entanglement_plot(run: &RunData, s: &LatentSettings, ck: u64, ui: &mut egui::Ui) -> Option<Figure> {
    let list: Vec<&ltlab_types::Entanglement> =
        run.header.entanglement.get(&(s.t, s.conditional)).into_iter().flatten().filter(|e| e.same_measure(s.k, s.per_class)).collect();
    let counts = run.header.dataset.as_ref().map(|d| d.counts.clone()).or_else(|| run.latent_maps.first().map(|m| m.train_counts.clone())).unwrap_or_default();
    if list.is_empty() || counts.is_empty() {
        ui.label("entanglement over checkpoints: none computed yet at this t");
        return None;
    }
    let splits = ltlab_types::class_splits(&counts);
    let mut fig = Figure::new(format!("entanglement-over-steps-{}", run.header.name), "step", "purity / silhouette");
    fig.marker_x = Some(ck as f64);
    for (k, (name, cls)) in ["many", "medium", "few"].iter().zip(&splits).enumerate() {
        let mean = |v: &[f64]| cls.iter().map(|&c| v[c]).sum::<f64>() / cls.len().max(1) as f64;
        let c = super::colour(k);
        let purity: Vec<[f64; 2]> = list.iter().map(|e| [e.step as f64, mean(&e.purity)]).collect();
        let sil: Vec<[f64; 2]> = list.iter().map(|e| [e.step as f64, mean(&e.silhouette)]).collect();
        fig.series.push(Series::line(format!("{name} purity"), c, purity.clone()));
        fig.series.push(Series::line(format!("{name} silhouette"), c, sil.clone()).style(Style::Dashed));
        fig.series.push(Series::line("", c, [purity, sil].concat()).style(Style::Points { radius: 2.5 }));
    }
    let h = ui.available_height().max(140.0);
    fig.draw(("entanglement", run.header.id.0), ui, |p| p.height(h), |_| ());
    Some(fig)
}
