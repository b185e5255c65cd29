#!/usr/bin/env bash
# The test suite under AddressSanitizer (+ LeakSanitizer) and UndefinedBehaviorSanitizer.
# Builds dtokd's own code (runtime, models, pipelines, the dtokd binary, tests, benches)
# with -DDTOKD_SANITIZE=address,undefined in a separate build folder, then runs ctest
# with options that turn every report into a failed test. The Halide kernels and
# LibTorch are not instrumented; tests/sanitizers/*.supp lists what is suppressed and why.
# Child processes (the dtokd binary run by the CLI tests) inherit the options.
#
# Usage: scripts/sanitize.sh [--all] [--shards N] [build-dir] [-- ctest args...]
#   build-dir  default: build-asan
#   --shards N run the test binary itself as N gtest shards in parallel, one process each,
#              instead of ctest's one process per test case (each start of the instrumented
#              binary costs seconds; the suite then takes a fraction of the time). Output in
#              build-dir/sanitize-shard-<i>.log; a report aborts that shard (its log ends there).
#   --all      also run the 12 CIFAR-100 config tests (PairConfigs: several minutes
#              each even without sanitizers; they run the same code paths as the
#              Fashion-MNIST config tests on more configs). Excluded by default.
#   after --, extra ctest arguments (e.g. -R Checkpoint, -E Cli); a -E of your own
#   replaces the default exclusion.
# Needs the packages of scripts/setup.sh (run it once); uses ccache like it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$here/build-asan"
all=0
shards=0
ctest_args=()
while (($#)); do
  case "$1" in
    --all) all=1 ;;
    --shards) shards="$2"; shift ;;
    --) shift; ctest_args=("$@"); break ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) build="$1" ;;
  esac
  shift
done

supp="$here/tests/sanitizers"
# halt/abort on the first report so the process (and its test) fails; leaks checked at exit.
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=0:suppressions=$supp/asan.supp:print_suppressions=0"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1:suppressions=$supp/ubsan.supp:print_suppressions=0"

export CCACHE_BASEDIR="$here"
export CCACHE_NOHASHDIR=1
export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}"
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"

jobs="${DTOKD_JOBS:-$(nproc)}"
if [ ! -f "$build/build.ninja" ]; then
  # No CUDA variants: the sanitizers do not reach them, and they only add build time.
  cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DDTOKD_SANITIZE=address,undefined -DDTOKD_CUDA=OFF \
    -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
    ${DTOKD_CMAKE_ARGS:-}
fi
# The test binary is built with the options above set: gtest_discover_tests runs it
# at build time, and a report there fails the build.
cmake --build "$build" --parallel "$jobs" --target dtokd dtokd_tests

default_exclude=()
if ((!all)); then
  default_exclude=(-E '^Cifar100/PairConfigs\.')
  for a in "${ctest_args[@]}"; do [ "$a" = "-E" ] && default_exclude=(); done
fi
cd "$build"
start=$(date +%s)
if ((shards > 0)); then
  filter='*'
  ((all)) || filter='-Cifar100/PairConfigs.*'
  pids=()
  for ((i = 0; i < shards; i++)); do
    GTEST_TOTAL_SHARDS=$shards GTEST_SHARD_INDEX=$i ./tests/dtokd_tests --gtest_filter="$filter" \
      > "sanitize-shard-$i.log" 2>&1 &
    pids+=($!)
  done
  status=0
  for ((i = 0; i < shards; i++)); do
    wait "${pids[$i]}" || { status=$?; echo "sanitize: shard $i exited $status (see $build/sanitize-shard-$i.log)"; }
    grep -E '^\[  (PASSED|FAILED|SKIPPED) ' "sanitize-shard-$i.log" | sed "s/^/shard $i: /" || true
  done
  echo "sanitize: $shards shards took $(( $(date +%s) - start )) s (exit $status); commit $(git -C "$here" rev-parse --short HEAD)"
  exit $status
fi
status=0
ctest --output-on-failure --parallel "$jobs" "${default_exclude[@]}" "${ctest_args[@]}" || status=$?
echo "sanitize: ctest took $(( $(date +%s) - start )) s (exit $status); commit $(git -C "$here" rev-parse --short HEAD)"
exit $status
