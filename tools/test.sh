#!/usr/bin/env bash
# The project's test command (README, CI): all tests on the CPU backend, then a type-check of
# the GPU backends (they need no GPU or CUDA toolkit to build).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked
cargo check -p ltlab --locked --features wgpu,cuda
