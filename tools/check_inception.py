#!/usr/bin/env python3
"""Checks ltlab's FID Inception against pytorch-fid's network with batch-statistics BatchNorms (a
dev tool; the test command's check is `fid_inception_matches_pytorch_fid_and_torch_fidelity`
in tests/cli.rs, on the fixture of tools/inception_fixture.py).

The real weights file cannot be downloaded everywhere, so both sides use the same *random*
weights: pytorch-fid's FIDInception blocks on torchvision's Inception3 (1008 classes) get
random convolutions and BatchNorm statistics taken from a batch, are saved as a .pth, loaded
by ltlab (`--features inception:PATH`), and both networks embed the same PNGs with SPEC §5's
preprocessing. Needs torch, torchvision and pytorch-fid:

    pip install pytorch-fid torchvision   # torchvision matching your torch
    python tools/check_inception.py [--ltlab target/release/ltlab]
"""
import argparse, os, subprocess, sys, tempfile
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pytorch_fid import inception as I


def fid_network():
    # pytorch-fid's fid_inception_v3() without the weights download.
    net = I._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    net.Mixed_5b = I.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = I.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = I.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = I.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = I.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = I.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = I.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = I.FIDInceptionE_1(1280)
    net.Mixed_7c = I.FIDInceptionE_2(2048)
    return net


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ltlab", default="target/release/ltlab")
    ap.add_argument("--images", type=int, default=40)
    args = ap.parse_args()
    torch.manual_seed(0)
    tmp = tempfile.mkdtemp()
    net = fid_network()
    # BatchNorm statistics of a random batch (cumulative average), so activations stay scaled.
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
            torch.nn.init.uniform_(m.bias, -0.2, 0.2)
    net.train()
    with torch.no_grad():
        net(torch.rand(16, 3, 299, 299) * 2 - 1)
    net.eval()
    # Small classifier weights so that the softmax is not saturated and IS says something.
    with torch.no_grad():
        net.fc.weight.normal_(0, 2e-2)
    pth = os.path.join(tmp, "random_fid_inception.pth")
    torch.save(net.state_dict(), pth)

    # Test images: smooth colour patterns, 32×32, as 8-bit PNGs.
    imgs = os.path.join(tmp, "images")
    os.makedirs(imgs)
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:32, 0:32] / 31.0
    arrays = []
    for k in range(args.images):
        f = rng.uniform(1, 6, size=3)
        p = rng.uniform(0, 6.3, size=3)
        rgb = np.stack([0.5 + 0.5 * np.sin(f[c] * (xx + (c + 1) * yy) * 3 + p[c]) for c in range(3)], -1)
        a = (rgb * 255).round().astype(np.uint8)
        Image.fromarray(a).save(os.path.join(imgs, f"{k:03d}.png"))
        arrays.append(a)
    x = torch.tensor(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255.0

    # pytorch-fid's preprocessing and the pool features / unbiased logits.
    pooled = {}
    net.avgpool.register_forward_hook(lambda m, i, o: pooled.__setitem__("f", o.flatten(1)))
    with torch.no_grad():
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1
        net(x)
    ref = pooled["f"].double().numpy()
    # IS from the logits without the fc bias (torch-fidelity's `logits_unbiased`), one split:
    # with one split every shuffle gives the same number (ltlab shuffles with its own seeded
    # permutation, torch-fidelity with NumPy's RandomState(2020)).
    logits = ref @ net.fc.weight.detach().double().numpy().T
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    kl = (p * (np.log(p + 1e-300) - np.log(p.mean(0) + 1e-300))).sum(1).mean()
    ref_is = float(np.exp(kl))

    dump = os.path.join(tmp, "dump")
    out = subprocess.run([args.ltlab, "eval", "--real", imgs, "--fake", imgs, "--features", f"inception:{pth}",
                    "--dump-features", dump, "--kid-subsets", "1", "--prd-runs", "1", "--is-splits", "1", "--json"],
                   check=True, capture_output=True, text=True)
    ours = np.load(os.path.join(dump, "real.npy")).astype(np.float64)
    diff = np.abs(ours - ref).max()
    scale = np.abs(ref).max()
    rel = diff / scale
    print(f"{ours.shape[0]} images, {ours.shape[1]} features; max |ltlab − pytorch-fid| = {diff:.3g} "
          f"(largest feature {scale:.3g}, relative {rel:.2e})")
    import json
    our_is = json.loads(out.stdout)["inception_score"]
    is_rel = abs(our_is - ref_is) / ref_is
    print(f"IS over the 1008 unbiased logits, one split: ltlab {our_is:.6g}, numpy {ref_is:.6g} (relative {is_rel:.2e})")
    ok = ours.shape == ref.shape and rel < 1e-3 and is_rel < 1e-3
    print("agree" if ok else "DISAGREE")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
