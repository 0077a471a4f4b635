//! The desktop lab: `ltlab-ui`'s panels in an eframe window, fed from run directories and from
//! engine threads (one per live run). Engine events are drained once per frame; nothing here
//! waits on training.

use ltlab_engine::train::config::BUILTIN_PRESETS;
use ltlab_engine::train::engine::{self, EngineHandle};
use ltlab_engine::train::run_dir::RunDir;
use ltlab_types::{Command, Event};
use crate::jobs::Jobs;
use ltlab_engine::analysis::latents::read_entanglement;
use ltlab_engine::eval::report::EvalReport;
use ltlab_types::{LatentMap, Thumbnails};
use ltlab_engine::methods;
use ltlab_ui::{EvalSummary, ExportData, GridImage, Intake, Lab, LabState, MethodParams, RunData, RunId, SampleSettings, UiCommand, ViewGrid};
use eframe::egui;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub struct LabApp {
    lab: Lab,
    engines: HashMap<RunId, EngineHandle>,
    jobs: Jobs,
    next_id: u64,
    runs_root: PathBuf,
}

/// A grid PNG as RGBA.
pub(crate) fn decode_grid(path: &Path) -> anyhow::Result<GridImage> {
    let img = image::open(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?.to_rgba8();
    Ok(GridImage { width: img.width() as usize, height: img.height() as usize, rgba: img.into_raw() })
}

/// Everything a run directory holds that the panels show.
pub(crate) fn read_run(id: RunId, dir: &Path) -> anyhow::Result<RunData> {
    let rd = RunDir::open(dir)?;
    let cfg = rd.read_config()?;
    let mut run = RunData::new(id, cfg.name.clone(), dir.display().to_string());
    run.config_text = std::fs::read_to_string(rd.config_path()).unwrap_or_default();
    run.methods = cfg.methods.label();
    run.dataset = cfg.record.as_ref().map(|r| r.dataset.clone());
    run.total_steps = cfg.steps;
    run.batch = cfg.batch;
    run.records = rd.read_metrics()?;
    run.checkpoints = rd.checkpoints().into_iter().map(|c| c.0).collect();
    read_analysis(&rd, &cfg, &mut run)?;
    run.evals = read_evals(&dir.join("evals"));
    if let Ok(entries) = std::fs::read_dir(dir.join("samples")) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let step = name.strip_prefix("step-").and_then(|s| s.strip_suffix(".png")).and_then(|s| s.parse::<u64>().ok());
            if let Some(step) = step {
                run.grids.insert(step, decode_grid(&e.path())?);
            }
        }
    }
    Ok(run)
}

/// Latent maps and entanglement lists in the run's `analysis/`; the maps get their images back
/// from the balanced data (files do not carry them).
fn read_analysis(rd: &RunDir, cfg: &ltlab_engine::train::config::TrainConfig, run: &mut RunData) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(rd.path.join("analysis")) else { return Ok(()) };
    let mut names: Vec<String> = entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    let mut real = None;
    for name in names {
        let path = rd.path.join("analysis").join(&name);
        if let Some(rest) = name.strip_prefix("entanglement-t").and_then(|r| r.strip_suffix(".json")) {
            let (t, cond) = rest.split_once('-').unwrap_or((rest, "cond"));
            if let Ok(t) = t.parse::<usize>() {
                run.entanglement.insert((t, cond == "cond"), read_entanglement(&path)?);
            }
        } else if let Some((step, settings)) = SampleSettings::from_file_name(&name) {
            run.add_view_grid(ViewGrid { step, settings, image: decode_grid(&path)? });
        } else if name.starts_with("latents-") && name.ends_with(".json") {
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
            let list = run.entanglement.clone();
            run.add_latent(map);
            // Lists read from disk are complete; keep them over the one-map view.
            for (k, v) in list {
                run.entanglement.insert(k, v);
            }
        }
    }
    Ok(())
}

/// Writes an export atomically (images as PNG).
fn write_export(path: &Path, data: ExportData) -> anyhow::Result<()> {
    let bytes = match data {
        ExportData::Text(t) => t.into_bytes(),
        ExportData::Image { width, height, rgba } => {
            let img = image::RgbaImage::from_raw(width as u32, height as u32, rgba).ok_or_else(|| anyhow::anyhow!("image of {width} × {height} has the wrong number of pixels"))?;
            let mut bytes = Vec::new();
            img.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)?;
            bytes
        }
    };
    Ok(ltlab_engine::error::write_atomic(path, &bytes)?)
}

/// Every registered method's `--method` names with their hyper-parameters and defaults.
fn method_params() -> MethodParams {
    let names = methods::REGISTRY.iter().flat_map(|e| e.names.iter());
    names.map(|&m| (m.to_string(), methods::offered_params(m).unwrap_or_default())).collect()
}

/// The `ltlab eval` reports of a run, by step (unreadable files are skipped).
fn read_evals(dir: &Path) -> Vec<EvalSummary> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<EvalSummary> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| {
            let r: EvalReport = serde_json::from_str(&std::fs::read_to_string(e.path()).ok()?).ok()?;
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

impl LabApp {
    pub fn new(state: LabState, runs_root: PathBuf) -> Self {
        let configs = BUILTIN_PRESETS.iter().map(|(n, _)| n.to_string()).collect();
        let reopen = state.open_runs.clone();
        let mut lab = Lab::new(LabState { open_runs: Vec::new(), ..state }, configs);
        lab.method_params = method_params();
        lab.backends = ["flex", "wgpu", "cuda"].iter().filter(|b| ltlab_engine::backend::BackendKind::parse(b).is_ok_and(|k| k.compiled())).map(|b| b.to_string()).collect();
        let mut app = Self { lab, engines: HashMap::new(), jobs: Jobs::default(), next_id: 1, runs_root };
        for dir in reopen {
            app.open(&dir);
        }
        app
    }

    fn fresh_id(&mut self) -> RunId {
        self.next_id += 1;
        RunId(self.next_id)
    }

    /// Reads the run directory on a job thread (grids, maps and their images can take a while);
    /// the run appears when read.
    fn open(&mut self, dir: &str) {
        if self.lab.runs.iter().any(|r| r.dir == dir) {
            return;
        }
        let id = self.fresh_id();
        self.jobs.open(id, dir);
    }

    /// A new run exactly as its CLI command would start it, in a fresh folder under the runs
    /// root.
    fn start(&mut self, args: &[String]) {
        let config = match crate::cli::train_config(args) {
            Ok(c) => c,
            Err(e) => return self.lab.intake(Intake::Error(format!("start: {e:#}"))),
        };
        let mut out = self.runs_root.join(&config.name);
        let mut k = 2;
        while out.exists() {
            out = self.runs_root.join(format!("{}-{k}", config.name));
            k += 1;
        }
        let id = self.fresh_id();
        let mut run = RunData::new(id, config.name.clone(), out.display().to_string());
        run.methods = config.methods.label();
        run.total_steps = config.steps;
        run.batch = config.batch;
        run.status = ltlab_ui::RunStatus::Starting;
        self.engines.insert(id, engine::spawn(engine::Launch::New { config, out }));
        self.lab.intake(Intake::Opened(run));
    }

    fn execute(&mut self, c: UiCommand) {
        let send = |engines: &HashMap<RunId, EngineHandle>, id: RunId, cmd: Command| {
            if let Some(e) = engines.get(&id) {
                let _ = e.commands.send(cmd);
            }
        };
        match c {
            UiCommand::Start(args) => self.start(&args),
            UiCommand::PreviewData { config, imbalance } => self.jobs.preview(config, imbalance),
            UiCommand::Pause(id) => send(&self.engines, id, Command::Pause),
            UiCommand::Resume(id) => send(&self.engines, id, Command::Resume),
            UiCommand::Stop(id) => send(&self.engines, id, Command::Stop),
            UiCommand::SampleNow(id) => send(&self.engines, id, Command::SampleNow),
            UiCommand::Open(dir) => self.open(&dir),
            UiCommand::LatentMap { run, step, settings } => {
                if let Some(r) = self.lab.run(run) {
                    let dir = r.dir.clone();
                    self.jobs.latent_map(run, &dir, step, &settings);
                }
            }
            UiCommand::Entanglement { run, settings } => {
                if let Some(r) = self.lab.run(run) {
                    let dir = r.dir.clone();
                    self.jobs.entanglement(run, &dir, &settings);
                }
            }
            UiCommand::Transfer { run, settings } => {
                if let Some(r) = self.lab.run(run) {
                    let dir = r.dir.clone();
                    self.jobs.transfer(run, &dir, &settings);
                }
            }
            UiCommand::Sample { run, step, settings } => {
                if let Some(r) = self.lab.run(run) {
                    let dir = r.dir.clone();
                    self.jobs.sample(run, &dir, step, &settings);
                }
            }
            UiCommand::CancelJob(id) => self.jobs.cancel(id),
            UiCommand::Export { path, data } => match write_export(Path::new(&path), data) {
                Ok(()) => self.lab.intake(Intake::Exported(path)),
                Err(e) => self.lab.intake(Intake::Error(format!("export {path}: {e:#}"))),
            },
            UiCommand::Close(id) => {
                self.lab.runs.retain(|r| r.id != id);
                self.lab.selected.remove(&id);
                let dirs: Vec<String> = self.lab.runs.iter().map(|r| r.dir.clone()).collect();
                self.lab.state.open_runs.retain(|d| dirs.contains(d));
            }
        }
    }

    /// Moves every pending engine event into the lab; true while any engine is alive.
    pub fn drain(&mut self) -> bool {
        let mut msgs = Vec::new();
        let mut ended = Vec::new();
        for (&id, e) in &self.engines {
            for ev in e.events.try_iter() {
                if let Event::SamplesWritten { step, path } = &ev {
                    match decode_grid(Path::new(path)) {
                        Ok(g) => msgs.push(Intake::Grid(id, *step, g)),
                        Err(err) => msgs.push(Intake::Error(err.to_string())),
                    }
                }
                if matches!(ev, Event::Finished { .. } | Event::Failed { .. }) {
                    ended.push(id);
                }
                msgs.push(Intake::Engine(id, ev));
            }
        }
        msgs.extend(self.jobs.drain());
        for m in msgs {
            self.lab.intake(m);
        }
        for id in ended {
            if let Some(e) = self.engines.remove(&id) {
                e.join();
            }
        }
        !self.engines.is_empty() || self.jobs.busy()
    }

    /// One frame's UI; the host then carries out the commands.
    pub fn frame(&mut self, ui: &mut egui::Ui) {
        for c in self.lab.ui(ui) {
            self.execute(c);
        }
    }
}

impl eframe::App for LabApp {
    fn logic(&mut self, ctx: &egui::Context, _: &mut eframe::Frame) {
        if self.drain() {
            ctx.request_repaint_after(std::time::Duration::from_millis(100));
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        if let Some(s) = frame.info().cpu_usage {
            self.lab.record_frame(1000.0 * s);
        }
        self.frame(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, &self.lab.state);
    }
}

/// Opens the lab window; runs started from it go under `runs_root`.
pub fn run(runs_root: PathBuf, persistence: Option<PathBuf>, start: bool) -> anyhow::Result<()> {
    let mut options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default().with_title("ltlab").with_inner_size([1400.0, 900.0]),
        ..Default::default()
    };
    if let Some(p) = persistence {
        options.persistence_path = Some(p);
    }
    eframe::run_native(
        "ltlab",
        options,
        Box::new(move |cc| {
            let state: LabState = cc.storage.and_then(|s| eframe::get_value(s, eframe::APP_KEY)).unwrap_or_default();
            let mut app = LabApp::new(state, runs_root);
            if start {
                let args = app.lab.state.new_run.args(&app.lab.method_params);
                app.start(&args);
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("the lab window could not open: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_offers_its_hyper_parameters_with_defaults() {
        let p = method_params();
        let keys = |m: &str| ltlab_ui::lab::params_of(&p, m).iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>();
        // Every name of the registry, the worked example of docs/adding-a-method.md included.
        assert_eq!(p.len(), methods::method_names().len() - 1, "all but ddpm");
        assert_eq!(keys("cb-loss"), ["methods.cb_loss.beta"]);
        assert!(keys("coral").contains(&"methods.coral.weight"), "{:?}", keys("coral"));
        assert!(keys("cbdm").contains(&"methods.cbdm.tau"), "{:?}", keys("cbdm"));
        // OC's mode is the method's name, not a parameter.
        assert!(keys("t2h").iter().all(|k| k.starts_with("methods.oc.") && !k.ends_with(".mode")), "{:?}", keys("t2h"));
        // Every default goes back through `--set` unchanged.
        for (m, params) in &p {
            let mut args: Vec<String> = ["ltlab", "train", "--method", m].iter().map(|s| s.to_string()).collect();
            for (k, v) in params {
                args.extend(["--set".to_string(), format!("{k}={v}")]);
            }
            let with_set = crate::cli::train_config(&args).unwrap_or_else(|e| panic!("{m}: {e:#}"));
            let plain = crate::cli::train_config(&args[..4]).unwrap();
            assert_eq!(with_set.methods, plain.methods, "{m}");
        }
    }
}
