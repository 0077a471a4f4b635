#!/usr/bin/env python3
"""Independent check of ltlab's FID and KID with numpy/scipy (a dev tool, not run in CI).

    /opt/torchenv/bin/python tools/check_metrics.py [--ltlab target/release/ltlab] [--dump DIR]

Without --dump: random correlated features (n × d) are written as .npy files. With --dump: the
real.npy / fake.npy that `ltlab eval ... --dump-features DIR` wrote. Either way ltlab scores them
with `ltlab eval --real-features A --fake-features B` using one KID subset holding the whole sets
(so KID is deterministic), and the same numbers are recomputed here the way pytorch-fid
(scipy.linalg.sqrtm) and the KID paper (unbiased MMD², cubic kernel) define them.
"""
import argparse, json, os, subprocess, sys, tempfile
import numpy as np
from scipy import linalg


def fid(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1.dot(s2))
    covmean = (covmean[0] if isinstance(covmean, tuple) else covmean).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def kid(a, b):
    d = a.shape[1]
    kxx = (a @ a.T / d + 1) ** 3
    kyy = (b @ b.T / d + 1) ** 3
    kxy = (a @ b.T / d + 1) ** 3
    m = a.shape[0]
    return float((kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ltlab", default="target/release/ltlab")
    ap.add_argument("--dump", help="folder with real.npy and fake.npy from --dump-features")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--d", type=int, default=64)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    if args.dump:
        a = np.load(os.path.join(args.dump, "real.npy")).astype(np.float64)
        b = np.load(os.path.join(args.dump, "fake.npy")).astype(np.float64)
        # KID over whole sets needs equally many: the first n real ones.
        n = min(len(a), len(b))
        a, b = a[:n], b[:n]
    else:
        rng = np.random.default_rng(0)
        mix = rng.normal(size=(args.d, args.d)) / np.sqrt(args.d)
        a = rng.normal(size=(args.n, args.d)) @ mix
        b = (rng.normal(size=(args.n, args.d)) * 1.3 + 0.2) @ mix
    # float32 on disk, as ltlab's features are; compare on exactly those values.
    a, b = a.astype(np.float32), b.astype(np.float32)
    pa, pb = os.path.join(tmp, "real.npy"), os.path.join(tmp, "fake.npy")
    np.save(pa, a)
    np.save(pb, b)
    out = subprocess.run(
        [args.ltlab, "eval", "--real-features", pa, "--fake-features", pb, "--kid-subsets", "1",
         "--kid-subset-size", str(len(a)), "--prd-runs", "1", "--json"],
        check=True, capture_output=True, text=True)
    rep = json.loads(out.stdout)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    ours = {"FID": rep["overall"]["fid"], "KID": rep["overall"]["kid"]}
    ref = {"FID": fid(a64, b64), "KID": kid(a64, b64)}
    ok = True
    for k in ours:
        rel = abs(ours[k] - ref[k]) / max(abs(ref[k]), 1e-12)
        ok &= rel < 1e-3
        print(f"{k}: ltlab {ours[k]:.6g}  numpy/scipy {ref[k]:.6g}  relative difference {rel:.2e}")
    print(f"{len(a)} × {a.shape[1]} features: {'agree to 1e-3' if ok else 'DISAGREE'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
