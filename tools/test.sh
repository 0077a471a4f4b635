#!/usr/bin/env bash
# The project's test command (README, CI): installs what the UI tests need (Mesa's lavapipe
# Vulkan driver for egui_kittest snapshots, Xvfb + ImageMagick for the window smoke test, Chromium
# and chromedriver for the web lab's browser test), checks
# formatting, runs every test on the CPU backend, a short soak of the web lab's server, clippy
# with warnings as errors, the binary's
# module graph, type-checks the GPU backends (no GPU or CUDA toolkit needed) and
# the web lab for wasm32, opens the real lab window under Xvfb, then prints one summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(mesa-vulkan-drivers libvulkan1 libgl1-mesa-dri libegl1 libxkbcommon-x11-0 xvfb imagemagick chromium chromium-driver)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=$([ "$(id -u)" -eq 0 ] && echo "" || echo sudo)
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# House habits first: a formatted tree (rustfmt.toml) and no clippy warnings.
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
cargo fmt --all --check
# Snapshots are made on lavapipe's Vulkan; the GL fallback differs by a few pixels.
export WGPU_BACKEND=vulkan
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --locked 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
passed=$(grep -oE '[0-9]+ passed' "$log" | awk '{s += $1} END {print s + 0}')
failed=$(grep -oE '[0-9]+ failed' "$log" | awk '{s += $1} END {print s + 0}')
if [ "$status" -ne 0 ]; then
  echo "tests: $passed passed, $failed failed"
  exit "$status"
fi
# The web lab's server under load: pages with live channels, runs training, a page that stops
# reading, pages reloading (the long version's figures are in the README).
python3 tools/soak.py --ltlab target/debug/ltlab --short
cargo clippy --workspace --all-targets --locked -- -D warnings
bash tools/module_deps.sh >/dev/null
cargo check -p ltlab --locked --features wgpu,cuda
rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
# The web lab's browser shell compiles only for wasm32: lint it there (the panels with it).
cargo clippy -p ltlab-web --locked --target wasm32-unknown-unknown -- -D warnings
bash tools/smoke_lab.sh target/debug/ltlab
echo "tests: $passed passed, $failed failed"
