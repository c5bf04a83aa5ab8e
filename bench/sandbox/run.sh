#!/usr/bin/env bash
# Sandbox start-up, interleaved with bubblewrap and the floors, in one run:
#   bash bench/sandbox/run.sh [BUILD_DIR] [N]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-$root/build}"
n="${2:-300}"
command -v bwrap >/dev/null || echo "bwrap not installed: apt-get install bubblewrap" >&2
"$build/bench/pr_bench_startup" "$n" "$build/proctor"
