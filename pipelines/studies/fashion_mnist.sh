#!/usr/bin/env bash
# The Fashion-MNIST accuracy study: does DTO-KD beat hand-tuned KD?
# One teacher (cnn_large), one student (cnn_small); per seed: CE student, KD with
# alpha_distill in {0.1,0.3,0.5,0.7,0.9} (T=4), dto, dto-amortized, dto-logit. All runs
# of a seed share epochs, schedule, initial student and data order. Finished runs are
# reused, so an interrupted study resumes. Then renders docs/results/fashion_mnist.md.
#   pipelines/studies/fashion_mnist.sh            (STUDY_EPOCHS, STUDY_SEEDS, STUDY_ROOT to change)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dtokd="${DTOKD:-$here/build/pipelines/dtokd}"
root="${STUDY_ROOT:-$here/runs/study}"
epochs="${STUDY_EPOCHS:-10}"
teacher_epochs="${STUDY_TEACHER_EPOCHS:-8}"
seeds="${STUDY_SEEDS:-0 1 2}"
extra=(${STUDY_EXTRA:-})  # e.g. "--max-steps 5" for a smoke run
report="${STUDY_REPORT:-$here/docs/results}"

[ -x "$dtokd" ] || "$here/scripts/setup.sh" >&2
mkdir -p "$root"
start=$(date +%s)

run() {  # run <out> <args...>: skip when <out> finished earlier
    local out="$1"; shift
    if [ -f "$out/summary.json" ]; then echo "reuse $out" >&2; return; fi
    echo "run   $out" >&2
    "$dtokd" "$@" --out "$out" --no-progress "${extra[@]}" >/dev/null
}

run "$root/teacher" train --model cnn_large --epochs "$teacher_epochs" --seed 0
teacher="$root/teacher/checkpoint.pt"
common=(--model cnn_small --epochs "$epochs" --schedule cosine --lr 0.05 --batch-size 128 --log-interval 20)
for seed in $seeds; do
    run "$root/ce/seed$seed" train "${common[@]}" --seed "$seed"
    for a in 0.1 0.3 0.5 0.7 0.9; do
        t=$(awk "BEGIN{print 1-$a}")
        run "$root/kd-a$a/seed$seed" distill "${common[@]}" --seed "$seed" --teacher "$teacher" \
            --method kd --temperature 4 --alpha-distill "$a" --alpha-task "$t" --cache-dir "$root/cache"
    done
    for m in dto dto-amortized dto-logit; do
        run "$root/$m/seed$seed" distill "${common[@]}" --seed "$seed" --teacher "$teacher" --method "$m" \
            --cache-dir "$root/cache" \
            --temperature 4
    done
done
echo "study runs took $(( $(date +%s) - start )) s" >&2
/usr/bin/python3 "$here/pipelines/studies/report.py" --root "$root" --out "$report" \
    --command "pipelines/studies/fashion_mnist.sh (STUDY_EPOCHS=$epochs STUDY_TEACHER_EPOCHS=$teacher_epochs STUDY_SEEDS='$seeds')" \
    --seconds $(( $(date +%s) - start )) \
    --commit "$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)"
