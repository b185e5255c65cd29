#!/usr/bin/env bash
# The methods study (evidence part 2): every distillation method with its published fixed
# weights and under each DTO policy, on Fashion-MNIST, in two regimes:
#   full:   the student trains on all 60,000 training images (1 epoch);
#   scarce: on a fixed stratified 10% (6,000 images, 600 per class; --train-fraction 0.1
#           --subset-seed 0; 6 epochs), while the teacher was trained on all of them: the
#           regime where the teacher's soft labels carry what the few labels do not.
# The epochs are sized so that the whole study fits in 3 hours on 2 cores (the costly
# methods, ReviewKD, CRD and RKD, take most of it; every run evaluates the 10,000 test
# images after each epoch, which is why the scarce regime trains on 10% for 6 epochs
# rather than on 5% for 12).
# Teacher cnn_large, student cnn_small. Per regime and seed: CE alone; KD over the alpha
# grid {0.1, 0.3, 0.5, 0.7, 0.9} (0.9 is the published weight); for each method its
# published weights (the CIFAR-100 configs' values), dto, dto-amortized, dto-logit where
# every objective is a function of the logits, and the terms as separate DTO objectives
# for the multi-term methods (dkd, dist, rkd). Then an lr sweep on the scarce regime
# (x0.5 and x2 of the default) for KD at its best alpha, dto and dto-amortized.
# Finished runs are reused and interrupted ones resumed, so the study resumes where it
# stopped; each invocation's wall time goes to $STUDY_ROOT/invocations.log and the report
# gives their sum. A run that stops on non-finite losses (dtokd's skip limit) is a result,
# not a failure of the study: its error goes to <run>.failed and the report lists it.
# Renders docs/results/methods.md (methods_report.py).
#   pipelines/studies/methods.sh [--quick]     (--quick: 3 steps per run, one seed, runs and report
#                                               under runs/methods-quick: a smoke run of every command)
# Env: STUDY_ROOT, STUDY_SEEDS ("0 1 2"), STUDY_FULL_EPOCHS (1), STUDY_SCARCE_EPOCHS (6),
#      STUDY_TEACHER_EPOCHS (8), STUDY_FRACTION (0.1), STUDY_METHODS, STUDY_REPORT.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dtokd="${DTOKD:-$here/build/pipelines/dtokd}"
quick=0
[ "${1:-}" = "--quick" ] && quick=1
root="${STUDY_ROOT:-$here/runs/methods$([ $quick = 1 ] && echo -quick || true)}"
seeds="${STUDY_SEEDS:-$([ $quick = 1 ] && echo 0 || echo 0 1 2)}"
full_epochs="${STUDY_FULL_EPOCHS:-1}"
scarce_epochs="${STUDY_SCARCE_EPOCHS:-6}"
teacher_epochs="${STUDY_TEACHER_EPOCHS:-8}"
fraction="${STUDY_FRACTION:-0.1}"
methods=(${STUDY_METHODS:-dkd dist fitnet at pkt rkd ofd reviewkd crd})
report="${STUDY_REPORT:-$([ $quick = 1 ] && echo "$root/report" || echo "$here/docs/results")}"
extra=()
[ $quick = 1 ] && extra=(--max-steps 3)

[ -x "$dtokd" ] || "$here/scripts/setup.sh" >&2
mkdir -p "$root"
start=$(date +%s)
commit="$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)"
log_invocation() { echo "$start $(date +%s) $commit" >>"$root/invocations.log"; }
trap log_invocation EXIT  # an interrupted invocation's time counts too

run() {  # run <out> <train|distill> <args...>: reuse a finished run, resume an interrupted one
    local out="$1" cmd="$2" rc=0 args
    shift 2
    if [ -f "$out/summary.json" ] || [ -f "$out.failed" ]; then return; fi
    mkdir -p "$(dirname "$out")"
    if [ -d "$out.partial" ]; then
        echo "resume $out" >&2
        args=("$cmd" --resume "$out" --no-progress)
    else
        echo "run    $out" >&2
        args=("$cmd" "$@" --out "$out" --no-progress "${extra[@]}")
    fi
    "$dtokd" "${args[@]}" >/dev/null 2>"$root/stderr.txt" || rc=$?
    if [ $rc = 1 ] && grep -q "training stopped at step" "$root/stderr.txt"; then
        cp "$root/stderr.txt" "$out.failed"  # diverged: a result of this variant
        echo "failed $out: $(cat "$out.failed")" >&2
    else
        cat "$root/stderr.txt" >&2
        [ $rc = 0 ] || exit $rc
    fi
}

# The published fixed weights (objective, ce): pipelines/configs/cifar100/*/<method>.toml.
declare -A weights=([kd]=0.9,0.1 [dkd]=1,1 [dist]=2,1 [fitnet]=100,1 [at]=1000,1 [pkt]=30000,1 [rkd]=1,1
                    [ofd]=0.001,1 [reviewkd]=5,1 [crd]=0.8,1)
declare -A split=([dkd]=dkd_tckd,dkd_nckd,ce [dist]=dist_inter,dist_intra,ce [rkd]=rkd_distance,rkd_angle,ce)
logit_only=" kd dkd dist "

run "$root/teacher" train --model cnn_large --epochs "$teacher_epochs" --seed 0
teacher="$root/teacher/checkpoint.pt"
base=(--model cnn_small --schedule cosine --batch-size 128 --log-interval 10)
distill=(--teacher "$teacher" --temperature 4 --cache-dir "$root/cache")

study_regime() {  # study_regime <name> <epochs> <fraction> <crd negatives>
    local name="$1" epochs="$2" frac="$3" seed m pol a
    # CRD draws its negatives from the training set: the reference's 16384 exceed 10% of
    # Fashion-MNIST (6,000 images), so the scarce regime takes 1024.
    local common=("${base[@]}" --lr 0.05 --epochs "$epochs" --train-fraction "$frac" --subset-seed 0)
    local dist=("${distill[@]}" --crd-negatives "$4")
    for seed in $seeds; do
        local at="$root/$name"
        run "$at/ce/seed$seed" train "${common[@]}" --seed "$seed"
        for a in 0.1 0.3 0.5 0.7 0.9; do
            run "$at/kd-a$a/seed$seed" distill "${common[@]}" --seed "$seed" "${dist[@]}" \
                --method kd --alpha-distill "$a" --alpha-task "$(awk "BEGIN{print 1-$a}")"
        done
        for m in kd "${methods[@]}"; do
            if [ "$m" != kd ]; then  # kd's published weight is the grid's a0.9
                run "$at/$m-fixed/seed$seed" distill "${common[@]}" --seed "$seed" "${dist[@]}" \
                    --objectives "$m,ce" --method sum --weights "${weights[$m]}"
            fi
            for pol in dto dto-amortized; do
                run "$at/$m-$pol/seed$seed" distill "${common[@]}" --seed "$seed" "${dist[@]}" \
                    --objectives "$m,ce" --method "$pol"
            done
            if [[ "$logit_only" == *" $m "* ]]; then
                run "$at/$m-dto-logit/seed$seed" distill "${common[@]}" --seed "$seed" "${dist[@]}" \
                    --objectives "$m,ce" --method dto-logit
            fi
            if [ -n "${split[$m]:-}" ]; then
                run "$at/$m-dto-split/seed$seed" distill "${common[@]}" --seed "$seed" "${dist[@]}" \
                    --objectives "${split[$m]}" --method dto
            fi
        done
    done
}

study_regime full "$full_epochs" 1 16384
study_regime scarce "$scarce_epochs" "$fraction" 1024

# lr robustness on the scarce regime: KD at its best alpha there (mean final accuracy over
# seeds), dto and dto-amortized, at lr x0.5 and x2 (x1 is the regime's own runs).
best_alpha=$(/usr/bin/python3 - "$root/scarce" <<'PY'
import json, os, statistics, sys
root = sys.argv[1]
best = None
for a in ("0.1", "0.3", "0.5", "0.7", "0.9"):
    d = os.path.join(root, f"kd-a{a}")
    accs = [json.load(open(os.path.join(d, s, "summary.json")))["final_test_accuracy"]
            for s in sorted(os.listdir(d)) if os.path.exists(os.path.join(d, s, "summary.json"))] if os.path.isdir(d) else []
    if accs and (best is None or statistics.mean(accs) > best[0]):
        best = (statistics.mean(accs), a)
print(best[1] if best else "0.9")
PY
)
for seed in $seeds; do
    for lr in 0.025 0.1; do
        common=("${base[@]}" --epochs "$scarce_epochs" --train-fraction "$fraction" --subset-seed 0 --seed "$seed")
        at="$root/lr$lr"
        run "$at/kd-a$best_alpha/seed$seed" distill "${common[@]}" --lr "$lr" "${distill[@]}" --method kd \
            --alpha-distill "$best_alpha" --alpha-task "$(awk "BEGIN{print 1-$best_alpha}")"
        for pol in dto dto-amortized; do
            run "$at/kd-$pol/seed$seed" distill "${common[@]}" --lr "$lr" "${distill[@]}" \
                --objectives kd,ce --method "$pol"
        done
    done
done
trap - EXIT
log_invocation
seconds=$(awk '{s += $2 - $1} END {print s}' "$root/invocations.log")
commits=$(awk '{print $3}' "$root/invocations.log" | awk '!seen[$0]++' | paste -sd, -)
echo "study runs took $seconds s in all ($(wc -l <"$root/invocations.log") invocations)" >&2
/usr/bin/python3 "$here/pipelines/studies/methods_report.py" --root "$root" --out "$report" \
    --command "pipelines/studies/methods.sh$([ $quick = 1 ] && echo ' --quick' || true) (seeds '$seeds'; full regime $full_epochs epoch(s); scarce regime $scarce_epochs epoch(s) on a fraction $fraction)" \
    --seconds "$seconds" --best-alpha "$best_alpha" --fraction "$fraction" --commit "$commits" \
    --invocations "$(wc -l <"$root/invocations.log")"
