//! `ltlab bench lab`: the lab's panels on real run directories, without a window. Each frame is
//! what the desktop lab's CPU does per frame (`Lab::ui` in an egui context, then tessellation);
//! the GPU's drawing is not counted.

use crate::host::runs::read_run;
use eframe::egui;
use ltlab_types::{Event, StepRecord};
use ltlab_types::{Intake, RunId};
use ltlab_ui::{Lab, LabState, View};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

pub struct LabBench {
    pub runs: Vec<PathBuf>,
    pub frames: usize,
    pub json: bool,
}

/// p50, p95 and max of frame times in ms.
fn stats(mut ms: Vec<f64>) -> [f64; 3] {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    [at(0.5), at(0.95), *ms.last().expect("frames were drawn")]
}

/// Resident memory of this process in MB (Linux; `None` elsewhere).
fn rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// One frame at `size` with these input events; returns its CPU time in ms.
fn frame(ctx: &egui::Context, lab: &mut Lab, size: egui::Vec2, events: Vec<egui::Event>) -> f64 {
    let input = egui::RawInput { screen_rect: Some(egui::Rect::from_min_size(egui::Pos2::ZERO, size)), events, ..Default::default() };
    let t0 = Instant::now();
    let mut out = ctx.run_ui(input, |ui| {
        lab.ui(ui);
    });
    let _meshes = ctx.tessellate(std::mem::take(&mut out.shapes), out.pixels_per_point);
    let ms = t0.elapsed().as_secs_f64() * 1000.0;
    // There is no GPU to upload the frame's textures to.
    out.textures_delta.clear();
    ms
}

fn key(key: egui::Key) -> egui::Event {
    egui::Event::Key { key, physical_key: None, pressed: true, repeat: false, modifiers: Default::default() }
}

impl LabBench {
    pub fn run(self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.runs.is_empty(), "option `runs`: give at least one run directory");
        anyhow::ensure!(self.frames > 0, "option `frames`: must be at least 1");
        let mut lab = Lab::new(LabState::default());
        let mut open_s = Vec::new();
        for (k, dir) in self.runs.iter().enumerate() {
            let t0 = Instant::now();
            let run = read_run(RunId(k as u64 + 1), dir)?;
            lab.intake(Intake::Opened(Box::new(run)));
            open_s.push(t0.elapsed().as_secs_f64());
        }
        let ctx = egui::Context::default();
        let size = egui::vec2(1600.0, 1000.0);
        // Settle the layout (fonts, first texture uploads) before timing.
        for _ in 0..3 {
            frame(&ctx, &mut lab, size, Vec::new());
        }
        let rss_open = rss_mb();

        // The pointer sweeps across the loss plot (the central area's left two thirds).
        let hover: Vec<f64> = (0..self.frames)
            .map(|i| {
                let f = (i % 100) as f32 / 100.0;
                let at = egui::pos2(size.x * (0.25 + 0.4 * f), size.y * 0.45);
                frame(&ctx, &mut lab, size, vec![egui::Event::PointerMoved(at)])
            })
            .collect();
        // The arrow keys step the scrubber through the marks, 20 one way then 20 back.
        let scrub: Vec<f64> = (0..self.frames)
            .map(|i| frame(&ctx, &mut lab, size, vec![key(if (i / 20) % 2 == 0 { egui::Key::ArrowLeft } else { egui::Key::ArrowRight })]))
            .collect();
        // The compare view (metrics table, config diff, grids side by side), pointer moving.
        lab.state.view = View::Compare;
        let compare: Vec<f64> = (0..self.frames)
            .map(|i| {
                let at = egui::pos2(size.x * (0.25 + 0.6 * ((i % 100) as f32 / 100.0)), size.y * 0.5);
                frame(&ctx, &mut lab, size, vec![egui::Event::PointerMoved(at)])
            })
            .collect();
        lab.state.view = View::Training;
        // A further run trains: 10 steps arrive per frame through the engine-event intake, as
        // from a live run at 10 steps per frame; the pointer stays over the plot.
        let live = RunId(self.runs.len() as u64 + 1);
        let mut run = ltlab_types::RunData::new(live, "live", "(live)");
        run.header.total_steps = (self.frames * 10) as u64;
        lab.intake(Intake::Opened(Box::new(run)));
        lab.intake(Intake::Engine(live, Event::Started { run_dir: "(live)".into(), first_step: 0, total_steps: (self.frames * 10) as u64 }));
        let mut step = 0u64;
        let training: Vec<f64> = (0..self.frames)
            .map(|i| {
                for _ in 0..10 {
                    step += 1;
                    lab.intake(Intake::Engine(live, Event::Step(synthetic_record(step))));
                }
                let at = egui::pos2(size.x * (0.25 + 0.4 * ((i % 100) as f32 / 100.0)), size.y * 0.45);
                frame(&ctx, &mut lab, size, vec![egui::Event::PointerMoved(at)])
            })
            .collect();
        let rss_end = rss_mb();

        let scenarios = [("hover", stats(hover)), ("scrub", stats(scrub)), ("compare", stats(compare)), ("training", stats(training))];
        if self.json {
            let frame_ms: serde_json::Map<String, serde_json::Value> =
                scenarios.iter().map(|(name, [p50, p95, max])| (name.to_string(), json!({"p50": p50, "p95": p95, "max": max}))).collect();
            println!("{}", json!({"open_s": open_s, "frame_ms": frame_ms, "rss_mb": rss_open, "rss_end_mb": rss_end, "frames": self.frames}));
        } else {
            let steps: usize = lab.runs.iter().map(|r| r.last_step() as usize).sum();
            println!("bench lab: {} runs ({steps} logged steps in all), {} frames per scenario, 1600×1000", self.runs.len(), self.frames);
            for (dir, s) in self.runs.iter().zip(&open_s) {
                println!("  opened {} in {s:.2} s", dir.display());
            }
            for (name, [p50, p95, max]) in &scenarios {
                println!("  {name:<9} frame ms: p50 {p50:.1}  p95 {p95:.1}  max {max:.1}");
            }
            println!("  resident memory: {:.0} MB after opening, {:.0} MB at the end", rss_open.unwrap_or(f64::NAN), rss_end.unwrap_or(f64::NAN));
        }
        Ok(())
    }
}

fn synthetic_record(step: u64) -> StepRecord {
    let loss = 0.1 + 0.3 / (1.0 + step as f64 / 500.0) + 0.01 * ((step * 7919 % 101) as f64 / 101.0);
    StepRecord {
        step,
        losses: [("mse".to_string(), loss), ("total".to_string(), loss)].into_iter().collect(),
        loss_by_t: (0..ltlab_types::T_BUCKETS).map(|k| Some(loss * (2.0 - 0.15 * k as f64))).collect(),
        lr: 2e-4,
        grad_norm: 1.0,
        images_per_s: 300.0,
        uncond_batch: false,
        loss_by_class: Vec::new(),
        transfers: None,
    }
}
