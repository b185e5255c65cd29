#!/usr/bin/env bash
# Writes dtokd's generated Halide kernels into OUT as a build artifact: every kernel's
# static library (all CPU targets, the schedule variants, the CUDA variants unless
# -DDTOKD_CUDA=OFF), the shared Halide runtimes, the generated headers, Halide's runtime
# headers and the dtokd_kernels CMake package with the variant table. Runs where Halide
# is; a machine without it then builds with -DDTOKD_KERNELS_DIR=OUT.
# Usage: scripts/kernels_artifact.sh OUT [BUILD_DIR]
#   BUILD_DIR (default build-kernels): an existing build is reused as it is; a new one
#   is configured with DTOKD_CMAKE_ARGS (e.g. -DDTOKD_CUDA_TARGET=...) and builds the
#   kernels only. DTOKD_JOBS sets the build's parallelism (default: all cores).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if (($# < 1 || $# > 2)); then
  echo "usage: $0 OUT [BUILD_DIR]" >&2
  exit 2
fi
out="$1"
build="${2:-$here/build-kernels}"

export CCACHE_BASEDIR="$here"
export CCACHE_NOHASHDIR=1
if [ ! -f "$build/CMakeCache.txt" ]; then
  # Only the kernels are built; tests and benchmarks would only add configure time.
  cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
    -DDTOKD_BUILD_TESTS=OFF -DDTOKD_BUILD_BENCH=OFF ${DTOKD_CMAKE_ARGS:-}
fi
if grep -q '^DTOKD_KERNELS_DIR:PATH=.' "$build/CMakeCache.txt"; then
  echo "kernels_artifact: $build builds from a kernels artifact itself (DTOKD_KERNELS_DIR); use a build with Halide" >&2
  exit 1
fi
cmake --build "$build" --target dtokd_kernels_artifact --parallel "${DTOKD_JOBS:-$(nproc)}"
if [ -n "$(ls -A "$out" 2>/dev/null)" ] && [ ! -f "$out/lib/cmake/dtokd_kernels/dtokd_kernelsConfig.cmake" ]; then
  echo "kernels_artifact: $out is not empty and holds no kernels artifact; give a new or an artifact's folder" >&2
  exit 1
fi
rm -rf "$out"  # an older artifact: none of its kernels may stay behind
cmake --install "$build" --component dtokd_kernels --prefix "$out"
echo "kernels_artifact: wrote $out ($(du -sh "$out" | cut -f1))"
