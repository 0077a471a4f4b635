#!/usr/bin/env bash
# Every GPU measurement of the GPU-backends issue in one run, for a lent GPU machine (NVIDIA,
# PyTorch with CUDA, no Rust, no network). Build and pack here with `tools/gpu_pack.sh` (CUDA
# and wgpu in one binary), carry `target/gpu/ltlab.gz`, then on the GPU machine:
#
#   bash tools/gpu_check.sh target/gpu/ltlab.gz "$OUT"
#
# Writes one JSON (or CSV) file per measurement into OUT as it goes, so that a run cut short
# keeps what it measured, and ends with OUT/report.md: ltlab/PyTorch ratios of training
# (35.7M U-Net, batch 128, 32×32), each method's cost next to its FLOP ratio, DDIM-100 + CFG
# sampling throughput and the time for 50k samples, GPU memory over the training steps, and
# the same on wgpu (Vulkan on the same GPU). Each step has its own time limit; the whole run
# stays under the device tool's 10 minutes a command.
#
#   GPU_CHECK_TRIAL=1 bash tools/gpu_check.sh target/release/ltlab /tmp/gpu-trial
#
# tries the whole script on a CPU machine in a few minutes: the micro/tiny presets, flex in
# place of CUDA, lavapipe for wgpu, PyTorch on the CPU, process RSS in place of GPU memory.
set -uo pipefail
BIN=$(realpath "${1:?usage: tools/gpu_check.sh LTLAB_BINARY[.gz] [OUT]}")
OUT=$(realpath -m "${2:-/tmp/gpu-check}")
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
if [[ "$BIN" == *.gz ]]; then
  gunzip -c "$BIN" > /tmp/ltlab-gpu && chmod +x /tmp/ltlab-gpu || { echo "cannot unpack $BIN"; exit 1; }
  BIN=/tmp/ltlab-gpu
fi
START=$(date +%s)
if [ -n "${GPU_CHECK_TRIAL:-}" ]; then
  DEV=cpu; GPU=flex; PRESET=tiny; BATCH=8; SIZE=16; TRAIN_STEPS=5; WARM=2
  MEM_STEPS=100; SAMPLE_IMAGES=16; SAMPLE_BATCH=16; SAMPLER_STEPS=10; WGPU_PRESET=micro; WGPU_SIZE=8
  METHOD_ARGS=(--rounds 1 --steps 1 --warmup 1); BUDGET=${GPU_CHECK_BUDGET:-900}
else
  DEV=cuda; GPU=cuda; PRESET=paper; BATCH=128; SIZE=32; TRAIN_STEPS=50; WARM=10
  MEM_STEPS=2000; SAMPLE_IMAGES=1024; SAMPLE_BATCH=256; SAMPLER_STEPS=100; WGPU_PRESET=paper; WGPU_SIZE=32
  METHOD_ARGS=(--rounds 2 --steps 4 --warmup 2); BUDGET=${GPU_CHECK_BUDGET:-570}
fi
left() { echo $((BUDGET - ($(date +%s) - START))); }
# step NAME LIMIT_S CMD...: stdout to OUT/NAME.json, stderr to OUT/NAME.err; skipped when the
# budget has less than LIMIT_S/3 left, cut at the smaller of LIMIT_S and what is left.
step() {
  local name=$1 limit=$2; shift 2
  local remaining; remaining=$(left)
  if [ "$remaining" -lt $((limit / 3)) ]; then echo "skip $name ($remaining s left)" | tee -a "$OUT/log.txt"; return; fi
  [ "$remaining" -lt "$limit" ] && limit=$remaining
  local t0=$EPOCHREALTIME
  timeout "$limit" "$@" > "$OUT/$name.json" 2> >(grep -v XDG_RUNTIME_DIR > "$OUT/$name.err")
  local rc=$?
  printf '%-20s rc %3d  %6.1f s\n' "$name" "$rc" "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')" | tee -a "$OUT/log.txt"
}

{ nvidia-smi 2>/dev/null || echo "no nvidia-smi"; python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())'; } > "$OUT/machine.txt" 2>&1
step backends 30 "$BIN" backends --json
# Training throughput: ltlab, then PyTorch eager fp32 on the same GPU.
step train_ltlab 150 "$BIN" bench train --preset $PRESET --batch $BATCH --image-size $SIZE --backend $GPU --steps $TRAIN_STEPS --warmup $WARM --json
step train_torch 90 python3 tools/peer_bench.py --skip-ltlab --device $DEV --preset $PRESET --batch $BATCH --image-size $SIZE --steps $TRAIN_STEPS --warmup $WARM
# Memory over MEM_STEPS real training steps (a run with its checkpoint at the end), sampled
# every 0.5 s beside the run's own step log.
mem_run() {
  local run=/tmp/gpu-check-run
  rm -rf "$run"
  "$BIN" train --preset $PRESET --dataset synthetic --image-size $SIZE --batch $BATCH --steps $MEM_STEPS --backend $GPU \
    --checkpoint-every $MEM_STEPS --sample-every 0 --out "$run" --json > "$OUT/memory_steps.jsonl" &
  local pid=$!
  while kill -0 $pid 2>/dev/null; do
    if [ "$GPU" = cuda ]; then
      echo "$(date +%s.%N),$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)"
    else
      local rss; rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status 2>/dev/null)
      echo "$(date +%s.%N),$(( ${rss:-0} / 1024 ))"
    fi
    sleep 0.5
  done > "$OUT/memory_mib.csv"
  wait $pid
}
export -f mem_run; export BIN PRESET SIZE BATCH MEM_STEPS GPU OUT
step memory 300 bash -c mem_run
# Sampling: DDIM-100 with CFG (ω 1.5), ltlab then PyTorch.
step sample_ltlab 120 "$BIN" bench sample --preset $PRESET --batch $SAMPLE_BATCH --images $SAMPLE_IMAGES --image-size $SIZE --sampler ddim:$SAMPLER_STEPS --omega 1.5 --backend $GPU --json
step sample_torch 60 python3 tools/peer_bench.py --skip-ltlab --what sample --device $DEV --preset $PRESET --batch $SAMPLE_BATCH --images $SAMPLE_IMAGES --image-size $SIZE --sampler-steps $SAMPLER_STEPS --omega 1.5
# Each method's cost next to its FLOP ratio.
step methods 150 "$BIN" bench methods --preset $PRESET --batch $BATCH --image-size $SIZE --backend $GPU "${METHOD_ARGS[@]}" --json
# wgpu (Vulkan) on the same GPU.
step train_wgpu 120 "$BIN" bench train --preset $WGPU_PRESET --batch $BATCH --image-size $WGPU_SIZE --backend wgpu --steps $((TRAIN_STEPS / 2 + 1)) --warmup 3 --json
step sample_wgpu 90 "$BIN" bench sample --preset $WGPU_PRESET --batch $SAMPLE_BATCH --images $SAMPLE_BATCH --image-size $WGPU_SIZE --sampler ddim:$SAMPLER_STEPS --omega 1.5 --backend wgpu --json
# PyTorch's faster modes, for the record.
step train_torch_bf16 60 python3 tools/peer_bench.py --skip-ltlab --device $DEV --preset $PRESET --batch $BATCH --image-size $SIZE --steps $TRAIN_STEPS --warmup $WARM --amp bf16
step train_torch_compile 150 python3 tools/peer_bench.py --skip-ltlab --device $DEV --preset $PRESET --batch $BATCH --image-size $SIZE --steps $TRAIN_STEPS --warmup $WARM --compile

python3 - "$OUT" > "$OUT/report.md" <<'PY'
import json, os, sys
out = sys.argv[1]

def load(name):
    try:
        text = open(os.path.join(out, name + ".json")).read()
        return json.loads(text[text.index("{"):]) if "{" in text else None
    except (OSError, ValueError):
        return None

def ips(r, key=None):
    if r is None:
        return None
    r = r.get(key, r) if key else r
    return r.get("images_per_s")

def f(x, d=1):
    return "—" if x is None else f"{x:.{d}f}"

lt, pt = load("train_ltlab"), load("train_torch")
print("# GPU check\n")
print(open(os.path.join(out, "machine.txt")).read().splitlines()[-1] if os.path.exists(os.path.join(out, "machine.txt")) else "")
if lt:
    print(f"\nltlab: {lt['preset']} ({lt['parameters']:,} parameters), batch {lt['batch']}, {lt['image_size']}², {lt['backend']} on {lt['device']}\n")
print("| training | images/s | ltlab / this |\n|---|---|---|")
print(f"| ltlab {lt['backend'] if lt else ''} | {f(ips(lt))} | 1.00 |")
for name, label in [("train_torch", "PyTorch eager fp32"), ("train_torch_bf16", "PyTorch bf16 autocast"), ("train_torch_compile", "PyTorch torch.compile fp32"), ("train_wgpu", "ltlab wgpu")]:
    r = load(name)
    v = ips(r, "pytorch") if name.startswith("train_torch") else ips(r)
    ratio = ips(lt) / v if v and ips(lt) else None
    print(f"| {label} | {f(v)} | {f(ratio, 2)} |")
ls, ps, ws = load("sample_ltlab"), load("sample_torch"), load("sample_wgpu")
print("\n| sampling (DDIM, CFG ω 1.5) | images/s | 50k samples |\n|---|---|---|")
for label, r in [("ltlab " + (ls or {}).get("backend", ""), ls), ("PyTorch eager fp32", (ps or {}).get("pytorch")), ("ltlab wgpu", ws)]:
    print(f"| {label} | {f(ips(r))} | {f(r['seconds_for_50k'] / 60 if r else None)} min |")
m = load("methods")
if m:
    print("\n| method | cost / DDPM | FLOPs / DDPM | target |\n|---|---|---|---|")
    for row in m.get("methods", m.get("results", [])):
        print(f"| {row['method']} | {f(row['ratio_to_ddpm'], 2)} | {f(row['flops_ratio_to_ddpm'], 2)} | {row.get('target') or ''} |")
try:
    steps = [json.loads(l) for l in open(os.path.join(out, "memory_steps.jsonl")) if l.startswith("{")]
    steps = [s["Step"] for s in steps if "Step" in s]
    mem = []
    for line in open(os.path.join(out, "memory_mib.csv")):
        try:
            t, v = line.strip().split(",")
            mem.append((float(t), float(v)))
        except ValueError:  # nvidia-smi's [N/A], a cut line
            pass
    if mem:
        t0 = mem[0][0]
        q = len(mem) // 4 or 1
        print(f"\nmemory over {len(steps)} logged steps: first {mem[0][1]:.0f} MiB, max {max(v for _, v in mem):.0f} MiB, "
              f"mean of the first quarter {sum(v for _, v in mem[:q]) / q:.0f} MiB, of the last {sum(v for _, v in mem[-q:]) / q:.0f} MiB "
              f"({len(mem)} samples over {mem[-1][0] - t0:.0f} s)")
    if steps:
        rates = [s["images_per_s"] for s in steps[len(steps) // 2:]]
        print(f"training images/s over the second half of those steps: median {sorted(rates)[len(rates) // 2]:.1f}")
except (OSError, ValueError) as e:
    print(f"\nmemory: not read ({e})")
print("\n```\n" + open(os.path.join(out, "log.txt")).read() + "```")
PY
cat "$OUT/report.md"
