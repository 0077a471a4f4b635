//! Run directories as the front ends need them: everything a run holds that the panels show.

use ltlab_engine::analysis::latents::read_entanglement;
use ltlab_engine::eval::report::EvalReport;
use ltlab_engine::train::run_dir::{RunDir, ViewGridFile};
use ltlab_types::{EvalSummary, GridImage, RunData, RunId, SampleSettings, ViewGrid};
use ltlab_types::{LatentMap, Thumbnails};
use std::path::Path;

/// A grid PNG as RGBA.
pub fn decode_grid(path: &Path) -> anyhow::Result<GridImage> {
    let img = image::open(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?.to_rgba8();
    Ok(GridImage { width: img.width() as usize, height: img.height() as usize, rgba: img.into_raw() })
}

/// Everything a run directory holds that the panels show.
pub fn read_run(id: RunId, dir: &Path) -> anyhow::Result<RunData> {
    let rd = RunDir::open(dir)?;
    let cfg = rd.read_config()?;
    let mut run = RunData::new(id, cfg.name.clone(), dir.display().to_string());
    run.header.config_text = std::fs::read_to_string(rd.config_path()).unwrap_or_default();
    run.header.methods = cfg.methods.label();
    run.header.dataset = cfg.record.as_ref().map(|r| r.dataset.clone());
    run.header.total_steps = cfg.steps;
    run.header.batch = cfg.batch;
    rd.for_each_metric(|r| run.metrics.push(&r))?;
    run.header.checkpoints = rd.checkpoints().into_iter().map(|c| c.0).collect();
    read_analysis(&rd, &cfg, &mut run)?;
    run.header.evals = read_evals(&rd);
    for (step, path) in rd.sample_grids() {
        run.grids.insert(step, decode_grid(&path)?);
    }
    Ok(run)
}

/// Latent maps and entanglement lists in the run's `analysis/`; the maps get their images back
/// from the balanced data (files do not carry them).
fn read_analysis(rd: &RunDir, cfg: &ltlab_engine::train::config::TrainConfig, run: &mut RunData) -> anyhow::Result<()> {
    for e in rd.entanglement_files() {
        run.header.entanglement.insert((e.t, e.conditional), read_entanglement(&e.path)?);
    }
    for g in rd.view_grids() {
        run.add_view_grid(ViewGrid { step: g.step, settings: sample_settings(&g), image: decode_grid(&g.path)? });
    }
    let mut real = None;
    for path in rd.latent_maps() {
        let text = std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let mut map: LatentMap = serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: not a latent map: {e}", path.display()))?;
        if real.is_none() {
            real = Some(cfg.data.load_balanced()?);
        }
        let real = real.as_ref().expect("loaded above");
        if map.indices.iter().all(|&i| i < real.len()) {
            let mut pixels = Vec::with_capacity(map.indices.len() * real.image_len());
            for &i in &map.indices {
                pixels.extend_from_slice(real.image(i));
            }
            map.images = Some(Thumbnails { channels: real.channels, size: real.size, pixels });
        }
        let list = run.header.entanglement.clone();
        run.add_latent(map);
        // Lists read from disk are complete; keep them over the one-map view.
        for (k, v) in list {
            run.header.entanglement.insert(k, v);
        }
    }
    Ok(())
}

/// The panel's settings of a view-time grid.
fn sample_settings(g: &ViewGridFile) -> SampleSettings {
    SampleSettings { sampler: g.sampler, omega: g.omega, per_class: g.per_class }
}

/// The `ltlab eval` reports of a run, by step (unreadable files are skipped).
fn read_evals(rd: &RunDir) -> Vec<EvalSummary> {
    let mut out: Vec<EvalSummary> = rd
        .eval_reports()
        .into_iter()
        .filter_map(|path| {
            let r: EvalReport = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
            let c = |k: &str| r.context.get(k).cloned().unwrap_or_default();
            let step = c("step").parse().ok()?;
            Some(EvalSummary {
                step,
                label: format!("{} · {} · ω {} · {} samples", r.features.split(" (").next().unwrap_or(""), c("sampler"), c("omega"), c("samples")),
                fid: r.overall.fid,
                kid: r.overall.kid,
                precision: r.precision,
                recall: r.recall,
                class_fid: r.per_class.iter().map(|p| p.scores.as_ref().map(|s| s.fid)).collect(),
                splits: r.splits.iter().map(|s| (s.name.clone(), s.scores.as_ref().map(|x| x.fid), s.mean_class_fid)).collect(),
            })
        })
        .collect();
    out.sort_by_key(|e| e.step);
    out
}
