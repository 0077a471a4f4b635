//! Builds the web lab into this binary, so that `ltlab serve` from any build serves the complete
//! page with no separate step: the `ltlab-web` crate for wasm32 (release, in `target/web`), then
//! wasm-bindgen's JS glue (the library of the same version as the `wasm-bindgen` in Cargo.lock).
//! Nothing is downloaded but crates; the wasm32 target is added with rustup if missing.

use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-unknown-unknown";

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest.parent().expect("app/ is inside the workspace").to_path_buf();
    for p in ["web/src", "web/Cargo.toml", "web/index.html", "ui/src", "ui/Cargo.toml", "types/src", "types/Cargo.toml", "Cargo.lock", "Cargo.toml"] {
        println!("cargo::rerun-if-changed={}", workspace.join(p).display());
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("web");
    if let Err(e) = build_web(&workspace, &out) {
        panic!("building the web lab (web/) failed: {e}");
    }
}

fn build_web(workspace: &Path, out: &Path) -> Result<(), String> {
    ensure_wasm_target()?;
    // A target folder of its own: the outer build holds a lock on the normal one, and the
    // nested build's flags must not change the outer's fingerprints.
    let target_dir = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace.join("target")).join("web");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args(["build", "--package", "ltlab-web", "--lib", "--release", "--locked", "--target", WASM_TARGET, "--target-dir"])
        .arg(&target_dir);
    // The outer build's settings are for the host, or for clippy; the page is built plainly.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("CARGO_") && !matches!(&*k, "CARGO_HOME" | "CARGO_MAKEFLAGS" | "CARGO_REGISTRIES_CRATES_IO_PROTOCOL" | "CARGO_NET_OFFLINE")
            || matches!(&*k, "RUSTFLAGS" | "RUSTC_WRAPPER" | "RUSTC_WORKSPACE_WRAPPER" | "RUSTDOCFLAGS")
        {
            cmd.env_remove(&*k);
        }
    }
    let status = cmd.status().map_err(|e| format!("cargo did not start: {e}"))?;
    if !status.success() {
        return Err(format!("`cargo build -p ltlab-web --target {WASM_TARGET} --release` failed ({status})"));
    }
    let wasm = target_dir.join(WASM_TARGET).join("release/ltlab_web.wasm");
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(&wasm)
        .web(true)
        .map_err(|e| e.to_string())?
        .out_name("ltlab_web")
        .typescript(false)
        .generate(out)
        .map_err(|e| format!("wasm-bindgen on {}: {e}", wasm.display()))?;
    // The server embeds exactly these two files; JS snippets would need serving too.
    if out.join("snippets").exists() {
        return Err(format!("wasm-bindgen wrote JS snippets ({}): `ltlab serve` does not serve them", out.join("snippets").display()));
    }
    Ok(())
}

/// Adds the wasm32 target with rustup when this toolchain lacks it.
fn ensure_wasm_target() -> Result<(), String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let libdir = Command::new(&rustc).args(["--print", "target-libdir", "--target", WASM_TARGET]).output().map_err(|e| format!("rustc did not start: {e}"))?;
    let dir = PathBuf::from(String::from_utf8_lossy(&libdir.stdout).trim());
    let has_std = std::fs::read_dir(&dir).is_ok_and(|d| d.filter_map(|e| e.ok()).any(|e| e.file_name().to_string_lossy().starts_with("libstd-")));
    if has_std {
        return Ok(());
    }
    let status = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status()
        .map_err(|e| format!("the {WASM_TARGET} target is missing and rustup did not start: {e}"))?;
    if !status.success() {
        return Err(format!("the {WASM_TARGET} target is missing and `rustup target add {WASM_TARGET}` failed"));
    }
    Ok(())
}
