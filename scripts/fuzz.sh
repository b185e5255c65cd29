#!/usr/bin/env bash
# Builds dtokd's libFuzzer targets (a separate clang build, ASan + UBSan: build-fuzz)
# and runs each for a given time on a copy of its seed corpus (fuzz/corpus/<target>),
# so the repo's corpus does not grow. Writes one summary line per target and exits
# non-zero when any target found a crash, hang (-timeout) or OOM (-rss_limit_mb).
# Usage: scripts/fuzz.sh [seconds-per-target (default 60)] [target...]
# Targets: idx idx_gz cifar config checkpoint tuning logit_cache image (default: all).
# Env: DTOKD_FUZZ_BUILD (build folder), DTOKD_FUZZ_OUT (run folder: corpora, logs,
# artifacts, summary.txt; default build-fuzz/runs/<date>).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-60}"
shift || true
all=(idx idx_gz cifar config checkpoint tuning logit_cache image)
targets=("$@")
((${#targets[@]})) || targets=("${all[@]}")
for t in "${targets[@]}"; do
  [[ " ${all[*]} " == *" $t "* ]] || { echo "fuzz: unknown target '$t'; expected one of: ${all[*]}" >&2; exit 2; }
done

# The fuzz build's own packages (the main setup does not need clang).
packages=(clang-14 libclang-rt-14-dev cmake ninja-build ccache libtorch-dev zlib1g-dev libcli11-dev libtomlplusplus-dev nlohmann-json3-dev libjpeg62-turbo-dev libpng-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "fuzz: installing ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

export CCACHE_BASEDIR="$here" CCACHE_NOHASHDIR=1
export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}"
build="${DTOKD_FUZZ_BUILD:-$here/build-fuzz}"
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDTOKD_FUZZ=ON \
    -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
    -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
fi
nice -n 19 cmake --build "$build" --parallel "${DTOKD_FUZZ_JOBS:-2}"

out="${DTOKD_FUZZ_OUT:-$build/runs/$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out"
summary="$out/summary.txt"
echo "# scripts/fuzz.sh $seconds ${targets[*]} at $(git -C "$here" rev-parse --short HEAD) on $(date -u +%FT%TZ)" >"$summary"
# LibTorch's own allocations at start-up are not this project's leaks; ASan/UBSan abort on the first error.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# The targets feed the readers through files: in memory, one folder per run, removed at
# the end (a crashing target cannot remove its own).
scratch="$(mktemp -d "${DTOKD_FUZZ_SCRATCH_BASE:-/dev/shm}/dtokd-fuzz-run.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
export DTOKD_FUZZ_SCRATCH="$scratch"
failed=0
for t in "${targets[@]}"; do
  bin="$build/fuzz/fuzz_${t%_gz}"  # idx_gz: the IDX target on the gzip corpus
  dir="$out/$t"
  rm -rf "$dir"
  mkdir -p "$dir/artifacts"
  cp -r "$here/fuzz/corpus/$t" "$dir/corpus"
  seeds=$(ls "$dir/corpus" | wc -l)
  dict=()
  [ -f "$here/fuzz/dict/$t.dict" ] && dict=(-dict="$here/fuzz/dict/$t.dict")
  echo "fuzz: $t for ${seconds}s ($seeds seeds) -> $dir/log" >&2
  set +e
  nice -n 19 "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
    "${dict[@]}" -artifact_prefix="$dir/artifacts/" "$dir/corpus" >"$dir/log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$dir/log" | grep -o '[0-9]*$' | tail -1 || true)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$dir/log" | grep -o '[0-9]*$' | tail -1 || true)
  last=$(grep -E '^#[0-9]+' "$dir/log" | tail -1 || true)
  cov=$(grep -o 'cov: [0-9]*' <<<"$last" | grep -o '[0-9]*' || true)
  ft=$(grep -o 'ft: [0-9]*' <<<"$last" | grep -o '[0-9]*' || true)
  corp=$(grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' <<<"$last" | cut -d' ' -f2 || true)
  findings=$(ls "$dir/artifacts" | grep -cE '^(crash|timeout|oom|leak|slow-unit)-' || true)
  line="$t: rc=$rc execs=${execs:-?} exec/s=${rate:-?} cov=${cov:-?} ft=${ft:-?} corpus=${corp:-?} (from $seeds seeds) findings=$findings"
  [ "$findings" -gt 0 ] && line+=" [$(ls "$dir/artifacts" | tr '\n' ' ')]"
  echo "$line" | tee -a "$summary"
  if [ "$rc" -ne 0 ] || [ "$findings" -gt 0 ]; then failed=1; fi
done
echo "fuzz: summary in $summary" >&2
exit "$failed"
