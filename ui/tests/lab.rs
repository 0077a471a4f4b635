//! The lab driven frame by frame without threads or files: intake, clicks, keys, commands;
//! snapshots rendered by wgpu on lavapipe (`UPDATE_SNAPSHOTS=1` rewrites tests/snapshots/).

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use ltlab_types::{BatchSampler, EmbedMethod, Event, OcMode, SamplerKind, StepRecord};
use ltlab_types::{GridImage, HostCommand, Intake, RunData, RunId};
use ltlab_ui::{Lab, LabState, UiCommand};

fn record(step: u64, mse: f64) -> StepRecord {
    StepRecord {
        step,
        losses: [("mse".to_string(), mse), ("total".to_string(), mse)].into_iter().collect(),
        // Small t is the hardest to denoise.
        loss_by_t: (0..10).map(|k| Some(mse * (10 - k) as f64 / 5.0)).collect(),
        lr: 1e-3,
        grad_norm: 0.1,
        images_per_s: 50.0,
        uncond_batch: false,
        loss_by_class: Vec::new(),
        transfers: None,
    }
}

fn grid(shade: u8) -> GridImage {
    GridImage { width: 4, height: 2, rgba: vec![shade; 4 * 2 * 4] }
}

fn lab_with_a_run() -> Lab {
    let mut lab = Lab::new(LabState::default());
    lab.offer.configs = vec!["demo-synthetic".into(), "demo-fashion-mnist".into()];
    // The method names a host sends from its registry (their parameters where a test needs them).
    lab.offer.method_params = ["cbdm", "t2h", "h2t", "full", "diffrop", "ccua", "coral", "cm"].iter().map(|m| (m.to_string(), vec![])).collect();
    let mut run = RunData::new(RunId(7), "demo-synthetic", "/runs/demo-synthetic");
    run.header.total_steps = 1000;
    run.header.batch = 32;
    lab.intake(Intake::Opened(Box::new(run)));
    lab.intake(Intake::Engine(RunId(7), Event::Started { run_dir: "/runs/demo-synthetic".into(), first_step: 0, total_steps: 1000 }));
    for s in 1..=600 {
        lab.intake(Intake::Engine(RunId(7), Event::Step(record(s, 1.0 / s as f64))));
    }
    for s in [250, 500] {
        lab.intake(Intake::Engine(RunId(7), Event::CheckpointSaved { step: s, path: String::new() }));
    }
    lab.intake(Intake::Grid(RunId(7), 250, grid(40)));
    lab.intake(Intake::Grid(RunId(7), 500, grid(200)));
    lab
}

/// Ten classes from 500 down to 5 images (ρ = 0.01), 8 × 8 images in each class's colour.
fn preview() -> ltlab_types::DataPreview {
    let counts: Vec<usize> = (0..10).map(|c| (500.0 * 0.01f64.powf(c as f64 / 9.0)).round() as usize).collect();
    let images = (0..10).map(|c| (0..4 * 3 * 64).map(|i| ((i / 64) % 3 * 60 + c * 20) as u8).collect()).collect();
    ltlab_types::DataPreview {
        config: "demo-synthetic".into(),
        imbalance: 0.01,
        dataset: "synthetic".into(),
        class_names: (0..10).map(|c| format!("class {c}")).collect(),
        counts,
        images,
        channels: 3,
        size: 8,
    }
}

fn harness(lab: Lab) -> Harness<'static, (Lab, Vec<UiCommand>)> {
    let mut h = Harness::builder().with_size(egui::vec2(1200.0, 800.0)).build_ui_state(
        |ui, (lab, out): &mut (Lab, Vec<UiCommand>)| {
            let cmds = lab.ui(ui);
            out.extend(cmds);
        },
        (lab, Vec::new()),
    );
    h.run();
    h
}

#[test]
fn a_run_fills_the_panels_and_the_scrubber_moves_them() {
    let mut lab = lab_with_a_run();
    lab.intake(Intake::DataPreview(preview()));
    let mut h = harness(lab);
    // Newest step followed: the grid of step 500 is shown, progress and throughput too.
    h.get_by_label("synthetic · 10 classes · 1242 images · head/tail 500/5");
    h.get_by_label("samples at step 500");
    h.get_by_label("showing step 600");
    h.get_by_label_contains("50.0 images/s");
    h.get_by_label("600 / 1000");
    h.snapshot("lab-training");
    // ← moves to the previous mark (checkpoint/grid 500), again to 250.
    h.key_press(egui::Key::ArrowLeft);
    h.run();
    h.key_press(egui::Key::ArrowLeft);
    h.run();
    assert_eq!(h.state().0.scrub_step(), 250);
    h.get_by_label("samples at step 250");
    // → forward again; "follow newest" brings it back to the end.
    h.key_press(egui::Key::ArrowRight);
    h.run();
    assert_eq!(h.state().0.scrub_step(), 500);
    h.get_by_label("follow newest").click();
    h.run();
    assert_eq!(h.state().0.state.scrub, None);
    assert_eq!(h.state().0.scrub_step(), 600);
}

#[test]
fn start_pause_and_the_cli_command() {
    let mut lab = lab_with_a_run();
    let coral = lab.offer.method_params.iter_mut().find(|(m, _)| m == "coral").unwrap();
    coral.1 = vec![("methods.coral.temperature".into(), "0.1".into()), ("methods.coral.weight".into(), "0.01".into())];
    let mut h = harness(lab);
    // The controls ask once for the config's dataset at ρ.
    let asked: Vec<UiCommand> = h.state().1.iter().filter(|c| matches!(c, UiCommand::Host(HostCommand::PreviewData { .. }))).cloned().collect();
    assert_eq!(asked, [UiCommand::Host(HostCommand::PreviewData { config: "demo-synthetic".into(), imbalance: 0.01 })]);
    h.get_by_label("coral").click();
    h.run();
    // The stacked method's hyper-parameters appear with their defaults; one is changed.
    h.get_by_label("coral hyper-parameters");
    h.get_by_label("weight");
    h.state_mut().0.state.new_run.params.insert("methods.coral.weight".into(), "0.02".into());
    h.run();
    h.get_by_label("Start").click();
    h.run();
    h.get_by_label("Pause").click();
    h.run();
    let cmds: Vec<UiCommand> = h.state().1.iter().filter(|c| !matches!(c, UiCommand::Host(HostCommand::PreviewData { .. }))).cloned().collect();
    let started = match &cmds[0] {
        UiCommand::Host(HostCommand::Start(args)) => args.join(" "),
        other => panic!("{other:?}"),
    };
    assert_eq!(started, "ltlab train --config demo-synthetic --steps 1500 --batch 32 --imbalance 0.01 --seed 0 --method coral --set methods.coral.weight=0.02");
    assert_eq!(cmds[1], UiCommand::Host(HostCommand::Pause(RunId(7))));
    // The engine says it paused: the button turns into Resume.
    h.state_mut().0.intake(Intake::Engine(RunId(7), Event::Paused { step: 600 }));
    h.run();
    h.get_by_label("Resume").click();
    h.run();
    assert_eq!(h.state().1.last(), Some(&UiCommand::Host(HostCommand::Resume(RunId(7)))));
    // A string value and a backend: the shell command quotes what the shell would split.
    let n = &mut h.state_mut().0.state.new_run;
    n.backend_kind = Some(ltlab_types::BackendKind::Wgpu);
    n.extra = "diffusion.label_drop=\"per-sample\"".into();
    let defaults = h.state().0.offer.method_params.clone();
    let cli = h.state().0.state.new_run.cli(&defaults);
    assert!(cli.contains(" --backend wgpu "), "{cli}");
    assert!(cli.ends_with(" --set methods.coral.weight=0.02 --set 'diffusion.label_drop=\"per-sample\"'"), "{cli}");
}

#[test]
fn controls_show_the_class_counts_and_images_of_the_dataset() {
    let mut h = harness(lab_with_a_run());
    h.get_by_label("loading the dataset...");
    // Three classes, 2 × 2 grey images; the preview is drawn head first.
    let preview = ltlab_types::DataPreview {
        config: "demo-synthetic".into(),
        imbalance: 0.01,
        dataset: "synthetic".into(),
        class_names: vec!["disc".into(), "cross".into(), "ring".into()],
        counts: vec![5, 500, 50],
        images: vec![vec![10; 2 * 4], vec![128; 4], vec![250; 3 * 4]],
        channels: 1,
        size: 2,
    };
    h.state_mut().0.intake(Intake::DataPreview(preview));
    h.run();
    h.get_by_label("synthetic · 3 classes · 555 images · head/tail 500/5");
    for c in ["disc", "cross", "ring"] {
        h.get_by_label(c);
    }
    // Another ρ: the old preview stays, marked, until the new one arrives; one more request.
    h.state_mut().0.state.new_run.imbalance = 0.1;
    h.run();
    h.get_by_label("synthetic · 3 classes · 555 images · head/tail 500/5 (updating...)");
    let asked = h.state().1.iter().filter(|c| matches!(c, UiCommand::Host(HostCommand::PreviewData { .. }))).count();
    assert_eq!(asked, 2);
    // The host's errors are listed under the runs.
    h.state_mut().0.intake(Intake::Error("start: no config named demo-x".into()));
    h.run();
    h.get_by_label("start: no config named demo-x");
}

/// Ten classes (the demos) are all in view above what follows the list; a hundred scroll, and
/// the list says so.
#[test]
fn the_class_list_shows_all_ten_classes_and_says_when_it_scrolls() {
    let preview = |classes: usize| ltlab_types::DataPreview {
        config: "demo-synthetic".into(),
        imbalance: 0.01,
        dataset: "synthetic".into(),
        class_names: (0..classes).map(|c| format!("class-{c}")).collect(),
        counts: (0..classes).map(|c| 500 >> (c / 2).min(8)).collect(),
        images: (0..classes).map(|_| vec![128; 3 * 16 * 16 * 4]).collect(),
        channels: 3,
        size: 16,
    };
    let mut h = harness(lab_with_a_run());
    h.state_mut().0.intake(Intake::DataPreview(preview(10)));
    h.run();
    let below = h.get_by_label("methods (stacked on the config's):").rect().min.y;
    for c in 0..10 {
        let r = h.get_by_label(&format!("class-{c}")).rect();
        assert!(r.max.y <= below, "class-{c} ends at {} under the list's end {below}", r.max.y);
    }
    assert!(h.query_by_label_contains("scroll the list").is_none());
    h.state_mut().0.intake(Intake::DataPreview(preview(100)));
    h.run();
    h.get_by_label("showing 10 of 100 classes: scroll the list for the rest");
}

#[test]
fn two_runs_side_by_side_and_state_round_trips() {
    let mut lab = lab_with_a_run();
    let mut other = RunData::new(RunId(8), "demo-synthetic-coral", "/runs/coral");
    other.header.methods = "coral".into();
    lab.intake(Intake::Opened(Box::new(other)));
    lab.intake(Intake::Grid(RunId(8), 500, grid(90)));
    let mut h = harness(lab);
    // Both grids at the same step, next to each other.
    assert_eq!(h.query_all_by_label("samples at step 500").count(), 2);
    // Unselecting one run leaves one grid.
    h.get_by_label("demo-synthetic-coral").click();
    h.run();
    assert_eq!(h.query_all_by_label("samples at step 500").count(), 1);
    let state = h.state().0.state.clone();
    assert_eq!(state.open_runs, ["/runs/demo-synthetic", "/runs/coral"]);
    let json = serde_json::to_string(&state).unwrap();
    assert_eq!(serde_json::from_str::<LabState>(&json).unwrap(), state);
}

/// A study's runs are grouped by method; a group's checkbox shows or hides all of its runs.
#[test]
fn runs_are_grouped_by_method_and_a_group_toggles_at_once() {
    let mut lab = lab_with_a_run();
    for (id, name) in [(8, "coral-a"), (9, "coral-b")] {
        let mut r = RunData::new(RunId(id), name, format!("/runs/{name}"));
        r.header.methods = "coral".into();
        lab.intake(Intake::Opened(Box::new(r)));
    }
    let mut h = harness(lab);
    h.get_by_label("2 runs, 2 shown");
    h.get_by_label("1 run, 1 shown");
    // The group's checkbox comes after the new-run controls' "coral" method checkbox.
    h.get_all_by_label("coral").last().unwrap().click();
    h.run();
    h.get_by_label("2 runs, 0 shown");
    let selected: Vec<u64> = h.state().0.selected.iter().map(|r| r.0).collect();
    assert_eq!(selected, [7], "only the DDPM run stays shown");
    h.get_all_by_label("coral").last().unwrap().click();
    h.run();
    assert_eq!(h.state().0.selected.len(), 3);
}

fn latent_map(step: u64) -> ltlab_types::LatentMap {
    // Three classes of 20 points on three circles' centres.
    let labels: Vec<usize> = (0..60).map(|i| i / 20).collect();
    let xy: Vec<f32> = (0..60).flat_map(|i| [(i / 20) as f32 * 10.0 + (i % 5) as f32 * 0.1, (i % 20) as f32 * 0.1]).collect();
    ltlab_types::LatentMap {
        step,
        t: 100,
        method: EmbedMethod::Umap,
        conditional: true,
        per_class: 100,
        class_names: vec!["head".into(), "mid".into(), "tail".into()],
        train_counts: vec![500, 50, 5],
        labels,
        indices: (0..60).collect(),
        xy,
        entanglement: ltlab_types::Entanglement { step, t: 100, k: 10, per_class: 100, purity: vec![0.9, 0.6, 0.3], silhouette: vec![0.5, 0.2, -0.1] },
        images: Some(ltlab_types::Thumbnails { channels: 1, size: 2, pixels: vec![128; 60 * 4] }),
    }
}

#[test]
fn latent_map_job_progress_cancel_and_result() {
    let mut h = harness(lab_with_a_run());
    h.get_by_label("Latent map").click();
    h.run();
    // No map yet at the newest checkpoint (500): one click asks the host for it.
    h.get_by_label("Compute umap at step 500").click();
    h.run();
    let cmd = h.state().1.last().cloned().unwrap();
    match cmd {
        UiCommand::Host(HostCommand::LatentMap { run, step, settings }) => {
            assert_eq!((run, step, settings.method, settings.t, settings.per_class), (RunId(7), 500, EmbedMethod::Umap, 100, 100));
        }
        other => panic!("{other:?}"),
    }
    // The host's job reports progress with a preview; Cancel asks to stop it.
    let map = latent_map(500);
    let view = ltlab_types::JobView {
        id: 3,
        run: RunId(7),
        label: "umap at step 500".into(),
        progress: 0.4,
        preview: Some((map.labels.clone(), map.xy.clone())),
        kind: ltlab_types::JobKind::Latent,
    };
    h.state_mut().0.intake(Intake::Job(view));
    h.run();
    h.get_by_label("umap at step 500 40 %");
    h.get_by_label("Cancel").click();
    h.run();
    assert_eq!(h.state().1.last(), Some(&UiCommand::Host(HostCommand::CancelJob(3))));
    // The result arrives: the map, its legend with training counts and the entanglement table.
    h.state_mut().0.intake(Intake::Latent(RunId(7), map));
    h.state_mut().0.intake(Intake::JobEnded(3));
    h.run();
    h.get_by_label("umap of 60 images at step 500, t = 100");
    h.get_by_label("2 tail (5)");
    assert!(h.state().0.jobs.is_empty());
    h.snapshot("lab-latent-map");
    // Scrubbing to the first checkpoint shows that there is no map there yet.
    h.key_press(egui::Key::ArrowLeft);
    h.run();
    h.key_press(egui::Key::ArrowLeft);
    h.run();
    h.get_by_label("Compute umap at step 250");
    // Other settings are another map.
    h.key_press(egui::Key::ArrowRight);
    h.run();
    h.get_by_label("umap of 60 images at step 500, t = 100");
    h.state_mut().0.state.latent.method = EmbedMethod::Tsne;
    h.run();
    h.get_by_label("Compute tsne at step 500");
}

#[test]
fn compare_shows_differing_config_keys_and_metrics() {
    let mut lab = lab_with_a_run();
    lab.runs[0].header.config_text = "name = \"ddpm\"\nseed = 0\n[train]\nsteps = 1000\n".into();
    let mut other = RunData::new(RunId(8), "coral", "/runs/coral");
    other.header.config_text = "name = \"coral\"\nseed = 0\n[train]\nsteps = 1000\n[methods]\ncoral = 0.1\n".into();
    other.header.checkpoints.insert(500);
    lab.intake(Intake::Opened(Box::new(other)));
    let eval = |step, fid| ltlab_types::EvalSummary {
        step,
        label: "domain · ddim:20 · ω 0 · 1000 samples".into(),
        fid,
        kid: 0.1,
        precision: 0.5,
        recall: 0.6,
        class_fid: vec![Some(10.0), Some(20.0)],
        splits: vec![("many".into(), Some(8.0), Some(9.0))],
    };
    lab.runs[0].header.evals = vec![eval(500, 12.5)];
    lab.runs[1].header.evals = vec![eval(500, 11.25)];
    let mut h = harness(lab);
    h.get_by_label("Compare").click();
    h.run();
    // Only the keys that differ: name and methods.coral, not seed or train.steps.
    h.get_by_label("methods.coral");
    h.get_by_label("name");
    assert!(h.query_by_label("train.steps").is_none());
    h.get_by_label("12.500");
    h.get_by_label("11.250");
    h.get_by_label("many mean class FID");
    // The grid of the scrubbed step under the numbers (the other run has none).
    h.get_by_label("samples at step 500");
    h.snapshot("lab-compare");
}

#[test]
fn transfer_view_asks_for_p_of_t_and_shows_the_swaps_made() {
    let mut lab = lab_with_a_run();
    // The run trained with T2H: its records carry the swaps (2 of 8 samples in bucket 0, 0 → 1).
    let mut rec = record(601, 0.01);
    let mut samples = vec![0u32; 10];
    let mut swaps = vec![0u32; 10];
    samples[0] = 8;
    swaps[0] = 2;
    rec.transfers = Some(ltlab_types::TransferCounts { samples_by_t: samples, swaps_by_t: swaps, pairs: vec![(0, 1, 2)] });
    lab.intake(Intake::Engine(RunId(7), Event::Step(rec)));
    let mut h = harness(lab);
    h.get_by_label("Transfer (OC)").click();
    h.run();
    h.get_by_label("Compute P(t)").click();
    h.run();
    let settings = match h.state().1.last().cloned().unwrap() {
        UiCommand::Host(HostCommand::Transfer { run, settings }) => {
            assert_eq!(run, RunId(7));
            settings
        }
        other => panic!("{other:?}"),
    };
    assert_eq!((settings.mode, settings.sampler, settings.batch, settings.matrix_t), (OcMode::T2h, BatchSampler::Balanced, 128, 300));
    let analysis = ltlab_types::TransferAnalysis {
        mode: OcMode::T2h,
        sampler: BatchSampler::Balanced,
        batch: 128,
        t: vec![0, 500, 990],
        p_transfer: vec![0.0, 0.2, 0.5],
        per_class: vec![vec![Some(0.0), Some(0.0)], vec![Some(0.1), Some(0.3)], vec![Some(0.4), None]],
        matrix_t: 300,
        matrix: vec![Some(vec![0.9, 0.1]), None],
        timesteps: 1000,
    };
    h.state_mut().0.intake(Intake::Transfer(RunId(7), analysis));
    h.run();
    h.get_by_label("Recompute");
    h.get_by_label_contains("class -> class at t = 300");
    h.get_by_label_contains("swaps made by demo-synthetic up to step 601");
    // Both matrices have their colour scale.
    h.get_by_label("predicted: colour = share of the row's targets, from 0 to 1 (grey: none)");
    h.get_by_label("realised: colour = share of the row's targets, from 0 to 1 (grey: none)");
    h.snapshot("lab-transfer");
}

#[test]
fn grids_sampled_at_view_time_with_other_settings() {
    let mut h = harness(lab_with_a_run());
    h.get_by_label("sampled now").click();
    h.run();
    // No grid with these settings at the newest checkpoint: one click asks the host for it.
    h.state_mut().0.state.grids.sample.omega = 1.5;
    h.run();
    h.get_by_label("Sample step 500").click();
    h.run();
    let settings = match h.state().1.last().cloned().unwrap() {
        UiCommand::Host(HostCommand::Sample { run, step, settings }) => {
            assert_eq!((run, step), (RunId(7), 500));
            settings
        }
        other => panic!("{other:?}"),
    };
    assert_eq!((settings.sampler, settings.omega, settings.per_class), (SamplerKind::parse("ddim:50:clip").unwrap(), 1.5, 8));
    assert_eq!(settings.cli("runs/demo", 500), "ltlab sample --run runs/demo --step 500 --per-class 8 --sampler ddim:50:clip --omega 1.5");
    // The job's progress with Cancel, then its grid.
    let view =
        ltlab_types::JobView { id: 4, run: RunId(7), label: "sampling step 500".into(), progress: 0.25, preview: None, kind: ltlab_types::JobKind::Sample };
    h.state_mut().0.intake(Intake::Job(view));
    h.run();
    h.get_by_label("sampling step 500 25 %");
    h.get_by_label("Cancel").click();
    h.run();
    assert_eq!(h.state().1.last(), Some(&UiCommand::Host(HostCommand::CancelJob(4))));
    h.state_mut().0.intake(Intake::ViewGrid(RunId(7), ltlab_types::ViewGrid { step: 500, settings, image: grid(120) }));
    h.state_mut().0.intake(Intake::JobEnded(4));
    h.run();
    h.get_by_label("step 500 · ddim:50:clip · ω 1.5 · 8 per class");
    // Scrubbed back to checkpoint 250, or another ω: not sampled yet.
    h.key_press(egui::Key::ArrowLeft);
    h.run();
    h.key_press(egui::Key::ArrowLeft);
    h.run();
    h.get_by_label("Sample step 250");
    h.state_mut().0.state.scrub = None;
    h.state_mut().0.state.grids.sample.omega = 3.0;
    h.run();
    h.get_by_label("Sample step 500");
    // DDPM from the sampler menu: the command carries what `--sampler ddpm:clip` parses to.
    h.get_by_value("ddim").click();
    h.run();
    // The menu's entry, drawn after the run list's "ddpm" group.
    h.get_all_by_label("ddpm").last().expect("the sampler menu is open").click();
    h.run();
    h.get_by_label("Sample step 500").click();
    h.run();
    match h.state().1.last().cloned().unwrap() {
        UiCommand::Host(HostCommand::Sample { settings, .. }) => assert_eq!(settings.sampler, SamplerKind::parse("ddpm:clip").unwrap()),
        other => panic!("{other:?}"),
    }
    // Back to the grids written in training.
    h.get_by_label("written in training").click();
    h.run();
    h.get_by_label("samples at step 500");
}

#[test]
fn export_menu_writes_the_plots_and_tables_on_screen() {
    let mut h = harness(lab_with_a_run());
    h.run();
    h.get_by_label("Export").click();
    h.run();
    // The training view's two plots, each as SVG or CSV.
    h.get_by_label("loss-curves");
    h.get_by_label("loss-by-t");
    h.query_all_by_label("CSV").next().unwrap().click();
    h.run();
    let (path, text) = match h.state().1.last().cloned().unwrap() {
        UiCommand::Export { path, data: ltlab_ui::ExportData::Text(t) } => (path, t),
        other => panic!("{other:?}"),
    };
    assert_eq!(path, "exports/training-loss-curves-step600.csv");
    // Header, then the raw and smoothed series of both terms: 4 × 600 points.
    // The log axis is for the eye: the file holds the losses themselves (1/2 at step 2).
    assert!(text.starts_with("series,step,loss\n"), "{}", &text[..60]);
    assert!(text.contains("\nraw,2,0.5\n"), "{}", &text[..80]);
    assert_eq!(text.lines().count(), 1 + 4 * 600);
    assert!(text.contains("\ndemo-synthetic · mse,600,"));
    // The host reports the file written.
    h.state_mut().0.intake(Intake::Exported(path));
    h.run();
    h.get_by_label("wrote exports/training-loss-curves-step600.csv");
    h.get_by_label("Export").click();
    h.run();
    h.query_all_by_label("SVG").nth(1).unwrap().click();
    h.run();
    match h.state().1.last().cloned().unwrap() {
        UiCommand::Export { path, data: ltlab_ui::ExportData::Text(t) } => {
            assert_eq!(path, "exports/training-loss-by-t-step600.svg");
            assert!(t.starts_with("<svg") && t.contains("polyline"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_backend_choice_lists_this_hosts_devices_and_prefers_a_real_gpu() {
    use ltlab_types::{BackendChoice, BackendKind, DeviceClass};
    let cpu = BackendChoice { kind: BackendKind::Flex, device: "CPU, 2 threads".into(), class: DeviceClass::Cpu };
    let lavapipe = BackendChoice { kind: BackendKind::Wgpu, device: "llvmpipe (LLVM 19.1.7, 256 bits)".into(), class: DeviceClass::Software };
    let gpu = BackendChoice { kind: BackendKind::Cuda, device: "NVIDIA H200".into(), class: DeviceClass::Gpu };
    let started = |h: &Harness<'static, (Lab, Vec<UiCommand>)>| match h.state().1.iter().rev().find(|c| matches!(c, UiCommand::Host(HostCommand::Start(_)))) {
        Some(UiCommand::Host(HostCommand::Start(args))) => args.join(" "),
        other => panic!("{other:?}"),
    };
    // A software adapter only: flex stays the default, and the software one is named as such.
    let mut lab = lab_with_a_run();
    lab.set_offer(ltlab_types::Offer { backends: vec![cpu.clone(), lavapipe.clone()], ..lab.offer.clone() });
    let mut h = harness(lab);
    h.get_by_value("flex · CPU, 2 threads").click();
    h.run();
    h.get_by_label("wgpu · llvmpipe (LLVM 19.1.7, 256 bits) · software").click();
    h.run();
    h.get_by_label("Start").click();
    h.run();
    assert!(started(&h).contains(" --backend wgpu"), "{}", started(&h));
    // A host with a real GPU: it is the default, and a choice this host lacks falls back to it.
    let mut lab = lab_with_a_run();
    lab.state.new_run.backend_kind = Some(BackendKind::Wgpu);
    lab.set_offer(ltlab_types::Offer { backends: vec![cpu.clone(), gpu.clone()], ..lab.offer.clone() });
    assert_eq!(lab.state.new_run.backend_kind, Some(BackendKind::Cuda));
    // A choice the host has is kept.
    lab.state.new_run.backend_kind = Some(BackendKind::Flex);
    lab.set_offer(ltlab_types::Offer { backends: vec![cpu, gpu], ..lab.offer.clone() });
    let mut h = harness(lab);
    h.get_by_label("Start").click();
    h.run();
    assert!(started(&h).contains(" --backend flex"), "{}", started(&h));
}
