#!/usr/bin/env bash
# How long a training step waits for image-folder batches: resnet20 on 32x32 RGB inputs
# from PNG files (Fashion-MNIST written as folders, resized to 32 and expanded to RGB),
# with the training transform (RandomResizedCrop + flip), per --workers count. The
# epoch line's data_wait_fraction is the share of the epoch the step spent in next().
# Usage: bench/folder_data_wait.sh [OUT] [STEPS] [WORKERS...]   (defaults: runs/folder_data_wait 200 1 2)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$here/runs/folder_data_wait}"
steps="${2:-200}"
shift $(( $# > 2 ? 2 : $# ))
workers=("$@")
((${#workers[@]})) || workers=(1 2)
build="${DTOKD_BUILD:-$here/build}"
mkdir -p "$out"
[ -d "$out/fashion-mnist-png" ] || "$build/bench/write_image_folder" fashion-mnist "" "$out/fashion-mnist-png" png
echo "| workers | steps | images/s | data wait share |"
echo "| --- | --- | --- | --- |"
for w in "${workers[@]}"; do
  run="$out/resnet20-workers$w"
  rm -rf "$run" "$run.partial"
  "$build/pipelines/dtokd" train --dataset folder --data "$out/fashion-mnist-png" --channels 3 --image-size 32 \
    --augment --model resnet20 --epochs 1 --max-steps "$steps" --workers "$w" --no-progress --out "$run" >/dev/null
  python3 - "$run" "$w" "$steps" <<'PY'
import json, sys
run, w, steps = sys.argv[1:]
e = [json.loads(l) for l in open(f"{run}/metrics.jsonl") if '"type":"epoch"' in l][-1]
print(f"| {w} | {steps} | {e['images_per_second']:.0f} | {e['data_wait_fraction']:.4f} |")
PY
done
