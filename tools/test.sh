#!/usr/bin/env bash
# The project's test command (README, CI): all tests on the CPU backend, then a type-check of
# the GPU backends (they need no GPU or CUDA toolkit to build), then one summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
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
cargo check -p ltlab --locked --features wgpu,cuda
echo "tests: $passed passed, $failed failed"
