//! The run store as the panels see it: every open run's record, filled from its run directory
//! and from live engine events, one `Intake` message at a time (drained once per frame).

use ltlab_types::{DatasetSummary, Event, StepRecord};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(pub u64);

#[derive(Debug, Clone, PartialEq)]
pub enum RunStatus {
    /// Read from disk; no engine attached.
    Stored,
    Starting,
    Training,
    Paused,
    Finished { stopped: bool },
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

#[derive(Debug, Clone)]
pub struct RunData {
    pub id: RunId,
    pub name: String,
    pub dir: String,
    /// The run's `config.toml`, as written.
    pub config_text: String,
    pub methods: String,
    pub dataset: Option<DatasetSummary>,
    pub total_steps: u64,
    pub records: Vec<StepRecord>,
    pub checkpoints: BTreeSet<u64>,
    pub grids: BTreeMap<u64, GridImage>,
    pub status: RunStatus,
}

/// What the host feeds the lab.
#[derive(Debug, Clone)]
pub enum Intake {
    /// A run read from its directory (or just created).
    Opened(RunData),
    Engine(RunId, Event),
    /// A sample grid decoded from the PNG the engine wrote.
    Grid(RunId, u64, GridImage),
    Error(String),
}

impl RunData {
    pub fn new(id: RunId, name: impl Into<String>, dir: impl Into<String>) -> Self {
        Self {
            id,
            name: name.into(),
            dir: dir.into(),
            config_text: String::new(),
            methods: "ddpm".into(),
            dataset: None,
            total_steps: 0,
            records: Vec::new(),
            checkpoints: BTreeSet::new(),
            grids: BTreeMap::new(),
            status: RunStatus::Stored,
        }
    }

    /// Applies one engine event (grids arrive separately, decoded).
    pub fn apply(&mut self, ev: &Event) {
        match ev {
            Event::Started { total_steps, first_step, .. } => {
                self.total_steps = *total_steps;
                // A resumed run replays nothing past its checkpoint.
                self.records.retain(|r| r.step <= *first_step);
                self.status = RunStatus::Training;
            }
            Event::Step(r) => {
                if self.records.last().is_some_and(|l| l.step >= r.step) {
                    self.records.retain(|l| l.step < r.step);
                }
                self.records.push(r.clone());
            }
            Event::CheckpointSaved { step, .. } => {
                self.checkpoints.insert(*step);
            }
            Event::SamplesWritten { .. } => {}
            Event::Paused { .. } => self.status = RunStatus::Paused,
            Event::Resumed { .. } => self.status = RunStatus::Training,
            Event::Finished { stopped, .. } => self.status = RunStatus::Finished { stopped: *stopped },
            Event::Failed { message, .. } => self.status = RunStatus::Failed(message.clone()),
        }
    }

    pub fn last_step(&self) -> u64 {
        self.records.last().map_or(0, |r| r.step)
    }

    /// Fraction of the run done.
    pub fn progress(&self) -> f32 {
        if self.total_steps == 0 { 0.0 } else { (self.last_step() as f32 / self.total_steps as f32).min(1.0) }
    }

    /// Images/s averaged over the last (up to) 20 steps.
    pub fn images_per_s(&self) -> Option<f64> {
        let tail = &self.records[self.records.len().saturating_sub(20)..];
        (!tail.is_empty()).then(|| tail.iter().map(|r| r.images_per_s).sum::<f64>() / tail.len() as f64)
    }

    /// Seconds left at the recent throughput (batch from the latest records).
    pub fn eta_seconds(&self, batch: usize) -> Option<f64> {
        let ips = self.images_per_s()?;
        (ips > 0.0).then(|| (self.total_steps.saturating_sub(self.last_step())) as f64 * batch as f64 / ips)
    }

    /// Every loss term logged, `total` and `mse` first.
    pub fn loss_terms(&self) -> Vec<String> {
        let mut set: BTreeSet<&str> = BTreeSet::new();
        for r in &self.records {
            set.extend(r.losses.keys().map(String::as_str));
        }
        let mut out: Vec<String> = ["total", "mse"].iter().filter(|t| set.contains(*t)).map(|t| t.to_string()).collect();
        out.extend(set.iter().filter(|t| !["total", "mse"].contains(t)).map(|t| t.to_string()));
        out
    }

    /// (step, value) of one loss term.
    pub fn series(&self, term: &str) -> (Vec<f64>, Vec<f64>) {
        self.records.iter().filter_map(|r| r.losses.get(term).map(|&v| (r.step as f64, v))).unzip()
    }

    /// The newest grid at or before `step`.
    pub fn grid_at(&self, step: u64) -> Option<(u64, &GridImage)> {
        self.grids.range(..=step).next_back().map(|(&s, g)| (s, g))
    }

    /// The steps a scrubber can stop at: checkpoints and grids.
    pub fn marks(&self) -> BTreeSet<u64> {
        self.checkpoints.iter().chain(self.grids.keys()).copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn record(step: u64, mse: f64) -> StepRecord {
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
        assert_eq!((r.last_step(), r.progress(), r.status.clone()), (10, 0.1, RunStatus::Training));
        assert_eq!(r.loss_terms(), ["total", "mse", "coral"]);
        // 90 steps × 32 images at 64 images/s.
        assert_eq!(r.eta_seconds(32), Some(45.0));
        // A resume from step 5 drops the records after it.
        r.apply(&Event::Started { run_dir: "/tmp/a".into(), first_step: 5, total_steps: 200 });
        assert_eq!(r.last_step(), 5);
        let img = GridImage { width: 1, height: 1, rgba: vec![0; 4] };
        r.grids.insert(500, img.clone());
        r.grids.insert(1000, img);
        assert_eq!(r.grid_at(999).map(|g| g.0), Some(500));
        assert_eq!(r.grid_at(499), None);
        assert_eq!(r.marks().into_iter().collect::<Vec<_>>(), [10, 500, 1000]);
    }
}
