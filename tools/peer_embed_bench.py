#!/usr/bin/env python3
"""Side-by-side latent-map benchmark: `ltlab bench embed` against openTSNE and umap-learn.

All run on this machine in one invocation on the same n × d input (by default 5,000 × 256: a
long-tailed mixture of 10 anisotropic Gaussian clusters, written to --work). Every layout is
scored here by the same k-NN preservation (exact neighbours, scikit-learn): the mean fraction
of a point's k nearest input neighbours that are among its k nearest neighbours in the map.
Times include each tool's own k-NN search; umap-learn's numba code is compiled by a small warm-up
fit first, so its JIT is not timed. Ratios are ltlab / peer.

    python tools/peer_embed_bench.py --ltlab target/release/ltlab
"""
import argparse, json, os, subprocess, time
import numpy as np
from sklearn.neighbors import NearestNeighbors


def long_tailed_clusters(n, d, classes, seed):
    rng = np.random.default_rng(seed)
    weights = 0.02 ** (np.arange(classes) / (classes - 1))  # imbalance ratio 50
    counts = np.maximum(np.round(n * weights / weights.sum()).astype(int), 10)
    counts[0] += n - counts.sum()
    centres = rng.normal(0, 1.2, (classes, d))
    xs, ys = [], []
    for c, m in enumerate(counts):
        scale = rng.uniform(0.5, 1.5, d)
        xs.append(centres[c] + rng.normal(0, 1, (m, d)) * scale)
        ys.append(np.full(m, c))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys)


def knn_preservation(x, y, k):
    a = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x, return_distance=False)[:, 1:]
    b = NearestNeighbors(n_neighbors=k + 1).fit(y).kneighbors(y, return_distance=False)[:, 1:]
    return float(np.mean([len(set(p) & set(q)) / k for p, q in zip(a, b)]))


def timed(f):
    t0 = time.perf_counter()
    out = f()
    return time.perf_counter() - t0, np.asarray(out, dtype=np.float64)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ltlab", default="target/release/ltlab")
    ap.add_argument("--input", help="n × d float32 .npy (default: generated)")
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--work", default="/tmp/ltlab-embed-bench")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    path = args.input
    if path is None:
        x, _ = long_tailed_clusters(args.n, args.dim, 10, 0)
        path = os.path.join(args.work, "input.npy")
        np.save(path, x)
    x = np.load(path).astype(np.float32)
    print(f"input {path}: {x.shape[0]} × {x.shape[1]}, {args.threads} threads, k = {args.k}")

    out = subprocess.run([args.ltlab, "bench", "embed", "--input", path, "--methods", "tsne,umap",
                          "--k", str(args.k), "--out", args.work, "--json"], check=True, capture_output=True, text=True)
    ours = {r["method"]: r for r in json.loads(out.stdout.strip().splitlines()[-1])["results"]}

    import openTSNE, umap
    results = []
    for m in ["tsne", "umap"]:
        y = np.load(os.path.join(args.work, f"{m}.npy"))
        results.append((f"ltlab {m}", ours[m]["seconds"], knn_preservation(x, y, args.k), ours[m]["knn_preservation"]))
    # openTSNE defaults (perplexity 30, PCA init, 250 + 500 iterations), FFT and Barnes–Hut.
    for method in ["fft", "bh"]:
        s, y = timed(lambda: openTSNE.TSNE(n_jobs=args.threads, random_state=0, negative_gradient_method=method).fit(x))
        results.append((f"openTSNE {method}", s, knn_preservation(x, y, args.k), None))
    umap.UMAP(random_state=0, n_epochs=10).fit_transform(x[:300])  # numba JIT warm-up
    for init in ["spectral", "pca"]:
        s, y = timed(lambda: umap.UMAP(random_state=0, init=init).fit_transform(x))
        results.append((f"umap-learn {init}", s, knn_preservation(x, y, args.k), None))

    print(f"{'':<20} {'seconds':>8} {'kNN kept':>9} {'(ltlab says)':>13}")
    for name, s, kept, own in results:
        print(f"{name:<20} {s:>8.2f} {kept:>9.4f} {'' if own is None else f'{own:.4f}':>13}")
    t = {r[0]: r[1] for r in results}
    print("time ratios (ltlab / peer):")
    for peer in ["openTSNE fft", "openTSNE bh"]:
        print(f"  t-SNE vs {peer}: {t['ltlab tsne'] / t[peer]:.2f}")
    for peer in ["umap-learn spectral", "umap-learn pca"]:
        print(f"  UMAP vs {peer}: {t['ltlab umap'] / t[peer]:.2f}")


if __name__ == "__main__":
    main()
