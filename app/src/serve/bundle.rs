//! The web lab's files, built into the binary by `build.rs`.

pub const INDEX_HTML: &str = include_str!("../../../web/index.html");
pub static JS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/web/ltlab_web.js"));
pub static WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/web/ltlab_web_bg.wasm"));
