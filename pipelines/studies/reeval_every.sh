#!/usr/bin/env bash
# Does re-evaluating dto-amortized's losses only every K-th step cost accuracy?
# The Fashion-MNIST study's protocol (teacher cnn_large, student cnn_small, 10 epochs,
# SGD 0.9, lr 0.05 cosine, batch 128, T = 4; per seed the same initial student and data
# order) for --dto-reeval-every K in $REEVAL_KS (default "1 4"), seeds 0 1 2. Reuses the
# study's teacher and finished runs. Prints final test accuracy per K (mean +- std) and
# writes docs/results/reeval_every.md.
#   pipelines/studies/reeval_every.sh     (STUDY_ROOT, STUDY_EPOCHS, STUDY_SEEDS, REEVAL_KS, DTOKD to change;
#                                          DTOKD_THREADS=1 for runs that do not depend on the core count)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dtokd="${DTOKD:-$here/build/pipelines/dtokd}"
root="${STUDY_ROOT:-$here/runs/study}"
epochs="${STUDY_EPOCHS:-10}"
teacher_epochs="${STUDY_TEACHER_EPOCHS:-8}"
seeds="${STUDY_SEEDS:-0 1 2}"
ks="${REEVAL_KS:-1 4}"
report="${STUDY_REPORT:-$here/docs/results}/reeval_every.md"

[ -x "$dtokd" ] || "$here/scripts/setup.sh" >&2
mkdir -p "$root"
start=$(date +%s)
run() {  # run <out> <args...>: skip when <out> finished earlier
    local out="$1"; shift
    if [ -f "$out/summary.json" ]; then echo "reuse $out" >&2; return; fi
    echo "run   $out" >&2
    "$dtokd" "$@" --out "$out" --no-progress >/dev/null
}
run "$root/teacher" train --model cnn_large --epochs "$teacher_epochs" --seed 0
common=(--model cnn_small --epochs "$epochs" --schedule cosine --lr 0.05 --batch-size 128 --log-interval 20)
for seed in $seeds; do
    for k in $ks; do
        run "$root/dto-amortized-k$k/seed$seed" distill "${common[@]}" --seed "$seed" \
            --teacher "$root/teacher/checkpoint.pt" --method dto-amortized --temperature 4 \
            --dto-reeval-every "$k" --cache-dir "$root/cache"
    done
done
seconds=$(( $(date +%s) - start ))
/usr/bin/python3 - "$root" "$report" "$seconds" "${STUDY_COMMIT:-$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)}" \
    "$ks" "$seeds" <<'PY'
import json, statistics, sys
root, report, seconds, commit, ks, seeds = sys.argv[1:7]
ks, seeds = ks.split(), seeds.split()
rows = []
for k in ks:
    acc, step = {}, []
    for s in seeds:
        d = json.load(open(f"{root}/dto-amortized-k{k}/seed{s}/summary.json"))
        acc[s] = 100 * d["final_test_accuracy"]
        step.append(1e3 * d["mean_step_seconds"])
    rows.append((k, acc, statistics.mean(step)))
base = rows[0][1]
lines = [f"# dto-amortized: re-evaluating every K-th step", "",
         f"`pipelines/studies/reeval_every.sh` at {commit}, {seconds} s of runs (reused runs count 0). "
         f"Fashion-MNIST, teacher cnn_large, student cnn_small, the study protocol of fashion_mnist.md; seeds {' '.join(seeds)}.", "",
         "| K | final test accuracy (%), mean ± std | per seed | paired vs K = " + ks[0] + " | mean step (ms) |",
         "| --- | --- | --- | --- | --- |"]
for k, acc, step in rows:
    vals = [acc[s] for s in seeds]
    diffs = [acc[s] - base[s] for s in seeds]
    sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
    dsd = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
    lines.append(f"| {k} | {statistics.mean(vals):.2f} ± {sd:.2f} | {' / '.join(f'{v:.2f}' for v in vals)} | "
                 f"{statistics.mean(diffs):+.2f} ± {dsd:.2f} | {step:.1f} |")
lines += ["", "Step times are the runs' own (epoch wall time / steps) on a shared machine; the step-cost "
          "ratios come from `build/bench/bm_step` (bench/README.md)."]
open(report, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
