#!/usr/bin/env bash
# proctor's own overhead per test: grade 100 tests of a trivial C solution with one sandbox at a
# time, and compare the tests stage's wall time with the time the program itself ran.
#   bash bench/grade/run.sh [BUILD_DIR] [TESTS]
# overhead per test = (timings.tests_ms - sum of the tests' wall_ms) / TESTS
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-$root/build}"
n="${2:-100}"
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

pack="$work/pack"
mkdir -p "$pack/tests"
"$py" - "$pack" "$n" <<'PY'
import json, sys
pack, n = sys.argv[1], int(sys.argv[2])
tests = []
for i in range(n):
    with open(f"{pack}/tests/{i}.in", "w") as f:
        f.write(f"line {i}\n")
    with open(f"{pack}/tests/{i}.out", "w") as f:
        f.write(f"LINE {i}\n")
    tests.append({"name": f"t{i:03d}", "group": "correctness", "points": 1,
                  "visibility": "visible", "input": f"tests/{i}.in",
                  "expected": f"tests/{i}.out", "compare": "exact"})
man = {"id": "bench-trivial", "version": "1", "title": "trivial", "kind": "stdio",
       "runtimes": ["c"], "limits": {"cpu_ms": 1000, "wall_ms": 3000, "mem_mb": 64},
       "tests": tests}
json.dump(man, open(f"{pack}/challenge.json", "w"))
open(f"{pack}/README.md", "w").write("Upper-case stdin.\n")
PY

sub="$work/sub"
mkdir -p "$sub"
cat > "$sub/main.c" <<'C'
#include <ctype.h>
#include <stdio.h>
int main(void)
{
    int c;
    while ((c = getchar()) != EOF)
        putchar(toupper(c));
    return 0;
}
C
git -C "$sub" init -q -b main
git -C "$sub" -c user.name=b -c user.email=b@example.com add -A
git -C "$sub" -c user.name=b -c user.email=b@example.com commit -qm bench

# Each configuration twice, interleaved: boxes watched by grade's libuv loop (the default, as in
# the daemon) and by their own waiting threads (PROCTOR_BOXWATCH=0).
for round in 1 2; do
for parallel in 1 2; do
for watch in loop thread; do
  [ "$watch" = thread ] && bw=0 || bw=1
  PROCTOR_BOXWATCH=$bw "$build/proctor" grade "$pack" "$sub" --cache "$work/cache" \
    --parallel "$parallel" --quiet -o "$work/report-$parallel.json"
  "$py" - "$work/report-$parallel.json" "$n" "$parallel" "$watch" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
n, par = int(sys.argv[2]), int(sys.argv[3])
print(f"[{sys.argv[4]:6s}] ", end="")
assert r["score"]["percent"] == 100.0, r["score"]
tests_ms = r["timings"]["tests_ms"]
prog_ms = sum(t["wall_ms"] for t in r["tests"])
print(f"parallel={par}: {n} tests in {tests_ms} ms; programs ran {prog_ms} ms in all; "
      f"per test {tests_ms / n:.2f} ms wall, overhead per test "
      f"{(tests_ms * par - prog_ms) / n:.2f} ms of sandbox-slot time")
PY
done
done
done
