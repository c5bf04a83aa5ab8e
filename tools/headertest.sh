#!/usr/bin/env bash
# Each public header compiles on its own with -std=c11 -pedantic -Werror (libgit2 headertest).
set -euo pipefail
root="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
cc="${CC:-cc}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
for h in "$root"/include/proctor/*.h; do
  name=$(basename "$h")
  printf '#include "proctor/%s"\n#include "proctor/%s"\n' "$name" "$name" > "$tmp/t.c"
  if ! "$cc" -std=c11 -pedantic -Wall -Wextra -Werror -D_GNU_SOURCE -I"$root/include" \
       -c "$tmp/t.c" -o "$tmp/t.o" 2> "$tmp/err"; then
    echo "header not self-contained: $name"; cat "$tmp/err"; fail=1
  fi
done
[ $fail -eq 0 ] && echo "headertest: every header compiles alone"
exit $fail
