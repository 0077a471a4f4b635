#!/usr/bin/env python3
"""Long synthetic run directories, to test and benchmark the lab at the papers' scale without
training for days: a real run of a few steps (its config, checkpoints and grids), whose
metrics.jsonl is replaced by N steps of plausible records written the way `ltlab train` writes
them (every term, loss per t-bucket, per class, lr, grad norm, images/s; OC transfers when the
run has OC) and whose config says N steps.

    python3 tools/long_run.py --ltlab target/release/ltlab --out runs/long-a --steps 300000
    ltlab bench lab --runs runs/long-a runs/long-b runs/long-c

Several runs: --out DIR --runs K writes DIR/run-00 …, their built-in configs cycling through
--configs (so that a study's method groups are there).
"""
import argparse, json, math, os, random, re, subprocess


def records(steps, classes, terms, seed, transfers):
    rng = random.Random(seed)
    level = 0.35 + 0.1 * rng.random()
    for step in range(1, steps + 1):
        base = level * (0.25 + 0.75 * math.exp(-step / (steps / 20))) * (1 + 0.15 * rng.gauss(0, 1))
        base = max(base, 1e-4)
        losses = {"mse": base, "total": base}
        for t in terms:
            v = abs(0.02 * base * (1 + rng.gauss(0, 0.3)))
            losses[t] = v
            losses["total"] += v
        if rng.random() < 1e-4:  # the rare spike a user hunts for
            losses["mse"] *= 20
            losses["total"] = losses["mse"]
        by_t = [round(base * (2.0 - 1.8 * (k + 0.5) / 10) * (1 + 0.1 * rng.gauss(0, 1)), 6) if rng.random() > 0.05 else None for k in range(10)]
        rec = {
            "step": step,
            "losses": {k: round(v, 7) for k, v in losses.items()},
            "loss_by_t": by_t,
            "lr": 0.0002,
            "grad_norm": round(abs(1.0 + 0.3 * rng.gauss(0, 1)), 5),
            "images_per_s": round(300 + 20 * rng.gauss(0, 1), 2),
            "uncond_batch": rng.random() < 0.1,
            "loss_by_class": [round(base * (1 + 0.05 * c), 6) if rng.random() > 0.3 else None for c in range(classes)],
            "transfers": None,
        }
        if transfers:
            samples = [rng.randint(0, 6) for _ in range(10)]
            rec["transfers"] = {"samples_by_t": samples, "swaps_by_t": [rng.randint(0, s) for s in samples], "pairs": [[rng.randrange(classes), 0, 1]]}
        yield json.dumps(rec, separators=(",", ":"))


def make(ltlab, out, steps, config, seed):
    args = [ltlab, "train", "--config", config, "--steps", "4", "--checkpoint-every", "2", "--sample-every", "2", "--out", out, "--seed", str(seed)]
    subprocess.run(args + ["--json"], check=True, stdout=subprocess.DEVNULL)
    cfg_path = os.path.join(out, "config.toml")
    cfg = open(cfg_path).read()
    cfg = re.sub(r"(?m)^steps = \d+$", f"steps = {steps}", cfg, count=1)
    tmp = cfg_path + ".tmp"
    open(tmp, "w").write(cfg)
    os.replace(tmp, cfg_path)
    classes = len(re.search(r"counts = \[([^\]]*)\]", cfg).group(1).split(",")) if "counts = [" in cfg else 10
    terms = [m for m in ("coral", "cbdm", "cm") if f"[methods.{m}]" in cfg]
    metrics = os.path.join(out, "metrics.jsonl")
    with open(metrics + ".tmp", "w") as f:
        for line in records(steps, classes, terms, seed, "[methods.oc]" in cfg):
            f.write(line + "\n")
    os.replace(metrics + ".tmp", metrics)
    print(f"{out}: {steps} steps, {os.path.getsize(metrics) / 1e6:.0f} MB of metrics")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ltlab", default="target/release/ltlab")
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=300000)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--configs", default="demo-synthetic", help="comma-separated built-in configs, cycled over the runs")
    a = ap.parse_args()
    configs = a.configs.split(",")
    if a.runs == 1:
        make(a.ltlab, a.out, a.steps, configs[0], a.seed)
    else:
        for k in range(a.runs):
            make(a.ltlab, os.path.join(a.out, f"run-{k:02}"), a.steps, configs[k % len(configs)], a.seed + k)


if __name__ == "__main__":
    main()
