#!/usr/bin/env python3
"""Side-by-side training benchmark: ltlab's `bench train` and the same U-Net in PyTorch.

The PyTorch model below is written from ltlab's SPEC §2 (same presets, same layers, same
initialisation) and trained with the same step: random t, ε-MSE, per-batch label drop, Adam,
global-norm clipping, EMA. Both run on the same machine in one invocation, one after the
other, and the ratio is reported.

    python tools/peer_bench.py --ltlab target/release/ltlab --preset small --batch 32 --device cpu

Needs `pip install torch numpy`. With --device cuda it benchmarks PyTorch eager on the GPU and
ltlab with --backend cuda (or --ltlab-backend wgpu); --amp bf16 and --compile time PyTorch's
faster modes for the record.

    python tools/peer_bench.py --what sample --preset paper --device cuda --sampler-steps 100 --omega 1.5

times sampling instead: DDIM with classifier-free guidance (one call on [x; x], the class term
dropped for the second half, as ltlab does), next to `ltlab bench sample`.
"""
import argparse
import json
import math
import subprocess
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {
    # base channels, multipliers, res blocks (down; up has one more), dropout
    "paper": (128, [1, 2, 2, 2], 2, 0.1),
    "small": (64, [1, 2, 2], 1, 0.1),
    "tiny": (32, [1, 2, 2], 1, 0.0),
    "micro": (16, [1], 1, 0.0),
}


def attn_levels(preset, image_size, levels):
    if preset == "paper":
        return [l for l in range(levels) if image_size >> l == 16]
    if preset == "small":
        return [levels - 1]
    return []


def groups(c, g=32):
    return math.gcd(c, g)


def conv(cin, cout, k=3, stride=1, gain=1.0):
    m = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2)
    nn.init.xavier_uniform_(m.weight, gain=gain)
    nn.init.zeros_(m.bias)
    return m


def linear(i, o):
    m = nn.Linear(i, o)
    nn.init.xavier_uniform_(m.weight)
    nn.init.zeros_(m.bias)
    return m


class Attn(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = nn.GroupNorm(groups(c), c)
        self.q, self.k, self.v = conv(c, c, 1), conv(c, c, 1), conv(c, c, 1)
        self.proj = conv(c, c, 1, gain=1e-5)

    def forward(self, x):
        b, c, h, w = x.shape
        hn = self.norm(x)
        q = self.q(hn).reshape(b, c, h * w).transpose(1, 2)
        k = self.k(hn).reshape(b, c, h * w)
        v = self.v(hn).reshape(b, c, h * w).transpose(1, 2)
        a = torch.softmax(q @ k * c ** -0.5, dim=-1)
        return x + self.proj((a @ v).transpose(1, 2).reshape(b, c, h, w))


class LowRank(nn.Module):
    """CM's expert on a 3×3 conv (SPEC §4.6): ΔW = B·A viewed as (C_out, C_in, 3, 3); B = 0."""

    def __init__(self, cin, cout, k=3):
        super().__init__()
        r = max(1, min(cin, cout) // 10)
        bound = 1 / math.sqrt(cin * k)
        self.a = nn.Parameter(torch.empty(r * k, cin * k).uniform_(-bound, bound))
        self.b = nn.Parameter(torch.zeros(cout * k, r * k))

    def conv(self, conv, x, on):
        if not on:
            return conv(x)
        w = conv.weight + (self.b @ self.a).reshape(conv.weight.shape)
        return F.conv2d(x, w, conv.bias, padding=1)


def expert_conv(conv, lora, x, on):
    return lora.conv(conv, x, on) if lora is not None else conv(x)


class Res(nn.Module):
    def __init__(self, cin, cout, emb, attn, dropout, expert=False):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups(cin), cin)
        self.conv1 = conv(cin, cout)
        self.emb = linear(emb, cout)
        self.norm2 = nn.GroupNorm(groups(cout), cout)
        self.drop = nn.Dropout(dropout)
        self.conv2 = conv(cout, cout, gain=1e-5)
        self.short = conv(cin, cout, 1) if cin != cout else nn.Identity()
        self.attn = Attn(cout) if attn else nn.Identity()
        self.e1 = LowRank(cin, cout) if expert else None
        self.e2 = LowRank(cout, cout) if expert else None

    def forward(self, x, e, on=True):
        h = expert_conv(self.conv1, self.e1, F.silu(self.norm1(x)), on)
        h = h + self.emb(e)[:, :, None, None]
        h = expert_conv(self.conv2, self.e2, self.drop(F.silu(self.norm2(h))), on)
        return self.attn(h + self.short(x))


class Up(nn.Module):
    def __init__(self, c, expert=False):
        super().__init__()
        self.conv = conv(c, c)
        self.e = LowRank(c, c) if expert else None

    def forward(self, h, on=True):
        return expert_conv(self.conv, self.e, F.interpolate(h, scale_factor=2, mode="nearest"), on)


class UNet(nn.Module):
    def __init__(self, preset, channels, classes, image_size, expert=False):
        super().__init__()
        ch, mults, nres, dropout = PRESETS[preset]
        emb = 4 * ch
        attn = attn_levels(preset, image_size, len(mults))
        self.ch = ch
        self.time = nn.Sequential(linear(ch, emb), nn.SiLU(), linear(emb, emb))
        self.cls = nn.Embedding(classes, emb)
        self.head = conv(channels, ch)
        self.down = nn.ModuleList()
        skips, now = [ch], ch
        for l, m in enumerate(mults):
            for _ in range(nres):
                self.down.append(Res(now, ch * m, emb, l in attn, dropout))
                now = ch * m
                skips.append(now)
            if l + 1 < len(mults):
                self.down.append(conv(now, now, stride=2))
                skips.append(now)
        self.mid = nn.ModuleList([Res(now, now, emb, True, dropout), Res(now, now, emb, False, dropout)])
        self.up = nn.ModuleList()
        for l in reversed(range(len(mults))):
            for _ in range(nres + 1):
                self.up.append(Res(now + skips.pop(), ch * mults[l], emb, l in attn, dropout, expert))
                now = ch * mults[l]
            if l > 0:
                self.up.append(Up(now, expert))
        self.tail = nn.Sequential(nn.GroupNorm(groups(now), now), nn.SiLU(), conv(now, channels, gain=1e-5))

    def temb(self, t):
        i = torch.arange(self.ch // 2, device=t.device, dtype=torch.float32)
        freq = torch.exp(-2 * i / self.ch * math.log(10000.0))
        a = t.float()[:, None] * freq[None]
        return torch.stack([a.sin(), a.cos()], dim=-1).reshape(len(t), self.ch)

    def trunk(self, x, t, y, keep=None):
        """Embedding, down path and middle; `keep` (per sample, 1 = conditional) masks the class term."""
        e = self.time(self.temb(t))
        if y is not None:
            c = self.cls(y)
            e = e + (c if keep is None else c * keep[:, None])
        e = F.silu(e)
        h = self.head(x)
        hs = [h]
        for layer in self.down:
            h = layer(h, e) if isinstance(layer, Res) else layer(h)
            hs.append(h)
        for layer in self.mid:
            h = layer(h, e)
        return h, hs, e

    def up_path(self, h, hs, e, expert=True):
        hs = list(hs)
        for layer in self.up:
            h = layer(torch.cat([h, hs.pop()], 1), e, expert) if isinstance(layer, Res) else layer(h, expert)
        return self.tail(h)

    def forward(self, x, t, y, keep=None):
        h, hs, e = self.trunk(x, t, y, keep)
        return self.up_path(h, hs, e)


def autocast(device, amp):
    if amp == "bf16":
        return torch.autocast(device_type=device, dtype=torch.bfloat16)
    return torch.autocast(device_type=device, enabled=False)


def torch_sample(preset, batch, images, image_size, sampler_steps, omega, device, threads, amp, compile_model):
    """DDIM (η = 0) over `sampler_steps` evenly spaced t with CFG, as ltlab's sampler runs it:
    guidance is one call on [x; x] with the class term dropped for the second half; ω = 0 is
    one plain conditional call."""
    if device == "cpu" and threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = UNet(preset, 3, 10, image_size).to(device).eval()
    net = torch.compile(model) if compile_model else model
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    ab = torch.cumprod(1 - betas, 0).float().to(device)
    # ltlab's ddim_timesteps: k.min(T) steps of T // k (at least 1), from the top down.
    skip = max(1000 // sampler_steps, 1)
    ts = [i * skip for i in range(min(sampler_steps, 1000))][::-1]

    def run(n, ts):
        for start in range(0, n, batch):
            b = min(batch, n - start)
            x = torch.randn(b, 3, image_size, image_size, device=device)
            y = torch.arange(start, start + b, device=device) % 10
            keep = torch.cat([torch.ones(b, device=device), torch.zeros(b, device=device)])
            for i, t in enumerate(ts):
                with torch.no_grad(), autocast(device, amp):
                    if omega == 0:
                        eps = net(x, torch.full((b,), t, device=device, dtype=torch.long), y).float()
                    else:
                        tt = torch.full((2 * b,), t, device=device, dtype=torch.long)
                        e = net(torch.cat([x, x]), tt, torch.cat([y, y]), keep).float()
                        eps = (1 + omega) * e[:b] - omega * e[b:]
                a = ab[t]
                x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
                a_next = ab[ts[i + 1]] if i + 1 < len(ts) else torch.tensor(1.0, device=device)
                x = a_next.sqrt() * x0 + (1 - a_next).sqrt() * eps
            x.cpu()

    run(min(batch, images), ts[:2])
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    run(images, ts)
    secs = time.perf_counter() - start
    ips = images / secs
    return {"images_per_s": ips, "seconds": secs, "seconds_for_50k": 50_000 / ips, "model_calls": len(ts),
            "parameters": sum(p.numel() for p in model.parameters())}


def torch_bench(preset, batch, image_size, steps, warmup, device, threads, amp="none", compile_model=False):
    if device == "cpu" and threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = UNet(preset, 3, 10, image_size).to(device)
    net = torch.compile(model) if compile_model else model
    ema = UNet(preset, 3, 10, image_size).to(device)
    ema.load_state_dict(model.state_dict())
    opt = torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.9, 0.999), eps=1e-8)
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    ab = torch.cumprod(1 - betas, 0).float().to(device)
    x0 = torch.rand(batch * 4, 3, image_size, image_size, device=device) * 2 - 1
    labels = torch.randint(0, 10, (batch * 4,), device=device)

    def step(i):
        idx = torch.randint(0, len(x0), (batch,), device=device)
        x, y = x0[idx], labels[idx]
        t = torch.randint(0, 1000, (batch,), device=device)
        eps = torch.randn_like(x)
        a = ab[t][:, None, None, None]
        xt = a.sqrt() * x + (1 - a).sqrt() * eps
        y = None if torch.rand(()) < 0.1 else y
        with autocast(device, amp):
            loss = F.mse_loss(net(xt, t, y).float(), eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(0.9999).add_(pm, alpha=1e-4)
        # ltlab reads its loss and grad norm back every step; do the same.
        return loss.item(), norm.item()

    for i in range(warmup):
        step(i)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(steps):
        step(i)
    if device == "cuda":
        torch.cuda.synchronize()
    secs = time.perf_counter() - start
    params = sum(p.numel() for p in model.parameters())
    # Forward FLOPs of one image as PyTorch counts them (ltlab's `model info` gives the same).
    from torch.utils.flop_counter import FlopCounterMode
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x0[:1], torch.zeros(1, dtype=torch.long, device=device), labels[:1])
    ips = steps * batch / secs
    return {"images_per_s": ips, "seconds_per_step": secs / steps, "parameters": params,
            "network_gflops_per_s": ips * 3 * counter.get_total_flops() / 1e9}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ltlab", default="target/release/ltlab")
    ap.add_argument("--preset", default="small")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=0, help="PyTorch CPU threads (0: its default)")
    ap.add_argument("--skip-ltlab", action="store_true")
    ap.add_argument("--ltlab-backend", default=None, help="ltlab's backend (default: flex on cpu, cuda on cuda)")
    ap.add_argument("--amp", default="none", choices=["none", "bf16"], help="PyTorch autocast")
    ap.add_argument("--compile", action="store_true", help="torch.compile the PyTorch model")
    ap.add_argument("--what", default="train", choices=["train", "sample"])
    ap.add_argument("--sampler-steps", type=int, default=100)
    ap.add_argument("--omega", type=float, default=1.5)
    ap.add_argument("--images", type=int, default=512, help="images sampled (--what sample)")
    a = ap.parse_args()

    results = {}
    backend = a.ltlab_backend or ("flex" if a.device == "cpu" else "cuda")
    if not a.skip_ltlab:
        if a.what == "train":
            cmd = [a.ltlab, "bench", "train", "--preset", a.preset, "--batch", str(a.batch), "--backend", backend,
                   "--steps", str(a.steps), "--warmup", str(a.warmup), "--image-size", str(a.image_size), "--json"]
        else:
            cmd = [a.ltlab, "bench", "sample", "--preset", a.preset, "--batch", str(a.batch), "--backend", backend,
                   "--images", str(a.images), "--sampler", f"ddim:{a.sampler_steps}", "--omega", str(a.omega),
                   "--image-size", str(a.image_size), "--json"]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        results["ltlab"] = json.loads(out.strip().splitlines()[-1])
    if a.what == "train":
        results["pytorch"] = torch_bench(a.preset, a.batch, a.image_size, a.steps, a.warmup, a.device, a.threads, a.amp, a.compile)
    else:
        results["pytorch"] = torch_sample(a.preset, a.batch, a.images, a.image_size, a.sampler_steps, a.omega, a.device, a.threads, a.amp, a.compile)
    results["pytorch"].update({"version": torch.__version__, "threads": torch.get_num_threads(), "amp": a.amp, "compile": a.compile})
    if "ltlab" in results:
        if results["ltlab"]["parameters"] != results["pytorch"]["parameters"]:
            print(f"warning: parameter counts differ: {results['ltlab']['parameters']} vs {results['pytorch']['parameters']}")
        results["ratio_ltlab_over_pytorch_images_per_s"] = results["ltlab"]["images_per_s"] / results["pytorch"]["images_per_s"]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
