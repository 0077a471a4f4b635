//! The run directory, the single source of truth of a run:
//! `config.toml` (config + record), `metrics.jsonl` (one line per step),
//! `checkpoints/step-NNNNNNNN.safetensors`, `samples/step-NNNNNNNN.png`.

use super::checkpoint;
use super::config::TrainConfig;
use crate::error::{Error, Result, write_atomic};
use ltlab_types::StepRecord;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// Creates a new run folder; refuses a folder that already holds a run.
    pub fn create(path: &Path) -> Result<Self> {
        if path.join("config.toml").exists() {
            return Err(Error::data(path, "already holds a run; continue it with `ltlab train --resume DIR` or choose another --out"));
        }
        for sub in ["checkpoints", "samples"] {
            std::fs::create_dir_all(path.join(sub)).map_err(|e| Error::io(path.join(sub), e))?;
        }
        Ok(Self { path: path.to_path_buf() })
    }

    pub fn open(path: &Path) -> Result<Self> {
        if !path.join("config.toml").is_file() {
            return Err(Error::data(path, "is not a run directory (no config.toml)"));
        }
        Ok(Self { path: path.to_path_buf() })
    }

    pub fn config_path(&self) -> PathBuf {
        self.path.join("config.toml")
    }
    pub fn metrics_path(&self) -> PathBuf {
        self.path.join("metrics.jsonl")
    }
    pub fn checkpoints_dir(&self) -> PathBuf {
        self.path.join("checkpoints")
    }
    pub fn checkpoint_path(&self, step: u64) -> PathBuf {
        self.checkpoints_dir().join(checkpoint::file_name(step))
    }
    pub fn samples_path(&self, step: u64) -> PathBuf {
        self.path.join("samples").join(format!("step-{step:08}.png"))
    }
    /// Latent maps and entanglement written by `ltlab analyze latents` and the lab.
    pub fn latent_map_path(&self, step: u64, t: usize, conditional: bool, method: &str) -> PathBuf {
        let cond = if conditional { "cond" } else { "uncond" };
        self.path.join("analysis").join(format!("latents-step-{step:08}-t{t}-{cond}-{method}.json"))
    }
    pub fn entanglement_path(&self, t: usize, conditional: bool) -> PathBuf {
        let cond = if conditional { "cond" } else { "uncond" };
        self.path.join("analysis").join(format!("entanglement-t{t}-{cond}.json"))
    }

    pub fn write_config(&self, cfg: &TrainConfig) -> Result<()> {
        write_atomic(&self.config_path(), cfg.to_toml().as_bytes())
    }

    pub fn read_config(&self) -> Result<TrainConfig> {
        let p = self.config_path();
        let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
        TrainConfig::from_toml(&text, &p.display().to_string())
    }

    pub fn checkpoints(&self) -> Vec<(u64, PathBuf)> {
        checkpoint::list(&self.checkpoints_dir())
    }

    pub fn latest_checkpoint(&self) -> Option<(u64, PathBuf)> {
        self.checkpoints().pop()
    }

    /// Removes all but the newest `keep` checkpoints (0 keeps all).
    pub fn prune_checkpoints(&self, keep: usize) -> Result<()> {
        if keep == 0 {
            return Ok(());
        }
        let all = self.checkpoints();
        for (_, p) in all.iter().take(all.len().saturating_sub(keep)) {
            std::fs::remove_file(p).map_err(|e| Error::io(p, e))?;
        }
        Ok(())
    }

    pub fn append_metrics(&self, rec: &StepRecord) -> Result<()> {
        let p = self.metrics_path();
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&p).map_err(|e| Error::io(&p, e))?;
        let line = serde_json::to_string(rec).expect("record serialises");
        writeln!(f, "{line}").map_err(|e| Error::io(&p, e))
    }

    /// All metric records (a torn last line from a crash is skipped).
    pub fn read_metrics(&self) -> Result<Vec<StepRecord>> {
        let p = self.metrics_path();
        match std::fs::read_to_string(&p) {
            Ok(text) => Ok(text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::io(&p, e)),
        }
    }

    /// Keeps only the records up to `step` (those a resumed run will not redo).
    pub fn truncate_metrics(&self, step: u64) -> Result<()> {
        let kept: Vec<String> = self
            .read_metrics()?
            .iter()
            .filter(|r| r.step <= step)
            .map(|r| serde_json::to_string(r).expect("record serialises") + "\n")
            .collect();
        write_atomic(&self.metrics_path(), kept.concat().as_bytes())
    }
}
