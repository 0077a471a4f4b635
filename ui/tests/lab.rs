//! The lab driven frame by frame without threads or files: intake, clicks, keys, commands.

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use ltlab_types::{Event, StepRecord};
use ltlab_ui::{GridImage, Intake, Lab, LabState, RunData, RunId, UiCommand};

fn record(step: u64, mse: f64) -> StepRecord {
    StepRecord {
        step,
        losses: [("mse".to_string(), mse), ("total".to_string(), mse)].into_iter().collect(),
        loss_by_t: vec![None; 10],
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
    let mut lab = Lab::new(LabState::default(), vec!["demo-synthetic".into(), "demo-fashion-mnist".into()]);
    let mut run = RunData::new(RunId(7), "demo-synthetic", "/runs/demo-synthetic");
    run.total_steps = 1000;
    lab.intake(Intake::Opened(run));
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
    let mut h = harness(lab_with_a_run());
    // Newest step followed: the grid of step 500 is shown, progress and throughput too.
    h.get_by_label("samples at step 500");
    h.get_by_label("showing step 600");
    h.get_by_label_contains("50.0 images/s");
    h.get_by_label("600 / 1000");
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
    let mut h = harness(lab_with_a_run());
    h.get_by_label("coral").click();
    h.run();
    h.get_by_label("Start").click();
    h.run();
    h.get_by_label("Pause").click();
    h.run();
    let cmds = h.state().1.clone();
    let started = match &cmds[0] {
        UiCommand::Start(n) => n.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(started.methods, ["coral"]);
    assert_eq!(started.cli(), "ltlab train --config demo-synthetic --steps 1500 --batch 32 --imbalance 0.01 --seed 0 --method coral");
    assert_eq!(cmds[1], UiCommand::Pause(RunId(7)));
    // The engine says it paused: the button turns into Resume.
    h.state_mut().0.intake(Intake::Engine(RunId(7), Event::Paused { step: 600 }));
    h.run();
    h.get_by_label("Resume").click();
    h.run();
    assert_eq!(h.state().1.last(), Some(&UiCommand::Resume(RunId(7))));
}

#[test]
fn two_runs_side_by_side_and_state_round_trips() {
    let mut lab = lab_with_a_run();
    let mut other = RunData::new(RunId(8), "demo-synthetic-coral", "/runs/coral");
    other.methods = "coral".into();
    lab.intake(Intake::Opened(other));
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
