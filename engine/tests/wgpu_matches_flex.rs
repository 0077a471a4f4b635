//! wgpu trains as flex does. The same micro network, seed and batches give the same step-1 loss
//! and gradient norm on both; a wgpu run stopped at a checkpoint and resumed goes on as flex's
//! uninterrupted run; and its grid looks the same. On this project's CI wgpu is lavapipe (Vulkan
//! on the CPU): a real driver with real shader compilation, only slow. Its own test binary: flex's
//! generator is one per process, and other tests drawing from it would change this one's draws.
#![cfg(feature = "wgpu")]

use ltlab_engine::backend::{self, BackendKind};
use ltlab_engine::data::{DataConfig, DatasetKind};
use ltlab_engine::diffusion::SamplerKind;
use ltlab_engine::model::Preset;
use ltlab_engine::train::config::{LogConfig, ModelConfig, TrainConfig};
use ltlab_engine::train::engine::{Launch, spawn};
use ltlab_engine::train::run_dir::RunDir;
use ltlab_types::{Event, StepRecord};
use std::path::Path;
use std::time::{Duration, Instant};

const STEPS: u64 = 4;

fn config(backend: BackendKind, steps: u64) -> TrainConfig {
    let mut data = DataConfig::new(DatasetKind::Synthetic, 0.5);
    data.image_size = Some(8);
    data.synthetic_per_class = 4;
    let log = LogConfig {
        checkpoint_every: 2,
        sample_every: 0,
        grid_per_class: 2,
        grid_sampler: SamplerKind::Ddim { steps: 4, final_x0: true, clip_x0: true },
        ..Default::default()
    };
    // Dropout off: its masks come from each backend's own generator.
    TrainConfig { seed: 11, backend, log, ..TrainConfig::new(format!("micro-{}", backend.name()), data, ModelConfig::new(Preset::Micro), steps, 4) }
}

/// Runs `launch` to its end; the steps it logged and how long it took.
fn train(launch: Launch) -> (Vec<StepRecord>, Duration) {
    let started = Instant::now();
    let h = spawn(launch);
    let mut steps = Vec::new();
    loop {
        match h.events.recv_timeout(Duration::from_secs(900)).expect("an event within 15 minutes") {
            Event::Step(r) => steps.push(r),
            Event::Finished { stopped, .. } => {
                assert!(!stopped);
                break;
            }
            Event::Failed { message, .. } => panic!("{message}"),
            _ => {}
        }
    }
    h.join();
    (steps, started.elapsed())
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(1e-12)
}

fn grid(dir: &Path, step: u64) -> image::RgbaImage {
    image::open(RunDir::open(dir).unwrap().samples_path(step)).unwrap().to_rgba8()
}

#[test]
fn a_micro_run_on_wgpu_trains_resumes_and_samples_as_on_flex() {
    let adapter = backend::probe(BackendKind::Wgpu).expect("a wgpu adapter (the test command installs lavapipe)");
    let tmp = tempfile::tempdir().unwrap();
    let (flex_dir, wgpu_dir) = (tmp.path().join("flex"), tmp.path().join("wgpu"));
    let (flex, flex_time) = train(Launch::New { config: config(BackendKind::Flex, STEPS), out: flex_dir.clone() });
    // wgpu: two steps (checkpoint), then a resume to the end.
    let (mut gpu, first_time) = train(Launch::New { config: config(BackendKind::Wgpu, 2), out: wgpu_dir.clone() });
    let (resumed, resume_time) = train(Launch::Resume { dir: wgpu_dir.clone(), steps: Some(STEPS), from: None });
    assert_eq!(resumed.first().map(|r| r.step), Some(3), "the resume goes on from the step-2 checkpoint");
    gpu.extend(resumed);
    eprintln!(
        "wgpu on {} ({:?}): 2 steps + grid {:.1} s, resume + 2 steps + grid {:.1} s; flex {STEPS} steps + 2 grids {:.1} s",
        adapter.device,
        adapter.class,
        first_time.as_secs_f64(),
        resume_time.as_secs_f64(),
        flex_time.as_secs_f64()
    );
    assert_eq!(gpu.iter().map(|r| r.step).collect::<Vec<_>>(), (1..=STEPS).collect::<Vec<_>>());
    for (f, g) in flex.iter().zip(&gpu) {
        let (lf, lg) = (f.losses["mse"], g.losses["mse"]);
        eprintln!("step {}: loss flex {lf:.7} wgpu {lg:.7}, grad norm flex {:.7} wgpu {:.7}", f.step, f.grad_norm, g.grad_norm);
        // Step 1 is the same network on the same batch; later steps add Adam's updates of
        // last-bit differences, still far inside the tolerance at this length.
        assert!(rel(lf, lg) <= 1e-3, "step {}: loss {lf} on flex, {lg} on wgpu", f.step);
        assert!(rel(f.grad_norm, g.grad_norm) <= 1e-3, "step {}: gradient norm {} on flex, {} on wgpu", f.step, f.grad_norm, g.grad_norm);
    }
    // The run record names the adapter.
    let record = RunDir::open(&wgpu_dir).unwrap().read_config().unwrap().record.unwrap();
    assert_eq!(record.backend, "wgpu");
    assert!(record.device.starts_with(&adapter.device), "{}", record.device);
    // The end-of-run grids: the same fixed noise through DDIM-4 on each backend's EMA.
    let (a, b) = (grid(&flex_dir, STEPS), grid(&wgpu_dir, STEPS));
    assert_eq!(a.dimensions(), b.dimensions());
    let diffs: Vec<i32> = a.as_raw().iter().zip(b.as_raw()).map(|(&x, &y)| (x as i32 - y as i32).abs()).collect();
    let max = diffs.iter().copied().max().unwrap_or(0);
    let mean = diffs.iter().sum::<i32>() as f64 / diffs.len() as f64;
    eprintln!("grid: max |Δ| {max}/255, mean {mean:.4}");
    assert!(max <= 2 && mean <= 0.05, "grid differs: max {max}, mean {mean}");
    // A grid of an untrained-looking model would pass too if both were blank: this one is not.
    let distinct: std::collections::BTreeSet<u8> = a.as_raw().iter().copied().collect();
    assert!(distinct.len() > 20, "the grid has {} grey levels", distinct.len());
}
