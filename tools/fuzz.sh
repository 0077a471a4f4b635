#!/usr/bin/env bash
# Fuzzes every loader of outside files with cargo-fuzz (libFuzzer, nightly): CIFAR binaries,
# IDX (raw and gzip), image-folder PNG/JPEG, safetensors checkpoints, run config TOML and
# --set, metrics.jsonl, .npy features and labels, the .pth Inception reader. Usage: tools/fuzz.sh [SECONDS per target]
# [TARGET…]. Seeds are made here (valid files of each kind); the corpus grows in
# fuzz/corpus/TARGET between runs, so a later run continues where this one stopped; a crash is
# kept in fuzz/artifacts/TARGET and the script fails. Needs: rustup's nightly toolchain and
# `cargo install cargo-fuzz`.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(cifar idx image_folder checkpoint config metrics npy pth)
command -v cargo-fuzz >/dev/null || cargo +nightly install cargo-fuzz --locked
python3 tools/fuzz_seeds.py fuzz/corpus
cd fuzz
cargo +nightly fuzz build -a -s none
status=0
for t in "${targets[@]}"; do
  log=$(mktemp)
  set +e
  cargo +nightly fuzz run -a -s none "$t" "corpus/$t" -- -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1
  rc=$?
  set -e
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
  crashes=$(ls "artifacts/$t" 2>/dev/null | wc -l)
  echo "fuzz $t: ${seconds} s, $runs executions, exit $rc, $crashes artifacts"
  if [ "$rc" -ne 0 ]; then tail -40 "$log"; status=1; fi
  rm -f "$log"
done
exit $status
