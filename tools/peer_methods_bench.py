#!/usr/bin/env python3
"""Side-by-side method cost: `ltlab bench methods` and the same method steps in PyTorch.

The PyTorch steps below follow ltlab's SPEC §4 for the costly methods — CBDM (y′ pass in the
same batched call), DiffROP (a different-class partner re-noised with the anchor's t and ε,
gradients through both μ), CCUA (conditional and unconditional halves in one call, UCL on the
flattened unconditional bottleneck, AL), CM (low-rank experts on the up path, one trunk and the
up path twice; over the plain ε target, where ltlab's CM runs over T2H, whose swap is host-side
work of about 5 % of a step) — on tools/peer_bench.py's U-Net, with the same Adam, clipping, EMA, per-batch
label drop and one loss read-back per step as ltlab. Each framework reports its own per-step
cost relative to its own DDPM, methods interleaved round by round, so the two ratio columns
say whether a method's overhead is ltlab's or the method's.

    python tools/peer_methods_bench.py --ltlab target/release/ltlab --preset tiny --image-size 16 --batch 32

Needs `pip install torch`. With --device cuda it runs PyTorch on the GPU and ltlab with
--backend cuda.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_bench import UNet  # noqa: E402

METHODS = ["ddpm", "cbdm", "diffrop", "ccua", "cm"]
CLASSES, T = 10, 1000


def per_sample_mse(a, b):
    return ((a - b) ** 2).flatten(1).mean(1)


class Peer:
    """One method's model, optimiser and EMA, and its training step."""

    def __init__(self, method, preset, image_size, batch, counts, device):
        torch.manual_seed(0)
        self.method, self.batch, self.device = method, batch, device
        self.model = UNet(preset, 3, CLASSES, image_size, expert=method == "cm").to(device)
        self.ema = [p.detach().clone() for p in self.model.parameters()]
        self.opt = torch.optim.Adam(self.model.parameters(), lr=2e-4, betas=(0.9, 0.999), eps=1e-8)
        betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)
        self.beta = betas.float().to(device)
        self.ab = torch.cumprod(1 - betas, 0).float().to(device)
        n = torch.tensor(counts, dtype=torch.float64)
        self.q = (n / n.sum()).float().to(device)
        w_con = CLASSES * n / n.sum()
        w_div = CLASSES / (n * (1 / n).sum())
        self.cm_coef = (w_con - w_div).float().to(device)
        g = torch.Generator().manual_seed(0)
        labels = torch.multinomial(self.q.cpu(), 4 * batch, replacement=True, generator=g)
        self.labels = labels.to(device)
        self.x0 = (torch.rand(4 * batch, 3, image_size, image_size, generator=g) * 2 - 1).to(device)

    def noise(self, x0, eps, t):
        a = self.ab[t][:, None, None, None]
        return a.sqrt() * x0 + (1 - a).sqrt() * eps

    def mu(self, xt, eps_hat, t):
        c = (self.beta[t] / (1 - self.ab[t]).sqrt())[:, None, None, None]
        return (xt - c * eps_hat) / (1 - self.beta[t]).sqrt()[:, None, None, None]

    def loss(self, x0, y, t, eps, xt, kept):
        m, b, w = self.model, self.batch, t.float() / T
        if self.method == "cbdm" and kept:
            y2 = torch.multinomial(self.q, b, replacement=True)
            out = m(torch.cat([xt, xt]), torch.cat([t, t]), torch.cat([y, y2]))
            e, e2 = out[:b], out[b:]
            reg = (w * per_sample_mse(e, e2.detach())).mean()
            com = (w * per_sample_mse(e.detach(), e2)).mean()
            return F.mse_loss(e, eps) + reg + 0.25 * com
        if self.method == "diffrop" and kept:
            # A random partner of another class per anchor, re-noised with the anchor's t and ε.
            other = y[None, :] != y[:, None]
            has = other.any(1)
            p = torch.multinomial(other.float() + (~has)[:, None].float(), 1).squeeze(1)
            xp = self.noise(x0[p], eps, t)
            out = m(torch.cat([xt, xp]), torch.cat([t, t]), torch.cat([y, y[p]]))
            e, ep = out[:b], out[b:]
            d = ((self.mu(xt, e, t) - self.mu(xp, ep, t)) ** 2).flatten(1).sum(1)
            tau = torch.exp(-t.float() / (T * 0.5))
            return F.mse_loss(e, eps) + (tau * torch.exp(-d))[has].mean()
        if self.method == "ccua":
            if kept:
                keep = torch.cat([torch.ones(b, device=xt.device), torch.zeros(b, device=xt.device)])
                h, hs, emb = m.trunk(torch.cat([xt, xt]), torch.cat([t, t]), torch.cat([y, y]), keep)
                out = m.up_path(h, hs, emb)
                e, eu, hu = out[:b], out[b:], h[b:]
                al = (w * per_sample_mse(e, eu)).mean()
            else:
                hu, hs, emb = m.trunk(xt, t, None)
                e, al = m.up_path(hu, hs, emb), 0.0
            z = F.normalize(hu.flatten(1), dim=1)
            s = z @ z.T / 0.1
            off = s.masked_fill(torch.eye(b, dtype=torch.bool, device=s.device), float("-inf"))
            ucl = -(1 / 0.1 - torch.logsumexp(torch.cat([torch.full((b, 1), 1 / 0.1, device=s.device), off], 1), 1))
            return F.mse_loss(e, eps) + (w * ucl).mean() + al
        if self.method == "cm":
            h, hs, emb = m.trunk(xt, t, y)
            e, eg = m.up_path(h, hs, emb, True), m.up_path(h, hs, emb, False)
            return F.mse_loss(e, eps) + (self.cm_coef[y] * per_sample_mse(e, eg)).mean()
        return F.mse_loss(m(xt, t, y if kept else None), eps)

    def step(self):
        idx = torch.randint(0, len(self.x0), (self.batch,), device=self.device)
        x0, y = self.x0[idx], self.labels[idx]
        t = torch.randint(0, T, (self.batch,), device=self.device)
        eps = torch.randn_like(x0)
        kept = bool(torch.rand(()) >= 0.1)
        loss = self.loss(x0, y, t, eps, self.noise(x0, eps, t), kept)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        with torch.no_grad():
            for pe, pm in zip(self.ema, self.model.parameters()):
                pe.mul_(0.9999).add_(pm, alpha=1e-4)
        return loss.item(), norm.item()


def torch_methods(a, device):
    if device == "cpu" and a.threads:
        torch.set_num_threads(a.threads)
    counts = [round(500 * 0.1 ** (c / (CLASSES - 1))) for c in range(CLASSES)]
    peers = {m: Peer(m, a.preset, a.image_size, a.batch, counts, device) for m in METHODS}
    for p in peers.values():
        for _ in range(a.warmup):
            p.step()
    secs = {m: 0.0 for m in METHODS}
    for _ in range(a.rounds):
        for m, p in peers.items():
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(a.steps):
                p.step()
            if device == "cuda":
                torch.cuda.synchronize()
            secs[m] += time.perf_counter() - start
    n = a.rounds * a.steps
    return {m: {"seconds_per_step": secs[m] / n, "ratio_to_ddpm": secs[m] / secs["ddpm"]} for m in METHODS}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ltlab", default="target/release/ltlab")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--image-size", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=0, help="PyTorch CPU threads (0: its default)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    backend = "flex" if a.device == "cpu" else "cuda"
    cmd = [a.ltlab, "bench", "methods", "--preset", a.preset, "--batch", str(a.batch), "--backend", backend,
           "--image-size", str(a.image_size), "--rounds", str(a.rounds), "--steps", str(a.steps),
           "--warmup", str(a.warmup), "--methods", ",".join(m for m in METHODS if m != "ddpm"), "--json"]
    ours = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
    ours = {r["method"]: r for r in ours["methods"]}
    peer = torch_methods(a, a.device)
    if a.json:
        print(json.dumps({"ltlab": ours, "pytorch": peer, "torch_version": torch.__version__, "torch_threads": torch.get_num_threads()}, indent=2))
        return
    print(f"{a.preset} U-Net, batch {a.batch}, {a.image_size}×{a.image_size}, {a.device} "
          f"(PyTorch {torch.__version__}, {torch.get_num_threads()} threads), {a.rounds}×{a.steps} steps per method")
    print(f"{'method':<9} {'ltlab s':>8} {'ratio':>6} {'FLOPs':>6} {'torch s':>8} {'ratio':>6} {'target':>7}")
    for m in METHODS:
        o, p = ours[m], peer[m]
        target = f"≤ {o['target']}" if o.get("target") else ""
        print(f"{m:<9} {o['seconds_per_step']:>8.4f} {o['ratio_to_ddpm']:>6.3f} {o['flops_ratio_to_ddpm']:>6.3f} "
              f"{p['seconds_per_step']:>8.4f} {p['ratio_to_ddpm']:>6.3f} {target:>7}")
    print("ratio: each framework's time per step over its own DDPM's; FLOPs: ltlab's count of the network work.")


if __name__ == "__main__":
    main()
