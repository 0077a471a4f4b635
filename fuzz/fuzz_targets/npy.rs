//! `.npy` feature and label files.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ltlab_engine::eval::feature_file::{read_features, read_labels};

fuzz_target!(|data: &[u8]| {
    let file = std::env::temp_dir().join(format!("ltlab-fuzz-npy-{}.npy", std::process::id()));
    if std::fs::write(&file, data).is_ok() {
        let _ = read_features(&file);
        let _ = read_labels(&file);
    }
});
