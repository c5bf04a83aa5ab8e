#!/usr/bin/env bash
# The README's first command (`make demo`): turns the bundled example submission into a local
# git repository and grades it against challenges/rate-limiter, printing the report.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-build}"
case "$build" in /*) ;; *) build="$root/$build" ;; esac
proctor="$build/proctor"
example="$root/challenges/rate-limiter/solutions/c"
repo="$build/demo/submission"

if [ ! -x "$proctor" ]; then
  echo "demo: $proctor is missing; run 'make build' first" >&2
  exit 2
fi
rm -rf "$repo"
mkdir -p "$repo"
cp -R "$example"/. "$repo"/
rm -f "$repo/expect.json"
git -C "$repo" init -q -b main
git -C "$repo" -c user.name="Demo Candidate" -c user.email="candidate@example.com" add -A
git -C "$repo" -c user.name="Demo Candidate" -c user.email="candidate@example.com" \
  commit -q -m "Token-bucket rate limiter"

echo "demo: grading $repo against challenges/rate-limiter" >&2
status=0
"$proctor" grade "$root/challenges/rate-limiter" "$repo" \
  --cache "$build/demo/cache" -o "$build/demo/report.json" || status=$?
[ -f "$build/demo/report.json" ] || exit "$status"
cat "$build/demo/report.json"
echo >&2
echo "demo: report written to $build/demo/report.json" >&2
exit $status
