#!/usr/bin/env bash
# The small-scale method study of issue 3: every method's CPU preset on Fashion-MNIST-LT
# (ρ = 0.01), the small U-Net at 16×16, the same steps and seed, then per-class loss and
# bottleneck k-NN purity per method (`ltlab analyze classes`), tabulated as Markdown.
#
#   tools/study_methods.sh [STEPS] [OUT_DIR]     (default 200 steps, /tmp/ltlab-study)
#
# Two runs at a time (one Burn flex process keeps about one core busy at this size).
set -euo pipefail
STEPS=${1:-200}
OUT=${2:-/tmp/ltlab-study}
BIN=${LTLAB:-target/release/ltlab}
METHODS=(ddpm cbdm t2h diffrop ccua coral cm)
mkdir -p "$OUT"
train() {
  local m=$1 config=demo-fashion-mnist
  [ "$m" != ddpm ] && config="demo-fashion-mnist-$m"
  "$BIN" train --config "$config" --preset small --steps "$STEPS" --seed 0 \
    --checkpoint-every "$STEPS" --sample-every 0 --out "$OUT/$m" --json > "$OUT/$m.log" 2>&1
}
export -f train; export BIN STEPS OUT
printf '%s\n' "${METHODS[@]}" | xargs -P 2 -I{} bash -c 'train {}'
for m in "${METHODS[@]}"; do
  "$BIN" analyze classes --run "$OUT/$m" --per-class 200 --t 500 --k 10 --json > "$OUT/$m.classes.json"
done
python3 - "$OUT" "${METHODS[@]}" <<'PY'
import json, sys
out, methods = sys.argv[1], sys.argv[2:]
reps = {m: json.load(open(f"{out}/{m}.classes.json")) for m in methods}
first = reps[methods[0]]["report"]
names = [r["name"] for r in first["rows"]]
print(f"Fashion-MNIST-LT ρ=0.01, small U-Net, 16×16, step {reps[methods[0]]['step']}, seed 0; "
      f"loss: ε-MSE over t~U on {first['rows'][0]['images']} balanced real images per class; "
      f"purity: {first['k']}-NN class purity of the bottleneck at t={first['t_purity']}\n")
print("| method | " + " | ".join(f"loss {n}" for n in ["many", "medium", "few"]) + " | purity cond few | purity uncond few |")
print("|---|---|---|---|---|---|")
for m in methods:
    s = {x[0]: x for x in reps[m]["report"]["splits"]}
    print(f"| {reps[m]['methods']} | " + " | ".join(f"{s[k][2]:.4f}" for k in ["many", "medium", "few"])
          + f" | {s['few'][3]:.3f} | {s['few'][4]:.3f} |")
print("\nPer-class loss:\n")
print("| method | " + " | ".join(names) + " |")
print("|---|" + "---|" * len(names))
for m in methods:
    print(f"| {reps[m]['methods']} | " + " | ".join(f"{r['loss']:.4f}" for r in reps[m]["report"]["rows"]) + " |")
print("\nPer-class bottleneck purity (conditional forward):\n")
print("| method | " + " | ".join(names) + " |")
print("|---|" + "---|" * len(names))
for m in methods:
    print(f"| {reps[m]['methods']} | " + " | ".join(f"{r['purity_cond']:.3f}" for r in reps[m]["report"]["rows"]) + " |")
PY
