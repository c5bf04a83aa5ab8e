#!/usr/bin/env bash
# Runs `proctor challenge check PACK`; skips (77) when the sandbox cannot run a program here.
set -u
proctor=$1
pack=$2
if ! "$proctor" sandbox --result /dev/null -- /bin/true </dev/null >/dev/null 2>&1; then
  echo "SKIP: the sandbox does not run here" >&2
  exit 77
fi
exec "$proctor" challenge check --verbose "$pack"
