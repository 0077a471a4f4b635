#!/usr/bin/env bash
# Smoke test of the real lab window: Xvfb, `ltlab --start` (the new-run controls' Start), wait
# until the run has logged 20 steps, screenshot the screen, check that the screenshot is not
# blank. Usage: tools/smoke_lab.sh [BINARY] [OUT_DIR]
set -euo pipefail
bin=$(realpath "${1:-target/debug/ltlab}")
out=$(realpath -m "${2:-$(mktemp -d)}")
mkdir -p "$out"
display=:$((90 + RANDOM % 9))
Xvfb "$display" -screen 0 1400x900x24 >/dev/null 2>&1 &
xvfb=$!
lab=
trap 'kill $lab $xvfb 2>/dev/null || true' EXIT
export DISPLAY=$display WGPU_BACKEND=vulkan
sleep 1
# The demo preset's early grid (step 5) costs a minute in a debug build; the smoke test only
# needs the window to open and the run to train, so the new run turns the early marks off.
printf '{"app": "(new_run: (extra: \\"log.early_marks=[]\\"))"}' > "$out/settings"
"$bin" --runs "$out/runs" --settings "$out/settings" --start >"$out/lab.log" 2>&1 &
lab=$!
steps=0
for _ in $(seq 180); do
  steps=$(cat "$out"/runs/*/metrics.jsonl 2>/dev/null | wc -l || true)
  [ "$steps" -ge 20 ] && break
  kill -0 "$lab" 2>/dev/null || { cat "$out/lab.log"; echo "smoke: the lab exited"; exit 1; }
  sleep 1
done
sleep 2
import -window root "$out/lab.png"
kill "$lab"
sd=$(convert "$out/lab.png" -colorspace Gray -format "%[fx:standard_deviation]" info:)
echo "smoke: $steps steps logged, screenshot $out/lab.png (grey s.d. $sd)"
[ "$steps" -ge 20 ] || { echo "smoke: the run did not train"; exit 1; }
awk -v s="$sd" 'BEGIN { exit !(s > 0.02) }' || { echo "smoke: the screenshot is blank"; exit 1; }
