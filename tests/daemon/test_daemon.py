#!/usr/bin/python3
"""Daemon tests: a real `proctor serve` over loopback HTTP, real git repositories, real jobs.
Usage: test_daemon.py {api,bad_input,crash,watch,load,signals}"""
import hashlib
import hmac
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

from harness import (ALICE, BOB, LIMITED, REV, SECRET, SUB, Daemon, check, fail, git, make_repo,
                     main, wait_no_sandbox)


class CallbackSink:
    """A loopback HTTP receiver for job callbacks."""

    def __init__(self, fail_first=0):
        self.got = []
        self.fail_first = fail_first
        sink = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                if sink.fail_first > 0:
                    sink.fail_first -= 1
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                sink.got.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.HTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()


def test_api(root):
    repo = make_repo(os.path.join(root, "repo"))
    d = Daemon(root).start()

    st, h, j = d.jreq("GET", "/healthz")
    check(st == 200 and j["status"] == "ok", "healthz %d" % st)

    # 401 without a token, and with a bad one; both carry WWW-Authenticate.
    st, h, j = d.jreq("GET", "/v1/challenges")
    check(st == 401 and "bearer" in h.get("www-authenticate", "").lower(), "401 %d %r" % (st, h))
    st, h, j = d.jreq("GET", "/v1/challenges", token="not-a-real-token")
    check(st == 401 and "invalid_token" in h.get("www-authenticate", ""), "bad token %d" % st)
    st, h, j = d.jreq("GET", "/v1/challenges", headers={"Authorization": "Basic Zm9vOmJhcg=="})
    check(st == 401, "basic auth %d" % st)

    st, _, j = d.jreq("GET", "/v1/challenges", token=REV)
    check(st == 200 and [c["id"] for c in j["challenges"]] == ["daemon-echo"], "challenges %r" % j)
    check(j["challenges"][0]["tests"] == 2, "challenge tests %r" % j)

    # 403: a candidate or a reviewer may not submit.
    st, _, j = d.submit(repo, token=ALICE)
    check(st == 403, "candidate submit %d" % st)
    st, _, j = d.submit(repo, token=REV)
    check(st == 403, "reviewer submit %d" % st)

    # 400 with a message: malformed JSON, missing and invalid fields.
    st, _, j = d.jreq("POST", "/v1/submissions", token=SUB, body="{\"repo\": ")
    check(st == 400 and "malformed JSON" in j["error"], "malformed %d %r" % (st, j))
    st, _, j = d.jreq("POST", "/v1/submissions", token=SUB, body={"challenge": "daemon-echo"})
    check(st == 400 and "repo" in j["error"], "missing repo %d %r" % (st, j))
    st, _, j = d.jreq("POST", "/v1/submissions", token=SUB, body={"repo": repo, "challenge": 5})
    check(st == 400 and "challenge" in j["error"], "bad challenge type %d %r" % (st, j))
    st, _, j = d.jreq("POST", "/v1/submissions", token=SUB,
                      body={"repo": repo, "challenge": "../etc"})
    check(st == 400 and "challenge" in j["error"], "traversal challenge %d %r" % (st, j))
    st, _, j = d.jreq("POST", "/v1/submissions", token=SUB,
                      body={"repo": repo, "challenge": "daemon-echo", "id": "mine"})
    check(st == 400 and "id" in j["error"], "client id %d %r" % (st, j))
    st, _, j = d.jreq("POST", "/v1/submissions", token=SUB,
                      body={"repo": repo, "challenge": "daemon-echo",
                            "callback_url": "https://example.com/x"})
    check(st == 400 and "callback_url" in j["error"], "https callback %d %r" % (st, j))
    st, _, j = d.jreq("POST", "/v1/submissions", token=SUB, body=[1, 2])
    check(st == 400, "array body %d" % st)

    # 404: unknown challenge at submit, unknown id, traversal in the id.
    st, _, j = d.submit(repo, challenge="no-such-pack")
    check(st == 404 and "no-such-pack" in j["error"], "unknown challenge %d %r" % (st, j))
    for p in ("/v1/submissions/doesnotexist", "/v1/submissions/..%2F..%2Fetc%2Fpasswd",
              "/v1/submissions/../../etc/passwd", "/v1/submissions/a.b", "/nope"):
        st, _, _ = d.req("GET", p, token=REV)
        check(st == 404, "GET %s: %d" % (p, st))

    # 413: a body over limits.body_bytes (4096 here).
    st, _, j = d.jreq("POST", "/v1/submissions", token=SUB,
                      body={"repo": repo, "challenge": "daemon-echo", "candidate": "x" * 5000})
    check(st == 413, "413 %d" % st)

    # 405
    st, h, _ = d.req("DELETE", "/v1/submissions", token=SUB)
    check(st == 405 and h.get("allow") == "POST", "405 %d %r" % (st, h))

    # curl with a body over 1 KiB sends "Expect: 100-continue": answered at once, no 1 s wait.
    big = json.dumps({"repo": repo, "challenge": "daemon-echo", "candidate": "c" * 1500})
    t0 = time.time()
    r = subprocess.run(["/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                        "-H", "Authorization: Bearer " + SUB, "-H", "Content-Type: application/json",
                        "--data-binary", big, "http://127.0.0.1:%d/v1/submissions" % d.port],
                       capture_output=True, text=True, timeout=30)
    check(r.stdout == "400", "curl expect-continue status %r" % r.stdout)  # candidate > 200 bytes
    check(time.time() - t0 < 0.9, "100-continue not answered (%.2fs)" % (time.time() - t0))

    # Keep-alive: two requests on one connection.
    c = d.conn()
    st1, h1, _ = d.req("GET", "/healthz", conn=c)
    sock1 = c.sock
    st2, h2, _ = d.req("GET", "/v1/challenges", token=REV, conn=c)
    check(st1 == 200 and st2 == 200, "keep-alive statuses %d %d" % (st1, st2))
    check(c.sock is sock1 and sock1 is not None, "keep-alive: a new connection was opened")
    check(h1.get("connection") == "keep-alive", "keep-alive header %r" % h1)
    c.close()

    # 202 and the callback.
    sink = CallbackSink(fail_first=1)
    cb_url = "http://127.0.0.1:%d/hook?x=1" % sink.port
    st, h, ja = d.submit(repo, candidate="alice", callback_url=cb_url)
    check(st == 202 and ja["id"] and h.get("location") == "/v1/submissions/" + ja["id"],
          "202 %d %r" % (st, ja))
    st, _, jb = d.submit(repo, candidate="bob")
    check(st == 202, "202 bob %d" % st)

    # While queued or running, a candidate already sees only its own.
    st, _, _ = d.jreq("GET", "/v1/submissions/" + jb["id"], token=ALICE)
    check(st == 404, "alice reads bob's job: %d" % st)

    full = d.wait_done(ja["id"])
    rep = full["report"]
    check(rep["status"] == "graded", "report status %r" % rep.get("error"))
    check(rep["job"]["id"] == ja["id"], "report id")
    check(rep["score"]["percent"] == 100, "score %r" % rep["score"])
    hidden = [t for t in rep["tests"] if t["visibility"] == "hidden"]
    check(len(hidden) == 1, "hidden tests in the reviewer's view %r" % rep["tests"])

    # Candidate isolation and redaction.
    st, _, mine = d.jreq("GET", "/v1/submissions/" + ja["id"], token=ALICE)
    check(st == 200 and mine["status"] == "done", "alice own %d" % st)
    hid = [t for t in mine["report"]["tests"] if t["visibility"] == "hidden"]
    check(len(hid) == 1 and "message" not in hid[0], "redacted hidden test %r" % hid)
    check("hidden-input-42" not in json.dumps(mine), "hidden input leaked to the candidate")
    st, _, _ = d.jreq("GET", "/v1/submissions/" + ja["id"], token=BOB)
    check(st == 404, "bob reads alice's job: %d" % st)
    st, _, _ = d.jreq("GET", "/v1/submissions/" + jb["id"], token=ALICE)
    check(st == 404, "alice reads bob's job: %d" % st)
    st, _, j = d.jreq("GET", "/v1/submissions/%s/report.html" % ja["id"], token=REV)
    check(st == 501 and "not built yet" in j["error"], "report.html %d" % st)
    st, _, _ = d.jreq("GET", "/v1/submissions/%s/report.html" % ja["id"], token=BOB)
    check(st == 404, "bob report.html %d" % st)

    # The callback arrives (after one failed delivery), signed and deduplicable.
    deadline = time.time() + 20
    while not sink.got and time.time() < deadline:
        time.sleep(0.1)
    check(sink.got, "no callback:\n" + d.logtext())
    hdrs, body = sink.got[0]
    sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    check(hdrs.get("X-Proctor-Signature") == sig, "signature %r" % hdrs)
    cb = json.loads(body)
    check(cb["event"] == "job.finished" and cb["id"] == ja["id"], "callback body")
    check(cb["report"]["job"]["id"] == ja["id"], "callback report")
    sink.close()

    # 429: the limited token has burst 3, 6 per minute.
    codes = []
    for _ in range(5):
        st, h, _ = d.submit(repo, token=LIMITED, candidate="lim")
        codes.append(st)
        if st == 429:
            check(int(h.get("retry-after", "0")) >= 1, "Retry-After %r" % h)
    check(codes[:3] == [202, 202, 202] and codes[3] == 429, "rate codes %r" % codes)

    # Metrics in Prometheus text format.
    st, h, data = d.req("GET", "/metrics")
    text = data.decode()
    check(st == 200 and h["content-type"].startswith("text/plain"), "metrics %d" % st)
    for needle in ('proctor_http_requests_total{code="401"}', 'proctor_http_requests_total{code="429"}',
                   "proctor_queue_depth", 'proctor_jobs_total{status="graded"}',
                   "proctor_job_duration_seconds_bucket", 'proctor_test_verdicts_total{verdict="AC"}',
                   "proctor_sandbox_failures_total"):
        check(needle in text, "metrics lack %s" % needle)
    check(d.stop() == 0, "exit status")

    # 503: a daemon with one worker and a queue of two.
    d2 = Daemon(os.path.join(root, "d2"), workers=1, limits={"queue_length": 2}).start()
    codes = [d2.submit(repo)[0] for _ in range(6)]
    check(202 in codes and 503 in codes, "queue full codes %r" % codes)
    check(d2.stop() == 0, "exit status d2")


def raw(port, data, read=True, timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    out = b""
    if read:
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                out += b
        except socket.timeout:
            pass
    s.close()
    return out


def test_bad_input(root):
    repo = make_repo(os.path.join(root, "repo"))
    d = Daemon(root, limits={"max_connections": 8}).start()
    # Garbage bytes: 400 and the connection is closed.
    out = raw(d.port, b"\x00\x01\xff garbage \r\n\r\n\x16\x03\x01")
    check(out.startswith(b"HTTP/1.1 400"), "garbage: %r" % out[:100])
    # A TLS ClientHello on the plain port.
    out = raw(d.port, bytes([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00]) + os.urandom(64))
    check(out.startswith(b"HTTP/1.1 400"), "tls hello: %r" % out[:100])
    # A declared body over the cap is refused before it is sent.
    out = raw(d.port, b"POST /v1/submissions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
              + SUB.encode() + b"\r\nContent-Length: 100000000\r\n\r\n")
    check(out.startswith(b"HTTP/1.1 413"), "413 by length: %r" % out[:100])
    # A chunked body that grows past the cap.
    chunk = b"1000\r\n" + b"a" * 4096 + b"\r\n"
    out = raw(d.port, b"POST /v1/submissions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
              + SUB.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 3)
    check(out.startswith(b"HTTP/1.1 413"), "413 chunked: %r" % out[:100])
    # Headers over the cap.
    out = raw(d.port, b"GET /healthz HTTP/1.1\r\nX-Big: " + b"b" * 20000 + b"\r\n\r\n")
    check(out.startswith(b"HTTP/1.1 431"), "431: %r" % out[:100])
    # Invalid JSON bodies of every kind.
    for body in (b"\xff\xfe", b"nul\x00l", b"{" * 5000, b'{"repo": "a", "repo": "b"}'):
        st, _, j = d.jreq("POST", "/v1/submissions", token=SUB, body=body)
        check(st in (400, 413), "bad body %r -> %d" % (body[:20], st))

    # Slowloris: a request that never completes is closed after request_timeout_s (2 s) while
    # the daemon keeps serving others.
    slow = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    t0 = time.time()
    for _ in range(5):
        st, _, _ = d.req("GET", "/healthz", timeout=2)
        check(st == 200, "healthz during slowloris %d" % st)
    try:
        got = slow.recv(100)
    except ConnectionResetError:
        got = b""
    closed_after = time.time() - t0
    check(got == b"" or got.startswith(b"HTTP/1.1 408"), "slowloris got %r" % got)
    check(1.0 <= closed_after <= 6.0, "slowloris closed after %.1fs" % closed_after)
    slow.close()
    # Over max_connections (8 here) a new connection is closed at once; the others still work.
    held = [socket.create_connection(("127.0.0.1", d.port), timeout=5) for _ in range(8)]
    time.sleep(0.2)
    extra = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    try:
        extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        got = extra.recv(100)
    except (ConnectionResetError, BrokenPipeError):
        got = b""
    check(got == b"", "connection over the cap answered: %r" % got)
    extra.close()
    held[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    check(held[0].recv(100).startswith(b"HTTP/1.1 200"), "held connection not served")
    for s in held:
        s.close()
    time.sleep(0.2)
    st, _, _ = d.req("GET", "/healthz")
    check(st == 200, "healthz after the connection cap %d" % st)

    # An idle connection that never sends a byte is closed too (idle_timeout_s 5).
    idle = socket.create_connection(("127.0.0.1", d.port), timeout=15)
    t0 = time.time()
    check(idle.recv(10) == b"", "idle connection not closed")
    check(time.time() - t0 < 10, "idle close too late")
    idle.close()

    # An unreachable repository ends with an error report, once.
    st, _, j = d.submit(os.path.join(root, "no-such-repo"))
    check(st == 202, "submit unreachable %d" % st)
    done = d.wait_done(j["id"], timeout=60)
    check(done["report"]["status"] == "error", "unreachable repo status %r" % done["report"]["status"])
    check(done["report"]["error"]["stage"] == "fetch", "stage %r" % done["report"]["error"])
    check(done["attempts"] == 0, "a missing repo is final, not retried: %r" % done["attempts"])

    # An infrastructure failure (the test hook makes candidate "faulty" fail like a sandbox
    # IE) is retried up to max_attempts (3), then ends as an error report with the log tail.
    st, _, j = d.submit(repo, candidate="faulty")
    check(st == 202, "submit faulty %d" % st)
    done = d.wait_done(j["id"], timeout=60)
    rep = done["report"]
    check(rep["status"] == "error" and rep["error"]["stage"] == "tests", "faulty %r" % rep["error"])
    check(rep["error"]["attempts"] == 3 and done["attempts"] == 2, "attempts %r" % done)
    check(rep["error"]["log_tail"].count("injected sandbox failure") == 3,
          "log tail %r" % rep["error"]["log_tail"])
    _, _, m = d.req("GET", "/metrics")
    check(b"proctor_job_retries_total 2" in m, "retries metric")

    # A dropped job naming a pack that does not exist ends with an error report (stage
    # challenge), not retried.
    drop_job(d.spool, "nopack.json", {"id": "nopack1", "repo": repo, "challenge": "no-pack"})
    done = d.wait_done("nopack1", timeout=30)
    check(done["report"]["status"] == "error" and
          done["report"]["error"]["stage"] == "challenge", "no pack %r" % done["report"])
    check(done["attempts"] == 0, "unknown pack retried")

    # A malformed job file dropped in the spool goes to rejected/ with a reason.
    inc = os.path.join(d.spool, "incoming")
    with open(os.path.join(inc, "broken.json"), "w") as f:
        f.write("{not json")
    with open(os.path.join(inc, "nofield.json"), "w") as f:
        json.dump({"challenge": "daemon-echo"}, f)
    deadline = time.time() + 10
    rej = os.path.join(d.spool, "rejected")
    while time.time() < deadline and len(os.listdir(rej)) < 4:
        time.sleep(0.1)
    names = sorted(os.listdir(rej))
    check(names == ["broken.json", "broken.json.reason", "nofield.json", "nofield.json.reason"],
          "rejected %r" % names)
    with open(os.path.join(rej, "nofield.json.reason")) as f:
        check("repo" in f.read(), "reason names the field")

    st, _, _ = d.req("GET", "/healthz")
    check(st == 200, "still serving")
    check(d.stop() == 0, "exit status")


def drop_job(spool, name, job):
    tmp = os.path.join(spool, "incoming", "." + name + ".part")
    with open(tmp, "w") as f:
        json.dump(job, f)
    os.rename(tmp, os.path.join(spool, "incoming", name))


def job_mounts(root):
    """Job directories of this test still mounted (the pipeline mounts a tmpfs per job)."""
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if root in line.split()[4]]


def test_crash(root):
    repo = make_repo(os.path.join(root, "repo"))
    d = Daemon(root).start()
    ids = []
    for i in range(15):
        st, _, j = d.submit(repo, candidate="c%d" % i)
        check(st == 202, "submit %d" % st)
        ids.append(j["id"])
    for i in range(15):
        drop_job(d.spool, "drop-%02d.json" % i,
                 {"repo": repo, "challenge": "daemon-echo", "candidate": "d%d" % i})
    # Kill -9 once a few reports exist and others are running.
    deadline = time.time() + 120
    while len(d.spool_files("reports")) < 4 and time.time() < deadline:
        time.sleep(0.05)
    before = {n: open(os.path.join(d.spool, "reports", n)).read()
              for n in d.spool_files("reports")}
    d.kill9()
    wait_no_sandbox(root)
    d.start()
    deadline = time.time() + 180
    while time.time() < deadline:
        if (len(d.spool_files("reports")) >= 30 and not d.spool_files("running")
                and not d.spool_files("incoming")):
            break
        time.sleep(0.2)
    reports = d.spool_files("reports")
    check(len(reports) == 30, "reports: %d\n%s" % (len(reports), d.logtext()))
    check(d.spool_files("done") == reports, "done/ and reports/ differ")
    seen = set()
    for n in reports:
        with open(os.path.join(d.spool, "reports", n)) as f:
            rep = json.load(f)
        jid = rep["job"]["id"]
        check(n == jid + ".json" and jid not in seen, "report id %s in %s" % (jid, n))
        seen.add(jid)
        check(rep["status"] == "graded", "job %s: %r" % (jid, rep.get("error")))
    for i in ids:
        check(i in seen, "API job %s lost" % i)
    cands = set()
    for n in d.spool_files("done"):
        with open(os.path.join(d.spool, "done", n)) as f:
            cands.add(json.load(f)["candidate"])
    check(cands == {"c%d" % i for i in range(15)} | {"d%d" % i for i in range(15)},
          "candidates %r" % cands)
    for n, text in before.items():
        with open(os.path.join(d.spool, "reports", n)) as f:
            check(f.read() == text, "report %s rewritten after the restart" % n)
    check(d.stop() == 0, "exit status")
    wait_no_sandbox(root)
    # The job directories the killed daemon left mounted were unmounted at the restart.
    check(job_mounts(root) == [], "job mounts left: %r" % job_mounts(root))


def test_watch(root):
    bare = os.path.join(root, "origin.git")
    os.makedirs(bare)
    git(bare, "init", "-q", "--bare", "-b", "main")
    work = make_repo(os.path.join(root, "clone"))
    git(work, "remote", "add", "origin", bare)
    git(work, "push", "-q", "origin", "main")
    d = Daemon(root, watch=[{"repo": bare, "branch": "main", "challenge": "daemon-echo",
                             "candidate": "watcher", "interval_s": 1}]).start()

    def jobs():
        out = {}
        for sub in ("incoming", "running", "done"):
            for n in d.spool_files(sub):
                with open(os.path.join(d.spool, sub, n)) as f:
                    j = json.load(f)
                out[j["id"]] = j["ref"]
        return out

    def wait_jobs(n, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            j = jobs()
            if len(j) >= n:
                return j
            time.sleep(0.1)
        fail("expected %d watch jobs, have %r\n%s" % (n, jobs(), d.logtext()))

    base = wait_jobs(1)
    check(list(base.values()) == [git(work, "rev-parse", "HEAD")], "first job %r" % base)
    shas = []
    for i in range(2):
        with open(os.path.join(work, "main.py"), "a") as f:
            f.write("# change %d\n" % i)
        git(work, "commit", "-q", "-am", "change %d" % i)
        git(work, "push", "-q", "origin", "main")
        shas.append(git(work, "rev-parse", "HEAD"))
        wait_jobs(2 + i)
    time.sleep(2.5)  # more polls: still exactly one job per commit
    j = jobs()
    check(len(j) == 3 and sorted(j.values()) == sorted(list(base.values()) + shas),
          "watch jobs %r" % j)
    check(d.stop() == 0, "exit status")
    d.start()
    time.sleep(3.0)
    check(jobs() == j, "duplicate watch jobs after restart %r" % jobs())
    for jid in j:
        done = d.wait_done(jid)
        check(done["report"]["status"] == "graded", "watch job %s" % jid)
        check(done["report"]["submission"]["commit"] == j[jid], "graded the exact commit")
    check(d.stop() == 0, "exit status")


def test_load(root):
    repo = make_repo(os.path.join(root, "repo"))
    d = Daemon(root, workers=2).start()
    n = 200
    ids = []
    c = d.conn()
    for i in range(n):
        st, _, data = d.req("POST", "/v1/submissions", token=SUB, conn=c,
                            body={"repo": repo, "challenge": "daemon-echo",
                                  "candidate": "load%d" % i})
        check(st == 202, "submit %d: %d %r" % (i, st, data))
        ids.append(json.loads(data)["id"])
    c.close()
    lat = []
    max_running = 0
    deadline = time.time() + 600
    while time.time() < deadline:
        t0 = time.time()
        st, _, j = d.jreq("GET", "/healthz", timeout=5)
        lat.append(time.time() - t0)
        check(st == 200, "healthz while grading %d" % st)
        max_running = max(max_running, j["running"])
        if len(d.spool_files("reports")) >= n and j["running"] == 0 and j["queued"] == 0:
            break
        time.sleep(0.1)
    reports = d.spool_files("reports")
    check(len(reports) == n, "graded %d of %d" % (len(reports), n))
    bad = 0
    for jid in ids:
        with open(os.path.join(d.spool, "reports", jid + ".json")) as f:
            if json.load(f)["status"] != "graded":
                bad += 1
    check(bad == 0, "%d reports not graded" % bad)
    check(max_running == 2, "both workers busy at once: max running %d" % max_running)
    # Every box of every job was watched by the daemon's loop, and none is left.
    _, _, m = d.req("GET", "/metrics")
    mv = dict(line.split(" ", 1) for line in m.decode().splitlines()
              if line.startswith("proctor_sandbox_"))
    check(int(mv.get("proctor_sandbox_boxes_watched_total", "0")) >= n,
          "boxes watched by the loop: %r" % mv)
    check(mv.get("proctor_sandbox_boxes_active") == "0", "boxes still active: %r" % mv)
    hwm = d.vm_hwm_kb()
    lat.sort()
    print("load: %d jobs, healthz p50 %.1f ms max %.1f ms, VmHWM %d kB" %
          (n, lat[len(lat) // 2] * 1000, lat[-1] * 1000, hwm))
    check(lat[-1] < 1.0, "healthz took %.2fs while grading" % lat[-1])
    # Sanitizer builds carry shadow memory and a quarantine: the bound is for plain builds.
    limit_kb = 64 * 1024 if not os.environ.get("PR_SANITIZE") else 1024 * 1024
    check(0 < hwm < limit_kb, "daemon VmHWM %d kB (limit %d kB)" % (hwm, limit_kb))
    check(d.stop() == 0, "exit status")


def test_signals(root):
    repo = make_repo(os.path.join(root, "repo"))
    d = Daemon(root).start()
    # SIGHUP reloads tokens.
    st, _, _ = d.jreq("GET", "/v1/challenges", token=REV)
    check(st == 200, "before reload %d" % st)
    new_tok = "fresh-token-after-hup"
    d.cfg["tokens"] = [t for t in d.cfg["tokens"] if t["token"] != REV] + \
        [{"token": new_tok, "role": "reviewer", "name": "nora"}]
    d.write_config()
    d.send(signal.SIGHUP)
    deadline = time.time() + 5
    while time.time() < deadline:
        st, _, _ = d.jreq("GET", "/v1/challenges", token=new_tok)
        if st == 200:
            break
        time.sleep(0.1)
    check(st == 200, "new token after SIGHUP %d" % st)
    st, _, _ = d.jreq("GET", "/v1/challenges", token=REV)
    check(st == 401, "old token after SIGHUP %d" % st)
    # SIGHUP reloads the challenge packs too.
    packs = d.cfg["challenges"]
    shutil.copytree(os.path.join(packs, "daemon-echo"), os.path.join(packs, "daemon-echo2"))
    man = os.path.join(packs, "daemon-echo2", "challenge.json")
    with open(man) as f:
        m = json.load(f)
    m["id"] = "daemon-echo2"
    with open(man, "w") as f:
        json.dump(m, f)
    st, _, j = d.submit(repo, challenge="daemon-echo2")
    check(st == 404, "pack before reload %d" % st)
    d.send(signal.SIGHUP)
    deadline = time.time() + 5
    while time.time() < deadline:
        st, _, j = d.jreq("GET", "/v1/challenges", token=new_tok)
        if len(j["challenges"]) == 2:
            break
        time.sleep(0.1)
    check(sorted(c["id"] for c in j["challenges"]) == ["daemon-echo", "daemon-echo2"],
          "challenges after SIGHUP %r" % j)
    shutil.rmtree(os.path.join(packs, "daemon-echo2"))
    d.send(signal.SIGHUP)

    # A broken config on SIGHUP keeps the old one.
    with open(d.cfg_path, "w") as f:
        f.write("{broken")
    d.send(signal.SIGHUP)
    time.sleep(0.5)
    st, _, _ = d.jreq("GET", "/v1/challenges", token=new_tok)
    check(st == 200, "token after a failed reload %d" % st)
    d.write_config()

    # SIGTERM with jobs running: exit 0; every job has a report or is requeued at restart.
    ids = []
    for i in range(6):
        st, _, j = d.submit(repo, candidate="s%d" % i)
        check(st == 202, "submit %d" % st)
        ids.append(j["id"])
    deadline = time.time() + 30
    while time.time() < deadline:
        _, _, h = d.jreq("GET", "/healthz")
        if h["running"] > 0:
            break
        time.sleep(0.02)
    t0 = time.time()
    check(d.stop(signal.SIGTERM) == 0, "SIGTERM exit status")
    print("stopped after %.2fs" % (time.time() - t0))
    left = set(n[:-5] for n in d.spool_files("running"))
    done = set(n[:-5] for n in d.spool_files("reports"))
    check(left | done == set(ids), "jobs lost at SIGTERM: running %r reports %r" % (left, done))
    check(not (left & done), "a job both done and requeued")
    check(len(done) >= 1, "running jobs were allowed to finish")
    wait_no_sandbox(root)
    # Grace 0: running jobs are requeued instead of finishing.
    d.cfg["grace_s"] = 0
    d.write_config()
    d.start()
    for jid in ids:
        d.wait_done(jid, token=new_tok)
    check(sorted(n[:-5] for n in d.spool_files("reports")) == sorted(ids), "all reports")
    ids2 = [d.submit(repo, candidate="g%d" % i)[2]["id"] for i in range(2)]
    deadline = time.time() + 30
    while time.time() < deadline:
        _, _, h = d.jreq("GET", "/healthz")
        if h["running"] > 0:
            break
        time.sleep(0.02)
    check(d.stop(signal.SIGINT) == 0, "SIGINT exit status")
    d.cfg["grace_s"] = 30
    d.write_config()
    d.start()
    for jid in ids2:
        d.wait_done(jid, token=new_tok)
    check(d.stop() == 0, "exit status")
    wait_no_sandbox(root)

    # Low disk: with min_free_mb above the free space a job is deferred, not started; it runs
    # after a restart with a sane threshold.
    d.cfg["min_free_mb"] = 1 << 29
    d.write_config()
    d.start()
    st, _, j = d.submit(repo, candidate="disk")
    check(st == 202, "submit %d" % st)
    time.sleep(1.5)
    st, _, s = d.jreq("GET", "/v1/submissions/" + j["id"], token=new_tok)
    check(s["status"] == "queued", "deferred job status %r" % s)
    _, _, m = d.req("GET", "/metrics")
    check(b"proctor_jobs_deferred_total 0" not in m, "deferral not counted")
    check(d.stop() == 0, "exit status")
    d.cfg["min_free_mb"] = 0
    d.write_config()
    d.start()
    d.wait_done(j["id"], token=new_tok)
    check(d.stop() == 0, "exit status")
    check(job_mounts(root) == [], "job mounts left: %r" % job_mounts(root))


if __name__ == "__main__":
    main({"api": test_api, "bad_input": test_bad_input, "crash": test_crash,
          "watch": test_watch, "load": test_load, "signals": test_signals})
