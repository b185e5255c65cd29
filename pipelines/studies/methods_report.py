#!/usr/bin/python3
"""Renders the methods study (pipelines/studies/methods.sh) from the runs' metrics.jsonl /
summary.json: docs/results/methods.md and PNG plots. Shares report.py's statistics and the
one plotting module (pipelines/plots/run_plots.py). Only reads what the runs wrote."""
import argparse, datetime, json, math, os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "plots"))
import run_plots  # noqa: E402
from report import fmt, mean_std, run_mean  # noqa: E402

POLICIES = ["fixed", "dto", "dto-amortized", "dto-logit", "dto-split"]


def read_variants(regime_dir):
    """{variant: [runs]} for every variant folder with finished seeds."""
    return read_regime(regime_dir)[0]


def read_regime(regime_dir):
    """({variant: [finished runs]}, {variant: [(seed, error)]}): a run that stopped on
    non-finite losses left <seed>.failed with dtokd's error instead of a summary."""
    out, failed = {}, {}
    if not os.path.isdir(regime_dir):
        return out, failed
    for variant in sorted(os.listdir(regime_dir)):
        vdir = os.path.join(regime_dir, variant)
        if not os.path.isdir(vdir):
            continue
        seeds = sorted(x for x in os.listdir(vdir) if os.path.exists(os.path.join(vdir, x, "summary.json")))
        runs = [run_plots.read_run(os.path.join(vdir, x)) for x in seeds]
        for r, x in zip(runs, seeds):
            r["seed"] = x
        if runs:
            out[variant] = runs
        errors = [(x[: -len(".failed")], open(os.path.join(vdir, x)).read().strip().replace("dtokd: error: ", ""))
                  for x in sorted(os.listdir(vdir)) if x.endswith(".failed")]
        if errors:
            failed[variant] = errors
    return out, failed


def split_variant(v):
    """'dkd-dto-amortized' -> ('dkd', 'dto-amortized'); 'kd-a0.9' -> ('kd', 'a0.9'); 'ce' -> ('ce', '')."""
    if v == "ce":
        return "ce", ""
    if v.startswith("kd-a"):
        return "kd", v[3:]
    for p in sorted(POLICIES, key=len, reverse=True):
        if v.endswith("-" + p):
            return v[: -len(p) - 1], p
    return v, ""


def finals(runs):
    return [r["summary"]["final_test_accuracy"] for r in runs]


def step_ms(runs):
    """The training step alone (summary's mean_step_seconds: no evaluation, no data wait), the
    fastest of the seeds: each seed's mean is one measurement, and a run that shared the
    cores with other work for a while is slower, never faster."""
    vals = [r["summary"]["mean_step_seconds"] for r in runs if r["summary"].get("mean_step_seconds")]
    return 1e3 * min(vals) if vals else math.nan


def pis(runs):
    names = run_plots.objectives(runs[0])
    def one(v):  # 0.001 (OFD's published weight) must not read 0.00
        return fmt(v, ".2f" if v != v or abs(v) >= 0.01 or v == 0 else ".3g")
    return ", ".join(f"{n} {one(run_mean(runs, 'pi_' + n))}" for n in names)


def regime_table(variants, baseline_of, failed=None):
    failed = failed or {}
    pairs = []  # (method, policy, mean paired difference, wins, seeds)
    rows = ["| method | policy | final acc (%) | best acc (%) | step (ms) | mean pi | conflicting steps (%) |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    paired = ["| method | policy - fixed weights | difference (points) | wins |", "| --- | --- | --- | --- |"]
    order = sorted(set(variants) | set(failed), key=lambda v: (split_variant(v)[0] != "ce", split_variant(v)[0],
                                           POLICIES.index(split_variant(v)[1]) if split_variant(v)[1] in POLICIES else -1,
                                           split_variant(v)[1]))
    for v in order:
        runs = variants.get(v, [])
        method, policy = split_variant(v)
        if v in failed:
            seeds = ", ".join(seed for seed, _ in failed[v])
            note = f"stopped on non-finite values in {len(failed[v])} of {len(failed[v]) + len(runs)} seeds ({seeds}): {failed[v][0][1]}"
            if not runs:
                rows.append(f"| {method} | {policy or '-'} | {note} | | | | |")
                continue
            policy = f"{policy} ({note})"
        fm, fs = mean_std(finals(runs))
        bm, bs = mean_std([r["summary"]["best_test_accuracy"] for r in runs])
        conflict = run_mean(runs, "conflict_fraction")
        rows.append(f"| {method} | {policy or '-'} | {100*fm:.2f} ± {100*fs:.2f} | {100*bm:.2f} ± {100*bs:.2f} "
                    f"| {step_ms(runs):.1f} | {pis(runs)} | {fmt(100*conflict if conflict == conflict else conflict, '.1f')} |")
        base = baseline_of(method)
        if split_variant(v)[1].startswith("dto") and base in variants:
            by_seed = {r["seed"]: r["summary"]["final_test_accuracy"] for r in variants[base]}
            diffs = [r["summary"]["final_test_accuracy"] - by_seed[r["seed"]] for r in runs if r["seed"] in by_seed]
            if diffs:
                dm, ds = mean_std(diffs)
                pairs.append((method, split_variant(v)[1], dm, sum(d > 0 for d in diffs), len(diffs)))
                paired.append(f"| {method} | {split_variant(v)[1]} - {base} | {100*dm:+.2f} ± {100*ds:.2f} | {sum(d > 0 for d in diffs)}/{len(diffs)} |")
    return rows, paired, pairs


def regime_summary(variants, pairs, teacher_acc):
    """Sentences computed from the runs: the room distillation has (the student alone against
    the best fixed-weight variant and the teacher), and how each DTO policy fares against
    the same method's fixed weights, paired by seed."""
    out = []
    if "ce" in variants:
        ce = mean_std(finals(variants["ce"]))[0]
        fixed = {v: mean_std(finals(r))[0] for v, r in variants.items()
                 if split_variant(v)[1] == "fixed" or v.startswith("kd-a")}
        line = f"- Student alone (CE): {100*ce:.2f}%"
        if teacher_acc is not None:
            line += f"; teacher {100*teacher_acc:.2f}%"
        if fixed:
            best = max(fixed, key=fixed.get)
            line += (f"; the best fixed-weight variant, `{best}`, {100*fixed[best]:.2f}% "
                     f"({100*(fixed[best]-ce):+.2f} points over CE)")
        dto = {v: mean_std(finals(r))[0] for v, r in variants.items() if split_variant(v)[1].startswith("dto")}
        if dto:
            best = max(dto, key=dto.get)
            line += f"; the best DTO variant, `{best}`, {100*dto[best]:.2f}% ({100*(dto[best]-ce):+.2f} over CE)"
        out.append(line + ".")
    for policy in ("dto", "dto-amortized", "dto-logit", "dto-split"):
        mine = [p for p in pairs if p[1] == policy]
        if not mine:
            continue
        ahead = [p for p in mine if p[2] > 0]
        swept = [p for p in mine if p[3] == p[4]]
        lost = [p for p in mine if p[3] == 0]
        best, worst = max(mine, key=lambda p: p[2]), min(mine, key=lambda p: p[2])
        out.append(f"- `{policy}` against the same method's fixed weights: ahead on mean in {len(ahead)} of {len(mine)} "
                   f"methods (won every seed in {len(swept)}, lost every seed in {len(lost)}); "
                   f"best {best[0]} {100*best[2]:+.2f} points, worst {worst[0]} {100*worst[2]:+.2f}.")
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--command", default="")
    p.add_argument("--seconds", type=float, default=float("nan"))
    p.add_argument("--commit", default="")
    p.add_argument("--best-alpha", default="0.9")
    p.add_argument("--fraction", default="0.1")
    p.add_argument("--invocations", type=int, default=1)
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    baseline_of = lambda m: "kd-a0.9" if m == "kd" else f"{m}-fixed"  # noqa: E731
    doc = ["# Methods study: every distillation method with fixed weights and under DTO", "",
           f"Produced by `{a.command}` on {datetime.date.today().isoformat()}" + (f" at commit {a.commit}" if a.commit else "")
           + f" ({os.cpu_count()} cores" + (f", {a.seconds/60:.0f} min of wall time in all" + (f" over {a.invocations} invocations" if a.invocations > 1 else "")
              if not math.isnan(a.seconds) else "") + ").",
           "Teacher cnn_large (all training images), student cnn_small; SGD momentum 0.9, lr 0.05 cosine, batch 128, T = 4. "
           f"Regimes: `full` (all 60,000 training images) and `scarce` (a fixed stratified {float(a.fraction):.0%} "
           "of them, the same for every run). Fixed weights are the published ones (the CIFAR-100 configs); "
           "KD's published weight is alpha 0.9. Accuracy: mean ± std over seeds; differences are paired by seed "
           "(same initial student and data order). Test accuracy is only reported, never used to tune anything "
           "(picking KD's best alpha by it favours KD). 'mean pi': the step-weighted mean DTO weight of each "
           "objective's log-gradient; for fixed weights, the weights themselves. Step: training wall time per step "
           "(evaluation and data loading excluded), 2 threads, the fastest seed's mean (other work on the machine "
           "only slows a run).", ""]
    teacher_summary = os.path.join(a.root, "teacher", "summary.json")
    teacher_acc = json.load(open(teacher_summary))["final_test_accuracy"] if os.path.exists(teacher_summary) else None
    for regime in ("full", "scarce"):
        variants, failed = read_regime(os.path.join(a.root, regime))
        if not variants and not failed:
            continue
        rows, paired, pairs = regime_table(variants, baseline_of, failed)
        doc += [f"## Regime `{regime}`", ""] + regime_summary(variants, pairs, teacher_acc) + [""] + rows + ["", "Each DTO policy against the same method's fixed weights:", ""] + paired + [""]
        groups = [(v, variants[v]) for v in ("ce", "kd-a0.9", "kd-dto", "kd-dto-amortized", "dkd-fixed", "dkd-dto") if v in variants]
        if max(len(r["epochs"]) for _, runs in groups for r in runs) > 1:
            run_plots.plot_accuracy(groups, os.path.join(a.out, f"methods_{regime}_accuracy.png"), ylabel="test accuracy (%) mean over seeds")
            doc += [f"![accuracy](methods_{regime}_accuracy.png)", ""]
        else:
            doc += ["(One epoch: no accuracy-per-epoch plot for this regime.)", ""]
        run_plots.plot_pi([(v, variants[v]) for v in ("kd-dto", "dkd-dto-split", "rkd-dto-split") if v in variants],
                          os.path.join(a.out, f"methods_{regime}_pi.png"))
        doc += [f"![pi](methods_{regime}_pi.png)", ""]
    sweep = ["| policy | lr 0.025 | lr 0.05 | lr 0.1 |", "| --- | --- | --- | --- |"]
    scarce = read_variants(os.path.join(a.root, "scarce"))
    for label, variant in ((f"kd alpha {a.best_alpha}", f"kd-a{a.best_alpha}"), ("dto", "kd-dto"), ("dto-amortized", "kd-dto-amortized")):
        cells = []
        for lr in ("0.025", "0.05", "0.1"):
            runs = scarce.get(variant) if lr == "0.05" else read_variants(os.path.join(a.root, f"lr{lr}")).get(variant)
            cells.append("–" if not runs else "{:.2f} ± {:.2f}".format(*(100 * x for x in mean_std(finals(runs)))))
        sweep.append(f"| {label} | " + " | ".join(cells) + " |")
    doc += ["## Learning-rate robustness (regime `scarce`, final accuracy %)", "",
            f"KD at its best alpha on the scarce regime ({a.best_alpha}) against dto and dto-amortized over the KD + CE "
            "objectives, at half and twice the default lr.", ""] + sweep + [""]
    with open(os.path.join(a.out, "methods.md"), "w") as f:
        f.write("\n".join(doc))
    print(f"wrote {os.path.join(a.out, 'methods.md')}")


if __name__ == "__main__":
    main()
