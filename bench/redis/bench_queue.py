#!/usr/bin/python3
"""Shared-queue overhead: N trivial jobs (tests/fixtures/packs/daemon-echo) graded by
  spool  one daemon, workers=2, no Redis;
  redis1 one daemon, workers=2, with the Redis queue;
  redis2 two daemons, workers=1 each, one Redis stream, all submitted to the first.
Prints the wall time from the first POST to the last report. Then the pickup latency: jobs
submitted one at a time (each after the previous one's report) to the first daemon, from the
POST to the job's "job.started" log line (milliseconds, same clock), by the daemon that ran it:
  spool  the daemon itself (workers=1);
  redis2 two daemons, workers=1 each, both idle: the jobs go to the submitting daemon or the
         other one (with the blocking read, whichever read came first: they alternate);
  busy   the same two daemons, each job submitted to the one whose worker runs a slow job
         (4 s per test), so that the other one must take it.
Usage: PROCTOR=build/proctor bench_queue.py [N] [K]   (needs redis-server; K pickups, 20)"""
import calendar
import json
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "daemon"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "redis"))
os.environ.setdefault("PR_SOURCE_DIR", os.path.join(HERE, "..", ".."))

import harness  # noqa: E402
from test_redis import Redis, STREAM  # noqa: E402


def run(label, root, n, redis=None, daemons=1):
    repo = harness.make_repo(os.path.join(root, "repo"))
    ds = []
    for i in range(daemons):
        sub = os.path.join(root, "d%d" % i)
        os.makedirs(sub)
        os.chmod(sub, 0o755)
        over = {"workers": 2 if daemons == 1 else 1}
        if redis:
            over["queue"] = {"redis": "127.0.0.1:%d" % redis.port, "stream": STREAM + label,
                             "consumer": "d%d" % i}
        ds.append(harness.Daemon(sub, **over).start())
    time.sleep(0.5)
    t0 = time.time()
    ids = []
    for _ in range(n):
        st, _, j = ds[0].submit(repo)
        assert st == 202, (st, j)
        ids.append(j["id"])
    for i in ids:
        ds[0].wait_done(i, timeout=300)
    wall = time.time() - t0
    for d in ds:
        d.stop()
    print("%-7s %3d jobs  %6.2f s  %5.1f jobs/s" % (label, n, wall, n / wall))
    sys.stdout.flush()


def ts_seconds(ts):
    return calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) + int(ts[20:23]) / 1000


def logged(ds, event, job_id):
    """(daemon index, time) of the job's first line of this event, or None."""
    for k, d in enumerate(ds):
        with open(d.log_path) as f:
            for ln in f:
                if '"%s"' % event in ln and job_id in ln:
                    return k, ts_seconds(json.loads(ln)["ts"])
    return None


def started_at(ds, job_id, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = logged(ds, "job.started", job_id)
        if r:
            return r
        time.sleep(0.05)
    raise RuntimeError("job %s never started" % job_id)


def print_lat(label, who, v):
    v = sorted(v)
    if v:
        print("pickup %-7s %-17s %2d jobs  POST -> job.started  median %6.1f ms  max %6.1f ms"
              % (label, who, len(v), statistics.median(v), v[-1]))


def pickup(label, root, k, redis=None, daemons=1):
    repo = harness.make_repo(os.path.join(root, "repo"))
    ds = []
    for i in range(daemons):
        sub = os.path.join(root, "d%d" % i)
        os.makedirs(sub)
        os.chmod(sub, 0o755)
        over = {"workers": 1}
        if redis:
            over["queue"] = {"redis": "127.0.0.1:%d" % redis.port,
                             "stream": STREAM + "pickup" + label, "consumer": "d%d" % i}
        ds.append(harness.Daemon(sub, **over).start())
    time.sleep(1.0)
    lat = {i: [] for i in range(daemons)}
    for _ in range(k):
        t0 = time.time()
        st, _, j = ds[0].submit(repo)
        assert st == 202, (st, j)
        who, t = started_at(ds, j["id"])
        lat[who].append((t - t0) * 1000)
        ds[0].wait_done(j["id"], timeout=120)
        time.sleep(0.3)  # both idle, their reads blocked again
    for i in range(daemons):
        print_lat(label, "submitting daemon" if i == 0 else "other daemon", lat[i])
    if daemons == 2:
        slow = harness.make_repo(os.path.join(root, "slow"), {
            "main.py": "import sys, time\ntime.sleep(4)\nsys.stdout.write(sys.stdin.read())\n"})
        busy, slow_id, lat = None, None, []
        while len(lat) < k:
            if slow_id is None or logged(ds, "job.finished", slow_id):
                st, _, j = ds[0].submit(slow)
                assert st == 202, (st, j)
                slow_id = j["id"]
                busy = started_at(ds, slow_id)[0]
                time.sleep(0.3)
            t0 = time.time()
            st, _, j = ds[busy].submit(repo)
            assert st == 202, (st, j)
            who, t = started_at(ds, j["id"])
            if who == busy:  # the slow job ended meanwhile
                ds[busy].wait_done(j["id"], timeout=120)
                continue
            lat.append((t - t0) * 1000)
            ds[busy].wait_done(j["id"], timeout=120)
            time.sleep(0.1)
        print_lat("busy", "other daemon", lat)
    for d in ds:
        d.stop()
    sys.stdout.flush()


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    k = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    base = tempfile.mkdtemp(prefix="bench-redisq-")
    os.chmod(base, 0o755)
    redis = Redis(base).start()
    try:
        for label, r, c in (("spool", None, 1), ("redis1", redis, 1), ("redis2", redis, 2)):
            root = os.path.join(base, label)
            os.makedirs(root)
            os.chmod(root, 0o755)
            run(label, root, n, r, c)
        for label, r, c in (("spool", None, 1), ("redis2", redis, 2)):
            root = os.path.join(base, "pickup-" + label)
            os.makedirs(root)
            os.chmod(root, 0o755)
            pickup(label, root, k, r, c)
    finally:
        redis.stop()
        harness.cleanup(base)


if __name__ == "__main__":
    main()
