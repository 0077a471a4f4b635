//! Safetensors checkpoints.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ltlab_engine::train::checkpoint::Checkpoint;

fuzz_target!(|data: &[u8]| {
    let file = std::env::temp_dir().join(format!("ltlab-fuzz-ckpt-{}.safetensors", std::process::id()));
    if std::fs::write(&file, data).is_ok() {
        let _ = Checkpoint::read(&file);
    }
});
