#!/usr/bin/env python3
"""Dev check (not in CI): ltlab's forward FLOPs per image against PyTorch's FlopCounterMode.

Counts one image's forward through tools/peer_bench.py's U-Net (written from SPEC §2) with
torch.utils.flop_counter and compares the total and the up-path share (up path + tail, what CM
runs twice) with `ltlab model info --json`.

    python tools/check_flops.py --ltlab target/release/ltlab

Needs `pip install torch`.
"""
import argparse
import json
import os
import re
import subprocess
import sys

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_bench import UNet  # noqa: E402


def torch_flops(preset, channels, classes, size):
    model = UNet(preset, channels, classes, size).eval()
    x = torch.randn(1, channels, size, size)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x, torch.tensor([500]), torch.tensor([0]))
    counts = counter.get_flop_counts()
    total = sum(counts["Global"].values())
    # The up path's layers (a ModuleList has no entry of its own) and the tail.
    up = sum(sum(v.values()) for k, v in counts.items() if re.fullmatch(r"UNet\.up\.\d+|UNet\.tail", k))
    return total, up


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ltlab", default="target/release/ltlab")
    args = ap.parse_args()
    worst = 0.0
    for preset, channels, size in [("tiny", 1, 16), ("small", 3, 32), ("paper", 3, 32)]:
        out = subprocess.run([args.ltlab, "model", "info", "--preset", preset, "--classes", "10", "--channels", str(channels),
                              "--image-size", str(size), "--json"], check=True, capture_output=True, text=True).stdout
        ours = json.loads(out)
        t_total, t_up = torch_flops(preset, channels, 10, size)
        total, up = ours["forward_flops_per_image"], ours["forward_flops_up_path"]
        rel = abs(total - t_total) / t_total
        worst = max(worst, rel, abs(up - t_up) / t_up)
        print(f"{preset:>5} {channels}×{size}×{size}: ltlab {total / 1e9:.4f} GFLOPs (up path {up / total:.3f}), "
              f"PyTorch {t_total / 1e9:.4f} GFLOPs (up path {t_up / t_total:.3f}), relative difference {rel:.2e}")
    print(f"largest relative difference: {worst:.2e}")
    sys.exit(0 if worst < 1e-6 else 1)


if __name__ == "__main__":
    main()
