//! The desktop lab: `ltlab-ui`'s panels in an eframe window, fed from run directories and from
//! engine threads (one per live run). Engine events are drained once per frame; nothing here
//! waits on training.

use crate::host::{self, Host};
use eframe::egui;
use ltlab_types::{HostCommand, Intake};
use ltlab_ui::{ExportData, Lab, LabState, UiCommand};
use std::path::{Path, PathBuf};

pub struct LabApp {
    lab: Lab,
    host: Host,
}

/// Writes an export atomically (images as PNG).
fn write_export(path: &Path, data: ExportData) -> anyhow::Result<()> {
    let bytes = match data {
        ExportData::Text(t) => t.into_bytes(),
        ExportData::Image { width, height, rgba } => {
            let img = image::RgbaImage::from_raw(width as u32, height as u32, rgba)
                .ok_or_else(|| anyhow::anyhow!("image of {width} × {height} has the wrong number of pixels"))?;
            let mut bytes = Vec::new();
            img.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)?;
            bytes
        }
    };
    Ok(ltlab_engine::error::write_atomic(path, &bytes)?)
}

impl LabApp {
    pub fn new(state: LabState, runs_root: PathBuf) -> Self {
        let reopen = state.open_runs.clone();
        let mut lab = Lab::new(LabState { open_runs: Vec::new(), ..state });
        lab.set_offer(host::offer());
        let mut app = Self { lab, host: Host::new(runs_root) };
        for dir in reopen {
            app.host.execute(HostCommand::Open(dir));
        }
        app
    }

    fn execute(&mut self, c: UiCommand) {
        match c {
            UiCommand::Host(c) => self.host.execute(c),
            UiCommand::Export { path, data } => match write_export(Path::new(&path), data) {
                Ok(()) => self.lab.intake(Intake::Exported(path)),
                Err(e) => self.lab.intake(Intake::Error(format!("export {path}: {e:#}"))),
            },
            UiCommand::Close(id) => {
                self.lab.close(id);
                self.host.forget(id);
            }
        }
    }

    /// Moves every pending host message into the lab; true while any engine or job is at work.
    pub fn drain(&mut self) -> bool {
        for m in self.host.drain() {
            self.lab.intake(m);
        }
        self.host.busy()
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

/// The desktop lab's options (`ltlab` without a command).
#[derive(clap::Args, Debug)]
pub struct LabArgs {
    /// Where the lab puts the runs it starts.
    #[arg(long, default_value = "runs")]
    runs: PathBuf,
    /// The lab's settings file (default: the platform's app-data folder).
    #[arg(long)]
    settings: Option<PathBuf>,
    /// Open the lab and start the new run its controls hold at once (as if Start was clicked).
    #[arg(long)]
    start: bool,
}

/// Opens the lab window; runs started from it go under `--runs`.
pub fn run(args: LabArgs) -> anyhow::Result<()> {
    let LabArgs { runs: runs_root, settings: persistence, start } = args;
    let mut options =
        eframe::NativeOptions { viewport: egui::ViewportBuilder::default().with_title("ltlab").with_inner_size([1400.0, 900.0]), ..Default::default() };
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
                let args = app.lab.state.new_run.args(&app.lab.offer.method_params);
                app.host.execute(HostCommand::Start(args));
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("the lab window could not open: {e}"))
}
