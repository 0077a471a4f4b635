//! The `.pth` Inception reader (burn-store's PyTorch reader: zip, pickle, tensor records),
//! loading into the network's first block so each input costs milliseconds, not a whole net.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ltlab_engine::eval::inception::{BasicConv, load_pth};

type B = ltlab_engine::burn::backend::Flex;

fuzz_target!(|data: &[u8]| {
    let file = std::env::temp_dir().join(format!("ltlab-fuzz-pth-{}.pth", std::process::id()));
    if std::fs::write(&file, data).is_ok() {
        let mut block = BasicConv::<B>::sq(3, 32, 3, 2, 0, &Default::default());
        let _ = load_pth(&mut block, &file, &[(r"^Conv2d_1a_3x3\.", "")]);
    }
});
