#!/bin/bash
# proctor's load client vs wrk (Debian's wrk 4.1.0; wrk2 is not packaged in Debian 12), on the
# same machine in the same run, against a tiny epoll server pinned to CPU 0; both clients pinned
# to CPU 1. Usage: bench/http/run.sh [BUILD_DIR]   (default build-http)
set -euo pipefail
B=${1:-build-http}
cd "$(dirname "$0")/../.."
cmake --build "$B" -j2 --target bench_http_epoll_server bench_http_loadclient >/dev/null
S="$B/bench/http/bench_http_epoll_server"
L="$B/bench/http/bench_http_loadclient"
PORT=18491
STALLPORT=18492
taskset -c 0 "$S" $PORT & srv=$!
taskset -c 0 "$S" $STALLPORT 2000 200 & stall=$!
trap 'kill $srv $stall' EXIT
sleep 0.3
D=${D:-10}
echo "### max rate, 1 core each, 16 connections, ${D}s"
for i in 1 2; do
    echo "wrk:";         taskset -c 1 wrk -t1 -c16 -d${D}s --latency http://127.0.0.1:$PORT/json | grep -E "Requests/sec|50%|90%|99%"
    echo "proctor (closed loop):"; taskset -c 1 "$L" $PORT 0 16 $D 1 | head -2
done
echo "### fixed rate 2000 req/s, 16 connections, ${D}s (latency from schedule vs from send)"
taskset -c 1 "$L" $PORT 2000 16 $D 1
echo "wrk at the same connections (closed loop, as fast as possible, for reference):"
taskset -c 1 wrk -t1 -c16 -d${D}s --latency http://127.0.0.1:$PORT/json | grep -E "Requests/sec|50%|90%|99%"
echo "### coordinated omission: stalling server (200 ms every 2 s), 1000 req/s, 1 connection, 24 s"
taskset -c 1 "$L" $STALLPORT 1000 1 24 2
echo "wrk -c1 against the same stalling server:"
taskset -c 1 wrk -t1 -c1 -d24s --latency http://127.0.0.1:$STALLPORT/json | grep -E "Requests/sec|50%|90%|99%"
