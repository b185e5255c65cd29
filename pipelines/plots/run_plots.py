#!/usr/bin/python3
"""Plots of dtokd runs from what they wrote (metrics.jsonl, summary.json): test accuracy per
epoch, each objective's loss and pi per step, the gradient conflict share and norm ratios.
One module for `dtokd plot` (this file as a program) and the studies' reports (imported).
Needs Debian's python3-matplotlib.

  run_plots.py RUN [RUN ...] [--out DIR]
writes RUN/plots/{accuracy,losses,pi,conflict}.png for each run and, for several runs, the
same four plots overlaying them into DIR (default: plots)."""
import argparse, json, math, os, statistics, sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

FIGSIZE = (8, 5)  # inches; at DPI pixels: 800 x 500
DPI = 100
PLOTS = ("accuracy", "losses", "pi", "conflict")


def read_run(path):
    """{'name', 'train': [train lines], 'epochs': [epoch lines], 'summary': dict or None}."""
    metrics = os.path.join(path, "metrics.jsonl")
    if not os.path.exists(metrics):
        raise SystemExit(f"run_plots.py: {path}: no metrics.jsonl (not a dtokd run folder)")
    train, epochs = [], []
    with open(metrics) as f:
        for n, line in enumerate(f, 1):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise SystemExit(f"run_plots.py: {metrics}: line {n} is not JSON ({e})")
            (epochs if rec.get("type") == "epoch" else train).append(rec)
    summary = None
    if os.path.exists(os.path.join(path, "summary.json")):
        with open(os.path.join(path, "summary.json")) as f:
            summary = json.load(f)
    name = os.path.basename(os.path.normpath(path))
    return {"name": name[:-len(".partial")] if name.endswith(".partial") else name, "train": train,
            "epochs": epochs, "summary": summary}


def value(rec, key):
    v = rec.get(key)
    return math.nan if v is None else v


def objectives(run):
    """The run's objectives, from its pi_<name> keys (in their order)."""
    names = []
    for rec in run["train"]:
        for k in rec:
            if k.startswith("pi_") and k[3:] not in names:
                names.append(k[3:])
    return names


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def plot_accuracy(groups, path, ylabel="test accuracy (%)"):
    """groups: [(label, [runs])]; each line is the mean over its runs per epoch."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    for label, runs in groups:
        n = min(len(r["epochs"]) for r in runs)
        if n == 0:
            continue
        ys = [100 * statistics.mean(r["epochs"][i]["test_accuracy"] for r in runs) for i in range(n)]
        ax.plot(range(1, n + 1), ys, marker="o", ms=3, label=label, lw=2 if label.startswith("dto") else 1)
    ax.set_xlabel("epoch"); ax.set_ylabel(ylabel); ax.grid(alpha=0.3); ax.legend(fontsize=7)
    _save(fig, path)


def plot_losses(groups, path):
    """Each objective's loss per step (the first run of each group), log scale."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    for label, runs in groups:
        r = runs[0]
        steps = [t["step"] for t in r["train"]]
        for o in objectives(r):
            ax.plot(steps, [value(t, "loss_" + o) for t in r["train"]], label=f"{label} L_{o}", marker=".", ms=3)
    ax.set_xlabel("step"); ax.set_ylabel("loss (per log interval)"); ax.set_yscale("log"); ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _save(fig, path)


def plot_pi(groups, path, only=None):
    """pi per objective per step (the first run of each group); `only`: these objectives."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    for label, runs in groups:
        r = runs[0]
        steps = [t["step"] for t in r["train"]]
        for o in objectives(r):
            if only is None or o in only:
                ax.plot(steps, [value(t, "pi_" + o) for t in r["train"]], label=f"{label} pi_{o}", marker=".", ms=3)
    ax.set_xlabel("step"); ax.set_ylabel("pi (trade-off weight of each log-gradient)"); ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3); ax.legend(fontsize=7)
    _save(fig, path)


def plot_conflict(groups, path):
    """Share of steps with conflicting gradients (cos < 0) and the two norm ratios per step."""
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=FIGSIZE, sharex=True)
    for label, runs in groups:
        r = runs[0]
        steps = [t["step"] for t in r["train"]]
        ax1.plot(steps, [value(t, "conflict_fraction") for t in r["train"]], label=label)
        line, = ax2.plot(steps, [value(t, "log_grad_norm_ratio") for t in r["train"]], label=f"{label} ||a||/||b||")
        ax2.plot(steps, [value(t, "norm_ratio") for t in r["train"]], ls=":", color=line.get_color(),
                 label=f"{label} ||grad L_1||/||grad L_2||")
    ax1.set_ylabel("share of steps with cos < 0"); ax1.grid(alpha=0.3); ax1.legend(fontsize=7)
    ax2.set_ylabel("norm ratio"); ax2.set_xlabel("step"); ax2.grid(alpha=0.3); ax2.legend(fontsize=7)
    if any(v > 0 for l in ax2.get_lines() for v in l.get_ydata() if v == v):
        ax2.set_yscale("log")
    _save(fig, path)


def write_plots(groups, out):
    """The four plots of `groups` into folder `out`; returns their paths."""
    os.makedirs(out, exist_ok=True)
    paths = [os.path.join(out, p + ".png") for p in PLOTS]
    plot_accuracy(groups, paths[0])
    plot_losses(groups, paths[1])
    plot_pi(groups, paths[2])
    plot_conflict(groups, paths[3])
    return paths


def main(argv):
    p = argparse.ArgumentParser(description="Plots of dtokd runs")
    p.add_argument("runs", nargs="+")
    p.add_argument("--out", default="plots", help="the overlay of several runs (default: plots)")
    a = p.parse_args(argv)
    runs = [(path, read_run(path)) for path in a.runs]
    for path, run in runs:
        for f in write_plots([(run["name"], [run])], os.path.join(path, "plots")):
            print(f)
    if len(runs) > 1:
        for f in write_plots([(run["name"], [run]) for _, run in runs], a.out):
            print(f)


if __name__ == "__main__":
    main(sys.argv[1:])
