"""Helpers for the daemon tests: a real `proctor serve` on a free loopback port, real git
repositories built at test time, and a plain HTTP/1.1 client (http.client)."""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

PROCTOR = os.environ.get("PROCTOR", "")
SRC = os.environ.get("PR_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
PACKS = os.path.join(SRC, "tests", "fixtures", "packs")

TOKENS = [
    {"token": "submit-token-0001", "role": "submitter", "name": "ats"},
    {"token": "review-token-0001", "role": "reviewer", "name": "rita"},
    {"token": "alice-token-0001", "role": "candidate", "name": "alice"},
    {"token": "bob-token-00001", "role": "candidate", "name": "bob"},
    {"token": "limited-token-01", "role": "submitter", "name": "limited",
     "rate": {"per_minute": 6, "burst": 3}},
]
SUB, REV, ALICE, BOB, LIMITED = (t["token"] for t in TOKENS)
SECRET = "callback-secret-for-tests"


LIVE = []  # daemons to kill if a check fails
ROOT = []  # the test's temporary root (kept on failure, its mounts released)


def fail(msg):
    for d in LIVE:
        if d.proc and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
    for r in ROOT:
        release_mounts(r)
    print("FAIL: " + msg, file=sys.stderr)
    sys.stderr.flush()
    os.abort()


def check(cond, msg):
    if not cond:
        fail(msg)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


GIT_ENV = dict(os.environ, GIT_AUTHOR_NAME="Cand Idate", GIT_AUTHOR_EMAIL="c@example.com",
               GIT_COMMITTER_NAME="Cand Idate", GIT_COMMITTER_EMAIL="c@example.com",
               GIT_CONFIG_NOSYSTEM="1", HOME=tempfile.gettempdir())


def git(cwd, *args):
    r = subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True)
    if r.returncode != 0:
        fail("git %s: %s" % (" ".join(args), r.stderr))
    return r.stdout.strip()


ECHO_PY = "import sys\nsys.stdout.write(sys.stdin.read())\n"


def make_repo(path, files=None, message="solution"):
    """A non-bare repository with one commit on branch main."""
    os.makedirs(path)
    git(path, "init", "-q", "-b", "main")
    for name, text in (files or {"main.py": ECHO_PY}).items():
        with open(os.path.join(path, name), "w") as f:
            f.write(text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", message)
    return path


def sandbox_procs(root=None):
    """Processes running as a box uid (the sandbox maps box users to uids >= 100000). With root,
    only boxes of this test: their mount table binds job directories from under root (other
    programs on the machine may run sandboxes of their own at the same time)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/status" % pid) as f:
                uid = -1
                for line in f:
                    if line.startswith("Uid:"):
                        uid = int(line.split()[1])
                        break
            if uid < 100000:
                continue
            if root is not None:
                with open("/proc/%s/mountinfo" % pid) as f:
                    if root not in f.read():
                        continue
            out.append((int(pid), uid))
        except OSError:
            pass
    return out


def wait_no_sandbox(root, timeout=15):
    """Waits until no sandbox process of this test's root is left; fails after timeout."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not sandbox_procs(root):
            return
        time.sleep(0.2)
    fail("sandbox processes left: %r" % sandbox_procs(root))


class Daemon:
    def __init__(self, root, **over):
        self.root = root
        self.port = free_port()
        self.spool = os.path.join(root, "spool")
        self.cfg_path = os.path.join(root, "proctor.json")
        packs = os.path.join(root, "packs")
        if not os.path.isdir(packs):
            # Only the daemon's own pack, so the challenge list is known exactly.
            shutil.copytree(os.path.join(PACKS, "daemon-echo"), os.path.join(packs, "daemon-echo"))
        self.cfg = {
            "listen": "127.0.0.1:%d" % self.port,
            "spool": self.spool,
            "challenges": packs,
            "workers": 2,
            "tokens": TOKENS,
            "callback_secret": SECRET,
            "cache": os.path.join(root, "cache"),
            "work": os.path.join(root, "work"),
            "grace_s": 30,
            "min_free_mb": 0,
            "scan_interval_s": 1,
            "limits": {"body_bytes": 4096, "queue_length": 1000, "request_timeout_s": 2,
                       "idle_timeout_s": 5, "repo_bytes": 1 << 20, "repo_files": 100},
        }
        for k, v in over.items():
            if k == "limits":
                self.cfg["limits"].update(v)
            else:
                self.cfg[k] = v
        self.proc = None
        self.log_path = os.path.join(root, "daemon.log")
        self.write_config()

    def write_config(self):
        with open(self.cfg_path, "w") as f:
            json.dump(self.cfg, f, indent=1)

    def start(self):
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen([PROCTOR, "serve", "--config", self.cfg_path],
                                     stdout=self.log, stderr=self.log,
                                     env=dict(os.environ, PROCTOR_FAULT_CANDIDATE="faulty"))
        if self not in LIVE:
            LIVE.append(self)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                fail("daemon exited with %d at start:\n%s" % (self.proc.returncode, self.logtext()))
            try:
                st, _, _ = self.req("GET", "/healthz", timeout=1)
                if st == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        fail("daemon did not answer /healthz:\n" + self.logtext())

    def logtext(self):
        try:
            with open(self.log_path) as f:
                return f.read()[-6000:]
        except OSError:
            return ""

    def conn(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def req(self, method, path, token=None, body=None, headers=None, conn=None, timeout=10):
        own = conn is None
        c = conn or self.conn(timeout)
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        if own:
            c.close()
        return r.status, hdrs, data

    def jreq(self, *a, **kw):
        st, h, data = self.req(*a, **kw)
        try:
            return st, h, json.loads(data) if data else None
        except ValueError:
            fail("not JSON (%d): %r" % (st, data[:300]))

    def submit(self, repo, candidate="alice", challenge="daemon-echo", token=SUB, **extra):
        body = {"repo": repo, "challenge": challenge, "candidate": candidate}
        body.update(extra)
        return self.jreq("POST", "/v1/submissions", token=token, body=body)

    def wait_done(self, job_id, timeout=120, token=REV):
        deadline = time.time() + timeout
        while time.time() < deadline:
            st, _, j = self.jreq("GET", "/v1/submissions/" + job_id, token=token)
            check(st == 200, "GET %s: %d %r" % (job_id, st, j))
            if j["status"] == "done":
                return j
            time.sleep(0.2)
        fail("job %s not done after %ds:\n%s" % (job_id, timeout, self.logtext()))

    def send(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if not self.proc:
            return None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            fail("daemon did not stop within %ds:\n%s" % (timeout, self.logtext()))
        self.proc = None
        self.log.close()
        return rc

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.proc = None
        self.log.close()

    def vm_hwm_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return -1

    def spool_files(self, sub):
        d = os.path.join(self.spool, sub)
        return sorted(n for n in os.listdir(d) if n.endswith(".json") and ".tmp-" not in n)


def workdir(name):
    base = os.environ.get("PR_BINARY_DIR", tempfile.gettempdir())
    root = tempfile.mkdtemp(prefix="daemon-%s-" % name, dir=base if os.path.isdir(base) else None)
    os.chmod(root, 0o755)  # the sandbox must traverse the work dir inside it
    return root


def release_mounts(root):
    # A daemon killed mid-job leaves its job tmpfs mounted until its next start.
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f if line.split()[4].startswith(root + "/")]
    for m in sorted(mounts, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True)


def cleanup(root):
    release_mounts(root)
    shutil.rmtree(root, ignore_errors=True)


def main(tests):
    if not PROCTOR or not os.access(PROCTOR, os.X_OK):
        print("PROCTOR not set", file=sys.stderr)
        sys.exit(77)
    name = sys.argv[1] if len(sys.argv) > 1 else None
    if name not in tests:
        print("usage: %s {%s}" % (sys.argv[0], ",".join(tests)), file=sys.stderr)
        sys.exit(2)
    root = workdir(name)
    ROOT.append(root)
    try:
        tests[name](root)
    finally:
        for d in LIVE:
            if d.proc and d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()
        if os.environ.get("PR_KEEP_TMP") is None:
            cleanup(root)
    print("ok " + name)
