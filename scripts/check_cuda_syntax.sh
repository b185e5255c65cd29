#!/usr/bin/env bash
# A syntax-only compile of the files that only a CUDA LibTorch build compiles (the GPU
# path: runtime/cuda_device.cpp, the Halide CUDA bridge and kernels, tests/cuda/test_gpu_*,
# bench/bm_gpu_kernels.cpp),
# against Debian's ATen/c10 CUDA headers and a CUDA toolkit's headers, so typos and wrong
# names are found here and not on a lent GPU machine. It links nothing, and APIs that only
# LibTorch 2.x has or lacks are not seen. Not run by CI (it needs a CUDA toolkit's headers).
# Usage: scripts/check_cuda_syntax.sh [BUILD_DIR]   (default build: its generated kernel headers)
#   CUDA_INCLUDE: the toolkit's include folder (default: /usr/local/cuda/include, else the
#   newest /usr/local/cuda-*/include)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$here/build}"
cuda_include="${CUDA_INCLUDE:-}"
if [ -z "$cuda_include" ]; then
  for d in /usr/local/cuda/include $(ls -d /usr/local/cuda-*/include 2>/dev/null | sort -rV); do
    if [ -f "$d/cuda_runtime_api.h" ]; then cuda_include="$d"; break; fi
  done
fi
[ -n "$cuda_include" ] && [ -f "$cuda_include/cuda_runtime_api.h" ] ||
  { echo "check_cuda_syntax: no CUDA toolkit headers (set CUDA_INCLUDE)" >&2; exit 2; }
kernel_headers="$build/generators"
[ -f "$kernel_headers/dtokd_log_gram_cuda.h" ] ||
  { echo "check_cuda_syntax: $kernel_headers has no CUDA kernel headers (build with DTOKD_CUDA=ON first)" >&2; exit 2; }
# Debian's LibTorch ships the c10/cuda headers without the one CMake generates.
shim="$(mktemp -d)"
trap 'rm -rf "$shim"' EXIT
mkdir -p "$shim/c10/cuda/impl"
echo '#pragma once' >"$shim/c10/cuda/impl/cuda_cmake_macros.h"
status=0
for f in runtime/cuda_device.cpp runtime/halide_cuda_bridge.cpp runtime/halide_cuda_kernels.cpp \
         tests/cuda/test_gpu_*.cpp bench/bm_gpu_kernels.cpp; do
  if g++ -std=c++17 -fsyntax-only -Wall -Wextra -isystem "$shim" -isystem /usr/include/torch/csrc/api/include \
       -isystem "$cuda_include" -isystem /usr/include/halide14 -I"$kernel_headers" -I"$here/runtime" \
       -I"$here/pipelines" -I"$here/models" -I"$here/bench" -DDTOKD_CLI='"dtokd"' "$here/$f"; then
    echo "ok    $f"
  else
    echo "FAIL  $f"; status=1
  fi
done
exit $status
