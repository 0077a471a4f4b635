//! CIFAR-10/100 binary records: any bytes are records or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ltlab_engine::data::cifar::{Variant, parse_records};

fuzz_target!(|data: &[u8]| {
    for v in [Variant::Cifar10, Variant::Cifar100] {
        let (mut pixels, mut labels) = (Vec::new(), Vec::new());
        let _ = parse_records(std::path::Path::new("fuzz.bin"), data, v, &mut pixels, &mut labels);
    }
});
