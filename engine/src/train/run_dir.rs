//! The run directory, the single source of truth of a run:
//! `config.toml` (config + record), `metrics.jsonl` (one line per step),
//! `checkpoints/step-NNNNNNNN.safetensors`, `samples/step-NNNNNNNN.png` (training grids),
//! `analysis/` (view-time grids, latent maps, entanglement lists), `evals/` (`ltlab eval`
//! reports and their sample grids). Only this file knows the names.

use super::checkpoint::{self, Checkpoint};
use super::config::TrainConfig;
use super::trainer::Trainer;
use crate::diffusion::SamplerKind;
use crate::error::{Error, Result, write_atomic};
use crate::ops::TrainBackend;
use ltlab_types::StepRecord;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A grid sampled at view time (`ltlab sample`, the lab's "sampled now"), as its name records it.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewGridFile {
    pub step: u64,
    pub sampler: SamplerKind,
    pub omega: f64,
    pub per_class: usize,
    pub path: PathBuf,
}

/// An entanglement list (per-class k-NN purity and silhouette over checkpoints) at one t.
#[derive(Debug, Clone, PartialEq)]
pub struct EntanglementFile {
    pub t: usize,
    pub conditional: bool,
    pub path: PathBuf,
}

fn cond_name(conditional: bool) -> &'static str {
    if conditional { "cond" } else { "uncond" }
}

/// A checkpoint that did not load, and where it was kept.
#[derive(Debug, Clone, PartialEq)]
pub struct DamagedCheckpoint {
    pub path: PathBuf,
    pub error: String,
    pub kept_as: PathBuf,
}

/// Where a resumed run continues: the checkpoint read, and the newer ones it passed over.
pub struct ResumePoint {
    pub step: u64,
    pub checkpoint: checkpoint::Checkpoint,
    /// Newer checkpoints that do not load, kept aside as `*.damaged`.
    pub damaged: Vec<DamagedCheckpoint>,
    /// Newer checkpoints passed over on purpose (`--step`), kept aside as `*.superseded`.
    pub superseded: Vec<PathBuf>,
}

/// The exclusive right to write a run (its checkpoints, metrics and grids): an OS file lock,
/// released when dropped or when the process dies.
#[derive(Debug)]
pub struct WriterLock {
    _file: std::fs::File,
}

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

    /// The training grids, by step.
    pub fn sample_grids(&self) -> Vec<(u64, PathBuf)> {
        let mut out: Vec<(u64, PathBuf)> = self.files("samples", |name| name.strip_prefix("step-")?.strip_suffix(".png")?.parse().ok());
        out.sort_by_key(|(s, _)| *s);
        out
    }

    fn analysis_dir(&self) -> PathBuf {
        self.path.join("analysis")
    }

    /// A grid sampled at view time with these settings.
    pub fn view_grid_path(&self, step: u64, sampler: &SamplerKind, omega: f64, per_class: usize) -> PathBuf {
        self.analysis_dir().join(format!("grid-step{step}-{}-w{omega}-n{per_class}.png", sampler.label().replace(':', "_")))
    }

    /// Every view-time grid of the run, by step.
    pub fn view_grids(&self) -> Vec<ViewGridFile> {
        let parse = |name: &str| -> Option<(u64, SamplerKind, f64, usize)> {
            let rest = name.strip_prefix("grid-step")?.strip_suffix(".png")?;
            let mut parts = rest.split('-');
            let step = parts.next()?.parse().ok()?;
            let sampler = SamplerKind::parse(&parts.next()?.replace('_', ":")).ok()?;
            let omega = parts.next()?.strip_prefix('w')?.parse().ok()?;
            let per_class = parts.next()?.strip_prefix('n')?.parse().ok()?;
            parts.next().is_none().then_some((step, sampler, omega, per_class))
        };
        let mut out: Vec<ViewGridFile> = self
            .files("analysis", parse)
            .into_iter()
            .map(|((step, sampler, omega, per_class), path)| ViewGridFile { step, sampler, omega, per_class, path })
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }

    /// Latent maps written by `ltlab analyze latents` and the lab.
    pub fn latent_map_path(&self, step: u64, t: usize, conditional: bool, method: &str) -> PathBuf {
        self.analysis_dir().join(format!("latents-step-{step:08}-t{t}-{}-{method}.json", cond_name(conditional)))
    }

    /// Every latent map of the run, in name order (by step).
    pub fn latent_maps(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> =
            self.files("analysis", |name| (name.starts_with("latents-") && name.ends_with(".json")).then_some(())).into_iter().map(|(_, p)| p).collect();
        out.sort();
        out
    }

    pub fn entanglement_path(&self, t: usize, conditional: bool) -> PathBuf {
        self.analysis_dir().join(format!("entanglement-t{t}-{}.json", cond_name(conditional)))
    }

    /// Every entanglement list of the run.
    pub fn entanglement_files(&self) -> Vec<EntanglementFile> {
        let parse = |name: &str| -> Option<(usize, bool)> {
            let rest = name.strip_prefix("entanglement-t")?.strip_suffix(".json")?;
            let (t, cond) = rest.split_once('-')?;
            Some((
                t.parse().ok()?,
                match cond {
                    "cond" => true,
                    "uncond" => false,
                    _ => return None,
                },
            ))
        };
        let mut out: Vec<EntanglementFile> =
            self.files("analysis", parse).into_iter().map(|((t, conditional), path)| EntanglementFile { t, conditional, path }).collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }

    /// An `ltlab eval` report (`ext` = json) or its sample grid (`ext` = png).
    pub fn eval_path(&self, step: u64, features: &str, sampler: &SamplerKind, omega: f64, samples: usize, ext: &str) -> PathBuf {
        self.path.join("evals").join(format!("step-{step:08}-{features}-{}-w{omega}-n{samples}.{ext}", sampler.label().replace(':', "_")))
    }

    /// Every `ltlab eval` report of the run.
    pub fn eval_reports(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> =
            self.files("evals", |name| (name.starts_with("step-") && name.ends_with(".json")).then_some(())).into_iter().map(|(_, p)| p).collect();
        out.sort();
        out
    }

    /// The files of a sub-folder whose names `parse` accepts (none if the folder is missing).
    fn files<T>(&self, sub: &str, parse: impl Fn(&str) -> Option<T>) -> Vec<(T, PathBuf)> {
        let Ok(entries) = std::fs::read_dir(self.path.join(sub)) else { return Vec::new() };
        entries.flatten().filter_map(|e| Some((parse(e.file_name().to_str()?)?, e.path()))).collect()
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

    /// The run's trainer restored from its checkpoint at `step` (default: the newest), and
    /// that step: what sampling, evaluation and analysis of a run start from.
    pub fn trainer<B: TrainBackend>(&self, step: Option<u64>, device: B::Device) -> Result<(Trainer<B>, u64)> {
        let cfg = self.read_config()?;
        let (step, path) = match step {
            Some(s) => {
                let p = self.checkpoint_path(s);
                if !p.is_file() {
                    let have: Vec<String> = self.checkpoints().iter().map(|(s, _)| s.to_string()).collect();
                    return Err(Error::option("step", format!("{} has no checkpoint at step {s} (have: {})", self.path.display(), have.join(", "))));
                }
                (s, p)
            }
            None => self.latest_checkpoint().ok_or_else(|| Error::data(&self.path, "no checkpoints yet"))?,
        };
        let data = cfg.data.load()?;
        Ok((Trainer::<B>::restore(cfg, data, device, &Checkpoint::read(&path)?)?, step))
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

    /// Removes the temp files of writes a crash or kill interrupted (`.NAME.tmp`, see
    /// `write_atomic`); the files they were to replace are whole. Returns what it removed.
    pub fn remove_interrupted_writes(&self) -> Result<Vec<PathBuf>> {
        let mut removed = Vec::new();
        for sub in ["", "checkpoints", "samples", "analysis", "evals"] {
            for (_, path) in self.files(sub, |name| (name.starts_with('.') && name.ends_with(".tmp")).then_some(())) {
                // Only the regular files write_atomic leaves; anything else is not ours.
                if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
                    continue;
                }
                std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                removed.push(path);
            }
        }
        Ok(removed)
    }

    /// Takes the run's writer lock, or says which process holds it.
    pub fn lock_writer(&self) -> Result<WriterLock> {
        let path = self.path.join("writer.lock");
        let mut file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {
                // Who holds it, for the error a second writer gets.
                file.set_len(0).and_then(|_| write!(file, "{}", std::process::id())).map_err(|e| Error::io(&path, e))?;
                Ok(WriterLock { _file: file })
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = if holder.trim().is_empty() { "another process".to_string() } else { format!("process {}", holder.trim()) };
                Err(Error::data(&self.path, format!("is being trained by {holder} (an `ltlab train` or the lab): wait for it to finish, or stop it first")))
            }
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
        }
    }

    /// The checkpoint a resumed run continues from: `at` if given (newer ones are kept aside as
    /// `*.superseded`), else the newest that loads (newer damaged ones are kept aside as
    /// `*.damaged`).
    pub fn resume_point(&self, at: Option<u64>) -> Result<ResumePoint> {
        let all = self.checkpoints();
        if all.is_empty() {
            return Err(Error::data(self.checkpoints_dir(), "no checkpoint to resume from"));
        }
        let aside = |path: &Path, suffix: &str| -> Result<PathBuf> {
            let mut kept = path.as_os_str().to_owned();
            kept.push(suffix);
            let kept = PathBuf::from(kept);
            std::fs::rename(path, &kept).map_err(|e| Error::io(path, e))?;
            Ok(kept)
        };
        if let Some(step) = at {
            let Some((_, path)) = all.iter().find(|(s, _)| *s == step) else {
                let have: Vec<String> = all.iter().map(|(s, _)| s.to_string()).collect();
                return Err(Error::option("step", format!("{} has no checkpoint at step {step} (have: {})", self.path.display(), have.join(", "))));
            };
            let checkpoint = checkpoint::Checkpoint::read(path)?;
            let superseded = all.iter().filter(|(s, _)| *s > step).map(|(_, p)| aside(p, ".superseded")).collect::<Result<_>>()?;
            return Ok(ResumePoint { step, checkpoint, damaged: Vec::new(), superseded });
        }
        let mut damaged = Vec::new();
        for (step, path) in all.iter().rev() {
            match checkpoint::Checkpoint::read(path) {
                Ok(checkpoint) => return Ok(ResumePoint { step: *step, checkpoint, damaged, superseded: Vec::new() }),
                Err(e) => damaged.push(DamagedCheckpoint { path: path.clone(), error: e.to_string(), kept_as: aside(path, ".damaged")? }),
            }
        }
        let list: Vec<String> = damaged.iter().map(|d| d.error.clone()).collect();
        Err(Error::data(self.checkpoints_dir(), format!("no checkpoint loads (each kept aside as *.damaged): {}", list.join("; "))))
    }

    pub fn append_metrics(&self, rec: &StepRecord) -> Result<()> {
        let p = self.metrics_path();
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&p).map_err(|e| Error::io(&p, e))?;
        let line = serde_json::to_string(rec).expect("record serialises");
        writeln!(f, "{line}").map_err(|e| Error::io(&p, e))
    }

    /// All metric records (a torn last line from a crash is skipped).
    pub fn read_metrics(&self) -> Result<Vec<StepRecord>> {
        let mut out = Vec::new();
        self.for_each_metric(|r| out.push(r))?;
        Ok(out)
    }

    /// Hands each record of `metrics.jsonl` to `f` as it is read, holding one line at a time
    /// (a 300,000-step log is never in memory as text or as records). Lines that do not parse
    /// (a write cut by a crash) are skipped.
    pub fn for_each_metric(&self, mut f: impl FnMut(StepRecord)) -> Result<()> {
        use std::io::BufRead;
        let p = self.metrics_path();
        let file = match std::fs::File::open(&p) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(&p, e)),
        };
        let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).map_err(|e| Error::io(&p, e))? == 0 {
                return Ok(());
            }
            if let Ok(r) = serde_json::from_str(line.trim_end()) {
                f(r);
            }
        }
    }

    /// Keeps only the records up to `step` (those a resumed run will not redo).
    pub fn truncate_metrics(&self, step: u64) -> Result<()> {
        let kept: Vec<String> =
            self.read_metrics()?.iter().filter(|r| r.step <= step).map(|r| serde_json::to_string(r).expect("record serialises") + "\n").collect();
        write_atomic(&self.metrics_path(), kept.concat().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name the run directory writes is read back by its listing, and nothing else is.
    #[test]
    fn names_round_trip_through_the_listings() {
        let tmp = tempfile::tempdir().unwrap();
        let rd = RunDir::create(&tmp.path().join("run")).unwrap();
        std::fs::create_dir_all(rd.path.join("analysis")).unwrap();
        std::fs::create_dir_all(rd.path.join("evals")).unwrap();
        let ddim = SamplerKind::parse("ddim:20:clip").unwrap();
        let ddpm = SamplerKind::parse("ddpm").unwrap();
        let written = [
            rd.samples_path(500),
            rd.samples_path(5),
            rd.view_grid_path(500, &ddim, 1.5, 4),
            rd.view_grid_path(7, &ddpm, 0.0, 8),
            rd.latent_map_path(250, 100, false, "umap"),
            rd.entanglement_path(100, true),
            rd.entanglement_path(300, false),
            rd.eval_path(500, "domain", &ddim, 1.0, 1000, "json"),
            rd.path.join("analysis/notes.txt"),
            rd.path.join("analysis/grid-step5-euler_3-w0-n4.png"),
        ];
        for p in &written {
            std::fs::write(p, b"x").unwrap();
        }
        assert_eq!(rd.sample_grids(), vec![(5, written[1].clone()), (500, written[0].clone())]);
        let grids = rd.view_grids();
        assert_eq!(grids.len(), 2, "{grids:?}");
        let g = grids.iter().find(|g| g.step == 500).unwrap();
        assert_eq!((g.sampler, g.omega, g.per_class, &g.path), (ddim, 1.5, 4, &written[2]));
        assert!(grids.iter().any(|g| g.step == 7 && g.sampler == ddpm && g.per_class == 8));
        assert_eq!(rd.latent_maps(), vec![written[4].clone()]);
        let ent: Vec<(usize, bool)> = rd.entanglement_files().iter().map(|e| (e.t, e.conditional)).collect();
        assert_eq!(ent, vec![(100, true), (300, false)]);
        assert_eq!(rd.eval_reports(), vec![written[7].clone()]);
    }
}
