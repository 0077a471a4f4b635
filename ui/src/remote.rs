//! The web lab's wire: what a page asks of `ltlab serve` and what the server tells every open
//! page. The same engine host carries out a [`HostCommand`] for the desktop and for the server.
//! Images do not travel in these messages: the page fetches them as PNG (or raw thumbnails) by
//! URL, and metrics as the run's own JSON lines by byte offset.

use crate::MethodParams;
pub use crate::command::HostCommand;
use crate::store::{DataPreview, EvalSummary, JobView, RunData, RunId, RunStatus, SampleSettings};
use ltlab_types::{BackendChoice, DatasetSummary, Entanglement, Event, LatentMap, TransferAnalysis};
use serde::{Deserialize, Serialize};

/// A run as the server holds it, without its metrics and images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSnapshot {
    pub id: RunId,
    pub name: String,
    pub dir: String,
    pub config_text: String,
    pub methods: String,
    pub dataset: Option<DatasetSummary>,
    pub total_steps: u64,
    pub batch: usize,
    pub checkpoints: Vec<u64>,
    pub status: RunStatus,
    /// Steps with a training grid (`/api/runs/{id}/grids/{step}.png`).
    pub grid_steps: Vec<u64>,
    /// Latent maps without their images; `thumbnails` says which have them
    /// (`/api/runs/{id}/latents/{index}`).
    pub latent_maps: Vec<(LatentMap, Option<ThumbnailShape>)>,
    pub entanglement: Vec<((usize, bool), Vec<Entanglement>)>,
    pub evals: Vec<EvalSummary>,
    pub transfers: Vec<TransferAnalysis>,
    /// View-time grids by index (`/api/runs/{id}/view-grids/{index}.png`).
    pub view_grids: Vec<(u64, SampleSettings)>,
    pub warnings: Vec<String>,
}

/// Channels and side length of a latent map's thumbnails (sent as raw bytes, N × C × S × S).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThumbnailShape {
    pub channels: usize,
    pub size: usize,
}

impl ThumbnailShape {
    /// The shape of a map's thumbnails, if it has them.
    pub fn of(map: &LatentMap) -> Option<Self> {
        map.images.as_ref().map(|t| Self { channels: t.channels, size: t.size })
    }
}

impl RunSnapshot {
    pub fn of(run: &RunData) -> Self {
        Self {
            id: run.id,
            name: run.name.clone(),
            dir: run.dir.clone(),
            config_text: run.config_text.clone(),
            methods: run.methods.clone(),
            dataset: run.dataset.clone(),
            total_steps: run.total_steps,
            batch: run.batch,
            checkpoints: run.checkpoints.iter().copied().collect(),
            status: run.status.clone(),
            grid_steps: run.grids.keys().copied().collect(),
            latent_maps: run
                .latent_maps
                .iter()
                .map(|m| (without_images(m), m.images.as_ref().map(|t| ThumbnailShape { channels: t.channels, size: t.size })))
                .collect(),
            entanglement: run.entanglement.iter().map(|(k, v)| (*k, v.clone())).collect(),
            evals: run.evals.clone(),
            transfers: run.transfers.clone(),
            view_grids: run.view_grids.iter().map(|g| (g.step, g.settings.clone())).collect(),
            warnings: run.warnings.clone(),
        }
    }

    /// The run without its metrics, grids, view grids and thumbnails (the page fetches them).
    pub fn into_run(self) -> RunData {
        let mut run = RunData::new(self.id, self.name, self.dir);
        run.config_text = self.config_text;
        run.methods = self.methods;
        run.dataset = self.dataset;
        run.total_steps = self.total_steps;
        run.batch = self.batch;
        run.checkpoints = self.checkpoints.into_iter().collect();
        run.status = self.status;
        for (map, _) in self.latent_maps {
            run.latent_maps.push(map);
        }
        run.entanglement = self.entanglement.into_iter().collect();
        run.evals = self.evals;
        run.transfers = self.transfers;
        run.warnings = self.warnings;
        run
    }
}

/// A latent map's copy without its thumbnails (which can be tens of MB).
pub fn without_images(m: &LatentMap) -> LatentMap {
    LatentMap {
        step: m.step,
        t: m.t,
        method: m.method,
        conditional: m.conditional,
        per_class: m.per_class,
        class_names: m.class_names.clone(),
        train_counts: m.train_counts.clone(),
        labels: m.labels.clone(),
        indices: m.indices.clone(),
        xy: m.xy.clone(),
        entanglement: m.entanglement.clone(),
        images: None,
    }
}

/// What a page gets when it opens: the server's state as of live message `seq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub seq: u64,
    pub configs: Vec<String>,
    pub method_params: MethodParams,
    pub backends: Vec<BackendChoice>,
    pub runs: Vec<RunSnapshot>,
    pub jobs: Vec<JobView>,
    /// The server refuses commands (`--read-only`).
    pub read_only: bool,
}

/// One message of the live channel; `seq` counts up by one per message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Live {
    pub seq: u64,
    pub msg: LiveMsg,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LiveMsg {
    /// A run opened or started on the server (or re-read): the page (re)loads it.
    Run(RunSnapshot),
    Engine(RunId, Event),
    /// A training grid at `/api/runs/{id}/grids/{step}.png`.
    Grid(RunId, u64),
    /// A latent map; its thumbnails, if any, at `/api/runs/{id}/latents/{index}`.
    Latent {
        run: RunId,
        index: usize,
        map: LatentMap,
        thumbnails: Option<ThumbnailShape>,
    },
    /// A view-time grid at `/api/runs/{id}/view-grids/{index}.png`.
    ViewGrid {
        run: RunId,
        index: usize,
        step: u64,
        settings: SampleSettings,
    },
    DataPreview(DataPreview),
    Transfer(RunId, TransferAnalysis),
    Entanglement(RunId, usize, bool, Vec<Entanglement>),
    Job(JobView),
    JobEnded(u64),
    Error(String),
}

/// The body of every error the server answers with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GridImage;
    use ltlab_types::{EmbedMethod, Thumbnails};

    #[test]
    fn a_snapshot_keeps_everything_but_metrics_and_images() {
        let mut run = RunData::new(RunId(7), String::from("demo"), String::from("runs/demo"));
        run.methods = "cbdm".into();
        run.total_steps = 100;
        run.batch = 8;
        run.checkpoints.extend([10, 20]);
        run.status = RunStatus::Paused;
        run.grids.insert(10, GridImage { width: 1, height: 1, rgba: vec![1, 2, 3, 4] });
        let ent = Entanglement { step: 10, t: 5, k: 3, per_class: 4, purity: vec![0.5], silhouette: vec![0.25] };
        run.add_latent(LatentMap {
            step: 10,
            t: 5,
            method: EmbedMethod::Pca,
            conditional: true,
            per_class: 4,
            class_names: vec!["a".into()],
            train_counts: vec![4],
            labels: vec![0],
            indices: vec![0],
            xy: vec![0.0, 1.0],
            entanglement: ent,
            images: Some(Thumbnails { channels: 1, size: 2, pixels: vec![0; 4] }),
        });
        let snap = RunSnapshot::of(&run);
        assert_eq!(snap.grid_steps, vec![10]);
        assert_eq!(snap.latent_maps[0].1, Some(ThumbnailShape { channels: 1, size: 2 }));
        assert!(snap.latent_maps[0].0.images.is_none(), "thumbnails travel apart");
        let text = serde_json::to_string(&snap).unwrap();
        let back: RunSnapshot = serde_json::from_str(&text).unwrap();
        assert_eq!(back, snap);
        let rebuilt = back.into_run();
        assert_eq!(rebuilt.checkpoints, run.checkpoints);
        assert_eq!(rebuilt.status, RunStatus::Paused);
        assert_eq!(rebuilt.entanglement, run.entanglement);
        assert!(rebuilt.grids.is_empty() && rebuilt.latent_maps[0].images.is_none());
    }
}
