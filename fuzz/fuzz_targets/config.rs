//! Run config TOML and `--set KEY=VALUE` overrides.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ltlab_engine::train::TrainConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // The first line is an override, the rest a config; the override also goes on a preset.
    let (set, toml) = text.split_once('\n').unwrap_or((text, ""));
    if let Ok(cfg) = TrainConfig::from_toml(toml, "fuzz.toml") {
        let _ = cfg.with_override(set);
        let _ = cfg.validate();
    }
    if let Ok(preset) = TrainConfig::load("demo-synthetic") {
        let _ = preset.with_override(set);
    }
});
