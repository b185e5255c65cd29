#!/usr/bin/env bash
# Data-parallel measurements on this machine (docs/data_parallel.md), one run each:
#  1. bytes each rank sums or broadcasts per step, per policy (2 ranks; summary.json's
#     collective_bytes_per_step), for cnn_small and resnet20 students;
#  2. throughput of 2 ranks x 1 thread (--nproc 2) against 1 rank x 2 threads for the same
#     global batch, cnn_small and resnet20 under dto: images/s of one epoch (the epoch
#     line of metrics.jsonl; STEPS > 0 cuts the epoch to that many steps).
# Fashion-MNIST from Debian's package; a cnn_small teacher trained for 100 steps here.
# Usage: bench/data_parallel.sh [build-dir] [steps]   (default: build, 0 = a whole epoch)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$here/build}"
steps="${2:-0}"
dtokd="$build/pipelines/dtokd"
work="$(mktemp -d "${TMPDIR:-/tmp}/dtokd-dp-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT

json() { /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }
epoch_ips() {
  /usr/bin/python3 -c "
import json,sys
for line in open(sys.argv[1]):
    j = json.loads(line)
    if j['type'] == 'epoch': print(round(j['images_per_second'])); break" "$1/metrics.jsonl"
}

"$dtokd" --threads 2 train --model cnn_small --epochs 1 --max-steps 100 --no-progress --out "$work/teacher" >/dev/null 2>&1
teacher="$work/teacher/checkpoint.pt"
common=(--teacher "$teacher" --epochs 1 --no-progress --batch-size 128)

echo "commit $(git -C "$here" rev-parse --short HEAD), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "| student | policy | bytes per step per rank | minus kd's |"
echo "| --- | --- | --- | --- |"
for model in cnn_small resnet20; do
  kd=""
  for method in kd dto dto-amortized dto-logit; do
    out="$work/bytes-$model-$method"
    "$dtokd" --nproc 2 --threads 1 distill "${common[@]}" --model "$model" --method "$method" \
      --dto-reeval-every 1 --max-steps 20 --out "$out" >/dev/null 2>&1
    bytes=$(json "$out/summary.json" collective_bytes_per_step)
    kd=${kd:-$bytes}
    echo "| $model | $method | $bytes | $(/usr/bin/python3 -c "print(f'{$bytes - $kd:+.0f}')") |"
  done
done
echo
echo "| student | 1 rank x 2 threads (images/s) | 2 ranks x 1 thread (images/s) | ratio |"
echo "| --- | --- | --- | --- |"
for model in cnn_small resnet20; do
  one="$work/one-$model" two="$work/two-$model"
  "$dtokd" --threads 2 distill "${common[@]}" --model "$model" --method dto --max-steps "$steps" --out "$one" >/dev/null 2>&1
  "$dtokd" --nproc 2 --threads 1 distill "${common[@]}" --model "$model" --method dto --max-steps "$steps" \
    --out "$two" >/dev/null 2>&1
  a=$(epoch_ips "$one") b=$(epoch_ips "$two")
  echo "| $model | $a | $b | $(/usr/bin/python3 -c "print(f'{$b/$a:.2f}x')") |"
done
