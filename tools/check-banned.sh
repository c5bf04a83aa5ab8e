#!/usr/bin/env bash
# Fails when C sources call functions the style guide bans (STYLE.md section 8).
# Usage: tools/check-banned.sh [ROOT]
set -euo pipefail
root="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
cd "$root"
banned='strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi|atol|system|popen|tmpnam'
# A call is the name followed by "(", not preceded by an identifier character, "_", ">" or ".".
hits=$(git ls-files -- '*.c' '*.h' 2>/dev/null | grep -v '^tests/security/' |
  xargs -r grep -nE "(^|[^A-Za-z0-9_>.])($banned)[[:space:]]*\(" -- |
  grep -vE '^\S+:[0-9]+:\s*(/\*|\*)' || true)
if [ -n "$hits" ]; then
  echo "banned functions (use snprintf, strtol, strtok_r, pr_buf):"
  echo "$hits"
  exit 1
fi
echo "check-banned: clean"
