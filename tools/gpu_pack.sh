#!/usr/bin/env bash
# Packs the release binary with the CUDA backend (and wgpu, in every default build) for a GPU
# machine that can receive only a small upload (the device tool carries at most 64 MiB in all):
# build, strip, gzip → target/gpu/ltlab.gz. On the GPU machine, every measurement in one run:
#
#   bash tools/gpu_check.sh target/gpu/ltlab.gz "$OUT"
#
# The CUDA driver and NVRTC are loaded at run time: the build needs no CUDA toolkit.
set -euo pipefail
cd "$(dirname "$0")/.."
# Its own target folder: the CUDA feature changes Burn's features, which would otherwise
# rebuild the default release binary's whole stack next time.
cargo build --release -p ltlab --features cuda --locked --target-dir target/cuda
mkdir -p target/gpu
strip -o target/gpu/ltlab target/cuda/release/ltlab
gzip -9 -f target/gpu/ltlab
ls -l target/gpu/ltlab.gz
