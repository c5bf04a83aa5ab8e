#!/usr/bin/env bash
# Fails when a tracked C file is not formatted per .clang-format (clang-format 14+).
set -euo pipefail
root="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
cd "$root"
command -v clang-format >/dev/null || { echo "clang-format not installed: skipped"; exit 77; }
files=$(git ls-files -- '*.c' '*.h' | grep -v '^tests/security/' || true)
[ -n "$files" ] || exit 0
echo "$files" | xargs clang-format --dry-run -Werror
echo "check-format: clean"
