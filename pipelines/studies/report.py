#!/usr/bin/python3
"""Renders the Fashion-MNIST study (pipelines/studies/fashion_mnist.sh) from the runs'
metrics.jsonl / summary.json files: docs/results/fashion_mnist.md and PNG plots.
Needs Debian's python3-matplotlib. Only reads what the runs wrote."""
import argparse, json, math, os, statistics, sys, datetime

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "plots"))
import run_plots  # noqa: E402  (the one plotting module)

ORDER = ["ce", "kd-a0.1", "kd-a0.3", "kd-a0.5", "kd-a0.7", "kd-a0.9", "dto", "dto-amortized", "dto-logit"]


def read_runs(root):
    runs = {}
    for method in ORDER:
        folder = os.path.join(root, method)
        if not os.path.isdir(folder):
            continue
        for seed in sorted(os.listdir(folder)):
            run = os.path.join(folder, seed)
            summary = os.path.join(run, "summary.json")
            if not os.path.exists(summary):
                continue
            train, epochs = [], []
            with open(os.path.join(run, "metrics.jsonl")) as f:
                for line in f:
                    rec = json.loads(line)
                    (epochs if rec["type"] == "epoch" else train).append(rec)
            with open(summary) as f:
                runs.setdefault(method, []).append({"seed": seed, "summary": json.load(f), "train": train, "epochs": epochs})
    return runs


def fmt(v, spec):
    return "–" if v != v else format(v, spec)


def run_mean(rs, key):
    """Step-weighted mean of a per-interval metric over all runs of a method (NaN if never logged)."""
    num = den = 0.0
    for r in rs:
        for t in r["train"]:
            v = t.get(key)
            if v is not None:
                n = t["steps"] - t["skipped"]
                num += v * n
                den += n
    return num / den if den else math.nan


def mean_std(values):
    if not values:
        return float("nan"), float("nan")
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--command", default="")
    p.add_argument("--seconds", type=float, default=float("nan"))
    p.add_argument("--commit", default="")
    p.add_argument("--note", default="", help="a paragraph added under the header (e.g. what changed since)")
    a = p.parse_args()
    runs = read_runs(a.root)
    if not runs:
        sys.exit(f"report.py: no finished runs under {a.root}")
    os.makedirs(a.out, exist_ok=True)

    finals = {m: [r["summary"]["final_test_accuracy"] for r in rs] for m, rs in runs.items()}
    bests = {m: [r["summary"]["best_test_accuracy"] for r in rs] for m, rs in runs.items()}
    kd_methods = [m for m in runs if m.startswith("kd-")]
    best_kd = max(kd_methods, key=lambda m: mean_std(finals[m])[0]) if kd_methods else None
    target = mean_std(finals[best_kd])[0] if best_kd else float("nan")

    def first_epoch(run):
        for e in run["epochs"]:
            if e["test_accuracy"] >= target:
                return e["epoch"] + 1
        return None

    rows, per_seed = [], []
    for m in ORDER:
        if m not in runs:
            continue
        fm, fs = mean_std(finals[m])
        bm, bs = mean_std(bests[m])
        reach = [first_epoch(r) for r in runs[m]]
        reached = [x for x in reach if x is not None]
        reach_text = (f"{statistics.mean(reached):.1f}" + (f" ({len(reached)}/{len(reach)} seeds)" if len(reached) < len(reach) else "")) if reached else "never"
        # Epoch wall time / steps: everything the training loop does per step (the
        # summary's mean_step_seconds left out the student forward before fc3c4a7).
        step_ms = 1e3 * statistics.mean(sum(e["seconds"] for e in r["epochs"]) / r["summary"]["steps"]
                                        for r in runs[m])
        pi1 = run_mean(runs[m], "pi1")
        conflict = run_mean(runs[m], "conflict_fraction")
        rows.append(f"| {m} | {100*fm:.2f} ± {100*fs:.2f} | {100*bm:.2f} ± {100*bs:.2f} | {reach_text} | {step_ms:.1f} "
                    f"| {fmt(pi1, '.3f')} | {fmt(100 * conflict if conflict == conflict else conflict, '.1f')} |")
        per_seed.append(f"| {m} | " + " | ".join(f"{100*r['summary']['final_test_accuracy']:.2f}" for r in runs[m]) + " |")

    # Paired by seed (same initial student and data order): each DTO policy minus the best KD.
    paired = []
    for m in ["dto", "dto-amortized", "dto-logit", "ce"]:
        if m not in runs or not best_kd:
            continue
        kd_by_seed = {r["seed"]: r["summary"]["final_test_accuracy"] for r in runs[best_kd]}
        diffs = [r["summary"]["final_test_accuracy"] - kd_by_seed[r["seed"]] for r in runs[m] if r["seed"] in kd_by_seed]
        if diffs:
            dm, ds = mean_std(diffs)
            wins = sum(d > 0 for d in diffs)
            paired.append(f"| {m} − {best_kd} | {100*dm:+.2f} ± {100*ds:.2f} | {wins}/{len(diffs)} |")

    # Plots (the one plotting module, pipelines/plots/run_plots.py): accuracy vs epoch (mean
    # over seeds); the distillation objective's pi vs step; conflict and norm ratios vs step.
    groups = [(m, runs[m]) for m in ORDER if m in runs]
    run_plots.plot_accuracy(groups, os.path.join(a.out, "fashion_mnist_accuracy.png"),
                            ylabel="test accuracy (%) mean over seeds")
    run_plots.plot_pi([(m, runs[m]) for m in ["dto", "dto-amortized", "dto-logit"] if m in runs],
                      os.path.join(a.out, "fashion_mnist_pi.png"), only=["kd"])
    run_plots.plot_conflict([(m, runs[m]) for m in ["dto", "dto-logit"] if m in runs],
                            os.path.join(a.out, "fashion_mnist_conflict.png"))

    seeds = max(len(v) for v in runs.values())
    teacher = None
    tpath = os.path.join(a.root, "teacher", "summary.json")
    if os.path.exists(tpath):
        with open(tpath) as f:
            teacher = json.load(f)
    epochs = max(len(r["epochs"]) for rs in runs.values() for r in rs)
    with open(os.path.join(a.out, "fashion_mnist.md"), "w") as f:
        f.write("# Fashion-MNIST study: DTO-KD vs hand-tuned KD\n\n")
        f.write(f"Produced by `{a.command}` on {datetime.date.today().isoformat()}"
                + (f" at commit {a.commit}" if a.commit else "") + f" ({os.cpu_count()} cores"
                + (f", {a.seconds/60:.0f} min in all" if not math.isnan(a.seconds) else "") + ").\n")
        f.write(f"Teacher cnn_large" + (f" ({teacher['epochs']} epochs, CE, test accuracy "
                f"{100*teacher['final_test_accuracy']:.2f}%)" if teacher else "") + ", student cnn_small "
                f"({epochs} epochs), SGD momentum 0.9, lr 0.05 cosine, batch 128, T = 4; KD is "
                "alpha_distill * KL * T^2 + (1 - alpha_distill) * CE; "
                f"{seeds} seeds (seed = initial student and data order, shared by all methods). "
                "Epochs are sized so the whole study fits in 2 hours on 2 cores. "
                "Test accuracy is only reported, never used to tune anything; picking the best KD weight "
                "by its test accuracy favours KD.\n\n")
        if a.note:
            f.write(a.note + "\n\n")
        if best_kd:
            f.write(f"Best KD by final accuracy: **{best_kd}** ({100*target:.2f}%); "
                    "'epoch to reach' = first epoch whose test accuracy reaches it (mean over seeds that do).\n\n")
        f.write("| method | final acc (%) | best acc (%) | epoch to reach best KD's final | step time (ms) "
                "| mean pi1 | steps with cos(a,b) < 0 (%) |\n")
        f.write("| --- | --- | --- | --- | --- | --- | --- |\n")
        f.write("\n".join(rows) + "\n\n")
        f.write("Accuracy is mean ± std over seeds. Step time: training wall time of the epochs (evaluation "
                "excluded) / steps, mean over seeds: the student forward, losses, backward pass(es), trade-off, "
                "update and batch hand-over (teacher logits from the cache). "
                "pi1: the DTO weight of the distillation log-gradient (ce and kd show their fixed loss weight alpha_distill instead). "
                "cos(a,b) needs both gradients: the exact `dto` (parameter space) and `dto-logit` "
                "(logit space) have it.\n\n")
        if paired:
            f.write("Paired by seed, final accuracy difference (points, mean ± std over seeds; wins = seeds "
                    "where the first is higher):\n\n| comparison | difference | wins |\n| --- | --- | --- |\n")
            f.write("\n".join(paired) + "\n\n")
        seed_names = [r["seed"] for r in runs[ORDER[0] if ORDER[0] in runs else next(iter(runs))]]
        f.write("Final test accuracy (%) per seed:\n\n| method | " + " | ".join(seed_names) + " |\n|"
                + " --- |" * (len(seed_names) + 1) + "\n" + "\n".join(per_seed) + "\n\n")
        f.write("Test accuracy vs epoch (mean over seeds):\n\n![accuracy](fashion_mnist_accuracy.png)\n\n"
                "pi of the KD objective vs step, seed 0 (pi_ce = 1 - pi_kd; per log interval):\n\n![pi](fashion_mnist_pi.png)\n\n"
                "Gradient conflict and dominance vs step, seed 0 (a = grad log L_distill, b = grad log L_task):"
                "\n\n![conflict](fashion_mnist_conflict.png)\n")
    print(f"wrote {os.path.join(a.out, 'fashion_mnist.md')}")


if __name__ == "__main__":
    main()
