//! The web lab: `ltlab-ui`'s panels in a browser, fed by `ltlab serve`. No Burn: the server runs
//! the engine host; the page reads runs and live messages and sends commands.

pub mod client;
pub mod download;
#[cfg(target_arch = "wasm32")]
mod web;
