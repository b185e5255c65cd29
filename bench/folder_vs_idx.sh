#!/usr/bin/env bash
# Fashion-MNIST through the IDX reader and written out as PNG folders (--dataset folder):
# the same student, schedule and seeds on each, so the accuracies differ only by the
# data order (folders list images by class) and noise. The folder run uses the IDX
# path's normalization and an identity evaluation crop, so the pixels are the same.
# Usage: bench/folder_vs_idx.sh [OUT] [EPOCHS] [SEEDS]   (defaults: runs/folder_vs_idx 3 "0 1 2")
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$here/runs/folder_vs_idx}"
epochs="${2:-3}"
seeds="${3:-0 1 2}"
build="${DTOKD_BUILD:-$here/build}"
dtokd="$build/pipelines/dtokd"
mkdir -p "$out"
[ -d "$out/fashion-mnist-png" ] || "$build/bench/write_image_folder" fashion-mnist "" "$out/fashion-mnist-png" png
common=(train --model cnn_small --epochs "$epochs" --no-progress)
for seed in $seeds; do
  [ -f "$out/idx-$seed/summary.json" ] || "$dtokd" "${common[@]}" --seed "$seed" --out "$out/idx-$seed" >/dev/null
  [ -f "$out/folder-$seed/summary.json" ] ||
    "$dtokd" "${common[@]}" --seed "$seed" --dataset folder --data "$out/fashion-mnist-png" --image-size 28 \
      --center-crop-fraction 1 --mean 0.2860 --std 0.3530 --out "$out/folder-$seed" >/dev/null
done
python3 - "$out" $seeds <<'PY'
import json, sys, statistics
out, seeds = sys.argv[1], sys.argv[2:]
print("| data | seed | final test accuracy | images/s (last epoch) | data wait share (last epoch) |")
print("| --- | --- | --- | --- | --- |")
for kind in ("idx", "folder"):
    accs = []
    for s in seeds:
        run = f"{out}/{kind}-{s}"
        summary = json.load(open(f"{run}/summary.json"))
        epochs = [json.loads(l) for l in open(f"{run}/metrics.jsonl") if '"type":"epoch"' in l]
        accs.append(summary["final_test_accuracy"])
        print(f"| {kind} | {s} | {summary['final_test_accuracy']:.4f} | {epochs[-1]['images_per_second']:.0f} | "
              f"{epochs[-1]['data_wait_fraction']:.4f} |")
    sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
    print(f"| {kind} | mean +- std | {statistics.mean(accs):.4f} +- {sd:.4f} | | |")
PY
