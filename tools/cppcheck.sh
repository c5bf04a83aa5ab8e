#!/usr/bin/env bash
# cppcheck over proctor's own code (runner/, sandbox/) with the configuration of STYLE.md
# section 9. Usage: tools/cppcheck.sh BUILD_DIR (a build configured with CMake, which writes
# compile_commands.json).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:?usage: tools/cppcheck.sh BUILD_DIR}"
command -v cppcheck >/dev/null || { echo "cppcheck not installed: skipped"; exit 77; }
[ -f "$build/compile_commands.json" ] || { echo "no $build/compile_commands.json"; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Only the translation units of runner/ and sandbox/ (tests and benchmarks are not product code).
/usr/bin/python3 - "$build/compile_commands.json" "$root" "$tmp/cc.json" <<'PY'
import json, sys
cmds, root, out = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
keep = [c for c in cmds if c["file"].startswith((root + "/runner/", root + "/sandbox/"))]
seen, uniq = set(), []
for c in keep:
    if c["file"] not in seen:
        seen.add(c["file"])
        uniq.append(c)
json.dump(uniq, open(out, "w"))
PY
cppcheck --project="$tmp/cc.json" --std=c11 --library=posix --library=gnu \
  --library="$root/tools/proctor.cfg" --enable=warning,performance,portability --inline-suppr \
  --suppress='*:/usr/*' --error-exitcode=1 -q
echo "cppcheck: clean"
