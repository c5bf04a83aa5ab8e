#!/usr/bin/python3
"""Daemon tests of reload, backpressure and recovery: a real `proctor serve` over loopback HTTP
with a temporary spool, real git repositories, real jobs.
Usage: test_daemon_gaps.py {rate_reload,backpressure,requeue_order,callback_crash,cache_prune,
                            postgres}
(postgres runs under tests/sql/pg_cluster.sh, which exports PROCTOR_PG_HOST/PORT/ADMIN)"""
import calendar
import hashlib
import hmac
import http.server
import json
import os
import shutil
import signal
import sys
import threading
import time

from harness import (LIMITED, REV, SECRET, SRC, Daemon, check, fail, free_port, main, make_repo)


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


def drop_job(spool, name, job):
    """Writes a job elsewhere and renames it into incoming/; returns the bytes written."""
    data = json.dumps(job).encode()
    tmp = os.path.join(spool, "incoming", "." + name + ".part")
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, os.path.join(spool, "incoming", name))
    return data


def spool_names(d, sub):
    try:
        return sorted(n for n in os.listdir(os.path.join(d.spool, sub))
                      if n.endswith(".json") and not n.startswith("."))
    except FileNotFoundError:
        return []


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    fail("metric %s missing" % name)


def test_backpressure(root):
    """With limits.queue_length 3 and one worker, ten files dropped into incoming/ at once: the
    daemon holds at most 3 ids (queued + running), the others wait in incoming/ untouched and
    counted, and all ten are graded once each, in arrival order."""
    repo = make_repo(os.path.join(root, "repo"))
    d = Daemon(root, workers=1, limits={"queue_length": 3}).start()
    written = {}
    for i in range(10):
        name = "bp-%02d.json" % i
        written[name] = drop_job(d.spool, name, {"repo": repo, "challenge": "daemon-echo",
                                                 "candidate": "bp%d" % i})
    max_held = max_running_files = max_waiting = max_waiting_metric = 0
    untouched_checks = 0
    deadline = time.time() + 90
    while time.time() < deadline:
        _, _, h = d.jreq("GET", "/healthz")
        max_held = max(max_held, h["queued"] + h["running"])
        max_waiting = max(max_waiting, h["incoming_waiting"])
        _, _, m = d.req("GET", "/metrics")
        text = m.decode()
        held = metric(text, "proctor_queue_depth") + metric(text, "proctor_jobs_running")
        max_held = max(max_held, held)
        max_waiting_metric = max(max_waiting_metric,
                                 metric(text, "proctor_spool_incoming_waiting"))
        # running/ holds the queued and running jobs' files.
        max_running_files = max(max_running_files, len(spool_names(d, "running")))
        # Files still waiting are exactly as dropped (no id written into them).
        for n in spool_names(d, "incoming"):
            try:
                with open(os.path.join(d.spool, "incoming", n), "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                continue  # picked up meanwhile
            check(data == written[n], "waiting file %s was modified: %r" % (n, data[:200]))
            untouched_checks += 1
        if len(spool_names(d, "reports")) == 10 and not spool_names(d, "incoming") \
                and not spool_names(d, "running"):
            break
        time.sleep(0.03)
    reports = spool_names(d, "reports")
    check(len(reports) == 10, "reports %d of 10:\n%s" % (len(reports), d.logtext()))
    check(spool_names(d, "done") == reports, "done/ and reports/ differ")
    check(max_held <= 3, "queued + running reached %d (queue_length 3)" % max_held)
    check(max_running_files <= 3, "running/ held %d files (queue_length 3)" % max_running_files)
    check(max_waiting >= 1 and max_waiting_metric >= 1,
          "no waiting files seen (healthz %d, metrics %d)" % (max_waiting, max_waiting_metric))
    check(untouched_checks > 0, "never saw a waiting file")
    for n in reports:
        with open(os.path.join(d.spool, "reports", n)) as f:
            rep = json.load(f)
        check(rep["status"] == "graded", "job %s: %r" % (n, rep.get("error")))
    starts = [e["job"] for e in log_events(d, "job.started")]
    check(len(starts) == 10 and len(set(starts)) == 10, "job.started %r" % starts)
    order = []
    for jid in starts:
        with open(os.path.join(d.spool, "done", jid + ".json")) as f:
            order.append(json.load(f)["candidate"])
    check(order == ["bp%d" % i for i in range(10)], "start order %r" % order)
    waits = [e["incoming_waiting"] for e in log_events(d, "spool.waiting")]
    check(waits and max(waits) >= 1 and waits[-1] == 0, "spool.waiting log %r" % waits)
    _, _, m = d.req("GET", "/metrics")
    check(metric(m.decode(), "proctor_spool_incoming_waiting") == 0, "gauge not back to 0")
    check(d.stop() == 0, "exit status")


def test_requeue_order(root):
    """Jobs left in running/ and incoming/ by a stopped daemon are requeued in submission order
    (queued_at, else the file's mtime; then the id), whatever their names or directories."""
    repo = make_repo(os.path.join(root, "repo"))
    d = Daemon(root, workers=1)
    for sub in ("running", "incoming"):
        os.makedirs(os.path.join(d.spool, sub))
    # (directory, file name, job id or None, queued_at or None, mtime or None, candidate): the
    # names sort opposite to the submission order, and the two directories interleave.
    base = calendar.timegm((2026, 1, 1, 0, 0, 0))
    jobs = [
        ("running", "zz1.json", "zz1", "2026-01-01T00:00:01Z", None, "c1"),
        ("incoming", "yy2.json", None, "2026-01-01T00:00:02Z", None, "c2"),
        ("running", "xx3.json", "xx3", "2026-01-01T00:00:03Z", None, "c3"),
        ("incoming", "ww4.json", None, None, base + 4, "c4"),  # no queued_at: its mtime
        ("running", "vv5.json", "vv5", "2026-01-01T00:00:05.500Z", None, "c5"),
        ("incoming", "uu6.json", "uu6", "2026-01-01T01:00:06+01:00", None, "c6"),  # 00:00:06Z
        ("running", "tt8.json", "tt8", "2026-01-01T00:00:07Z", None, "c8"),  # same second:
        ("running", "tt7.json", "tt7", "2026-01-01T00:00:07Z", None, "c7"),  # id decides
        ("incoming", "ss9.json", None, None, base + 9, "c9"),
    ]
    for sub, name, jid, queued_at, mtime, cand in jobs:
        job = {"repo": repo, "challenge": "daemon-echo", "candidate": cand}
        if jid:
            job["id"] = jid
        if queued_at:
            job["queued_at"] = queued_at
        if sub == "running":
            job["source"] = "api"
        path = os.path.join(d.spool, sub, name)
        with open(path, "w") as f:
            json.dump(job, f)
        # Every file gets an mtime; the ones with queued_at get one that would order them
        # backwards, so only queued_at can put them right.
        os.utime(path, (mtime, mtime) if mtime else (base + 100 - int(cand[1:]),) * 2)
    d.start()
    wait_for(lambda: len(spool_names(d, "reports")) == len(jobs) and
             not spool_names(d, "running") and not spool_names(d, "incoming"),
             "all reports", d, timeout=60)
    order = []
    for e in log_events(d, "job.started"):
        with open(os.path.join(d.spool, "done", e["job"] + ".json")) as f:
            order.append(json.load(f)["candidate"])
    check(order == ["c%d" % i for i in range(1, 10)], "start order %r" % order)
    rec = log_events(d, "spool.recovered")
    check(len(rec) == 1 and rec[0]["requeued"] == 5 and rec[0]["incoming"] == 4,
          "spool.recovered %r" % rec)
    check(d.stop() == 0, "exit status")


class Sink:
    """A callback receiver on a given loopback port."""

    def __init__(self, port):
        self.got = []
        sink = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                sink.got.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.HTTPServer(("127.0.0.1", port), H)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def check_callback(hdrs, body, jid):
    sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    check(hdrs.get("X-Proctor-Signature") == sig, "signature %r for %s" % (hdrs, jid))
    check(hdrs.get("X-Proctor-Job") == jid and hdrs.get("X-Proctor-Event") == "job.finished",
          "callback headers %r" % hdrs)
    cb = json.loads(body)
    check(cb["event"] == "job.finished" and cb["id"] == jid, "callback body %r" % cb)
    check(cb["report"]["job"]["id"] == jid, "callback report of %s" % jid)


def record(d, jid):
    try:
        with open(os.path.join(d.spool, "callbacks", jid + ".json")) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return None


def test_callback_crash(root):
    """A callback whose receiver is down when the job finishes survives kill -9 (and a SIGTERM):
    its record in spool/callbacks/ is sent again at the next start, signed, and removed once
    delivered. A job stopped between its report and done/ gets its callback too; a record of an
    unknown job is dropped."""
    repo = make_repo(os.path.join(root, "repo"))
    port1, port2 = free_port(), free_port()
    url1 = "http://127.0.0.1:%d/hook" % port1
    d = Daemon(root, workers=1).start()
    st, _, ja = d.submit(repo, candidate="alice", callback_url=url1)
    check(st == 202, "submit %d" % st)
    a = ja["id"]
    # The receiver refuses connections: the record counts the failed attempts.
    wait_for(lambda: (record(d, a) or {}).get("attempts", 0) >= 1, "a failed attempt recorded",
             d)
    check(os.path.exists(os.path.join(d.spool, "reports", a + ".json")), "report before callback")
    d.kill9()
    rec = record(d, a)
    check(rec and rec["url"] == url1 and rec["event"] == "job.finished" and rec["id"] == a,
          "record after kill -9: %r" % rec)

    # A job whose report was written but which never reached done/ (killed in between).
    w = "win0001"
    with open(os.path.join(d.spool, "reports", a + ".json")) as f:
        rep = json.load(f)
    rep["job"]["id"] = w
    with open(os.path.join(d.spool, "reports", w + ".json"), "w") as f:
        json.dump(rep, f)
    with open(os.path.join(d.spool, "running", w + ".json"), "w") as f:
        json.dump({"id": w, "repo": repo, "challenge": "daemon-echo", "candidate": "win",
                   "callback_url": url1, "queued_at": "2026-01-01T00:00:00Z", "source": "api"}, f)
    # A record of a job the spool does not know.
    with open(os.path.join(d.spool, "callbacks", "orphan1.json"), "w") as f:
        json.dump({"id": "orphan1", "event": "job.finished", "url": url1, "attempts": 0}, f)

    sink = Sink(port1)
    d.start()
    wait_for(lambda: len(sink.got) >= 2, "two callbacks after the restart", d)
    time.sleep(0.5)  # no duplicates, no orphan
    got = {h.get("X-Proctor-Job"): (h, b) for h, b in sink.got}
    check(len(sink.got) == 2 and sorted(got) == sorted([a, w]), "deliveries %r" % list(got))
    for jid, (h, b) in got.items():
        check_callback(h, b, jid)
    wait_for(lambda: not os.listdir(os.path.join(d.spool, "callbacks")), "records removed", d)
    check(os.path.exists(os.path.join(d.spool, "done", w + ".json")), "window job in done/")
    check([e["job"] for e in log_events(d, "callback.orphaned")] == ["orphan1"],
          "orphan not logged")
    sink.close()

    # SIGTERM while a callback is still retrying: the record stays for the next start.
    st, _, jb = d.submit(repo, candidate="bob", callback_url="http://127.0.0.1:%d/h" % port2)
    b = jb["id"]
    wait_for(lambda: (record(d, b) or {}).get("attempts", 0) >= 1, "b's failed attempt", d)
    check(d.stop() == 0, "exit status")
    check(record(d, b) is not None, "record dropped at SIGTERM")
    check([e["job"] for e in log_events(d, "callback.pending")] == [b], "callback.pending log")
    sink2 = Sink(port2)
    d.start()
    wait_for(lambda: sink2.got, "b's callback after the restart", d)
    check_callback(sink2.got[0][0], sink2.got[0][1], b)
    wait_for(lambda: record(d, b) is None, "b's record removed", d)
    check(d.stop() == 0, "exit status")
    check(len(sink2.got) == 1, "b delivered %d times" % len(sink2.got))
    sink2.close()


def test_postgres(root):
    """The sql kind on the PostgreSQL server named by the daemon's "postgres" config: the
    orders-report pack graded through the daemon, the environment pointing elsewhere (the
    config wins)."""
    host, port = os.environ.get("PROCTOR_PG_HOST"), os.environ.get("PROCTOR_PG_PORT")
    if not host or not port:
        print("SKIP: run under tests/sql/pg_cluster.sh", file=sys.stderr)
        sys.exit(77)
    admin = os.environ.get("PROCTOR_PG_ADMIN", "postgres")
    packs = os.path.join(root, "packs")
    shutil.copytree(os.path.join(SRC, "challenges", "orders-report"),
                    os.path.join(packs, "orders-report"))
    ref = os.path.join(SRC, "challenges", "orders-report", "solutions", "reference")
    files = {}
    for n in sorted(os.listdir(ref)):
        if n.endswith(".sql"):
            with open(os.path.join(ref, n)) as f:
                files[n] = f.read()
    repo = make_repo(os.path.join(root, "repo"), files)
    # Were the environment used, the job would fail to connect.
    os.environ["PROCTOR_PG_HOST"] = os.path.join(root, "no-server-here")
    os.environ["PROCTOR_PG_PORT"] = "1"
    d = Daemon(root, workers=1, postgres={"host": host, "port": int(port), "admin": admin},
               max_attempts=1).start()
    st, _, j = d.submit(repo, challenge="orders-report", candidate="pg")
    check(st == 202, "submit %d %r" % (st, j))
    done = d.wait_done(j["id"], timeout=240)
    rep = done["report"]
    check(rep["status"] == "graded", "status %r: %r" % (rep["status"], rep.get("error")))
    check(rep["score"]["percent"] == 100, "score %r" % rep["score"])
    sql = rep["metrics"]["sql"]
    engines = {sql[q]["engine"] for q in ("q1", "q2", "q3", "q4")}
    check(engines == {"postgresql"}, "engines %r" % engines)
    check("shared blocks" in sql["cost_formula"], "cost formula %r" % sql["cost_formula"])
    check(d.stop() == 0, "exit status")


def test_cache_prune(root):
    """Git mirrors of repositories not graded for cache_max_age_h are pruned at start (and
    hourly); a recently used mirror stays, and a pruned repository is simply fetched again."""
    old_repo = make_repo(os.path.join(root, "old"))
    new_repo = make_repo(os.path.join(root, "new"))
    d = Daemon(root, workers=1, cache_max_age_h=1).start()
    for repo, cand in ((old_repo, "old"), (new_repo, "new")):
        st, _, j = d.submit(repo, candidate=cand)
        check(st == 202, "submit %d" % st)
        check(d.wait_done(j["id"])["report"]["status"] == "graded", "graded %s" % cand)
    check(d.stop() == 0, "exit status")
    cache = d.cfg["cache"]

    def lock_of(repo):
        return os.path.join(cache, hashlib.sha256(os.path.realpath(repo).encode()).hexdigest())

    for repo in (old_repo, new_repo):
        check(os.path.isdir(lock_of(repo) + ".git"), "mirror of %s missing" % repo)
    two_hours_ago = time.time() - 7200
    os.utime(lock_of(old_repo) + ".lock", (two_hours_ago, two_hours_ago))

    d.start()
    ev = wait_for(lambda: log_events(d, "cache.pruned"), "cache.pruned", d)
    check(ev[-1]["mirrors_removed"] == 1, "pruned %r" % ev)
    check(not os.path.exists(lock_of(old_repo) + ".git"), "stale mirror kept")
    check(os.path.isdir(lock_of(new_repo) + ".git"), "recent mirror pruned")
    st, _, j = d.submit(old_repo, candidate="again")
    check(d.wait_done(j["id"])["report"]["status"] == "graded", "graded after prune")
    check(os.path.isdir(lock_of(old_repo) + ".git"), "mirror not fetched again")
    check(d.stop() == 0, "exit status")


if __name__ == "__main__":
    main({"rate_reload": test_rate_reload, "backpressure": test_backpressure,
          "requeue_order": test_requeue_order, "callback_crash": test_callback_crash,
          "postgres": test_postgres, "cache_prune": test_cache_prune})
