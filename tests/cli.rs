//! End-to-end tests of the `ltlab` binary: real files, real processes.

mod common;

use ltlab_engine::diffusion::SamplerKind;
use ltlab_engine::methods::REGISTRY;
use ltlab_engine::train::checkpoint::Checkpoint;
use ltlab_engine::train::run_dir::RunDir;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn ltlab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ltlab"))
}

fn run<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    ltlab().args(args).output().expect("ltlab runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "failed: {}", stderr(o));
    serde_json::from_slice(&o.stdout).expect("JSON on stdout")
}

/// Writes CIFAR binary files with `per_class` images per class (labels cycle 0..C).
fn write_cifar(dir: &Path, cifar100: bool, per_class: usize) {
    let (classes, files): (usize, Vec<&str>) = if cifar100 {
        (100, vec!["train.bin"])
    } else {
        (10, vec!["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"])
    };
    let total = classes * per_class;
    let per_file = total / files.len();
    let mut k = 0usize;
    for f in files {
        let mut w = std::io::BufWriter::new(std::fs::File::create(dir.join(f)).unwrap());
        for _ in 0..per_file {
            let label = (k % classes) as u8;
            if cifar100 {
                w.write_all(&[label / 5]).unwrap(); // coarse label first
            }
            w.write_all(&[label]).unwrap();
            let px: Vec<u8> = (0..3072).map(|i| ((i + k * 7) % 251) as u8).collect();
            w.write_all(&px).unwrap();
            k += 1;
        }
    }
}

fn counts(v: &serde_json::Value) -> Vec<u64> {
    v["counts"].as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).collect()
}

#[test]
fn cifar10_and_cifar100_long_tail_counts() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar(dir.path(), false, 5000);
    let root = dir.path().to_str().unwrap();
    let v = json(&run(&["data", "summary", "--dataset", "cifar10", "--root", root, "--imbalance", "0.01", "--json"]));
    assert_eq!(counts(&v), vec![5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]);
    assert_eq!(v["total"], 12_406);
    assert_eq!(v["class_names"][0], "airplane");
    let q0 = v["q"][0].as_f64().unwrap();
    assert!((q0 - 5000.0 / 12406.0).abs() < 1e-12);
    // Same seed, same selection; another seed, another selection.
    let again = json(&run(&["data", "summary", "--dataset", "cifar10", "--root", root, "--imbalance", "0.01", "--json"]));
    assert_eq!(v["fingerprint"], again["fingerprint"]);
    let other = json(&run(&["data", "summary", "--dataset", "cifar10", "--root", root, "--imbalance", "0.01", "--seed", "1", "--json"]));
    assert_ne!(v["fingerprint"], other["fingerprint"]);
    let v = json(&run(&["data", "summary", "--dataset", "cifar10", "--root", root, "--imbalance", "0.001", "--json"]));
    assert_eq!(v["total"], 9_324);

    let dir100 = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir100.path().join("cifar-100-binary")).unwrap();
    write_cifar(&dir100.path().join("cifar-100-binary"), true, 500);
    let v = json(&run(&["data", "summary", "--dataset", "cifar100", "--root", dir100.path().to_str().unwrap(), "--imbalance", "0.01", "--json"]));
    assert_eq!(v["total"], 10_847);
    assert_eq!(counts(&v)[0], 500);
}

#[test]
fn paper_model_has_reference_parameter_count() {
    let v = json(&run(&["model", "info", "--preset", "paper", "--classes", "10", "--json"]));
    assert_eq!(v["parameters"], 35_751_427);
    assert_eq!(v["parameters_without_class_embedding"], 35_746_307);
    // Forward FLOPs of one 32×32 image, as PyTorch's FlopCounterMode counts the same network
    // (`tools/check_flops.py`): 12,443,713,536 in all, 9,117,761,536 on the up path.
    assert_eq!(v["forward_flops_per_image"], 12_443_713_536.0);
    assert_eq!(v["forward_flops_up_path"], 9_117_761_536.0);
    // The backend check's micro network (one level, 16 channels): PyTorch counts the same
    // network (`tools/peer_bench.py`'s `micro`) at 42,371.
    let v = json(&run(&["model", "info", "--preset", "micro", "--classes", "10", "--channels", "3", "--image-size", "8", "--json"]));
    assert_eq!(v["parameters"], 42_371);
}

fn assert_fails(args: &[&str], needles: &[&str]) {
    let o = run(args);
    let err = stderr(&o);
    assert!(!o.status.success(), "{args:?} should fail");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: `{n}` not in: {err}");
    }
}

#[test]
fn bad_input_gives_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    // Truncated CIFAR file: names the file and the record size.
    std::fs::write(dir.path().join("data_batch_1.bin"), vec![0u8; 3073 * 3 + 100]).unwrap();
    assert_fails(&["data", "summary", "--dataset", "cifar10", "--root", root], &["data_batch_1.bin", "3073-byte", "100 extra bytes"]);
    // Wrong IDX magic.
    let idx = tempfile::tempdir().unwrap();
    let mut img = vec![0, 0, 8, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2];
    img.extend([0u8; 4]);
    std::fs::write(idx.path().join("train-images-idx3-ubyte"), &img).unwrap();
    std::fs::write(idx.path().join("train-labels-idx1-ubyte"), [0, 0, 8, 1, 0, 0, 0, 1, 0]).unwrap();
    assert_fails(
        &["data", "summary", "--dataset", "fashion-mnist", "--root", idx.path().to_str().unwrap()],
        &["train-images-idx3-ubyte", "magic 0x00000801", "0x00000803"],
    );
    // Missing root.
    assert_fails(&["data", "summary", "--dataset", "cifar10", "--root", "/nonexistent/cifar"], &["/nonexistent/cifar", "does not exist"]);
    assert_fails(&["data", "summary", "--dataset", "cifar10"], &["--root"]);
    // ρ outside (0, 1].
    assert_fails(&["data", "summary", "--imbalance", "1.5"], &["imbalance", "(0, 1]"]);
    assert_fails(&["data", "summary", "--imbalance", "0"], &["imbalance"]);
    // A class emptied by the profile.
    let folder = tempfile::tempdir().unwrap();
    for class in ["cat", "dog"] {
        let d = folder.path().join(class);
        std::fs::create_dir(&d).unwrap();
        for i in 0..3 {
            image::RgbImage::from_pixel(5, 5, image::Rgb([i * 40, 0, 0])).save(d.join(format!("{i}.png"))).unwrap();
        }
    }
    let froot = folder.path().to_str().unwrap();
    let v = json(&run(&["data", "summary", "--dataset", "folder", "--root", froot, "--imbalance", "0.34", "--json"]));
    assert_eq!(counts(&v), vec![3, 1]);
    assert_fails(&["data", "summary", "--dataset", "folder", "--root", froot, "--imbalance", "0.1"], &["leaves class 1 (`dog`) empty"]);
    // An unreadable image names the file.
    std::fs::write(folder.path().join("cat").join("broken.png"), b"not a png").unwrap();
    assert_fails(&["data", "summary", "--dataset", "folder", "--root", froot, "--imbalance", "1"], &["broken.png", "cannot decode"]);
    // Unknown presets, datasets, samplers, backends; unsupported image size.
    assert_fails(&["model", "info", "--preset", "huge", "--classes", "10"], &["unknown model preset `huge`"]);
    assert_fails(&["data", "summary", "--dataset", "imagenet"], &["unknown dataset `imagenet`"]);
    assert_fails(&["model", "info", "--preset", "paper", "--classes", "10", "--image-size", "28"], &["image size 28", "multiple of 8"]);
    assert_fails(&["train", "--config", "no-such-preset"], &["no-such-preset", "demo-synthetic"]);
    assert_fails(&["train", "--sampler", "brs:2"], &["brs:F"]);
    assert_fails(&["train", "--backend", "tpu"], &["unknown backend `tpu`"]);
    // A config file with a typo names the file and the key.
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "name = 'x'\nsteps = 1\nbatch = 2\nbatchsize = 3\n[data]\ndataset = 'synthetic'\nimbalance = 0.1\n[model]\npreset = 'tiny'\n")
        .unwrap();
    assert_fails(&["train", "--config", cfg.to_str().unwrap()], &["bad.toml", "batchsize"]);
    // Resume of something that is not a run.
    assert_fails(&["train", "--resume", root], &["not a run directory"]);
}

/// `ltlab train` of a tiny run into `out`, JSON progress, and `extra` options.
fn tiny_run_args(out: &str, steps: u32, checkpoint_every: u32, extra: &[&str]) -> Vec<String> {
    let mut a = vec!["train".to_string()];
    a.extend(common::tiny_train_options(steps, checkpoint_every, 0, "ddim:10:clip"));
    a.extend(["--out", out, "--json"].iter().chain(extra).map(|s| s.to_string()));
    a
}

fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// A damaged newest checkpoint is kept aside and the run resumes from the newest one that
/// loads; `--step` resumes from an older one on purpose. Either way the run ends where an
/// uninterrupted one does.
#[test]
fn resume_falls_back_past_a_damaged_checkpoint_and_step_picks_an_older_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let o = run(&tiny_run_args(dir.to_str().unwrap(), 4, 1, &[]));
    assert!(o.status.success(), "{}", stderr(&o));
    let ckpt = |s: u64| dir.join(format!("checkpoints/step-{s:08}.safetensors"));
    let want = Checkpoint::read(&ckpt(4)).unwrap();
    let bytes = std::fs::read(ckpt(4)).unwrap();
    std::fs::write(ckpt(4), &bytes[..bytes.len() / 2]).unwrap();

    let o = run(&["train", "--resume", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("step-00000004.safetensors") && err.contains("resuming from step 3"), "{err}");
    let mut kept = ckpt(4).into_os_string();
    kept.push(".damaged");
    assert!(Path::new(&kept).is_file(), "the damaged file is kept aside");
    let steps: Vec<u64> = metrics(&dir).iter().map(|r| r["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, [1, 2, 3, 4], "every step once");
    assert!(Checkpoint::read(&ckpt(4)).unwrap().tensors == want.tensors, "the same final state as without the damage");

    let o = run(&["train", "--resume", dir.to_str().unwrap(), "--step", "2", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for s in [3, 4] {
        let mut kept = ckpt(s).into_os_string();
        kept.push(".superseded");
        assert!(Path::new(&kept).is_file(), "step {s} kept aside");
    }
    let steps: Vec<u64> = metrics(&dir).iter().map(|r| r["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, [1, 2, 3, 4]);
    assert!(Checkpoint::read(&ckpt(4)).unwrap().tensors == want.tensors);
    assert_fails(&["train", "--resume", dir.to_str().unwrap(), "--step", "7"], &["no checkpoint at step 7", "have: 1, 2, 3, 4"]);
}

/// SIGKILL at random moments (between steps, during a checkpoint, metrics or grid write),
/// resuming each time: every step is logged once, at most one checkpoint interval is lost per
/// kill, no file is left torn or half-written, and the final state is bit-identical to an
/// uninterrupted run's. Three kills here; `LTLAB_KILLS=20` (tools/kill_test.sh) for the full
/// harness, which prints a summary line per kill.
#[test]
fn random_kills_lose_nothing() {
    let kills: usize = std::env::var("LTLAB_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    // Long enough that the kills, spread over it, land in every phase of a run.
    let total = (8 * kills as u64).max(24);
    let (steps, every) = (total as u32, 2u64);
    let tmp = tempfile::tempdir().unwrap();
    let full = tmp.path().join("full");
    let started = std::time::Instant::now();
    let o = run(&tiny_run_args(full.to_str().unwrap(), steps, 2, &["--set", "log.sample_every=3"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let whole_run = started.elapsed();

    let dir = tmp.path().join("killed");
    let fresh = tiny_run_args(dir.to_str().unwrap(), steps, 2, &["--set", "log.sample_every=3"]);
    let resume = ["train", "--resume", dir.to_str().unwrap(), "--json"];
    // A fixed xorshift sequence of kill times, on average a 1/kills of the uninterrupted run's
    // duration: some land in start-up, most in steps and writes.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next_delay = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        whole_run.mul_f64((state % 1000) as f64 / 500.0 / kills as f64)
    };
    let (mut done, mut killed, mut torn_writes) = (false, 0, 0);
    while !done {
        let args: Vec<&str> = if dir.join("config.toml").is_file() { resume.to_vec() } else { fresh.iter().map(String::as_str).collect() };
        let mut child = ltlab().args(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let delay = if killed < kills { Some(next_delay()) } else { None };
        if let Some(d) = delay {
            std::thread::sleep(d);
        }
        if delay.is_some() && child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            child.wait().unwrap();
            killed += 1;
            // What the kill interrupted, and what a resume will redo.
            let logged = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap_or_default();
            let last_logged =
                logged.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()).filter_map(|r| r["step"].as_u64()).max().unwrap_or(0);
            let torn = !logged.is_empty() && !logged.ends_with('\n');
            let temps: Vec<String> = ["checkpoints", "samples", ""]
                .iter()
                .flat_map(|d| std::fs::read_dir(dir.join(d)).into_iter().flatten().flatten())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".tmp"))
                .collect();
            torn_writes += usize::from(torn || !temps.is_empty());
            let newest = std::fs::read_dir(dir.join("checkpoints"))
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.strip_prefix("step-")?.strip_suffix(".safetensors")?.parse::<u64>().ok());
            let newest = newest.max().unwrap_or(0);
            let lost = last_logged.saturating_sub(newest);
            println!(
                "kill {killed} after {delay:?}: last logged step {last_logged}, newest checkpoint {newest}, steps to redo {lost}, torn metrics line {torn}, interrupted writes {temps:?}"
            );
            assert!(lost <= every, "kill {killed}: {lost} steps lost");
        } else {
            let status = child.wait().unwrap();
            assert!(status.success() || !dir.join("config.toml").is_file(), "a resume failed");
            done = status.success() && metrics(&dir).last().is_some_and(|r| r["step"] == total);
        }
    }
    println!("{killed} kills, {torn_writes} of them during a write");
    let steps_logged: Vec<u64> = metrics(&dir).iter().map(|r| r["step"].as_u64().unwrap()).collect();
    assert_eq!(steps_logged, (1..=total).collect::<Vec<u64>>(), "every step once");
    let read = |d: &Path| Checkpoint::read(&d.join(format!("checkpoints/step-{total:08}.safetensors"))).unwrap();
    assert!(read(&dir).tensors == read(&full).tensors, "final state differs from the uninterrupted run");
    // Every file whole: checkpoints load, grids decode, no temp file, nothing kept aside.
    for e in std::fs::read_dir(dir.join("checkpoints")).unwrap().flatten() {
        let p = e.path();
        assert!(p.extension().is_some_and(|x| x == "safetensors"), "stray {}", p.display());
        Checkpoint::read(&p).unwrap();
    }
    for e in std::fs::read_dir(dir.join("samples")).unwrap().flatten() {
        let p = e.path();
        assert!(p.extension().is_some_and(|x| x == "png"), "stray {}", p.display());
        image::open(&p).unwrap_or_else(|err| panic!("{}: {err}", p.display()));
    }
    let top: Vec<String> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert!(top.iter().all(|n| !n.ends_with(".tmp")), "{top:?}");
}

/// A write that fails (here a checkpoint's temp file on a full device, /dev/full) stops the run
/// with an error naming the file and the cause; the previous checkpoint and the metrics stay
/// whole, and a later resume continues from them.
#[test]
fn a_full_disk_stops_the_run_and_keeps_what_was_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let o = run(&tiny_run_args(dir.to_str().unwrap(), 2, 1, &[]));
    assert!(o.status.success(), "{}", stderr(&o));
    let full_tmp = dir.join("checkpoints/.step-00000003.safetensors.tmp");
    std::os::unix::fs::symlink("/dev/full", &full_tmp).unwrap();
    let out = ltlab().args(["train", "--resume", dir.to_str().unwrap(), "--steps", "4", "--json"]).output().unwrap();
    assert!(!out.status.success(), "the run must stop");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(".step-00000003.safetensors.tmp") && err.contains("No space left on device"), "{err}");
    // What was written before stays whole.
    assert_eq!(Checkpoint::read(&dir.join("checkpoints/step-00000002.safetensors")).unwrap().step, 2);
    assert!(!dir.join("checkpoints/step-00000003.safetensors").exists());
    let steps: Vec<u64> = metrics(&dir).iter().map(|r| r["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, [1, 2, 3], "the metrics up to the failed step");
    // Space again: the resume redoes step 3 and finishes.
    std::fs::remove_file(&full_tmp).ok();
    let o = run(&["train", "--resume", dir.to_str().unwrap(), "--steps", "4", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let steps: Vec<u64> = metrics(&dir).iter().map(|r| r["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, [1, 2, 3, 4]);
}

/// A folder the run cannot write in (its checkpoints folder made read-only) stops the run with
/// an error naming the file and the cause, and keeps what was written. Root ignores permissions,
/// so as root the resume runs as `nobody` (setpriv) on a run folder handed to `nobody`.
#[test]
fn a_read_only_folder_stops_the_run_and_keeps_what_was_written() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let o = run(&tiny_run_args(dir.to_str().unwrap(), 2, 1, &[]));
    assert!(o.status.success(), "{}", stderr(&o));
    let ckpts = dir.join("checkpoints");
    let as_root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let mut resume = if as_root {
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(Command::new("chown").args(["-R", "65534:65534"]).arg(&dir).status().unwrap().success());
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", env!("CARGO_BIN_EXE_ltlab")]);
        c
    } else {
        ltlab()
    };
    std::fs::set_permissions(&ckpts, std::fs::Permissions::from_mode(0o555)).unwrap();
    let out = resume.args(["train", "--resume", dir.to_str().unwrap(), "--steps", "4", "--json"]).output().unwrap();
    std::fs::set_permissions(&ckpts, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(!out.status.success(), "the run must stop");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(".step-00000003.safetensors.tmp") && err.contains("Permission denied"), "{err}");
    assert_eq!(Checkpoint::read(&ckpts.join("step-00000002.safetensors")).unwrap().step, 2);
    let steps: Vec<u64> = metrics(&dir).iter().map(|r| r["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, [1, 2, 3], "the metrics up to the failed step");
    let left: Vec<_> = std::fs::read_dir(&ckpts).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(left.len(), 2, "no temp file left: {left:?}");
}

/// `ltlab bench lab` opens real runs without a window and reports every scenario's frame
/// times, the open time of each run and the resident memory, as the JSON keys it documents.
#[test]
fn bench_lab_reports_frame_times_open_times_and_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = ["a", "b"].iter().map(|n| tmp.path().join(n)).collect();
    for d in &dirs {
        let o = run(&tiny_run_args(d.to_str().unwrap(), 3, 1, &[]));
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let v = json(&run(&["bench", "lab", "--runs", dirs[0].to_str().unwrap(), dirs[1].to_str().unwrap(), "--frames", "5", "--json"]));
    assert_eq!(v["open_s"].as_array().unwrap().len(), 2);
    for scenario in ["hover", "scrub", "compare", "training"] {
        let f = &v["frame_ms"][scenario];
        let (p50, p95, max) = (f["p50"].as_f64().unwrap(), f["p95"].as_f64().unwrap(), f["max"].as_f64().unwrap());
        assert!(0.0 < p50 && p50 <= p95 && p95 <= max, "{scenario}: {f}");
    }
    assert!(v["rss_mb"].as_f64().unwrap() > 1.0);
    // A folder that is not a run is an error naming it.
    let o = run(&["bench", "lab", "--runs", tmp.path().to_str().unwrap(), "--frames", "2"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains(tmp.path().to_str().unwrap()), "{}", stderr(&o));
}

#[test]
fn killed_run_resumes_with_identical_losses() {
    let tmp = tempfile::tempdir().unwrap();
    let full: PathBuf = tmp.path().join("full");
    let o = run(&tiny_run_args(full.to_str().unwrap(), 10, 3, &[]));
    assert!(o.status.success(), "{}", stderr(&o));
    let want = metrics(&full);
    assert_eq!(want.len(), 10);
    assert!(full.join("samples/step-00000010.png").is_file());

    // Same run, killed right after its checkpoint at step 3 was announced.
    let part = tmp.path().join("part");
    let mut child = ltlab().args(tiny_run_args(part.to_str().unwrap(), 10, 3, &[])).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    for line in BufReader::new(stdout).lines() {
        if line.unwrap().contains("\"CheckpointSaved\":{\"step\":3") {
            child.kill().unwrap();
            break;
        }
    }
    child.wait().unwrap();
    assert!(part.join("checkpoints/step-00000003.safetensors").is_file());
    assert!(!part.join("checkpoints/step-00000010.safetensors").exists(), "the run was not interrupted");

    let o = run(&["train", "--resume", part.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got = metrics(&part);
    assert_eq!(got.len(), 10, "one record per step, no duplicates");
    for (a, b) in got.iter().zip(&want) {
        assert_eq!(a["step"], b["step"]);
        assert_eq!(a["losses"], b["losses"], "step {}", a["step"]);
        assert_eq!(a["grad_norm"], b["grad_norm"], "step {}", a["step"]);
    }
    let read = |d: &Path| Checkpoint::read(&d.join("checkpoints/step-00000010.safetensors")).unwrap();
    let (a, b) = (read(&part), read(&full));
    assert_eq!(a.step, b.step);
    assert!(a.tensors == b.tensors, "final checkpoints differ (model, EMA, Adam state or fixed noise)");

    // Continue to a new total, then sample from it with both samplers.
    let o = run(&["train", "--resume", part.to_str().unwrap(), "--steps", "12", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(metrics(&part).len(), 12);
    let png = tmp.path().join("s.png");
    for sampler in ["ddim:5", "ddim:3:ref"] {
        let o = run(&[
            "sample",
            "--run",
            part.to_str().unwrap(),
            "--step",
            "9",
            "--per-class",
            "2",
            "--sampler",
            sampler,
            "--omega",
            "1.5",
            "--out",
            png.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let img = image::open(&png).unwrap();
        assert_eq!(img.height() as usize, 10 * 9 + 1);
    }
    assert_fails(&["sample", "--run", part.to_str().unwrap(), "--step", "5", "--out", png.to_str().unwrap()], &["no checkpoint at step 5", "3, 6, 9, 10, 12"]);
    // The lab's "Copy CLI" of a grid sampled now: the grid lands in the run's analysis/, where
    // the lab reads it back with the same settings.
    let settings = ltlab_types::SampleSettings { sampler: SamplerKind::parse("ddim:3:clip").unwrap(), omega: 1.5, per_class: 2 };
    let cli = settings.cli(part.to_str().unwrap(), 9);
    let args: Vec<&str> = cli.strip_prefix("ltlab ").unwrap().split(' ').collect();
    let o = run(&args);
    assert!(o.status.success(), "{cli}: {}", stderr(&o));
    let grids = RunDir::open(&part).unwrap().view_grids();
    let found: Vec<_> = grids.iter().map(|g| (g.step, g.sampler, g.omega, g.per_class)).collect();
    assert_eq!(found, vec![(9, settings.sampler, settings.omega, settings.per_class)], "{cli}");
}

#[test]
fn non_finite_loss_stops_cleanly_and_keeps_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("nan");
    let o = run(&tiny_run_args(out.to_str().unwrap(), 40, 1, &["--lr", "1e30"]));
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("not finite") && err.contains("last good checkpoint"), "{err}");
    let ckpts: Vec<_> = std::fs::read_dir(out.join("checkpoints")).unwrap().collect();
    assert!(!ckpts.is_empty());
}

#[test]
fn method_stack_run_then_class_analysis() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cm");
    let mut args = tiny_run_args(out.to_str().unwrap(), 3, 3, &["--method", "cbdm", "--method", "coral", "--method", "cm"]);
    args.extend(["--set", "methods.coral.weight=0.05", "--set", "diffusion.label_drop_p=0.0"].map(String::from));
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = metrics(&out);
    assert_eq!(m.len(), 3);
    for name in ["mse", "cbdm_reg", "cbdm_com", "coral", "cm", "total"] {
        assert!(m[2]["losses"][name].as_f64().unwrap().is_finite(), "{name}: {}", m[2]["losses"]);
    }
    assert!(m[2]["transfers"]["samples_by_t"].as_array().unwrap().len() == 10, "CM brings T2H along");
    let cfg = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(cfg.contains("[methods.coral]") && cfg.contains("weight = 0.05"), "{cfg}");
    let v = json(&run(&["analyze", "classes", "--run", out.to_str().unwrap(), "--per-class", "3", "--k", "2", "--json"]));
    let rows = v["report"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 10);
    assert!(rows.iter().all(|r| r["loss"].as_f64().unwrap().is_finite() && r["purity_cond"].as_f64().unwrap() <= 1.0));
    assert_eq!(v["report"]["splits"].as_array().unwrap().len(), 3);
    // The latent map headless: JSON, CSV and PNG, with the entanglement kept in the run.
    let stem = tmp.path().join("map");
    for method in ["pca", "umap", "tsne"] {
        let o =
            run(&["analyze", "latents", "--run", out.to_str().unwrap(), "--method", method, "--per-class", "3", "--k", "2", "--out", stem.to_str().unwrap()]);
        assert!(o.status.success(), "{method}: {}", stderr(&o));
        let map: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(stem.with_extension("json")).unwrap()).unwrap();
        assert_eq!((map["method"].as_str(), map["labels"].as_array().unwrap().len(), map["xy"].as_array().unwrap().len()), (Some(method), 30, 60));
        assert!(map["xy"].as_array().unwrap().iter().all(|v| v.as_f64().unwrap().is_finite()), "{method}");
        assert_eq!(map["entanglement"]["purity"].as_array().unwrap().len(), 10);
        assert_eq!(std::fs::read_to_string(stem.with_extension("csv")).unwrap().lines().count(), 31);
        assert!(stem.with_extension("png").is_file());
    }
    let ent: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("analysis/entanglement-t100-cond.json")).unwrap()).unwrap();
    assert_eq!(ent.as_array().unwrap().len(), 1, "one checkpoint, one entry");
    assert_fails(&["analyze", "latents", "--run", out.to_str().unwrap(), "--method", "isomap"], &["method", "isomap"]);
    assert_fails(&["analyze", "latents", "--run", out.to_str().unwrap(), "--t", "5000"], &["t", "5000"]);
    assert_fails(&["analyze", "latents", "--run", out.to_str().unwrap(), "--step", "7"], &["step", "7"]);
    // A θ^g-only grid (the CM ablation) samples too.
    let png = tmp.path().join("base.png");
    let o =
        run(&["sample", "--run", out.to_str().unwrap(), "--per-class", "1", "--sampler", "ddim:5", "--weights", "ema-base", "--out", png.to_str().unwrap()]);
    assert!(o.status.success() && png.is_file(), "{}", stderr(&o));
    assert_fails(&["train", "--config", "demo-synthetic", "--method", "dpo"], &["--method", "dpo", "cbdm"]);
    assert_fails(&["train", "--config", "demo-synthetic", "--set", "methods.cm.lamda=2"], &["lamda"]);
}

#[test]
fn transfer_curve_csv_and_matrix() {
    let o = run(&[
        "analyze",
        "transfer",
        "--dataset",
        "synthetic",
        "--image-size",
        "8",
        "--imbalance",
        "0.1",
        "--mode",
        "t2h",
        "--sampler",
        "balanced",
        "--batch",
        "16",
        "--batches",
        "2",
        "--t-step",
        "250",
        "--matrix-at",
        "900",
        "--csv",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    let (curve, matrix) = text.split_once("\n\n").expect("curve, blank line, matrix");
    let lines: Vec<&str> = curve.lines().collect();
    assert!(lines[0].starts_with("t,p_transfer,"), "{}", lines[0]);
    assert_eq!(lines.len(), 5, "t = 0, 250, 500, 750");
    let p: Vec<f64> = lines[1..].iter().map(|l| l.split(',').nth(1).unwrap().parse().unwrap()).collect();
    assert!(p[0] < 1e-6 && p[3] > p[1], "{p:?}");
    assert_eq!(matrix.lines().count(), 11, "header + 10 classes");
    assert_fails(&["analyze", "transfer", "--mode", "t2h", "--beta", "1"], &["--beta", "full"]);
}

#[test]
fn bench_train_reports_the_network_work_it_did() {
    let v = json(&run(&["bench", "train", "--preset", "tiny", "--image-size", "8", "--batch", "4", "--steps", "1", "--warmup", "0", "--json"]));
    let info = json(&run(&["model", "info", "--preset", "tiny", "--classes", "10", "--channels", "3", "--image-size", "8", "--json"]));
    let per_image = info["forward_flops_per_image"].as_f64().unwrap();
    let want = v["images_per_s"].as_f64().unwrap() * 3.0 * per_image / 1e9;
    let got = v["network_gflops_per_s"].as_f64().unwrap();
    assert!(got > 0.0 && (got - want).abs() <= 1e-9 * want, "{got} vs {want}");
}

/// What `ltlab backends` prints, one JSON object per backend.
fn backends(envs: &[(&str, &str)]) -> Vec<serde_json::Value> {
    let o = ltlab().args(["backends", "--json"]).envs(envs.iter().copied()).output().expect("ltlab runs");
    assert!(o.status.success(), "{}", stderr(&o));
    String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

#[test]
fn backends_name_their_devices_and_wgpu_without_an_adapter_is_a_clear_error() {
    let found = backends(&[]);
    let names: Vec<&str> = found.iter().map(|b| b["backend"].as_str().unwrap()).collect();
    assert_eq!(names, ["flex", "wgpu", "cuda"]);
    assert_eq!(found[0]["available"], true);
    assert_eq!(found[0]["class"], "cpu");
    // The test command installs lavapipe: a software Vulkan adapter, named as one.
    assert_eq!(found[1]["available"], true, "{}", found[1]);
    assert!(found[1]["device"].as_str().is_some_and(|d| !d.is_empty()));
    if found[1]["device"].as_str().unwrap().contains("llvmpipe") {
        assert_eq!(found[1]["class"], "software");
    }
    assert!(found[2]["why"].as_str().unwrap().contains("built without the `cuda` feature"), "{}", found[2]);
    // No Vulkan driver at all: wgpu says what it looked for, and a run on it fails cleanly.
    let no_driver = [("VK_ICD_FILENAMES", "/nonexistent/icd.json"), ("VK_DRIVER_FILES", "/nonexistent/icd.json")];
    let found = backends(&no_driver);
    assert_eq!(found[1]["available"], false);
    let why = found[1]["why"].as_str().unwrap();
    assert!(why.contains("wgpu: no Vulkan adapter") && why.contains("--backend flex"), "{why}");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = ltlab()
        .args(["train", "--preset", "micro", "--image-size", "8", "--steps", "1", "--backend", "wgpu", "--out", out.to_str().unwrap()])
        .envs(no_driver)
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(!o.status.success() && !err.contains("panicked"), "{err}");
    assert!(err.contains("option `backend`: wgpu: no Vulkan adapter"), "{err}");
}

#[test]
fn bench_sample_times_the_sampler_it_was_given() {
    let v = json(&run(&[
        "bench",
        "sample",
        "--preset",
        "micro",
        "--image-size",
        "8",
        "--batch",
        "4",
        "--images",
        "6",
        "--sampler",
        "ddim:3",
        "--omega",
        "1.5",
        "--json",
    ]));
    assert_eq!((v["sampler"].as_str(), v["model_calls"].as_u64(), v["images"].as_u64()), (Some("ddim:3"), Some(3), Some(6)));
    // Guidance runs each image twice per call ([x; x], the class term dropped for the second).
    assert_eq!(v["rows_per_call"], 2);
    let ips = v["images_per_s"].as_f64().unwrap();
    assert!((ips - 6.0 / v["seconds"].as_f64().unwrap()).abs() <= 1e-9 * ips);
    assert!((v["seconds_for_50k"].as_f64().unwrap() - 50_000.0 / ips).abs() <= 1e-6 * 50_000.0 / ips);
    assert_fails(&["bench", "sample", "--sampler", "euler"], &["option `sampler`"]);
    assert_fails(&["bench", "sample", "--images", "0"], &["--images must be at least 1"]);
}

#[test]
fn bench_methods_reports_a_ratio_per_method() {
    let v =
        json(&run(&["bench", "methods", "--preset", "tiny", "--image-size", "8", "--batch", "4", "--rounds", "1", "--steps", "1", "--warmup", "0", "--json"]));
    let rows = v["methods"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["method"].as_str().unwrap()).collect();
    // DDPM, then every registered method under its first name.
    let registered: Vec<&str> = std::iter::once("ddpm").chain(REGISTRY.iter().map(|e| e.names[0])).collect();
    assert_eq!(names, registered);
    assert_eq!(rows[0]["ratio_to_ddpm"].as_f64().unwrap(), 1.0);
    assert!(rows.iter().all(|r| r["seconds_per_step"].as_f64().unwrap() > 0.0));
    // Network work per step relative to DDPM, from the passes each method runs.
    let flops = |m: &str| rows[names.iter().position(|n| *n == m).unwrap()]["flops_ratio_to_ddpm"].as_f64().unwrap();
    assert_eq!([flops("ddpm"), flops("t2h"), flops("coral")], [1.0, 1.0, 1.0], "T2H and CORAL add no pass");
    assert_eq!(flops("ccua"), 2.0, "CCUA: an unconditional pass of every image");
    for m in ["cbdm", "diffrop"] {
        assert!((1.0..=2.0).contains(&flops(m)), "CBDM, DiffROP: at most one extra pass per image");
    }
    let f = &v["forward_flops_per_image"];
    let (trunk, up) = (f["trunk"].as_f64().unwrap(), f["up_path"].as_f64().unwrap());
    assert!((flops("cm") - (1.0 + up / (trunk + up))).abs() < 1e-12, "CM: the up path twice");
}

/// A method registered in the engine is offered by `--method` (help, errors) and trains from
/// the command line, without edits outside its file.
#[test]
fn every_registered_method_is_offered_by_the_cli() {
    let help = run(&["train", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    let refused = run(&["train", "--method", "no-such-method"]);
    assert!(!refused.status.success());
    let refused = stderr(&refused);
    for e in REGISTRY {
        assert!(help.contains(e.summary), "`train --help` lacks {}: {help}", e.key);
        for name in e.names {
            assert!(help.contains(name) && refused.contains(name), "{name}: {refused}");
        }
    }
    // The last registered method trains a step from the CLI, and names its table in the config.
    let last = REGISTRY.last().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = run(&tiny_run_args(out.to_str().unwrap(), 1, 1, &["--method", last.names[0]]));
    assert!(o.status.success(), "{}", stderr(&o));
    let config = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(config.contains(&format!("[methods.{}]", last.key)), "{config}");
    for term in last.terms {
        assert!(metrics(&out)[0]["losses"].get(term).is_some(), "{term}");
    }
}

/// A hand-written version-1.0 `.npy` of float32 rows.
fn write_npy(path: &Path, rows: usize, cols: usize, values: &[f32]) {
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    while (11 + header.len()) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    std::fs::write(path, out).unwrap();
}

#[test]
fn eval_scores_a_run_per_class_with_borrowing_and_agrees_with_its_feature_files() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let out = tmp.path().join("run");
    let o = run(&tiny_run_args(out.to_str().unwrap(), 2, 1, &[]));
    assert!(o.status.success(), "{}", stderr(&o));
    let with_cache = |args: &[&str]| ltlab().env("LTLAB_CACHE", &cache).env_remove("LTLAB_INCEPTION").args(args).output().unwrap();
    let run_dir = out.to_str().unwrap();

    // No domain network yet (and no Inception weights): the error says how to make one.
    let o = with_cache(&["eval", "--run", run_dir, "--samples", "20"]);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("pt_inception-2015-12-05-6726825d.pth") && e.contains("ltlab eval train-features"), "{e}");
    let o = with_cache(&["eval", "train-features", "--run", run_dir, "--epochs", "1", "--width", "8"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("held-out accuracy"));

    let dump = tmp.path().join("dump");
    let args = [
        "eval",
        "--run",
        run_dir,
        "--samples",
        "20",
        "--sampler",
        "ddim:3",
        "--per-class",
        "--kid-subsets",
        "5",
        "--prd-runs",
        "1",
        "--dump-features",
        dump.to_str().unwrap(),
        "--json",
    ];
    let v = json(&with_cache(&args));
    assert!(v["features"].as_str().unwrap().starts_with("domain ("), "{}", v["features"]);
    assert!(v["context"]["reference_cache"].as_str().unwrap().ends_with("(written)"));
    let per_class = v["per_class"].as_array().unwrap();
    assert_eq!(per_class.len(), 10);
    assert!(per_class.iter().all(|c| c["scores"]["fid"].as_f64().unwrap().is_finite() && c["scores"]["n_fake"] == 2));
    let splits: Vec<&str> = v["splits"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(splits, ["Many", "Medium", "Few", "Tail"]);
    let b = &v["borrowing"];
    assert_eq!(b["matrix"].as_array().unwrap().len(), 10);
    // The synthetic set's five recorded resemblances are checked.
    assert_eq!(b["ground_truth"].as_array().unwrap().len(), 5);
    assert!(std::fs::read_dir(out.join("evals")).unwrap().count() == 2, "JSON and PNG in the run");

    // The second time the reference features come from the cache.
    let v2 = json(&with_cache(&args));
    assert!(v2["context"]["reference_cache"].as_str().unwrap().ends_with("(read)"));
    assert_eq!(v2["overall"]["fid"], v["overall"]["fid"]);
    // Metrics over training: one report per checkpoint.
    let all = json(&with_cache(&[
        "eval",
        "--run",
        run_dir,
        "--all-checkpoints",
        "--samples",
        "20",
        "--sampler",
        "ddim:3",
        "--kid-subsets",
        "3",
        "--prd-runs",
        "1",
        "--json",
    ]));
    let steps: Vec<u64> = all.as_array().unwrap().iter().map(|r| r["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, [1, 2]);

    // The dumped features through the feature-file mode give the same FID.
    let (real, fake) = (dump.join("real.npy"), dump.join("fake.npy"));
    let f = json(&run(&[
        "eval",
        "--real-features",
        real.to_str().unwrap(),
        "--fake-features",
        fake.to_str().unwrap(),
        "--kid-subsets",
        "5",
        "--prd-runs",
        "1",
        "--json",
    ]));
    let (a, b) = (f["overall"]["fid"].as_f64().unwrap(), v["overall"]["fid"].as_f64().unwrap());
    assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{a} vs {b}");
    // Mismatched dimensions and bad files are refused by name.
    let other = tmp.path().join("other.npy");
    write_npy(&other, 3, 5, &[0.0; 15]);
    assert_fails(&["eval", "--real-features", real.to_str().unwrap(), "--fake-features", other.to_str().unwrap()], &["other.npy", "5"]);
    std::fs::write(&other, b"not numpy").unwrap();
    assert_fails(&["eval", "--real-features", real.to_str().unwrap(), "--fake-features", other.to_str().unwrap()], &["other.npy", "not a .npy file"]);
    assert_fails(&["eval", "--run", run_dir, "--features", "inception:/nowhere/w.pth"], &["/nowhere/w.pth", "pt_inception-2015-12-05-6726825d.pth"]);
    assert_fails(&["eval", "--run", run_dir, "--features", "clip"], &["features", "clip"]);
    assert_fails(&["eval"], &["--run DIR", "--real DIR"]);
}

#[test]
fn eval_of_an_image_folder_against_itself_is_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("imgs");
    for (c, name) in ["a", "b"].iter().enumerate() {
        std::fs::create_dir_all(dir.join(name)).unwrap();
        for k in 0..6u32 {
            let img = image::RgbImage::from_fn(8, 8, |x, y| image::Rgb([(x * 30 + k * 7) as u8, (y * 30) as u8, (c * 200) as u8]));
            img.save(dir.join(name).join(format!("{k}.png"))).unwrap();
        }
    }
    // A domain network of the 8×8 synthetic set scores any 3-channel 8×8 images.
    let net = tmp.path().join("net.safetensors");
    let o = run(&["eval", "train-features", "--dataset", "synthetic", "--image-size", "8", "--epochs", "1", "--width", "8", "--out", net.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let d = dir.to_str().unwrap();
    let feats = format!("domain:{}", net.display());
    let v = json(&run(&["eval", "--real", d, "--fake", d, "--features", &feats, "--per-class", "--kid-subsets", "3", "--prd-runs", "1", "--json"]));
    assert!(v["overall"]["fid"].as_f64().unwrap().abs() < 1e-6, "{}", v["overall"]);
    assert_eq!(v["per_class"].as_array().unwrap().len(), 2);
    assert_eq!((v["precision"].as_f64(), v["recall"].as_f64()), (Some(1.0), Some(1.0)));
}

/// `tools/inception_fixture.py`'s closed-form weights: u_k = a 32-bit integer hash of
/// (k + FNV-1a(name)) / 2³², exact in both languages, then scaled by the tensor's kind.
fn closed_form_weight(name: &str, shape: &[usize]) -> Vec<f32> {
    const MASK: u64 = 0xFFFF_FFFF;
    let h = name.bytes().fold(0x811C_9DC5u64, |h, b| ((h ^ b as u64) * 0x0100_0193) & MASK);
    let n: usize = shape.iter().product();
    let leaf = name.rsplit('.').next().unwrap();
    (0..n as u64)
        .map(|k| {
            let mut x = (k + h) & MASK;
            for _ in 0..2 {
                x = (((x >> 16) ^ x) * 0x045D_9F3B) & MASK;
            }
            let u = ((x >> 16) ^ x) as f64 / 4_294_967_296.0;
            let v = if name.starts_with("fc.") {
                (u - 0.5) * if leaf == "weight" { 1.0 } else { 0.1 }
            } else if shape.len() == 4 {
                (u - 0.5) * (12.0 * 2.0 / shape[1..].iter().product::<usize>() as f64).sqrt()
            } else if leaf == "weight" || leaf == "running_var" {
                0.8 + 0.4 * u
            } else {
                0.2 * (u - 0.5)
            };
            v as f32
        })
        .collect()
}

/// The FID Inception against pytorch-fid's network, FID and torch-fidelity's IS, without
/// PyTorch: both sides build the same closed-form weights (here as the state dict in a
/// safetensors file), and `tests/fixtures/inception` holds what pytorch-fid and torch-fidelity
/// computed on its two folders of PNGs (`tools/inception_fixture.py`). Pool features and FID
/// within 1e−3 relative, the one-split IS too.
#[test]
fn fid_inception_matches_pytorch_fid_and_torch_fidelity() {
    use safetensors::tensor::{Dtype, TensorView};
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/inception");
    let shapes: Vec<(String, Vec<usize>)> = serde_json::from_str(&std::fs::read_to_string(fx.join("shapes.json")).unwrap()).unwrap();
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> =
        shapes.iter().map(|(k, s)| (k.clone(), s.clone(), closed_form_weight(k, s).iter().flat_map(|v| v.to_le_bytes()).collect())).collect();
    let views: Vec<(String, TensorView)> = bytes.iter().map(|(k, s, b)| (k.clone(), TensorView::new(Dtype::F32, s.clone(), b).unwrap())).collect();
    let tmp = tempfile::tempdir().unwrap();
    let weights = tmp.path().join("closed-form-inception.safetensors");
    std::fs::write(&weights, safetensors::serialize(views, None).unwrap()).unwrap();
    let dump = tmp.path().join("dump");
    let (real, fake) = (fx.join("real"), fx.join("fake"));
    let features = format!("inception:{}", weights.display());
    let v = json(&run(&[
        "eval",
        "--real",
        real.to_str().unwrap(),
        "--fake",
        fake.to_str().unwrap(),
        "--features",
        &features,
        "--dump-features",
        dump.to_str().unwrap(),
        "--kid-subsets",
        "1",
        "--prd-runs",
        "1",
        "--is-splits",
        "1",
        "--json",
    ]));
    let expected: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fx.join("expected.json")).unwrap()).unwrap();
    for set in ["real", "fake"] {
        let ours = ltlab_engine::eval::feature_file::read_features(&dump.join(format!("{set}.npy"))).unwrap();
        let theirs = ltlab_engine::eval::feature_file::read_features(&fx.join(format!("{set}_features.npy"))).unwrap();
        assert_eq!((ours.n, ours.d), (theirs.n, theirs.d));
        let scale = theirs.data.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = ours.data.iter().zip(&theirs.data).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst <= 1e-3 * scale, "{set}: features differ by {worst} (largest {scale})");
    }
    let rel = |ours: f64, key: &str| {
        let theirs = expected[key].as_f64().unwrap();
        ((ours - theirs) / theirs).abs()
    };
    let fid = v["overall"]["fid"].as_f64().unwrap();
    assert!(rel(fid, "fid") < 1e-3, "FID {fid} vs pytorch-fid {}", expected["fid"]);
    let is = v["inception_score"].as_f64().unwrap();
    assert!(rel(is, "inception_score_1_split") < 1e-3, "IS {is} vs torch-fidelity {}", expected["inception_score_1_split"]);
    // The IS says something: far from 1 at this tolerance.
    assert!(is > 1.1, "{is}");
}

/// The largest difference of two .npy arrays of the same shape, and the largest value.
fn npy_diff(a: &Path, b: &Path) -> (f32, f32) {
    let ((sa, va), (sb, vb)) = (ltlab_engine::eval::feature_file::read_array(a).unwrap(), ltlab_engine::eval::feature_file::read_array(b).unwrap());
    assert_eq!(sa, sb, "{} vs {}", a.display(), b.display());
    (va.iter().zip(&vb).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max), vb.iter().fold(0f32, |m, v| m.max(v.abs())))
}

/// Checkpoints written by the reference repositories' own code (tools/reference_fixture.py:
/// pytorch-ddpm's unconditional U-Net, CBDM-pytorch's with its label embedding, every parameter
/// drawn) import as runs whose ε is the reference network's: with the label, without it (CFG's
/// ε(x, ∅)), EMA and raw weights.
#[test]
fn reference_checkpoints_import_and_give_the_reference_epsilon() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/reference");
    let tmp = tempfile::tempdir().unwrap();
    for (repo, conditional, step) in [("cbdm", true, 20), ("pytorch-ddpm", false, 40)] {
        let fx = fixtures.join(repo);
        let ckpt = if conditional { fx.join("ckpt_20.pt") } else { fx.join("ckpt.pt") };
        let out = tmp.path().join(repo);
        let o = run(&["import", ckpt.to_str().unwrap(), "--out", out.to_str().unwrap(), "--dataset", "synthetic", "--image-size", "8"]);
        assert!(o.status.success(), "{repo}: {}", stderr(&o));
        let cfg = RunDir::open(&out).unwrap().read_config().unwrap();
        let arch = cfg.model.architecture.as_ref().unwrap();
        assert_eq!((arch.base_channels, arch.res_blocks, cfg.model.conditional, cfg.steps), (32, 1, conditional, step), "{repo}");
        assert_eq!(arch.channel_mults, if conditional { vec![1, 1] } else { vec![1] }, "{repo}");
        assert_eq!(arch.attn_levels, if conditional { vec![1] } else { vec![] }, "{repo}");
        assert!(cfg.imported.as_ref().unwrap().flagfile.as_ref().unwrap().ends_with("flagfile.txt"));
        let mut cases = vec![("ema", true, "eps_ema"), ("raw", true, "eps_raw")];
        if conditional {
            cases.push(("ema", false, "eps_ema_uncond"));
        }
        for (weights, with_y, expected) in cases {
            let eps = tmp.path().join(format!("{repo}-{expected}.npy"));
            let (x, t, y) = (fx.join("x.npy"), fx.join("t.npy"), fx.join("y.npy"));
            let mut args =
                vec!["model", "forward", "--run", out.to_str().unwrap(), "--weights", weights, "--x", x.to_str().unwrap(), "--t", t.to_str().unwrap()];
            if with_y && conditional {
                args.extend(["--y", y.to_str().unwrap()]);
            }
            args.extend(["--out", eps.to_str().unwrap()]);
            let o = run(&args);
            assert!(o.status.success(), "{repo} {expected}: {}", stderr(&o));
            let (worst, scale) = npy_diff(&eps, &fx.join(format!("{expected}.npy")));
            assert!(worst <= 1e-5 * scale.max(1.0), "{repo} {expected}: ε differs from the reference by {worst} (largest {scale})");
        }
    }
    // An unconditional model takes no labels.
    let fx = fixtures.join("pytorch-ddpm");
    let (x, t, y) = (fx.join("x.npy"), fx.join("t.npy"), fixtures.join("cbdm/y.npy"));
    let eps = tmp.path().join("e.npy");
    let run_dir = tmp.path().join("pytorch-ddpm");
    let args = [
        "model",
        "forward",
        "--run",
        run_dir.to_str().unwrap(),
        "--x",
        x.to_str().unwrap(),
        "--t",
        t.to_str().unwrap(),
        "--y",
        y.to_str().unwrap(),
        "--out",
        eps.to_str().unwrap(),
    ];
    assert_fails(&args, &["`y`", "no classes"]);
    // Wrong inputs are named: x of another shape, t as floats.
    let args = ["model", "forward", "--run", run_dir.to_str().unwrap(), "--x", t.to_str().unwrap(), "--t", t.to_str().unwrap(), "--out", eps.to_str().unwrap()];
    assert_fails(&args, &["t.npy"]);
    let args = ["model", "forward", "--run", run_dir.to_str().unwrap(), "--x", x.to_str().unwrap(), "--t", x.to_str().unwrap(), "--out", eps.to_str().unwrap()];
    assert_fails(&args, &["x.npy", "class labels"]);
    // A folder of ckpt_{step}.pt is one run with a checkpoint per step.
    let folder = tmp.path().join("folder");
    let o = run(&["import", fixtures.join("cbdm").to_str().unwrap(), "--out", folder.to_str().unwrap(), "--dataset", "synthetic", "--image-size", "8"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(RunDir::open(&folder).unwrap().checkpoints().iter().map(|c| c.0).collect::<Vec<_>>(), [20]);
}

/// A file that is not a reference checkpoint, a truncated one, a format that does not fit and
/// data the model was not trained on are errors that name the file or option; nothing is left
/// behind.
#[test]
fn bad_reference_checkpoints_are_named_errors() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/reference");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let import = |src: &Path, extra: &[&str], want: &[&str]| {
        let size = if extra.contains(&"--image-size") { vec![] } else { vec!["--image-size", "8"] };
        let mut args = vec!["import", src.to_str().unwrap(), "--out", out.to_str().unwrap(), "--dataset", "synthetic"];
        args.extend(size.into_iter().chain(extra.iter().copied()));
        assert_fails(&args, want);
        assert!(!out.exists(), "a failed import leaves no run");
    };
    let ckpt = fixtures.join("cbdm/ckpt_20.pt");
    let bytes = std::fs::read(&ckpt).unwrap();
    let truncated = tmp.path().join("truncated.pt");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    import(&truncated, &[], &["truncated.pt", "not a PyTorch checkpoint"]);
    import(&fixtures.join("cbdm/x.npy"), &[], &["x.npy", "not a PyTorch checkpoint"]);
    import(&ckpt, &["--format", "pytorch-ddpm"], &["`format`", "label embedding"]);
    import(&ckpt, &["--format", "dpm"], &["`format`", "dpm"]);
    import(&ckpt, &["--image-size", "9"], &["image size 9", "model.architecture"]);
    import(tmp.path(), &[], &["ckpt_{step}.pt"]);
    // A folder whose second checkpoint is another network: found after the first was written,
    // and the half-made run is removed.
    let mixed = tmp.path().join("mixed");
    std::fs::create_dir(&mixed).unwrap();
    std::fs::copy(&ckpt, mixed.join("ckpt_20.pt")).unwrap();
    std::fs::copy(fixtures.join("pytorch-ddpm/ckpt.pt"), mixed.join("ckpt_40.pt")).unwrap();
    import(&mixed, &["--format", "long-tail"], &["ckpt_40.pt"]);
}
