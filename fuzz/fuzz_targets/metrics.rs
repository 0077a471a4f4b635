//! A run's metrics.jsonl (torn lines, garbage, huge numbers).
#![no_main]
use libfuzzer_sys::fuzz_target;
use ltlab_engine::train::run_dir::RunDir;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("ltlab-fuzz-metrics-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let run = RunDir { path: dir.clone() };
    if std::fs::write(run.metrics_path(), data).is_ok() {
        let _ = run.read_metrics();
    }
});
