#!/usr/bin/env bash
# Idempotent setup for a fresh Debian 12 machine: installs every Debian package
# dtokd needs (skipped when all are present), then configures and builds.
# Usage: scripts/setup.sh [build-dir]   (default: build)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$here/build}"

packages=(
  cmake ninja-build g++ ccache pkg-config
  libhalide14-0-dev libtorch-dev libgloo-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libopenblas0-pthread zlib1g-dev libjpeg62-turbo-dev libpng-dev
  libtomlplusplus-dev libcli11-dev nlohmann-json3-dev
  dataset-fashion-mnist
  python3-torch python3-matplotlib
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# ccache: a base dir makes a clone in another folder hit the same cache entries.
export CCACHE_BASEDIR="$here"
export CCACHE_NOHASHDIR=1
export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}"
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"

if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
    ${DTOKD_CMAKE_ARGS:-}
fi
cmake --build "$build" --parallel "$(nproc)"
