#!/usr/bin/env bash
# Prepares .gpu/ (ignored by git) for scripts/gpu_check.sh, which runs on a lent GPU
# machine: a CUDA PyTorch, CMake, ninja and a compiler, but no Halide, no Debian -dev
# packages and no internet. Run here, where Halide and the packages are:
#   .gpu/kernels  the kernels artifact, CUDA variants for compute capability CAP
#   .gpu/deps     the headers, static libraries, shared libraries and CMake configs of the
#                 Debian packages the build needs (GoogleTest, Google Benchmark, toml++,
#                 CLI11, nlohmann-json, zlib, libjpeg, libpng), under their /usr paths
# Then, with the device tool: run(command="bash scripts/gpu_check.sh", carry=[".gpu"]).
# Usage: scripts/prepare_gpu_check.sh [CAP]   (default 80: sm_80 PTX, JIT-compiled on newer GPUs)
#   DTOKD_JOBS: parallelism of the kernels build (default: all cores)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cap="${1:-80}"
gpu="$here/.gpu"
mkdir -p "$gpu"

DTOKD_CMAKE_ARGS="-DDTOKD_CUDA_TARGET=x86-64-linux-sse41-cuda-cuda_capability_$cap" \
  "$here/scripts/kernels_artifact.sh" "$gpu/kernels" "$here/build-kernels-sm$cap"

packages=(libgtest-dev libgmock-dev libbenchmark-dev libbenchmark1debian libtomlplusplus-dev libtomlplusplus3
          libcli11-dev nlohmann-json3-dev zlib1g-dev libjpeg62-turbo-dev libpng-dev)
rm -rf "$gpu/deps"
mkdir -p "$gpu/deps"
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    { echo "prepare_gpu_check: package $p is not installed (scripts/setup.sh installs it)" >&2; exit 1; }
  # Files and links, not documentation; links keep their targets' names (some point
  # outside the package, e.g. libpng16.so, and are not used: gpu_check.sh names the .a).
  dpkg -L "$p" | grep -Ev '^/usr/share/(doc|man|lintian)/' | while read -r f; do
    if [ -f "$f" ] || [ -L "$f" ]; then
      mkdir -p "$gpu/deps$(dirname "$f")"
      cp -a "$f" "$gpu/deps$(dirname "$f")/"
    fi
  done
done
echo "prepare_gpu_check: .gpu/kernels $(du -sh "$gpu/kernels" | cut -f1), .gpu/deps $(du -sh "$gpu/deps" | cut -f1)"
