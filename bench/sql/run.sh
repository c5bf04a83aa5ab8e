#!/usr/bin/env bash
# Time to grade the orders-report pack end to end (`proctor grade` of the reference solution,
# fetch included), per engine, with the generated database (SQLite) or template database
# (PostgreSQL) and the reference results not cached, then cached.
#   usage: bench/sql/run.sh [BUILD_DIR] [RUNS]     (default build, 3)
# Prints one line per measurement and a median per case. Not run by ctest.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
runs="${2:-3}"
proctor="$build/proctor"
pack="$root/challenges/orders-report"
work="$(mktemp -d /tmp/proctor-sql-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT

sub="$work/reference"
cp -r "$pack/solutions/reference" "$sub"
git -C "$sub" init -q && git -C "$sub" add . &&
  git -C "$sub" -c user.email=bench@example.invalid -c user.name=bench commit -qm reference

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# grade_once CACHE_DIR -> prints milliseconds
grade_once() {
  local t0 t1
  t0=$(now)
  PROCTOR_SQL_CACHE="$1" "$proctor" grade "$pack" "$sub" -o "$work/report.json" 2>/dev/null
  t1=$(now)
  if ! grep -q '"percent": 100' "$work/report.json"; then
    echo "bench: the reference did not score 100" >&2
    exit 1
  fi
  echo $(( (t1 - t0) / 1000000 ))
}

bench_engine() {
  local engine="$1" cold=() warm=()
  for i in $(seq "$runs"); do
    local cache="$work/cache-$engine-$i"
    if [ "$engine" = postgresql ]; then
      # A fresh template per cold run: drop the one a previous run built.
      local q=(psql -h "$PROCTOR_PG_HOST" -p "$PROCTOR_PG_PORT" -U "$PROCTOR_PG_ADMIN" -d postgres -qAt)
      "${q[@]}" -c "SELECT datname FROM pg_database WHERE datname LIKE 'proctor_tpl_%'" |
        while read -r name; do
          "${q[@]}" -c "ALTER DATABASE \"$name\" IS_TEMPLATE false" >/dev/null
          "${q[@]}" -c "DROP DATABASE \"$name\"" >/dev/null
        done
    fi
    local c w
    c=$(grade_once "$cache")
    w=$(grade_once "$cache")
    echo "$engine run $i: not cached ${c} ms, cached ${w} ms"
    cold+=("$c")
    warm+=("$w")
  done
  echo "$engine median: not cached $(printf '%s\n' "${cold[@]}" | median) ms, cached $(printf '%s\n' "${warm[@]}" | median) ms"
}

if [ -z "${PROCTOR_PG_HOST:-}" ]; then
  PROCTOR_SQL_ENGINE=sqlite bench_engine sqlite
  # The same bench inside a private PostgreSQL cluster.
  PROCTOR_SQL_ENGINE=postgresql bash "$root/tests/sql/pg_cluster.sh" \
    env BENCH_PG_ONLY=1 bash "$0" "$build" "$runs"
elif [ -n "${BENCH_PG_ONLY:-}" ]; then
  PROCTOR_SQL_ENGINE=postgresql bench_engine postgresql
fi
