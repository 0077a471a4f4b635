//! Every open run's record, filled from its run directory and from live engine events, and the
//! series the panels derive from it (loss terms, loss by t, the grid or map at a step, swaps made).

use crate::metrics::Metrics;
use crate::settings::{LatentSettings, SampleSettings};
use crate::{DatasetSummary, Entanglement, Event, LatentMap, T_BUCKETS, TransferAnalysis};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunId(pub u64);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub enum RunStatus {
    /// Read from disk; no engine attached.
    #[default]
    Stored,
    Starting,
    Training,
    Paused,
    Finished {
        stopped: bool,
    },
    Failed(String),
}

impl RunStatus {
    pub fn is_live(&self) -> bool {
        matches!(self, Self::Starting | Self::Training | Self::Paused)
    }
    pub fn label(&self) -> String {
        match self {
            Self::Stored => "stored".into(),
            Self::Starting => "starting".into(),
            Self::Training => "training".into(),
            Self::Paused => "paused".into(),
            Self::Finished { stopped: true } => "stopped".into(),
            Self::Finished { stopped: false } => "finished".into(),
            Self::Failed(m) => format!("failed: {m}"),
        }
    }
}

/// An RGBA image (a per-class sample grid).
#[derive(Debug, Clone, PartialEq)]
pub struct GridImage {
    pub width: usize,
    pub height: usize,
    pub rgba: Vec<u8>,
}

/// A run without its heavy parts: what a snapshot sends a page, and the one place a run's
/// fields are declared (a new field with a `Default` is one line here).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunHeader {
    pub id: RunId,
    pub name: String,
    pub dir: String,
    /// The run's `config.toml`, as written.
    pub config_text: String,
    pub methods: String,
    pub dataset: Option<DatasetSummary>,
    pub total_steps: u64,
    /// Images per step (0 while unknown).
    pub batch: usize,
    pub checkpoints: BTreeSet<u64>,
    pub status: RunStatus,
    /// Entanglement over checkpoints by (t, conditional).
    #[serde(with = "as_pairs")]
    pub entanglement: BTreeMap<(usize, bool), Vec<Entanglement>>,
    /// `ltlab eval` results found in the run's `evals/`, by step.
    pub evals: Vec<EvalSummary>,
    /// Transfer analyses computed for this run's data, newest last.
    pub transfers: Vec<TransferAnalysis>,
    /// What the engine recovered from (a damaged checkpoint kept aside), shown on the run's card.
    pub warnings: Vec<String>,
}

/// Every open run's record: its header and its heavy parts (the log, the images).
#[derive(Debug, Clone)]
pub struct RunData {
    pub header: RunHeader,
    /// Every logged step, in columns.
    pub metrics: Metrics,
    pub grids: BTreeMap<u64, GridImage>,
    /// Latent maps computed so far (this session or read from `analysis/`).
    pub latent_maps: Vec<LatentMap>,
    /// Grids sampled at view time (other ω, sampler or steps than training's).
    pub view_grids: Vec<ViewGrid>,
}

/// A run as the server sends it: its header, and which heavy parts exist (the page fetches
/// them by URL).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSnapshot {
    /// Flattened: scripts read a run's `id`, `name`, `status` at the top.
    #[serde(flatten)]
    pub header: RunHeader,
    /// Steps with a training grid (`/api/runs/{id}/grids/{step}`).
    pub grid_steps: Vec<u64>,
    /// Latent maps without their images, with their thumbnails' shape if they have them
    /// (`/api/runs/{id}/latents/{index}`).
    pub latent_maps: Vec<(LatentMap, Option<ThumbnailShape>)>,
    /// View-time grids by index (`/api/runs/{id}/view-grids/{index}`).
    pub view_grids: Vec<(u64, SampleSettings)>,
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
            header: run.header.clone(),
            grid_steps: run.grids.keys().copied().collect(),
            latent_maps: run.latent_maps.iter().map(|m| (m.without_images(), ThumbnailShape::of(m))).collect(),
            view_grids: run.view_grids.iter().map(|g| (g.step, g.settings.clone())).collect(),
        }
    }

    /// The run without its metrics, grids, view grids and thumbnails (the page fetches them).
    pub fn into_run(self) -> RunData {
        let latent_maps = self.latent_maps.into_iter().map(|(m, _)| m).collect();
        RunData { header: self.header, metrics: Metrics::default(), grids: BTreeMap::new(), latent_maps, view_grids: Vec::new() }
    }
}

/// A map keyed by tuples as a list of (key, value) pairs: JSON keys are strings.
mod as_pairs {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(m: &BTreeMap<K, V>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.iter())
    }

    pub fn deserialize<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<K, V>, D::Error> {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}

/// A grid sampled at view time from the checkpoint `step`.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewGrid {
    pub step: u64,
    pub settings: SampleSettings,
    pub image: GridImage,
}

/// The swaps a T2H/H2T/Full run actually made up to a step: per t-bucket (samples, swaps) and
/// class→class counts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RealisedSwaps {
    pub samples_by_t: Vec<u64>,
    pub swaps_by_t: Vec<u64>,
    pub pairs: BTreeMap<(usize, usize), u64>,
}

/// The numbers of one `ltlab eval` report that the compare view overlays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalSummary {
    pub step: u64,
    /// Features, sampler, ω and sample count: only evals with the same label are comparable.
    pub label: String,
    pub fid: f64,
    pub kid: f64,
    pub precision: f64,
    pub recall: f64,
    /// Per class (class order); `None` where not computed.
    pub class_fid: Vec<Option<f64>>,
    /// (split name, FID of the split's pooled samples, mean of its per-class FIDs).
    pub splits: Vec<(String, Option<f64>, Option<f64>)>,
}

impl RunData {
    pub fn new(id: RunId, name: impl Into<String>, dir: impl Into<String>) -> Self {
        let header = RunHeader { id, name: name.into(), dir: dir.into(), methods: "ddpm".into(), ..Default::default() };
        Self { header, metrics: Metrics::default(), grids: BTreeMap::new(), latent_maps: Vec::new(), view_grids: Vec::new() }
    }

    /// Applies one engine event (grids arrive separately, decoded).
    pub fn apply(&mut self, ev: &Event) {
        match ev {
            Event::Started { total_steps, first_step, .. } => {
                self.header.total_steps = *total_steps;
                // A resumed run replays nothing past its checkpoint.
                self.metrics.truncate_after(*first_step);
                self.header.status = RunStatus::Training;
            }
            Event::Step(r) => self.metrics.push(r),
            Event::CheckpointSaved { step, .. } => {
                self.header.checkpoints.insert(*step);
            }
            Event::SamplesWritten { .. } => {}
            Event::Paused { .. } => self.header.status = RunStatus::Paused,
            Event::Resumed { .. } => self.header.status = RunStatus::Training,
            Event::Finished { stopped, .. } => self.header.status = RunStatus::Finished { stopped: *stopped },
            Event::Failed { message, .. } => self.header.status = RunStatus::Failed(message.clone()),
            Event::CheckpointDamaged { error, kept_as, resumed_from, .. } => {
                self.header.warnings.push(format!("{error}; kept aside as {kept_as}, resumed from step {resumed_from}"))
            }
        }
    }

    pub fn last_step(&self) -> u64 {
        self.metrics.last_step().unwrap_or(0)
    }

    /// Fraction of the run done.
    pub fn progress(&self) -> f32 {
        if self.header.total_steps == 0 { 0.0 } else { (self.last_step() as f32 / self.header.total_steps as f32).min(1.0) }
    }

    /// Images/s averaged over the last (up to) 20 steps.
    pub fn images_per_s(&self) -> Option<f64> {
        let all = self.metrics.images_per_s();
        let tail = &all[all.len().saturating_sub(20)..];
        (!tail.is_empty()).then(|| tail.iter().map(|&v| v as f64).sum::<f64>() / tail.len() as f64)
    }

    /// Seconds left at the recent throughput; `None` until the batch size and throughput are
    /// known.
    pub fn eta_seconds(&self) -> Option<f64> {
        let ips = self.images_per_s()?;
        (ips > 0.0 && self.header.batch > 0).then(|| (self.header.total_steps.saturating_sub(self.last_step())) as f64 * self.header.batch as f64 / ips)
    }

    /// Every loss term logged, `total` and `mse` first.
    pub fn loss_terms(&self) -> Vec<String> {
        let set: BTreeSet<&str> = self.metrics.term_names().collect();
        let mut out: Vec<String> = ["total", "mse"].iter().filter(|t| set.contains(*t)).map(|t| t.to_string()).collect();
        out.extend(set.iter().filter(|t| !["total", "mse"].contains(t)).map(|t| t.to_string()));
        out
    }

    /// The base loss per t-bucket over the `window` steps ending at `step`: the mean of the
    /// steps' bucket means (steps whose batch had no t in a bucket are left out of it).
    pub fn loss_by_t_at(&self, step: u64, window: u64) -> Vec<Option<f64>> {
        let mut sum = [0.0; T_BUCKETS];
        let mut n = vec![0u32; T_BUCKETS];
        for row in self.metrics.rows((step + 1).saturating_sub(window), step) {
            for (k, &v) in self.metrics.loss_by_t(row).iter().enumerate() {
                if v.is_finite() {
                    sum[k] += v as f64;
                    n[k] += 1;
                }
            }
        }
        sum.iter().zip(&n).map(|(&s, &n)| (n > 0).then(|| s / n as f64)).collect()
    }

    /// The newest grid at or before `step`.
    pub fn grid_at(&self, step: u64) -> Option<(u64, &GridImage)> {
        self.grids.range(..=step).next_back().map(|(&s, g)| (s, g))
    }

    /// The checkpoint a step shows: the newest at or before it.
    pub fn checkpoint_at(&self, step: u64) -> Option<u64> {
        self.header.checkpoints.range(..=step).next_back().copied()
    }

    /// The latent map with these settings at the checkpoint `step` shows.
    pub fn latent_at(&self, step: u64, s: &LatentSettings) -> Option<&LatentMap> {
        let ck = self.checkpoint_at(step)?;
        self.latent_maps.iter().find(|m| m.step == ck && s.matches(m))
    }

    /// Adds a map, replacing one with the same step and settings.
    pub fn add_latent(&mut self, map: LatentMap) {
        let same = LatentSettings::of(&map);
        self.latent_maps.retain(|m| !(m.step == map.step && same.matches(m)));
        let key = (map.t, map.conditional);
        let list = self.header.entanglement.entry(key).or_default();
        let m = &map.entanglement;
        list.retain(|e| !(e.step == map.step && e.same_measure(m.k, m.per_class)));
        list.push(map.entanglement.clone());
        list.sort_by_key(|e| e.step);
        self.latent_maps.push(map);
    }

    /// The view-time grid with these settings at the checkpoint `step` shows.
    pub fn view_grid_at(&self, step: u64, s: &SampleSettings) -> Option<&ViewGrid> {
        let ck = self.checkpoint_at(step)?;
        self.view_grids.iter().find(|g| g.step == ck && &g.settings == s)
    }

    /// Adds a view-time grid, replacing one with the same step and settings.
    pub fn add_view_grid(&mut self, g: ViewGrid) {
        self.view_grids.retain(|x| !(x.step == g.step && x.settings == g.settings));
        self.view_grids.push(g);
    }

    /// The swaps OC logged in the steps up to `step`; `None` for runs without OC.
    pub fn realised_swaps(&self, step: u64) -> Option<RealisedSwaps> {
        let mut out = RealisedSwaps { samples_by_t: vec![0; T_BUCKETS], swaps_by_t: vec![0; T_BUCKETS], pairs: BTreeMap::new() };
        let any = self.metrics.has_transfers();
        for tr in self.metrics.transfers_until(step) {
            for (k, (&n, &s)) in tr.samples_by_t.iter().zip(tr.swaps_by_t).enumerate() {
                out.samples_by_t[k] += n as u64;
                out.swaps_by_t[k] += s as u64;
            }
            for &[a, b, n] in tr.pairs {
                *out.pairs.entry((a as usize, b as usize)).or_default() += n as u64;
            }
        }
        any.then_some(out)
    }

    /// The steps a scrubber can stop at: checkpoints and grids.
    pub fn marks(&self) -> BTreeSet<u64> {
        self.header.checkpoints.iter().chain(self.grids.keys()).copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EmbedMethod, StepRecord, Thumbnails};

    fn record(step: u64, mse: f64) -> StepRecord {
        StepRecord {
            step,
            losses: [("mse".to_string(), mse), ("total".to_string(), mse), ("coral".to_string(), 0.01)].into_iter().collect(),
            loss_by_t: vec![None; 10],
            lr: 1e-3,
            grad_norm: 0.1,
            images_per_s: 64.0,
            uncond_batch: false,
            loss_by_class: Vec::new(),
            transfers: None,
        }
    }

    #[test]
    fn events_build_the_record() {
        let mut r = RunData::new(RunId(1), "a", "/tmp/a");
        r.apply(&Event::Started { run_dir: "/tmp/a".into(), first_step: 0, total_steps: 100 });
        for s in 1..=10 {
            r.apply(&Event::Step(record(s, 1.0 / s as f64)));
        }
        r.apply(&Event::CheckpointSaved { step: 10, path: String::new() });
        assert_eq!((r.last_step(), r.progress(), r.header.status.clone()), (10, 0.1, RunStatus::Training));
        assert_eq!(r.loss_terms(), ["total", "mse", "coral"]);
        // 90 steps × 32 images at 64 images/s.
        assert_eq!(r.eta_seconds(), None);
        r.header.batch = 32;
        assert_eq!(r.eta_seconds(), Some(45.0));
        // A resume from step 5 drops the records after it.
        r.apply(&Event::Started { run_dir: "/tmp/a".into(), first_step: 5, total_steps: 200 });
        assert_eq!(r.last_step(), 5);
        let img = GridImage { width: 1, height: 1, rgba: vec![0; 4] };
        r.grids.insert(500, img.clone());
        r.grids.insert(1000, img);
        assert_eq!(r.grid_at(999).map(|g| g.0), Some(500));
        assert_eq!(r.grid_at(499), None);
        assert_eq!(r.marks().into_iter().collect::<Vec<_>>(), [10, 500, 1000]);
        assert_eq!((r.checkpoint_at(9), r.checkpoint_at(10), r.checkpoint_at(999)), (None, Some(10), Some(10)));
    }

    #[test]
    fn realised_swaps_add_up_to_the_step() {
        let mut r = RunData::new(RunId(1), "a", "/tmp/a");
        assert_eq!(r.realised_swaps(10), None);
        for s in 1..=3u64 {
            let mut rec = record(s, 1.0);
            let mut samples = vec![0u32; T_BUCKETS];
            let mut swaps = vec![0u32; T_BUCKETS];
            samples[0] = 4;
            swaps[0] = s as u32;
            rec.transfers = Some(crate::TransferCounts { samples_by_t: samples, swaps_by_t: swaps, pairs: vec![(2, 0, s as u32)] });
            r.apply(&Event::Step(rec));
        }
        let sw = r.realised_swaps(2).unwrap();
        assert_eq!((sw.samples_by_t[0], sw.swaps_by_t[0], sw.pairs[&(2, 0)]), (8, 3, 3));
        assert_eq!(r.realised_swaps(3).unwrap().swaps_by_t[0], 6);
    }

    #[test]
    fn view_grids_are_found_by_checkpoint_and_settings() {
        // The grid shown is the one at the scrubbed checkpoint with exactly these settings.
        let mut r = RunData::new(RunId(1), "a", "/tmp/a");
        r.header.checkpoints.extend([100, 200]);
        let img = GridImage { width: 1, height: 1, rgba: vec![0; 4] };
        r.add_view_grid(ViewGrid { step: 100, settings: SampleSettings::default(), image: img.clone() });
        r.add_view_grid(ViewGrid { step: 100, settings: SampleSettings::default(), image: img.clone() });
        assert_eq!(r.view_grids.len(), 1);
        assert!(r.view_grid_at(150, &SampleSettings::default()).is_some());
        assert!(r.view_grid_at(250, &SampleSettings::default()).is_none());
        assert!(r.view_grid_at(150, &SampleSettings { omega: 1.0, ..Default::default() }).is_none());
    }

    #[test]
    fn loss_by_t_is_the_mean_over_the_window() {
        let mut r = RunData::new(RunId(1), "a", "/tmp/a");
        for s in 1..=4u64 {
            let mut rec = record(s, 1.0);
            rec.loss_by_t = vec![None; T_BUCKETS];
            rec.loss_by_t[0] = Some(s as f64);
            // Bucket 9 is filled only at step 3.
            if s == 3 {
                rec.loss_by_t[9] = Some(0.5);
            }
            r.metrics.push(&rec);
        }
        // Steps 3 and 4: bucket 0 = (3 + 4) / 2, bucket 9 = 0.5 from one step, the rest empty.
        let w = r.loss_by_t_at(4, 2);
        assert_eq!(w[0], Some(3.5));
        assert_eq!(w[9], Some(0.5));
        assert!(w[1..9].iter().all(Option::is_none));
        // The window ends at the scrubbed step: steps 1 and 2.
        assert_eq!(r.loss_by_t_at(2, 10)[0], Some(1.5));
        assert_eq!(r.loss_by_t_at(0, 10)[0], None);
    }

    #[test]
    fn a_snapshot_keeps_everything_but_metrics_and_images() {
        let mut run = RunData::new(RunId(7), String::from("demo"), String::from("runs/demo"));
        run.header.methods = "cbdm".into();
        run.header.total_steps = 100;
        run.header.batch = 8;
        run.header.checkpoints.extend([10, 20]);
        run.header.status = RunStatus::Paused;
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
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!((&json["id"], &json["name"]), (&serde_json::json!(7), &serde_json::json!("demo")), "the header's fields at the top: {text}");
        let back: RunSnapshot = serde_json::from_str(&text).unwrap();
        assert_eq!(back, snap);
        let rebuilt = back.into_run();
        assert_eq!(rebuilt.header.checkpoints, run.header.checkpoints);
        assert_eq!(rebuilt.header.status, RunStatus::Paused);
        assert_eq!(rebuilt.header.entanglement, run.header.entanglement);
        assert!(rebuilt.grids.is_empty() && rebuilt.latent_maps[0].images.is_none());
    }
}
