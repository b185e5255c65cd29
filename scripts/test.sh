#!/usr/bin/env bash
# Quick start, command 2: set up if needed (packages, configure, build), then run every test.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${DTOKD_BUILD_DIR:-$here/build}"
"$here/scripts/setup.sh" "$build"
cd "$build"
ctest --output-on-failure --parallel "$(nproc)" "$@"
