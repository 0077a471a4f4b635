#!/usr/bin/env python3
"""Side-by-side evaluation benchmark: `ltlab bench eval` and the same work in PyTorch/numpy/scipy.

The peer does what the usual Python tools do: FID with scipy.linalg.sqrtm (pytorch-fid), KID
as 100 subsets of min(1000, n/2) with the cubic kernel (torch-fidelity), precision/recall with
k = 3 and chunked torch.cdist (Kynkäänniemi et al.), PRD with k-means (20·C clusters, 10 runs,
1001 angles; Sajjadi et al.), per-class FID and KID; and the feature network (ltlab's domain
network written in PyTorch, or pytorch-fid's Inception when --network inception) on the CPU.
Both run on this machine in one invocation, one after the other; ratios are ltlab / peer.

    python tools/peer_eval_bench.py --ltlab target/release/ltlab --samples 10000
"""
import argparse, json, math, subprocess, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy import linalg


def fid(a, b):
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1.dot(s2))
    covmean = (covmean[0] if isinstance(covmean, tuple) else covmean).real
    return ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


def kid(a, b, subsets=100, rng=np.random.default_rng(0)):
    m = min(1000, min(len(a), len(b)) // 2)
    d = a.shape[1]
    out = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx, kyy, kxy = (x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3
        out.append((kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean())
    return float(np.mean(out))


def radii(f, k=3, chunk=1024):
    out = []
    for i in range(0, len(f), chunk):
        d = torch.cdist(f[i:i + chunk], f)
        out.append(d.kthvalue(k + 1, dim=1).values)  # itself at distance 0
    return torch.cat(out)


def coverage(manifold, r, query, chunk=1024):
    inside = 0
    for i in range(0, len(query), chunk):
        d = torch.cdist(query[i:i + chunk], manifold)
        inside += (d <= r[None, :]).any(1).sum().item()
    return inside / len(query)


def kmeans(x, k, iters=100, rng=np.random.default_rng(0)):
    c = x[rng.choice(len(x), k, replace=False)]
    assign = None
    for _ in range(iters):
        new = (-2 * x @ c.T + (c ** 2).sum(1)[None, :]).argmin(1)
        if assign is not None and (new == assign).all():
            break
        assign = new
        for j in range(k):
            m = assign == j
            if m.any():
                c[j] = x[m].mean(0)
    return assign


def prd(a, b, clusters, runs=10, angles=1001):
    both = np.concatenate([a, b])
    slopes = np.tan(np.linspace(1e-10, math.pi / 2 - 1e-10, angles))
    p = np.zeros(angles)
    r = np.zeros(angles)
    for run in range(runs):
        lab = kmeans(both, clusters, rng=np.random.default_rng(run))
        hr = np.bincount(lab[:len(a)], minlength=clusters) / len(a)
        hf = np.bincount(lab[len(a):], minlength=clusters) / len(b)
        prec = np.minimum(hr[None, :] * slopes[:, None], hf[None, :]).sum(1)
        p += prec / runs
        r += prec / slopes / runs
    f = lambda beta: max((1 + beta ** 2) * pp * rr / (beta ** 2 * pp + rr) if pp + rr > 0 else 0 for pp, rr in zip(p, r))
    return f(8), f(1 / 8)


class Block(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.conv = nn.Conv2d(i, o, 3, padding=1)
        self.norm = nn.GroupNorm(8, o)

    def forward(self, x):
        return F.relu(self.norm(self.conv(x)))


class DomainNet(nn.Module):
    """ltlab's domain network (engine/src/eval/domain.rs)."""

    def __init__(self, channels, classes, w=32):
        super().__init__()
        self.stages = nn.ModuleList([Block(channels, w), Block(w, w), Block(w, 2 * w), Block(2 * w, 2 * w), Block(2 * w, 4 * w), Block(4 * w, 4 * w)])
        self.head = nn.Linear(4 * w, classes)

    def forward(self, x):
        for i, s in enumerate(self.stages):
            x = s(x)
            if i in (1, 3):
                x = F.avg_pool2d(x, 2)
        f = x.mean((2, 3))
        return f, self.head(f)


def inception():
    from pytorch_fid import inception as I
    net = I._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    for name, block in [("Mixed_5b", I.FIDInceptionA(192, 32)), ("Mixed_5c", I.FIDInceptionA(256, 64)), ("Mixed_5d", I.FIDInceptionA(288, 64)),
                        ("Mixed_6b", I.FIDInceptionC(768, 128)), ("Mixed_6c", I.FIDInceptionC(768, 160)), ("Mixed_6d", I.FIDInceptionC(768, 160)),
                        ("Mixed_6e", I.FIDInceptionC(768, 192)), ("Mixed_7b", I.FIDInceptionE_1(1280)), ("Mixed_7c", I.FIDInceptionE_2(2048))]:
        setattr(net, name, block)
    net.fc.bias = None
    return net.eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ltlab", default="target/release/ltlab")
    ap.add_argument("--samples", type=int, default=10000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--network", default="domain", choices=["domain", "inception"])
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--image-size", type=int, default=16)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    a = ap.parse_args()

    cmd = [a.ltlab, "bench", "eval", "--samples", str(a.samples), "--dim", str(a.dim), "--classes", str(a.classes), "--network", a.network,
           "--images", str(a.images), "--image-size", str(a.image_size), "--channels", str(a.channels), "--batch", str(a.batch), "--json"]
    ours = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)

    rng = np.random.default_rng(0)
    labels = np.arange(a.samples) % a.classes
    centres = rng.normal(size=(a.classes, a.dim))
    real = centres[labels] * 2 + rng.normal(size=(a.samples, a.dim))
    fake = centres[labels] * 2 + rng.normal(size=(a.samples, a.dim)) * 1.2 + 0.1
    peer = {}
    t = time.perf_counter(); fid(real, fake); kid(real, fake); peer["fid_kid"] = time.perf_counter() - t
    t = time.perf_counter()
    rt, ft = torch.tensor(real), torch.tensor(fake)
    coverage(rt, radii(rt), ft); coverage(ft, radii(ft), rt)
    peer["precision_recall"] = time.perf_counter() - t
    t = time.perf_counter(); prd(real, fake, min(20 * a.classes, a.samples)); peer["prd"] = time.perf_counter() - t
    t = time.perf_counter()
    for c in range(a.classes):
        fid(real[labels == c], fake[labels == c]); kid(real[labels == c], fake[labels == c])
    peer["per_class"] = time.perf_counter() - t

    channels = 3 if a.network == "inception" else a.channels
    net = inception() if a.network == "inception" else DomainNet(channels, a.classes).eval()
    x = torch.rand(a.images, channels, a.image_size, a.image_size)
    with torch.no_grad():
        prep = (lambda b: F.interpolate(b, size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1) if a.network == "inception" else (lambda b: b * 2 - 1)
        net(prep(x[:1]))
        t = time.perf_counter()
        for i in range(0, a.images, a.batch):
            net(prep(x[i:i + a.batch]))
        peer["features"] = time.perf_counter() - t

    print(f"{a.samples} + {a.samples} vectors of dimension {a.dim}, {a.classes} classes; {a.network} network on {a.images} images "
          f"{channels}×{a.image_size}×{a.image_size} (torch {torch.__version__}, {torch.get_num_threads()} threads)")
    print(f"{'phase':<18} {'ltlab s':>9} {'peer s':>9} {'ratio':>7}")
    rows = [(k, ours["metrics_seconds"][k], peer[k]) for k in ["fid_kid", "precision_recall", "prd", "per_class"]]
    rows.append(("metrics total", ours["metrics_total"], sum(peer[k] for k in ["fid_kid", "precision_recall", "prd", "per_class"])))
    rows.append(("features", ours["feature_seconds"], peer["features"]))
    for k, o, p in rows:
        print(f"{k:<18} {o:>9.2f} {p:>9.2f} {o / p:>7.2f}")
    per10k = lambda s: s / a.images * 1e4
    print(f"10k samples, features + metrics: ltlab {per10k(ours['feature_seconds']) + ours['metrics_total']:.0f} s, "
          f"peer {per10k(peer['features']) + rows[-2][2]:.0f} s")


if __name__ == "__main__":
    main()
