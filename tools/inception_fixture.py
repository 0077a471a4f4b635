#!/usr/bin/env python3
"""Makes the FID Inception fixture of `tests/cli.rs` (committed under tests/fixtures/inception).

Written there: `real/` and `fake/` (12 PNGs each), `shapes.json` (every float tensor of the
state dict, name and shape), `{real,fake}_features.npy` (pytorch-fid's 2048-d pool features)
and `expected.json` (pytorch-fid's FID between the folders, torch-fidelity's one-split IS).

The real weights file cannot be committed (95 MB) nor downloaded in CI, so both sides build the
same *closed-form* weights (`closed_form` below; `ltlab eval`'s test writes them with the same
rule in Rust): pytorch-fid's own `InceptionV3` wrapper gets them through its download hook,
embeds two small folders of PNGs (pytorch-fid's preprocessing and pool features), and its
`calculate_frechet_distance` gives the FID; torch-fidelity's `isc_features_to_metric` gives the
IS of the unbiased logits with one split (no shuffle to reproduce). Needs torch, torchvision,
pytorch-fid, torch-fidelity and scipy:

    pip install torch torchvision pytorch-fid torch-fidelity scipy
    python tools/inception_fixture.py [--out tests/fixtures/inception]
"""
import argparse, json, os
import numpy as np
import torch
from PIL import Image
import pytorch_fid.inception as fid_inception
from pytorch_fid.fid_score import calculate_frechet_distance
from torch_fidelity.metric_isc import isc_features_to_metric

MASK = 0xFFFFFFFF


def fnv1a(name):
    h = 0x811C9DC5
    for b in name.encode():
        h = ((h ^ b) * 0x01000193) & MASK
    return h


def uniform(name, n):
    """u_k in [0, 1): a 32-bit integer hash of (k + FNV-1a(name)), exact in any language."""
    x = (np.arange(n, dtype=np.uint64) + np.uint64(fnv1a(name))) & np.uint64(MASK)
    for _ in range(2):
        x = (((x >> np.uint64(16)) ^ x) * np.uint64(0x45D9F3B)) & np.uint64(MASK)
    x = (x >> np.uint64(16)) ^ x
    return x.astype(np.float64) / 2.0**32


def closed_form(name, shape):
    """The value of every weight: He-scaled uniform convolutions, BatchNorms near identity,
    a small classifier (so the softmax is not saturated and IS says something)."""
    n = int(np.prod(shape))
    u = uniform(name, n)
    leaf = name.rsplit(".", 1)[-1]
    if name.startswith("fc."):
        v = (u - 0.5) * (1.0 if leaf == "weight" else 0.1)
    elif len(shape) == 4:
        fan_in = int(np.prod(shape[1:]))
        v = (u - 0.5) * np.sqrt(12.0 * 2.0 / fan_in)
    elif leaf in ("weight", "running_var"):
        v = 0.8 + 0.4 * u
    elif leaf in ("bias", "running_mean"):
        v = 0.2 * (u - 0.5)
    else:
        raise ValueError(f"no rule for {name}")
    return v.astype(np.float32).reshape(shape)


def images(folder, count, seed):
    """32×32 8-bit PNGs of four kinds in turn (uniform noise, checkerboards, flat colours,
    smooth waves): a random network maps similar images to nearly one feature vector, so the
    kinds differ; returns them as N×3×32×32 in [0, 1]."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32]
    out = []
    for k in range(count):
        kind = k % 4
        if kind == 0:
            rgb = rng.uniform(0, 1, (32, 32, 3))
        elif kind == 1:
            f = rng.integers(1, 8)
            rgb = np.stack([((xx * f // 32 + yy * f // 32 + c) % 2) * rng.uniform(0.2, 1) for c in range(3)], -1)
        elif kind == 2:
            rgb = np.ones((32, 32, 3)) * rng.uniform(0, 1, 3)
        else:
            f, p = rng.uniform(1, 6, size=3), rng.uniform(0, 6.3, size=3)
            rgb = np.stack([0.5 + 0.5 * np.sin(f[c] * (xx + (c + 1) * yy) / 31.0 * 3 + p[c]) for c in range(3)], -1)
        a = (rgb * 255).round().astype(np.uint8)
        Image.fromarray(a).save(os.path.join(folder, f"{k:03d}.png"))
        out.append(a)
    return torch.tensor(np.stack(out)).permute(0, 3, 1, 2).float() / 255.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures/inception")
    ap.add_argument("--images", type=int, default=12)
    args = ap.parse_args()

    # pytorch-fid's network, its weights download answered with the closed-form state dict.
    def closed_form_state_dict(url, progress=True):
        net = fid_inception._inception_v3(num_classes=1008, aux_logits=False, weights=None)
        return {k: torch.from_numpy(closed_form(k, tuple(v.shape))) if v.is_floating_point() else v for k, v in net.state_dict().items()}

    fid_inception.load_state_dict_from_url = closed_form_state_dict
    os.makedirs(args.out, exist_ok=True)
    # The tensors the Rust side must write by the same rule: every float entry of the state dict.
    net = fid_inception._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    shapes = [[k, list(v.shape)] for k, v in net.state_dict().items() if v.is_floating_point()]
    with open(os.path.join(args.out, "shapes.json"), "w") as f:
        json.dump(shapes, f)
        f.write("\n")
    model = fid_inception.InceptionV3([fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    fc = torch.from_numpy(closed_form("fc.weight", (1008, 2048))).double()

    out = {}
    for split, seed in [("real", 1), ("fake", 2)]:
        x = images(os.path.join(args.out, split), args.images, seed)
        with torch.no_grad():
            pool = model(x)[0].flatten(1).double()
        np.save(os.path.join(args.out, f"{split}_features.npy"), pool.numpy().astype(np.float32))
        out[split] = pool
    mu = {k: v.numpy().mean(0) for k, v in out.items()}
    sigma = {k: np.cov(v.numpy(), rowvar=False) for k, v in out.items()}
    fid = calculate_frechet_distance(mu["real"], sigma["real"], mu["fake"], sigma["fake"])
    isc = isc_features_to_metric(out["fake"] @ fc.T, splits=1, shuffle=False)
    expected = {
        "images_per_folder": args.images,
        "fid": float(fid),
        "inception_score_1_split": isc["inception_score_mean"],
        "feature_scale": float(max(v.abs().max() for v in out.values())),
        "made_by": "tools/inception_fixture.py (pytorch-fid calculate_frechet_distance, torch-fidelity isc_features_to_metric)",
    }
    with open(os.path.join(args.out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=2)
        f.write("\n")
    print(json.dumps(expected, indent=2))


if __name__ == "__main__":
    main()
