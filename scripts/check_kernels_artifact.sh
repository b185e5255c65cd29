#!/usr/bin/env bash
# End-to-end check of the kernels artifact (not run by CI: two builds). In WORK_DIR:
#   normal/    the usual build, Halide generating the kernels;
#   kernels/   the artifact written from it (scripts/kernels_artifact.sh);
#   artifact/  a fresh build from kernels/ with Halide's CMake package hidden.
# It checks that nothing in artifact/ uses Halide (no libHalide in the binaries, no
# compile flag naming Halide's installed headers) and that both test binaries pass the
# same tests. Both are built from the kernel-related test files only (DTOKD_TEST_SOURCES):
# the whole suite's binary takes about half an hour per build on 2 cores.
# Usage: scripts/check_kernels_artifact.sh [WORK_DIR]   (default build-artifact-check)
#   DTOKD_JOBS: build parallelism (default: all cores)
#   DTOKD_ARTIFACT_TEST_SOURCES: the test files (default below; "test_*.cpp" for all)
#   DTOKD_ARTIFACT_TESTS: a gtest filter of the tests run (default: all built)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${1:-$here/build-artifact-check}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"
jobs="${DTOKD_JOBS:-$(nproc)}"
sources="${DTOKD_ARTIFACT_TEST_SOURCES:-test_log_gram.cpp;test_kd_loss.cpp;test_fused_update.cpp;test_kernel_selection.cpp;test_kernel_input_checks.cpp;test_min_norm.cpp;test_tradeoff_policies.cpp;test_threads.cpp}"
filter="${DTOKD_ARTIFACT_TESTS:-*}"
export CCACHE_BASEDIR="$here"
export CCACHE_NOHASHDIR=1

fail() { echo "check_kernels_artifact: FAIL: $*" >&2; exit 1; }
configure() {  # build-dir extra-cmake-args...
  local build="$1"; shift
  cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
    -DDTOKD_BUILD_BENCH=OFF "-DDTOKD_TEST_SOURCES=$sources" "$@" >"$build.configure.log"
}

t0=$SECONDS
configure "$work/normal"
cmake --build "$work/normal" --target dtokd_tests --parallel "$jobs"
echo "check_kernels_artifact: normal build: $((SECONDS - t0)) s"

t0=$SECONDS
DTOKD_JOBS="$jobs" "$here/scripts/kernels_artifact.sh" "$work/kernels" "$work/normal" >"$work/kernels.log"
echo "check_kernels_artifact: artifact: $((SECONDS - t0)) s, $(du -sh "$work/kernels" | cut -f1)," \
     "$(find "$work/kernels/lib" -name '*.a' | wc -l) libraries," \
     "$(find "$work/kernels/include" -maxdepth 1 -name '*.h' | wc -l) kernel headers"

# A fresh folder, and find_package(Halide) made to fail if anything still asked for it.
rm -rf "$work/artifact"
t0=$SECONDS
configure "$work/artifact" -DDTOKD_KERNELS_DIR="$work/kernels" -DCMAKE_DISABLE_FIND_PACKAGE_Halide=ON
cmake --build "$work/artifact" --target dtokd_tests --parallel "$jobs"
echo "check_kernels_artifact: artifact build: $((SECONDS - t0)) s"

halide_header="$(find /usr/include -maxdepth 2 -name HalideRuntime.h | head -1)"
if [ -n "$halide_header" ] &&
   ninja -C "$work/artifact" -t commands tests/dtokd_tests | grep -q -- "-isystem $(dirname "$halide_header")\b\|-I$(dirname "$halide_header")\b"; then
  fail "a compile command of the artifact build uses Halide's installed headers ($(dirname "$halide_header"))"
fi
for binary in "$work/artifact/pipelines/dtokd" "$work/artifact/tests/dtokd_tests"; do
  if ldd "$binary" | grep -i halide; then fail "$binary links a Halide library"; fi
done
# Not required (paths or a compiler change could differ), but what one expects: the
# same kernels linked into the same code make the same binary.
if cmp -s "$work/normal/pipelines/dtokd" "$work/artifact/pipelines/dtokd"; then
  echo "check_kernels_artifact: the two dtokd binaries are identical"
else
  echo "check_kernels_artifact: note: the two dtokd binaries differ"
fi

# Same tests, same outcome: the sorted "[ OK ]/[ FAILED ]/[ SKIPPED ]" lines.
run_tests() {  # name
  local status=0
  "$work/$1/tests/dtokd_tests" --gtest_filter="$filter" >"$work/$1.log" 2>&1 || status=$?
  grep -E '^\[ +(OK|FAILED|SKIPPED) +\] [^ ]+\.[^ ]+' "$work/$1.log" | sed -E 's/ \([0-9]+ ms\)$//' |
    sort -u >"$work/$1.results"
  echo "check_kernels_artifact: $1 tests: exit $status," \
       "$(grep -c '^\[ *OK' "$work/$1.results" || true) passed," \
       "$(grep -c '^\[ *FAILED' "$work/$1.results" || true) failed," \
       "$(grep -c '^\[ *SKIPPED' "$work/$1.results" || true) skipped"
  return $status
}
normal_status=0; artifact_status=0
run_tests normal || normal_status=$?
run_tests artifact || artifact_status=$?
[ -s "$work/normal.results" ] || fail "no test ran (filter $filter)"
diff "$work/normal.results" "$work/artifact.results" || fail "the builds' test results differ (above)"
((normal_status == 0 && artifact_status == 0)) || fail "tests failed (logs: $work/normal.log, $work/artifact.log)"
echo "check_kernels_artifact: OK: the artifact build passes the same $(wc -l <"$work/normal.results") tests"
