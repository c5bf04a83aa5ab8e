#!/bin/bash
# Daemon benchmark (not run by ctest): HTTP throughput with wrk on loopback, p99 latency while
# jobs are grading, and end-to-end submissions per minute for a challenge pack, with where the
# time goes (fetch, build, tests) from the reports' timings.
#
#   bench/daemon/run.sh [BUILD_DIR] [CHALLENGE] [JOBS]
#   defaults: build-daemon, rate-limiter, 20
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$SRC/build-daemon}
CHALLENGE=${2:-rate-limiter}
JOBS=${3:-20}
PROCTOR=$BUILD/proctor
DUR=${DUR:-10s}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 2; }

TMP=$(mktemp -d /tmp/proctor-bench-daemon.XXXXXX)
chmod 755 "$TMP" # the sandbox traverses the work dir inside it
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$TMP"' EXIT
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
TOK=bench-reviewer-token
SUB=bench-submitter-token

# The candidate repository: the pack's reference C solution.
mkdir -p "$TMP/repo"
cp -r "$SRC/challenges/$CHALLENGE/solutions/c/." "$TMP/repo/"
rm -f "$TMP/repo/expect.json"
git -C "$TMP/repo" init -q -b main
git -C "$TMP/repo" add -A
git -C "$TMP/repo" -c user.name=b -c user.email=b@b commit -q -m bench

cat > "$TMP/proctor.json" <<JSON
{"listen": "127.0.0.1:$PORT", "spool": "$TMP/spool", "challenges": "$SRC/challenges",
 "min_free_mb": 0,
 "tokens": [{"token": "$TOK", "role": "reviewer", "name": "r"},
            {"token": "$SUB", "role": "submitter", "name": "s"}],
 "limits": {"max_connections": 2048}}
JSON
"$PROCTOR" serve --config "$TMP/proctor.json" 2>"$TMP/daemon.log" &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done

submit() {
    curl -sf -H "Authorization: Bearer $SUB" -H 'Content-Type: application/json' \
        -d "{\"repo\": \"$TMP/repo\", \"challenge\": \"$CHALLENGE\", \"candidate\": \"bench$1\"}" \
        "http://127.0.0.1:$PORT/v1/submissions" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}

echo "== idle: GET /healthz"
wrk -t2 -c32 -d"$DUR" --latency "http://127.0.0.1:$PORT/healthz" | grep -E "Requests/sec|99%|50%"

FIRST=$(submit 0)
while ! curl -sf -H "Authorization: Bearer $TOK" "http://127.0.0.1:$PORT/v1/submissions/$FIRST" | grep -q '"status":"done"'; do sleep 0.5; done
cat > "$TMP/auth.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $TOK"
LUA
echo "== idle: GET /v1/submissions/{id} (a done report)"
wrk -t2 -c32 -d"$DUR" --latency -s "$TMP/auth.lua" "http://127.0.0.1:$PORT/v1/submissions/$FIRST" | grep -E "Requests/sec|99%|50%"

echo "== end to end: $JOBS submissions of $CHALLENGE (nothing else running)"
START=$(date +%s.%N)
IDS=()
for i in $(seq "$JOBS"); do IDS+=("$(submit "$i")"); done
for id in "${IDS[@]}"; do
    while [ ! -f "$TMP/spool/reports/$id.json" ]; do sleep 0.2; done
done
END=$(date +%s.%N)
echo "== while grading another $JOBS: GET /healthz and GET /v1/submissions/{id}"
MORE=()
for i in $(seq "$JOBS"); do MORE+=("$(submit "x$i")"); done
wrk -t2 -c32 -d"$DUR" --latency "http://127.0.0.1:$PORT/healthz" | grep -E "Requests/sec|99%|50%"
wrk -t2 -c32 -d"$DUR" --latency -s "$TMP/auth.lua" "http://127.0.0.1:$PORT/v1/submissions/$FIRST" | grep -E "Requests/sec|99%|50%"
for id in "${MORE[@]}"; do
    while [ ! -f "$TMP/spool/reports/$id.json" ]; do sleep 0.2; done
done
/usr/bin/python3 - "$TMP/spool/reports" "$START" "$END" "${IDS[@]}" <<'PY'
import json, os, sys
d, start, end, ids = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
t = {"fetch_ms": [], "build_ms": [], "tests_ms": [], "total_ms": []}
pct = []
for i in ids:
    r = json.load(open(os.path.join(d, i + ".json")))
    for k in t:
        t[k].append(r.get("timings", {}).get(k, 0))
    pct.append((r["status"], r.get("score", {}).get("percent")))
n = len(ids)
print("jobs %d in %.1f s: %.1f submissions/minute" % (n, end - start, n * 60 / (end - start)))
for k, v in t.items():
    v.sort()
    print("  %-9s mean %7.0f ms  p50 %7.0f ms  max %7.0f ms" % (k, sum(v) / n, v[n // 2], v[-1]))
print("  statuses:", sorted(set(pct)))
PY
echo "daemon VmHWM: $(grep VmHWM /proc/$PID/status)"
