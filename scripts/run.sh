#!/usr/bin/env bash
# Quick start, command 1: set up if needed, then run the main dtokd job.
# Extra arguments go to dtokd (e.g. `scripts/run.sh info`).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${DTOKD_BUILD_DIR:-$here/build}"
"$here/scripts/setup.sh" "$build" >&2
exec "$build/pipelines/dtokd" "$@"
