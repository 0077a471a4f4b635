#!/usr/bin/env bash
# Where a training step's time goes, in one command: samples `ltlab bench train` with perf
# (cpu-clock, so it works on VMs without hardware counters) and prints the hottest functions by
# self time. Usage: tools/profile.sh [bench train options…] (default: the tiny preset at 16×16,
# batch 32). Needs Debian's linux-perf and a release build with symbols (set here for the run).
set -euo pipefail
cd "$(dirname "$0")/.."
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(--preset tiny --image-size 16 --batch 32 --steps 20 --warmup 2)
command -v perf >/dev/null || apt-get install -y linux-perf
CARGO_PROFILE_RELEASE_DEBUG=line-tables-only cargo build --release --quiet
data=$(mktemp)
perf record -e cpu-clock -F 999 -g -o "$data" -- target/release/ltlab bench train "${args[@]}" 2>&1 | grep -v "^\[ perf"
perf report -i "$data" --no-children --sort symbol --stdio 2>/dev/null | grep -E "^ +[0-9.]+%" | head -40
rm -f "$data"
