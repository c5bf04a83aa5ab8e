#!/usr/bin/python3
"""The shared queue in Redis Streams: real `proctor serve` daemons on loopback, a private
redis-server started here (no persistence), real git repositories, real jobs.
Usage: test_redis.py {share,reclaim,down}"""
import calendar
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "daemon"))

from harness import (ALICE, BOB, LIVE, REV, Daemon, check, fail, free_port,  # noqa: E402
                     main, make_repo, wait_no_sandbox)

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
STREAM = "proctor-test:jobs"
SLOW_PY = "import sys, time\ntime.sleep(3)\nsys.stdout.write(sys.stdin.read())\n"


class Redis:
    """A private redis-server on a free loopback port, and a minimal RESP client."""

    def __init__(self, root, port=None, password=None):
        self.root = root
        self.password = password
        self.port = port or free_port()
        self.sock = os.path.join(root, "redis.sock")
        self.proc = None

    def start(self):
        self.log = open(os.path.join(self.root, "redis-%d.log" % self.port), "a")
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.root, "--daemonize", "no",
             "--unixsocket", self.sock, "--unixsocketperm", "700"]
            + (["--requirepass", self.password] if self.password else []),
            stdout=self.log, stderr=self.log)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if self.cmd("PING") == "PONG":
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        fail("redis-server did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def cmd(self, *args):
        return self.pipeline([args])[0]

    def pipeline(self, cmds):
        """Commands sent on one connection (MULTI/EXEC work), their replies in order."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        if self.password:
            cmds = [("AUTH", self.password)] + list(cmds)
        try:
            out = b""
            for args in cmds:
                out += b"*%d\r\n" % len(args)
                for a in args:
                    a = a.encode() if isinstance(a, str) else a
                    out += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(out)
            f = s.makefile("rb")
            replies = [self._reply(f) for _ in cmds]
            return replies[1:] if self.password else replies
        finally:
            s.close()

    def _reply(self, f):
        line = f.readline()
        if not line:
            raise OSError("redis closed the connection")
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise RuntimeError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = f.read(n + 2)[:-2]
            return data.decode()
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply(f) for _ in range(n)]
        raise OSError("bad reply %r" % line)


def need_redis():
    if not os.access(REDIS_SERVER, os.X_OK):
        print("redis-server is not installed", file=sys.stderr)
        sys.exit(77)


def daemon(root, name, redis, unix=False, password=None, **over):
    sub = os.path.join(root, name)
    os.makedirs(sub)
    os.chmod(sub, 0o755)
    addr = "unix:" + redis.sock if unix else "127.0.0.1:%d" % redis.port
    queue = {"redis": addr, "stream": STREAM, "group": "graders", "consumer": name}
    if password or redis.password:
        queue["password"] = password or redis.password
    queue.update(over.pop("queue", {}))
    over.setdefault("workers", 1)
    return Daemon(sub, queue=queue, **over)


def wait_report(d, job_id, timeout=60, token=REV):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        st, _, j = d.jreq("GET", "/v1/submissions/" + job_id, token=token)
        last = (st, j)
        if st == 200 and j["status"] == "done":
            return j
        # 503: a daemon that just started has not reached Redis yet.
        check(st in (200, 503), "GET %s: %d %r" % (job_id, st, j))
        time.sleep(0.2)
    fail("job %s not done after %ds (last %r):\n%s" % (job_id, timeout, last, d.logtext()))


def fulllog(d):
    """The daemon's whole log (harness's logtext() keeps only the tail)."""
    with open(d.log_path) as f:
        return f.read()


def ts_seconds(ts):
    """A log line's "ts" (UTC, milliseconds) as a time.time() value."""
    return calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) + int(ts[20:23]) / 1000


def local_reports(d):
    return {n[:-5] for n in d.spool_files("reports")}


def test_share(root):
    """Two daemons, one stream: ten submissions through A are graded by both, each once. A
    reaches Redis over TCP, B over its unix socket; Redis wants a password."""
    redis = Redis(root, password="queue-secret-0001").start()
    LIVE.append(redis)
    repo = make_repo(os.path.join(root, "repo"))
    a = daemon(root, "a", redis).start()
    b = daemon(root, "b", redis, unix=True).start()
    ids = []
    for i in range(10):
        st, h, j = a.submit(repo, candidate="alice" if i % 2 == 0 else "bob")
        check(st == 202, "submit %d: %d %r" % (i, st, j))
        ids.append(j["id"])
    check(len(set(ids)) == 10, "ids %r" % ids)
    reports = {}
    for i in ids:
        reports[i] = wait_report(a, i, timeout=90)
        check(reports[i]["report"]["status"] == "graded",
              "job %s: %r" % (i, reports[i]["report"].get("error")))
        check(reports[i]["report"]["score"]["percent"] == 100.0, "score of %s" % i)
    ra, rb = local_reports(a), local_reports(b)
    check(ra | rb == set(ids), "reports: a %r b %r ids %r" % (ra, rb, ids))
    check(not (ra & rb), "a job ran on both daemons: %r" % (ra & rb))
    check(ra and rb, "one daemon graded everything: a %d, b %d" % (len(ra), len(rb)))
    # Every report is readable through either daemon, the same document on both.
    for i in ids:
        ja = wait_report(a, i)
        jb = wait_report(b, i)
        check(ja["report"] == jb["report"], "report of %s differs between daemons" % i)
        check(ja["report"]["job"]["id"] == i, "report id %s" % i)
    # Candidate isolation holds for reports fetched from Redis too.
    only_b = sorted(rb - ra)[0]
    cand = a.jreq("GET", "/v1/submissions/" + only_b, token=REV)[2]["candidate"]
    own, other = (ALICE, BOB) if cand == "alice" else (BOB, ALICE)
    st, _, j = a.jreq("GET", "/v1/submissions/" + only_b, token=own)
    check(st == 200 and j["status"] == "done", "own report via redis: %d" % st)
    st2, _, j2 = b.jreq("GET", "/v1/submissions/" + only_b, token=own)
    check(st2 == 200 and j2["report"] == j["report"],
          "candidate view via redis differs from the local one")
    full = a.jreq("GET", "/v1/submissions/" + only_b, token=REV)[2]["report"]
    check(j["report"] != full, "the candidate view via redis is not redacted")
    st, _, _ = a.jreq("GET", "/v1/submissions/" + only_b, token=other)
    check(st == 404, "another candidate's report via redis: %d" % st)
    st, _, _ = b.jreq("GET", "/v1/submissions/zzzznotajob", token=REV)
    check(st == 404, "unknown id: %d" % st)
    # Pipelined requests behind a lookup in Redis are answered in order.
    sk = socket.create_connection(("127.0.0.1", a.port), timeout=10)
    sk.sendall(("GET /v1/submissions/%s HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer %s\r\n\r\n"
                "GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
                % (only_b, REV)).encode())
    data = b""
    while True:
        chunk = sk.recv(65536)
        if not chunk:
            break
        data += chunk
    sk.close()
    first = data.find(b"HTTP/1.1 200")
    second = data.find(b"HTTP/1.1 200", first + 1)
    check(first == 0 and second > 0, "pipelined responses: %r" % data[:300])
    check(only_b.encode() in data[:second] and b'"status":"ok"' in data[second:],
          "pipelined responses out of order: %r" % data[:300])
    # Requests waiting on Redis while it is paused: one client goes away, another is cut by
    # limits.request_timeout_s (2 s here); the late responses are dropped and the daemon
    # carries on.
    redis.cmd("CLIENT", "PAUSE", "3000", "ALL")
    req = ("GET /v1/submissions/%s HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer %s\r\n\r\n"
           % (only_b, REV)).encode()
    gone = socket.create_connection(("127.0.0.1", a.port), timeout=10)
    gone.sendall(req)
    cut = socket.create_connection(("127.0.0.1", a.port), timeout=10)
    cut.sendall(req)
    time.sleep(0.2)
    gone.close()
    t0 = time.time()
    check(cut.recv(4096) == b"", "a response while Redis is paused")
    check(1.5 < time.time() - t0 < 2.9, "request timeout after %.1f s" % (time.time() - t0))
    cut.close()
    time.sleep(1.5)  # the pause ends; the lookups complete for closed connections
    st, _, j = a.jreq("GET", "/v1/submissions/" + only_b, token=REV)
    check(st == 200 and j["status"] == "done", "lookup after the pause: %d" % st)
    check(a.jreq("GET", "/healthz")[0] == 200 and a.proc.poll() is None, "daemon after pause")
    # Redis holds one report per job, the stream is drained and nothing is pending.
    check(redis.cmd("HLEN", STREAM + ":reports") == 10, "reports in redis")
    deadline = time.time() + 10
    while time.time() < deadline and redis.cmd("XLEN", STREAM) != 0:
        time.sleep(0.1)
    check(redis.cmd("XLEN", STREAM) == 0, "stream length %r" % redis.cmd("XLEN", STREAM))
    check(redis.cmd("XPENDING", STREAM, "graders")[0] == 0, "pending entries")
    # Idle daemons with free workers wait in a blocking read (XREADGROUP ... BLOCK 5000), sent
    # again when it times out, instead of polling: over 3 idle seconds Redis completes at most
    # a read or two per daemon (a 200 ms poll made about 15 each).
    redis.cmd("CONFIG", "RESETSTAT")
    time.sleep(3)
    stats = redis.cmd("INFO", "commandstats")
    calls = 0
    for ln in stats.splitlines():
        if ln.startswith("cmdstat_xreadgroup:"):
            calls = int(ln.split("calls=")[1].split(",")[0])
    check(calls <= 2 * 3, "XREADGROUP calls of two idle daemons over 3 s: %d" % calls)
    blocked = [ln for ln in redis.cmd("CLIENT", "LIST").splitlines() if "cmd=xreadgroup" in ln]
    check(len(blocked) == 2, "blocking reads outstanding: %r" % blocked)
    # A job submitted through a is started by either daemon at once: the blocked read is
    # answered as the entry is added (not at the next poll). Log times are milliseconds.
    t0 = time.time()
    st, _, j = a.submit(repo)
    check(st == 202, "submit %d %r" % (st, j))
    wait_report(a, j["id"])
    taken = [json.loads(ln) for d in (a, b) for ln in fulllog(d).splitlines()
             if '"queue.taken"' in ln and j["id"] in ln]
    check(len(taken) == 1, "taken %r" % taken)
    # A generous bound for the shared, sanitized CI machine (a few ms here).
    took = ts_seconds(taken[0]["ts"]) - t0
    check(took < 2.0, "taken %.3f s after the POST" % took)
    # A job sent twice (a daemon that died between XADD and removing its incoming file): the
    # second entry is acknowledged, not run.
    dup = ids[0]
    job = {"id": dup, "repo": repo, "challenge": "daemon-echo", "candidate": "alice",
           "queued_at": "2026-01-01T00:00:00Z", "source": "api"}
    redis.cmd("XADD", STREAM, "*", "id", dup, "job", json.dumps(job))
    deadline = time.time() + 10
    while time.time() < deadline and redis.cmd("XLEN", STREAM) != 0:
        time.sleep(0.05)
    check(redis.cmd("XLEN", STREAM) == 0, "duplicate entry left in the stream")
    time.sleep(0.3)
    started = [ln for d in (a, b) for ln in fulllog(d).splitlines()
               if '"job.started"' in ln and dup in ln]
    check(len(started) == 1, "a job sent twice ran %d times" % len(started))
    st, _, body = a.req("GET", "/metrics")
    check(st == 200 and b"proctor_queue_redis_up 1" in body, "metrics: %r" % body[-600:])
    # A daemon with a wrong password is refused: it says so, never the secret, and 503s.
    c = daemon(root, "c", redis, password="wrong-secret-0001").start()
    deadline = time.time() + 10
    while time.time() < deadline and "queue.auth_failed" not in fulllog(c):
        time.sleep(0.1)
    check("queue.auth_failed" in fulllog(c), "no auth_failed log:\n" + c.logtext())
    check("wrong-secret-0001" not in fulllog(c) and "queue-secret-0001" not in fulllog(a),
          "a password in the log")
    st, _, j = c.submit(repo)
    check(st == 503, "submit with a refused password: %d %r" % (st, j))
    check(c.stop() == 0, "exit status")
    for d in (a, b):
        check(d.stop() == 0, "exit status")
        check(not d.spool_files("running"), "running/ left")
        check(os.listdir(os.path.join(d.spool, "redisq", "taken")) == [], "taken/ left")


def test_reclaim(root):
    """A daemon killed mid-job: another one takes the job over and produces its report."""
    redis = Redis(root).start()
    LIVE.append(redis)
    repo = make_repo(os.path.join(root, "repo"), {"main.py": SLOW_PY})
    a = daemon(root, "a", redis, queue={"claim_idle_s": 1}).start()
    st, _, j = a.submit(repo)
    check(st == 202, "submit %d %r" % (st, j))
    jid = j["id"]
    deadline = time.time() + 30
    while time.time() < deadline:
        st, _, j = a.jreq("GET", "/v1/submissions/" + jid, token=REV)
        if j.get("status") == "running":
            break
        time.sleep(0.05)
    check(j.get("status") == "running", "not running on a: %r" % j)
    time.sleep(0.5)  # inside the sandbox now
    a.kill9()
    wait_no_sandbox(root)
    check(redis.cmd("XPENDING", STREAM, "graders")[0] == 1, "the entry is pending for a")
    b = daemon(root, "b", redis, queue={"claim_idle_s": 1}).start()
    rep = wait_report(b, jid, timeout=60)
    check(rep["report"]["status"] == "graded", "reclaimed job: %r" % rep["report"].get("error"))
    check("queue.reclaimed" in fulllog(b), "b did not log the reclaim")
    check(local_reports(b) == {jid}, "b's reports %r" % local_reports(b))
    # a restarts: it drops the job it never finished and serves b's report (one report per job).
    a.start()
    ra = wait_report(a, jid)
    check(ra["report"] == rep["report"], "a serves another report")
    check(not a.spool_files("running") and not local_reports(a), "a kept or ran the job")
    check(redis.cmd("HLEN", STREAM + ":reports") == 1, "reports in redis")
    check(redis.cmd("XLEN", STREAM) == 0, "stream not drained")

    # Both alive, claim_idle_s=1, a job of ~6 s: the daemon running it keeps its entry (its
    # heartbeat), so it runs exactly once.
    st, _, j = b.submit(repo)
    check(st == 202, "submit %d" % st)
    jid2 = j["id"]
    # While it runs, both daemons show it running; the one without it locally reads the
    # status from Redis and names the daemon running it.
    deadline = time.time() + 30
    views = {}
    while time.time() < deadline:
        views = {d: d.jreq("GET", "/v1/submissions/" + jid2, token=REV)[2] for d in (a, b)}
        if all(v.get("status") == "running" for v in views.values()):
            break
        time.sleep(0.05)
    check(all(v.get("status") == "running" for v in views.values()), "views %r" % views)
    nodes = {v.get("node") for v in views.values()}
    check(nodes in ({None, "a"}, {None, "b"}), "node of the running job: %r" % views)
    check(views[a].get("node") != "a" and views[b].get("node") != "b",
          "a daemon reads its own running job from Redis: %r" % views)
    rep2 = wait_report(a, jid2, timeout=60)
    check(rep2["report"]["status"] == "graded", "second job")
    started = [ln for d in (a, b) for ln in fulllog(d).splitlines()
               if '"job.started"' in ln and jid2 in ln]
    check(len(started) == 1, "the long job started %d times:\n%s" % (len(started), started))

    # An entry left pending by a daemon that died after storing the report but before its
    # acknowledgement: the reclaiming daemon acknowledges it and runs nothing.
    ghost = "ghostjob0001"
    ghost_report = {"schema": "proctor.report/1", "job": {"id": ghost}, "status": "graded",
                    "tests": []}
    job = {"id": ghost, "repo": "/nonexistent/repo", "challenge": "daemon-echo",
           "candidate": "alice", "queued_at": "2026-01-01T00:00:00Z", "source": "api"}
    redis.cmd("HSET", STREAM + ":reports", ghost, json.dumps(ghost_report))
    redis.cmd("HSET", STREAM + ":jobs", ghost, json.dumps(dict(job, state="running")))
    # Added and delivered to a consumer that then "dies", atomically (no daemon can read it
    # in between).
    replies = redis.pipeline([("MULTI",),
                              ("XADD", STREAM, "*", "id", ghost, "job", json.dumps(job)),
                              ("XREADGROUP", "GROUP", "graders", "ghost", "COUNT", "1",
                               "STREAMS", STREAM, ">"),
                              ("EXEC",)])
    check(replies[-1] and replies[-1][1], "ghost entry not delivered: %r" % replies)
    deadline = time.time() + 20
    while time.time() < deadline and redis.cmd("XLEN", STREAM) != 0:
        time.sleep(0.1)
    check(redis.cmd("XLEN", STREAM) == 0, "ghost entry not acknowledged")
    check(redis.cmd("XPENDING", STREAM, "graders")[0] == 0, "pending entries left")
    check(any("queue.already_done" in fulllog(d) for d in (a, b)), "no already_done log")
    check(ghost not in local_reports(a) | local_reports(b), "the ghost job ran again")
    j = wait_report(a, ghost)
    check(j["report"] == ghost_report and j["candidate"] == "alice", "ghost report %r" % j)
    check(b.stop() == 0, "exit status")

    # A daemon killed mid-job and restarted under the same consumer name takes its own
    # pending entry back as soon as it reconnects.
    st, _, j = a.submit(repo)
    check(st == 202, "submit %d" % st)
    jid3 = j["id"]
    deadline = time.time() + 30
    while time.time() < deadline and a.jreq("GET", "/v1/submissions/" + jid3,
                                            token=REV)[2].get("status") != "running":
        time.sleep(0.05)
    time.sleep(0.5)
    a.kill9()
    wait_no_sandbox(root)
    before = len(fulllog(a))
    a.start()
    rep3 = wait_report(a, jid3, timeout=60)
    check(rep3["report"]["status"] == "graded", "own pending job: %r" % rep3["report"])
    check("queue.own_pending" in fulllog(a)[before:],
          "the restarted daemon did not read its own entry")
    check(redis.cmd("HLEN", STREAM + ":reports") == 4, "reports in redis")

    # SIGTERM mid-job: the job finishes within grace_s and its report reaches Redis, and its
    # entry is acknowledged, before the daemon exits.
    st, _, j = a.submit(repo)
    check(st == 202, "submit %d" % st)
    jid4 = j["id"]
    deadline = time.time() + 30
    while time.time() < deadline and a.jreq("GET", "/v1/submissions/" + jid4,
                                            token=REV)[2].get("status") != "running":
        time.sleep(0.05)
    # Another consumer takes the entry over (as after a partition longer than claim_idle_s):
    # a's heartbeat no longer claims it back, and says so.
    pend = redis.cmd("XPENDING", STREAM, "graders", "-", "+", "10")
    check(len(pend) == 1 and pend[0][1] == "a", "pending %r" % pend)
    redis.cmd("XCLAIM", STREAM, "graders", "thief", "0", pend[0][0], "JUSTID")
    deadline = time.time() + 10
    while time.time() < deadline and "queue.entry_lost" not in fulllog(a):
        time.sleep(0.1)
    check("queue.entry_lost" in fulllog(a), "no entry_lost after a takeover")
    pend = redis.cmd("XPENDING", STREAM, "graders", "-", "+", "10")
    check(len(pend) == 1 and pend[0][1] == "thief", "the heartbeat claimed it back: %r" % pend)
    check(a.stop() == 0, "exit status")
    check(redis.cmd("HEXISTS", STREAM + ":reports", jid4) == 1, "report of the last job")
    check(redis.cmd("XLEN", STREAM) == 0, "stream not drained at exit")
    check(os.listdir(os.path.join(a.spool, "redisq", "taken")) == [], "taken/ left at exit")

    # SIGTERM with a job running and a worker free, whose blocking read is outstanding: the read
    # is cancelled at once, so an entry added during the grace period is not handed to the
    # stopping daemon (it stays in the stream, pending for nobody).
    s = daemon(root, "s", redis, workers=2).start()
    st, _, j = s.submit(repo)
    check(st == 202, "submit %d" % st)
    deadline = time.time() + 30
    while time.time() < deadline and s.jreq("GET", "/v1/submissions/" + j["id"],
                                            token=REV)[2].get("status") != "running":
        time.sleep(0.05)
    time.sleep(0.3)
    s.send(signal.SIGTERM)
    time.sleep(0.5)
    late = {"id": "lateentry0001", "repo": repo, "challenge": "daemon-echo",
            "candidate": "alice", "queued_at": "2026-01-01T00:00:00Z", "source": "api"}
    redis.cmd("XADD", STREAM, "*", "id", late["id"], "job", json.dumps(late))
    check(s.stop(timeout=60) == 0, "exit status")
    check(redis.cmd("HEXISTS", STREAM + ":reports", j["id"]) == 1, "report of the running job")
    check(redis.cmd("XLEN", STREAM) == 1, "the late entry is gone")
    check(redis.cmd("XPENDING", STREAM, "graders")[0] == 0,
          "the late entry was delivered to the stopping daemon")
    check('"read_outstanding":true' in fulllog(s) and "queue.read_stopped" in fulllog(s),
          "the blocking read was not cancelled at SIGTERM:\n" + s.logtext())


def test_down(root):
    """Redis unreachable: submissions get 503, health and local reads still answer; after
    Redis comes back, the daemon reconnects by itself."""
    redis = Redis(root).start()
    LIVE.append(redis)
    repo = make_repo(os.path.join(root, "repo"))
    a = daemon(root, "a", redis).start()
    st, _, j = a.submit(repo)
    check(st == 202, "submit %d" % st)
    first = j["id"]
    wait_report(a, first)
    # A slow job is running when Redis goes away: it finishes locally, and its report reaches
    # Redis once the daemon has reconnected.
    slow = make_repo(os.path.join(root, "slow"), {"main.py": SLOW_PY})
    st, _, j = a.submit(slow)
    check(st == 202, "submit %d" % st)
    slow_id = j["id"]
    deadline = time.time() + 30
    while time.time() < deadline and a.jreq("GET", "/v1/submissions/" + slow_id,
                                            token=REV)[2].get("status") != "running":
        time.sleep(0.05)
    redis.stop()
    time.sleep(0.5)
    st, h, j = a.submit(repo)
    check(st == 503 and "redis" in j.get("error", ""), "submit while down: %d %r" % (st, j))
    check("retry-after" in h, "no Retry-After")
    st, _, j = a.jreq("GET", "/healthz")
    check(st == 200 and j["status"] == "ok", "healthz while down: %d" % st)
    j = wait_report(a, first)  # local reads keep working
    st, _, j = a.jreq("GET", "/v1/submissions/zzzzunknown", token=REV)
    check(st == 503, "remote lookup while down: %d %r" % (st, j))
    st, _, body = a.req("GET", "/metrics")
    check(st == 200 and b"proctor_queue_redis_up 0" in body, "metrics while down")
    # A job dropped into the spool waits in incoming/ until Redis is back.
    with open(os.path.join(a.spool, "incoming", "drop.json"), "w") as f:
        json.dump({"repo": repo, "challenge": "daemon-echo", "candidate": "dropper"}, f)
    time.sleep(1.5)
    check(a.spool_files("incoming") == ["drop.json"] or len(a.spool_files("incoming")) == 1,
          "dropped job moved while redis is down: %r" % a.spool_files("incoming"))
    check(a.proc.poll() is None, "daemon died while redis is down")
    check(wait_report(a, slow_id)["report"]["status"] == "graded", "slow job while down")
    redis.start()  # same port, empty (no persistence)
    deadline = time.time() + 30
    st = 0
    while time.time() < deadline:
        st, _, j = a.submit(repo)
        if st == 202:
            break
        time.sleep(0.2)
    check(st == 202, "submit after redis came back: %d" % st)
    wait_report(a, j["id"])
    deadline = time.time() + 30
    while time.time() < deadline and a.spool_files("incoming"):
        time.sleep(0.2)
    check(not a.spool_files("incoming"), "dropped job not sent after reconnect")
    check("queue.connected" in fulllog(a), "no reconnect logged")
    deadline = time.time() + 10
    while time.time() < deadline and os.listdir(os.path.join(a.spool, "redisq", "taken")):
        time.sleep(0.1)
    check(os.listdir(os.path.join(a.spool, "redisq", "taken")) == [], "taken/ left")
    check(redis.cmd("HEXISTS", STREAM + ":reports", slow_id) == 1,
          "the report finished while redis was down did not reach redis")
    check(a.stop() == 0, "exit status")

    # With the shared queue, limits.queue_length caps the shared backlog (the stream's entries,
    # waiting or running): past it, POST answers 503.
    q = daemon(root, "q", redis, limits={"queue_length": 2}).start()
    deadline = time.time() + 10
    while time.time() < deadline and b"proctor_queue_redis_up 1" not in q.req("GET", "/metrics")[2]:
        time.sleep(0.05)
    codes = []
    for _ in range(3):
        st, h, j = q.submit(slow)
        codes.append(st)
    check(codes == [202, 202, 503], "submissions against a backlog of 2: %r" % codes)
    check("full" in j.get("error", "") and "retry-after" in h, "503 body %r" % j)
    q.kill9()
    wait_no_sandbox(root)


if __name__ == "__main__":
    need_redis()
    main({"share": test_share, "reclaim": test_reclaim, "down": test_down})
