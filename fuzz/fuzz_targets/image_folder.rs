//! Image-folder files (PNG and JPEG, decompression bombs included) through the folder loaders.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ltlab_engine::data::folder;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("ltlab-fuzz-folder-{}", std::process::id()));
    let class = dir.join("a");
    let _ = std::fs::create_dir_all(&class);
    for ext in ["png", "jpg"] {
        let _ = std::fs::remove_file(class.join("x.png"));
        let _ = std::fs::remove_file(class.join("x.jpg"));
        if std::fs::write(class.join(format!("x.{ext}")), data).is_ok() {
            let _ = folder::load(&dir, 8);
            let _ = folder::load_for_eval(&dir, None);
        }
    }
});
