#!/usr/bin/python3
"""Daemon tests of reload, backpressure and recovery: a real `proctor serve` over loopback HTTP
with a temporary spool, real git repositories, real jobs.
Usage: test_daemon_gaps.py {rate_reload}"""
import json
import os
import signal
import time

from harness import LIMITED, REV, Daemon, check, fail, main, make_repo


def log_events(d, event):
    """The daemon's log lines (JSON objects) of one event, in order."""
    out = []
    for line in open(d.log_path).read().splitlines():
        try:
            o = json.loads(line)
        except ValueError:
            continue
        if o.get("event") == event:
            out.append(o)
    return out


def wait_for(cond, what, d, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    fail("timed out waiting for %s:\n%s" % (what, d.logtext()))


def reload(d):
    """SIGHUP and wait until the daemon logged the reload."""
    n = len(log_events(d, "config.reloaded"))
    d.send(signal.SIGHUP)
    wait_for(lambda: len(log_events(d, "config.reloaded")) > n, "config.reloaded", d)


def test_rate_reload(root):
    """A SIGHUP keeps every unchanged token's rate bucket: a submitter cannot reset its 429 by
    waiting for an operator reload."""
    repo = make_repo(os.path.join(root, "repo"))
    d = Daemon(root, workers=1).start()
    codes = []
    for _ in range(4):
        st, _, _ = d.submit(repo, token=LIMITED, candidate="lim")
        codes.append(st)
    check(codes == [202, 202, 202, 429], "burst of 3: %r" % codes)
    reload(d)
    st, h, _ = d.submit(repo, token=LIMITED, candidate="lim")
    check(st == 429 and int(h.get("retry-after", "0")) >= 1,
          "after SIGHUP the exhausted token got %d" % st)
    # A rate change applies to the kept state: a smaller burst does not refill the bucket, and a
    # new token in the same reload starts with a full one.
    for t in d.cfg["tokens"]:
        if t["token"] == LIMITED:
            t["rate"] = {"per_minute": 6, "burst": 2}
    d.cfg["tokens"].append({"token": "new-limited-0001", "role": "submitter", "name": "new",
                            "rate": {"per_minute": 6, "burst": 1}})
    d.write_config()
    reload(d)
    st, _, _ = d.submit(repo, token=LIMITED, candidate="lim")
    check(st == 429, "after a burst change the exhausted token got %d" % st)
    st, _, _ = d.submit(repo, token="new-limited-0001", candidate="new")
    check(st == 202, "a new token after SIGHUP got %d" % st)
    st, _, _ = d.submit(repo, token="new-limited-0001", candidate="new")
    check(st == 429, "the new token's burst of 1: %d" % st)
    st, _, _ = d.jreq("GET", "/v1/challenges", token=REV)
    check(st == 200, "reviewer after reloads %d" % st)
    check(d.stop() == 0, "exit status")


if __name__ == "__main__":
    main({"rate_reload": test_rate_reload})
