"""Makes the reference-checkpoint fixtures of `tests/fixtures/reference/` with the reference
repositories' own code: a tiny U-Net of pytorch-ddpm's `model.py` (unconditional, `ckpt.pt`) and
of CBDM-pytorch's `model/model.py` (with its label embedding, `ckpt_{step}.pt` + `flagfile.txt`),
every parameter drawn at random, saved as those repositories' training loops save them
(net_model, ema_model, sched, optim, step, x_T / fixed_x_T), and the ε each network gives on
fixed inputs (x, t, y) as .npy files. `ltlab import` and `ltlab model forward` are tested
against them (tests/cli.rs).

    git -C /work/.mirror/w86763777+pytorch-ddpm/repo show HEAD:model.py > /tmp/ddpm_model.py
    git -C /work/.mirror/qym7+CBDM-pytorch/repo show HEAD:model/model.py > /tmp/cbdm_model.py
    python3 tools/reference_fixture.py --ddpm-model /tmp/ddpm_model.py --cbdm-model /tmp/cbdm_model.py \
        --out tests/fixtures/reference

Needs torch and numpy. The reference files are read, not kept: only what they produce is.
"""
import argparse
import importlib.util
import pathlib

import numpy as np
import torch


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def redraw(model, seed):
    """Every parameter drawn anew (the near-zero output layers would hide mistakes); the
    sinusoid table is left as the code builds it."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "time_embedding.timembedding.0.weight":
                continue
            if p.dim() == 1 and ("group_norm" in name or ".0.weight" in name or "tail.0" in name):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.08 * torch.randn(p.shape, generator=g))


def train_state(net):
    """An optimiser and scheduler a few steps in, as the training loops save them."""
    optim = torch.optim.Adam(net.parameters(), lr=2e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(optim, lr_lambda=lambda step: min(step, 5000) / 5000)
    return optim.state_dict(), sched.state_dict()


def inputs(n, size, classes, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, size, size, generator=g)
    t = torch.tensor([0, 7, 500, 999][:n], dtype=torch.int64)
    y = torch.tensor([0, 3, 9, 1][:n], dtype=torch.int64) % max(classes, 1)
    return x, t, y


def save_eps(out, name, model, x, t, y=None):
    model.eval()
    with torch.no_grad():
        eps = model(x, t) if y is None else model(x, t, y)
    np.save(out / f"{name}.npy", eps.numpy().astype(np.float32))


def ddpm(path, out):
    m = load(path, "ddpm_model")
    # One level (no down- or upsampling; the CBDM fixture has two): attention in the middle only.
    kw = dict(T=1000, ch=32, ch_mult=[1], attn=[], num_res_blocks=1, dropout=0.1)
    torch.manual_seed(0)
    net, ema = m.UNet(**kw), m.UNet(**kw)
    redraw(net, 1)
    redraw(ema, 2)
    optim, sched = train_state(net)
    x_T = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    out.mkdir(parents=True, exist_ok=True)
    ckpt = {"net_model": net.state_dict(), "ema_model": ema.state_dict(), "sched": sched, "optim": optim, "step": 40, "x_T": x_T}
    torch.save(ckpt, out / "ckpt.pt")
    x, t, _ = inputs(4, 8, 0, 4)
    np.save(out / "x.npy", x.numpy())
    np.save(out / "t.npy", t.numpy())
    save_eps(out, "eps_ema", ema, x, t)
    save_eps(out, "eps_raw", net, x, t)
    (out / "flagfile.txt").write_text(
        "--T=1000\n--batch_size=4\n--beta_1=0.0001\n--beta_T=0.02\n--ch=32\n--ch_mult=1\n"
        "--dropout=0.1\n--img_size=8\n--num_res_blocks=1\n--total_steps=40\n--train\n"
    )


def cbdm(path, out):
    m = load(path, "cbdm_model")
    kw = dict(T=1000, ch=32, ch_mult=[1, 1], attn=[1], num_res_blocks=1, dropout=0.1, cond=True, augm=False, num_class=10)
    torch.manual_seed(0)
    net, ema = m.UNet(**kw), m.UNet(**kw)
    redraw(net, 5)
    redraw(ema, 6)
    optim, sched = train_state(net)
    fixed_x_T = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(7))
    out.mkdir(parents=True, exist_ok=True)
    ckpt = {"net_model": net.state_dict(), "ema_model": ema.state_dict(), "sched": sched, "optim": optim, "step": 20, "fixed_x_T": fixed_x_T}
    torch.save(ckpt, out / "ckpt_20.pt")
    x, t, y = inputs(4, 8, 10, 8)
    np.save(out / "x.npy", x.numpy())
    np.save(out / "t.npy", t.numpy())
    np.save(out / "y.npy", y.numpy())
    save_eps(out, "eps_ema", ema, x, t, y)
    save_eps(out, "eps_raw", net, x, t, y)
    # The unconditional branch of the same network (CFG's ε(x, ∅): no label term at all).
    save_eps(out, "eps_ema_uncond", ema, x, t)
    (out / "flagfile.txt").write_text(
        "--T=1000\n--attn=1\n--batch_size=4\n--beta_1=0.0001\n--beta_T=0.02\n--ch=32\n--ch_mult=1\n--ch_mult=1\n"
        "--conditional\n--noaugm\n--data_type=cifar10lt\n--dropout=0.1\n--imb_factor=0.01\n--img_size=8\n"
        "--noimprove\n--num_class=10.0\n--num_res_blocks=1\n--total_steps=20\n--train\n"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--ddpm-model", required=True, type=pathlib.Path)
    ap.add_argument("--cbdm-model", required=True, type=pathlib.Path)
    ap.add_argument("--out", required=True, type=pathlib.Path)
    a = ap.parse_args()
    ddpm(a.ddpm_model, a.out / "pytorch-ddpm")
    cbdm(a.cbdm_model, a.out / "cbdm")
    for f in sorted(a.out.rglob("*")):
        if f.is_file():
            print(f"{f.stat().st_size:>9} {f}")
