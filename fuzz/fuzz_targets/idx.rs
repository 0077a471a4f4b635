//! IDX image and label files, raw and gzip-compressed.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ltlab_engine::data::idx::{parse_images, parse_labels, read_maybe_gz};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz-idx");
    let _ = parse_images(path, data);
    let _ = parse_labels(path, data);
    // The same bytes as a (possibly gzip) file on disk.
    let file = std::env::temp_dir().join(format!("ltlab-fuzz-idx-{}", std::process::id()));
    if std::fs::write(&file, data).is_ok()
        && let Ok(bytes) = read_maybe_gz(&file)
    {
        let _ = parse_images(&file, &bytes);
        let _ = parse_labels(&file, &bytes);
    }
});
