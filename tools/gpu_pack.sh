#!/usr/bin/env bash
# Packs the release binary with the CUDA backend for a GPU machine that can receive only a
# small upload (the device tool carries at most 64 MiB; the stripped binary is ≈ 94 MB, gzipped
# ≈ 25 MB): build, strip, gzip → target/gpu/ltlab.gz. On the GPU machine:
#
#   gunzip -c target/gpu/ltlab.gz > /tmp/ltlab && chmod +x /tmp/ltlab
#   /tmp/ltlab bench methods --preset paper --batch 128 --backend cuda
#   python3 tools/peer_bench.py --ltlab /tmp/ltlab --preset paper --batch 128 --device cuda
#
# The CUDA driver and NVRTC are loaded at run time: the build needs no CUDA toolkit.
set -euo pipefail
cd "$(dirname "$0")/.."
# Its own target folder: the CUDA feature changes Burn's features, which would otherwise
# rebuild the CPU-only release binary's whole stack next time.
cargo build --release -p ltlab --features cuda --locked --target-dir target/cuda
mkdir -p target/gpu
strip -o target/gpu/ltlab target/cuda/release/ltlab
gzip -9 -f target/gpu/ltlab
ls -l target/gpu/ltlab.gz
