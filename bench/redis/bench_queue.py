#!/usr/bin/python3
"""Shared-queue overhead: N trivial jobs (tests/fixtures/packs/daemon-echo) graded by
  spool  one daemon, workers=2, no Redis;
  redis1 one daemon, workers=2, with the Redis queue;
  redis2 two daemons, workers=1 each, one Redis stream, all submitted to the first.
Prints the wall time from the first POST to the last report. Usage: PROCTOR=build/proctor bench_queue.py [N]   (needs redis-server)"""
import os
import shutil
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


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    base = tempfile.mkdtemp(prefix="bench-redisq-")
    os.chmod(base, 0o755)
    redis = Redis(base).start()
    try:
        for label, r, k in (("spool", None, 1), ("redis1", redis, 1), ("redis2", redis, 2)):
            root = os.path.join(base, label)
            os.makedirs(root)
            os.chmod(root, 0o755)
            run(label, root, n, r, k)
    finally:
        redis.stop()
        harness.cleanup(base)


if __name__ == "__main__":
    main()
