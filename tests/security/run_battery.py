#!/usr/bin/python3
"""Security battery driver: runs every hostile program of cases.tsv through
`$PROCTOR sandbox --result FILE ...` and compares what happened with the table.

Only the --result file is trusted for the verdict; the programs' own output is read (capped) for
the extra checks only. Hostile programs are never run outside the box: every command goes through
proctor. After each case: no process of the case may survive, no cgroup named after the proctor
process may remain; after the group: the host is untouched (hostname, canary file, clock).

Usage: run_battery.py --cases cases.tsv --bin DIR [--group G|all] [--only REGEX] [-v]
       run_battery.py --leftovers --bin DIR       (final check that nothing survived)
Exit: 0 all passed, 1 a case failed, 77 skipped (no user namespaces / no proctor).
"""
import argparse
import ctypes
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import stat as st_mod
import signal
import socket
import subprocess
import sys
import tempfile
import termios
import threading
import time

CAP = 1 << 20  # bytes of stdout/stderr kept for the checks; the rest is counted and dropped
BOX_UID_MIN = int(os.environ.get("PR_SEC_BOX_UID_MIN", "100000"))
SCRATCH_PREFIX = "proctor-sec-"
DEFAULTS = {"--wall-ms": "3000", "--cpu-ms": "2000", "--mem-mb": "64"}
LIMIT_FLAGS = ("--cpu-ms", "--wall-ms", "--mem-mb", "--procs", "--fsize-kb", "--nofile",
               "--tmp-mb", "--stack-mb")
SHM_KEY = 0x50524F43  # "PROC"
ISO_KEYS = ("userns", "pidns", "netns", "mntns", "seccomp", "no_new_privs")


def log(msg):
    print(msg, flush=True)


# ---------------------------------------------------------------------------- table parsing

class Case:
    def __init__(self, group, name, accept, options, checks, command, lineno):
        self.group, self.name, self.lineno = group, name, lineno
        self.accept = set(accept.split("|"))
        self.options = shlex.split(options) if options != "-" else []
        self.checks = [c.strip() for c in checks.split(";") if c.strip()] if checks != "-" else []
        self.command = shlex.split(command)


def load_cases(path):
    """(cases, known-failing {name: reason}, coverage {row: [names]})."""
    cases, known, cover = [], {}, {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if line.startswith("#cover "):
                parts = line.split()
                cover[parts[1]] = parts[2:]
                continue
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            cols = line.split("\t")
            if cols[0] == "!known-failing":
                known[cols[1]] = cols[2] if len(cols) > 2 else ""
                continue
            if len(cols) != 6:
                raise SystemExit(f"{path}:{lineno}: expected 6 tab-separated columns, got {len(cols)}")
            cases.append(Case(*cols, lineno))
    names = [c.name for c in cases]
    dups = {n for n in names if names.count(n) > 1}
    if dups:
        raise SystemExit(f"{path}: duplicate case names {sorted(dups)}")
    unknown = sorted({n for v in cover.values() for n in v} - set(names))
    if unknown:
        raise SystemExit(f"{path}: #cover lines name unknown cases {unknown}")
    missing = [str(r) for r in range(1, 41) if str(r) not in cover]
    if missing:
        raise SystemExit(f"{path}: catalogue rows without a case: {missing}")
    return cases, known, cover


# ---------------------------------------------------------------------------- host state

def proc_processes():
    """(pid, uid, exe, cmdline, state) of every process on the host."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        pid = int(d)
        try:
            with open(f"/proc/{d}/status", encoding="utf-8", errors="replace") as f:
                st = f.read()
            uid = int(re.search(r"^Uid:\s+(\d+)", st, re.M).group(1))
            state = re.search(r"^State:\s+(\S)", st, re.M).group(1)
        except (OSError, AttributeError):
            continue
        try:
            exe = os.readlink(f"/proc/{d}/exe")
        except OSError:
            exe = ""
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read(4096).replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            cmd = ""
        out.append((pid, uid, exe, cmd, state))
    return out


def bin_inodes(bin_dir):
    """(st_dev, st_ino) of every file of a private bin copy: a box process shows its executable
    under its in-box path (/sec/...), so survivors are recognised by inode, not by path."""
    out = set()
    for n in os.listdir(bin_dir):
        st = os.stat(os.path.join(bin_dir, n))
        out.add((st.st_dev, st.st_ino))
    return out


def box_uids(proctor_pid):
    """Host uids of the box started by a proctor process with the default slot (sandbox.h: box
    root and box user map to 100000 + 2*slot and +1; the slot is 1000 + pid % 30000)."""
    slot = 1000 + proctor_pid % 30000
    return {BOX_UID_MIN + 2 * slot, BOX_UID_MIN + 2 * slot + 1}


def find_survivors(inodes, markers, uids=(), proctor_ino=None):
    """Processes that belong to this battery run: their executable is one of our private bin
    copy's files, or their command line names one of the case's scripts, or they run as this
    run's box uids from the proctor binary (a surviving box init)."""
    found = []
    for pid, uid, exe, cmd, state in proc_processes():
        if pid == os.getpid():
            continue
        try:
            st = os.stat(f"/proc/{pid}/exe")
            key = (st.st_dev, st.st_ino)
            mine = key in inodes or (uid in uids and key == proctor_ino)
        except OSError:
            mine = False
        if mine or any(m in cmd for m in markers):
            found.append((pid, uid, exe, cmd.strip(), state))
    return found


def kill_pids(pids):
    for pid in pids:
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except OSError:
                pass


CGROUP_ROOT = "/sys/fs/cgroup"


def cgroup_dirs(max_depth=6):
    """Every cgroup directory under every mounted hierarchy (bounded depth)."""
    out = set()
    try:
        hier = [os.path.join(CGROUP_ROOT, h) for h in os.listdir(CGROUP_ROOT)]
    except OSError:
        return out
    for h in hier:
        if not os.path.isdir(h) or os.path.islink(h):
            continue
        base = h.count("/")
        for dirpath, dirnames, _ in os.walk(h):
            if dirpath.count("/") - base >= max_depth:
                dirnames[:] = []
            out.add(dirpath)
    return out


def cgroups_named_after(pid, dirs):
    pat = re.compile(r"^proctor-%d(-|$)" % pid)  # the sandbox names them proctor-<pid>-...
    return sorted(d for d in dirs if pat.search(os.path.basename(d)))


def proc_state(pid):
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as f:
            m = re.search(r"^State:\s+(\S)", f.read(), re.M)
        return m.group(1) if m else "?"
    except OSError:
        return "gone"


def describe_tasks(dirs):
    """' (tasks: pid state comm uid, ...)' for the live processes in the given cgroups."""
    out = set()
    for d in dirs:
        try:
            with open(os.path.join(d, "cgroup.procs"), encoding="ascii") as f:
                pids = [int(x) for x in f.read().split()]
        except (OSError, ValueError):
            continue
        for pid in pids:
            try:
                with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as f:
                    st = f.read()
                name = re.search(r"^Name:\s+(.*)$", st, re.M).group(1)
                uid = re.search(r"^Uid:\s+(\d+)", st, re.M).group(1)
                out.add(f"{pid} {proc_state(pid)} {name} uid {uid}")
            except (OSError, AttributeError):
                pass
    return (" (tasks: " + ", ".join(sorted(out)) + ")") if out else " (no tasks)"


def cgroup_has_tasks(d):
    """True when a live (not zombie) process is still in cgroup d. A zombie whose parent died
    waits for the host's init to reap it; it runs nothing."""
    for name in ("cgroup.procs", "tasks"):
        try:
            with open(os.path.join(d, name), encoding="ascii") as f:
                pids = [int(x) for x in f.read().split()]
        except (OSError, ValueError):
            continue
        if any(proc_state(pid) not in ("Z", "X", "gone") for pid in pids):
            return True
    return False


def file_digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest(), os.stat(path).st_mtime_ns


def userns_available():
    try:
        with open("/proc/sys/user/max_user_namespaces", encoding="ascii") as f:
            if int(f.read().strip()) == 0:
                return False
    except (OSError, ValueError):
        return False
    try:
        with open("/proc/sys/kernel/unprivileged_userns_clone", encoding="ascii") as f:
            if f.read().strip() == "0" and os.geteuid() != 0:
                return False
    except OSError:
        pass
    return True


# ---------------------------------------------------------------------------- fixtures

class Fixtures:
    """Host-side things the cases poke at: a canary file, a TCP listener and an abstract unix
    socket on the host's loopback, a held flock/fcntl lock on a file bound into the box, a SysV
    shm segment in the host IPC namespace, a setuid-root copy of whoami."""

    def __init__(self, group, src_bin):
        self.root = tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{group}-")
        os.chmod(self.root, 0o755)
        self.bin = os.path.join(self.root, "bin")
        shutil.copytree(src_bin, self.bin)
        os.chmod(self.bin, 0o755)
        for n in os.listdir(self.bin):
            os.chmod(os.path.join(self.bin, n), 0o755)
        self.work_root = os.path.join(self.root, "wd")
        self.out_root = os.path.join(self.root, "out")
        os.mkdir(self.work_root, 0o755)
        os.mkdir(self.out_root, 0o700)
        self.setuid = False
        if os.geteuid() == 0:
            p = os.path.join(self.bin, "whoami_suid")
            shutil.copy2(os.path.join(self.bin, "whoami"), p)
            os.chown(p, 0, 0)
            os.chmod(p, 0o4755)
            self.setuid = True
        self.canary = os.path.join(self.root, "canary.txt")
        self.inodes = set()  # filled once every file of bin/ exists
        with open(self.canary, "w", encoding="ascii") as f:
            f.write("proctor-canary %s\n" % os.urandom(8).hex())
        os.chmod(self.canary, 0o666)  # even world-writable it must stay untouched
        self.canary_digest = file_digest(self.canary)
        self.lockfile = os.path.join(self.bin, "lockfile")
        with open(self.lockfile, "w", encoding="ascii") as f:
            f.write("lock\n")
        os.chmod(self.lockfile, 0o644)
        self.lock_fd = os.open(self.lockfile, os.O_RDWR | os.O_CLOEXEC)
        self.inodes = bin_inodes(self.bin)
        fcntl.flock(self.lock_fd, fcntl.LOCK_EX)
        fcntl.lockf(self.lock_fd, fcntl.LOCK_EX)
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(8)
        self.port = self.tcp.getsockname()[1]
        self.abstract = f"proctor-sec-{os.getpid()}-{group}"
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.bind("\0" + self.abstract)
        self.unix.listen(8)
        self.shmid = -1
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.shmget.restype = ctypes.c_int
            self.shmid = libc.shmget(SHM_KEY + os.getpid() % 1000, 4096, 0o1000 | 0o644)
            self.libc = libc
        except OSError:
            self.libc = None
        self.hostname = socket.gethostname()
        self.killed_proctors = []
        self.state_file = None
        self.t_real, self.t_mono = time.time(), time.monotonic()

    def record_pid(self, pid):
        """Remembers a proctor pid for the final cgroup check (security_leftovers)."""
        if self.state_file:
            try:
                with open(self.state_file, "a", encoding="ascii") as f:
                    f.write(f"pid {pid}\n")
            except OSError:
                pass

    def subst(self, s, work):
        return (s.replace("{WORK}", "/box")
                .replace("{CANARY}", self.canary)
                .replace("{HOSTPORT}", str(self.port))
                .replace("{ABSTRACT}", self.abstract)
                .replace("{LOCKFILE}", "/sec/lockfile")
                .replace("{SHMKEY}", hex(SHM_KEY + os.getpid() % 1000))
                .replace("{HOSTWORK}", work))

    def host_checks(self):
        """Problems with the host after the group (empty list when untouched)."""
        bad = []
        if socket.gethostname() != self.hostname:
            bad.append(f"host hostname changed: {self.hostname!r} -> {socket.gethostname()!r}")
        if file_digest(self.canary) != self.canary_digest:
            bad.append(f"host canary file {self.canary} was modified")
        drift = (time.time() - self.t_real) - (time.monotonic() - self.t_mono)
        if abs(drift) > 2.0:
            bad.append(f"host realtime clock jumped by {drift:.1f} s during the battery")
        if self.killed_proctors:
            # One more (benign) run: starting up must sweep the empty cgroups of dead runs.
            subprocess.run([os.environ["PROCTOR"], "sandbox", "--result", "/dev/null", "--",
                            "/bin/true"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30, check=False)
            dirs = cgroup_dirs()
            stale = [d for pid in self.killed_proctors for d in cgroups_named_after(pid, dirs)]
            if stale:
                bad.append("cgroups of killed proctor processes never swept by later runs: "
                           + ", ".join(stale[:4]))
        for kind in ("shm", "msg", "sem"):
            try:
                with open(f"/proc/sysvipc/{kind}", encoding="ascii") as f:
                    rows = [l.split() for l in f.read().splitlines()[1:]]
            except OSError:
                rows = []
            # uid column: shm and msg 8th, sem 5th
            col = {"shm": 7, "msg": 7, "sem": 4}[kind]
            leaked = [r for r in rows if len(r) > col and r[col].isdigit()
                      and int(r[col]) >= BOX_UID_MIN]
            if leaked:
                bad.append(f"SysV {kind} objects of box uids left in the host IPC namespace: "
                           f"{len(leaked)}")
        if self.libc is not None:
            fd = self.libc.inotify_init1(0o2000000)
            if fd < 0:
                bad.append("host cannot create an inotify instance after the battery (errno %d)"
                           % ctypes.get_errno())
            else:
                os.close(fd)
        return bad

    def close(self):
        if self.shmid >= 0 and self.libc is not None:
            self.libc.shmctl(self.shmid, 0, None)  # IPC_RMID
        for s in (self.tcp, self.unix):
            s.close()
        os.close(self.lock_fd)
        for m in getattr(self, "mounts", []):
            subprocess.run(["umount", "-l", m], check=False, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


# ---------------------------------------------------------------------------- running a case

class Capture(threading.Thread):
    """Reads a pipe to EOF, keeping the first CAP bytes; memory stays bounded however much the
    box writes."""

    def __init__(self, fd):
        super().__init__(daemon=True)
        self.fd, self.data, self.total = fd, bytearray(), 0

    def run(self):
        while True:
            try:
                b = os.read(self.fd, 1 << 16)
            except OSError:
                break
            if not b:
                break
            self.total += len(b)
            if len(self.data) < CAP:
                self.data += b[: CAP - len(self.data)]
        os.close(self.fd)


def build_options(case, fx, work):
    """(proctor options, directives) for a case: driver defaults, then the case's own."""
    opts = dict(DEFAULTS)
    extra, directives = [], {}
    toks = [fx.subst(t, work) for t in case.options]
    i = 0
    while i < len(toks):
        t = toks[i]
        if t.startswith("@"):
            k, _, v = t[1:].partition("=")
            directives[k] = v or "1"
        elif t in LIMIT_FLAGS and i + 1 < len(toks):
            opts[t] = toks[i + 1]
            i += 1
        elif t in ("--ro", "--rw", "--chdir", "--net", "--profile") and i + 1 < len(toks):
            extra += [t, toks[i + 1]]
            i += 1
        else:
            extra.append(t)
        i += 1
    flat = []
    for k, v in opts.items():
        if v != "none":
            flat += [k, v]
    return flat + extra, directives


def read_capped(path):
    try:
        with open(path, "rb") as f:
            data = f.read(CAP)
        size = os.path.getsize(path)
    except OSError:
        return "", 0
    return data.decode("utf-8", "replace"), size


def run_case(case, fx, proctor, verbose):
    """Returns (ok, summary, details)."""
    work = os.path.join(fx.work_root, case.name)
    os.mkdir(work)
    opts, dv = build_options(case, fx, work)
    if "worktmpfs" in dv:
        # The work dir the way proctor's job pipeline makes it: its own tmpfs with a size and
        # an inode cap (runner/job.c), so total disk use is bounded by the kernel, not only the
        # size of each file (--fsize-kb). A writable plain host directory has no such cap.
        mb, _, inodes = dv["worktmpfs"].partition(":")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o",
                            f"size={int(mb)}m,nr_inodes={int(inodes or 1000)},nosuid,nodev",
                            "proctor-sec-work", work], capture_output=True, text=True,
                           check=False)
        if r.returncode != 0:
            return False, "battery bug: cannot mount the tmpfs work dir: " + r.stderr.strip(), []
        if not hasattr(fx, "mounts"):
            fx.mounts = []
        fx.mounts.append(work)
    os.chmod(work, 0o777)
    result_path = os.path.join(fx.out_root, case.name + ".result.json")
    out_path = os.path.join(fx.out_root, case.name + ".stdout")
    err_path = os.path.join(fx.out_root, case.name + ".stderr")
    if "result" in dv:
        # The caller put --result inside the box's writable work dir.
        result_path = os.path.join(work, dv["result"])
    stdin_file = None
    if dv.get("stdin") == "file":
        stdin_file = os.path.join(fx.out_root, case.name + ".stdin")
        with open(stdin_file, "w", encoding="ascii") as f:
            f.write("test input owned by the runner\n")
        os.chmod(stdin_file, 0o644)
    cmd = [fx.subst(c, work) for c in case.command]
    if "bigargs" in dv:
        cmd += ["a" * 1000] * int(dv["bigargs"])
    result_args = ["--result", result_path]
    if "stderrresult" in dv:
        result_args = []  # proctor prints the result as the last line of stderr instead
    argv = [proctor, "sandbox"] + opts + ["--ro", f"{fx.bin}:/sec", "--rw", f"{work}:/box",
                                          "--chdir", "/box"] + result_args + ["--"] + cmd
    race_hits, race_runs, race_bound, racer = [], 0, 0, None
    if "race" in dv:
        # Another box on the same work dir swaps "link" between a directory and a symlink to a
        # host path while this case's bind source names it: the check and the mount must not be
        # separable (TOCTOU). The case runs N times; any run seeing host content fails it.
        n_runs, _, target = dv["race"].partition(":")
        racer = subprocess.Popen(
            [proctor, "sandbox", "--wall-ms", "8000", "--cpu-ms", "8000", "--ro",
             f"{fx.bin}:/sec", "--rw", f"{work}:/box", "--chdir", "/box", "--result",
             os.path.join(fx.out_root, case.name + ".racer.json"), "--", "/sec/flipper", "/box",
             target or "/etc", "2"], stdin=subprocess.DEVNULL,
            stdout=open(os.path.join(fx.out_root, case.name + ".racer.out"), "wb"),
            stderr=subprocess.DEVNULL, start_new_session=True)
        fx.record_pid(racer.pid)
        for _ in range(100):
            if os.path.lexists(os.path.join(work, "sym")):
                break
            time.sleep(0.02)
        forbidden = [c.split("~", 1)[1] for c in case.checks if c.startswith("out!~")]
        for _ in range(max(int(n_runs) - 1, 0)):
            argv_i = [a if a != result_path else result_path + ".race" for a in argv]
            r = subprocess.run(argv_i, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=30, check=False)
            race_runs += 1
            if re.search(r"^/data: OK 1 entries$", r.stdout, re.M):
                race_bound += 1  # the real directory was bound: the race was really run
            race_hits += [r.stdout.strip()[:120] for f in forbidden
                          if re.search(f, r.stdout, re.M)]
    env = dict(os.environ)
    if "bigenv" in dv:
        env["PROCTOR_SEC_HUGE"] = "e" * int(dv["bigenv"])
        env["PROCTOR_SEC_SECRET"] = "host-secret-token"
    repro = " ".join(shlex.quote(a) for a in argv)
    details = []
    if "pre" in dv:
        # A first box in the same work dir prepares the attack (e.g. plants a symlink that the
        # main case then names as a bind source). "@pre=a,b,c" runs /sec/try_syscall a b c.
        pre = [proctor, "sandbox", "--ro", f"{fx.bin}:/sec", "--rw", f"{work}:/box", "--chdir",
               "/box", "--result", os.path.join(fx.out_root, case.name + ".pre.json"), "--",
               "/sec/try_syscall"] + [fx.subst(x, work) for x in dv["pre"].split(",")]
        r = subprocess.run(pre, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=30, check=False)
        pre_note = ("pre-step: " + " ".join(shlex.quote(a) for a in pre) + " -> " +
                    r.stdout.strip()[:200])
        if not re.search(r": OK$", r.stdout.strip()):
            return False, "battery bug: the pre-step did not prepare the attack", [pre_note]
        details.append(pre_note)

    # stdin: /dev/null, a pipe that stays open, or a pty (for TIOCSTI)
    stdin_mode = dv.get("stdin", "null")
    stdin_keep, stdin_arg, pty_master = None, subprocess.DEVNULL, None
    if stdin_mode == "pipe":
        r, w = os.pipe()
        stdin_arg, stdin_keep = r, w
    elif stdin_mode == "file":
        stdin_arg = os.open(stdin_file, os.O_RDONLY)
    elif stdin_mode == "pty":
        pty_master, slave = os.openpty()
        stdin_arg = slave
        tty_before = termios.tcgetattr(pty_master)
    captures, files = {}, []
    outs = {}
    for name, path in (("stdout", out_path), ("stderr", err_path)):
        if dv.get(name) == "pipe":
            r, w = os.pipe()
            captures[name] = (Capture(r), w)
            outs[name] = w
        else:
            f = open(path, "wb")
            files.append(f)
            outs[name] = f
    pass_fds = ()
    leak_fds = []
    if "leakfds" in dv:
        # fds the runner might hold: a pipe, a writable host file, a listening socket; all
        # inheritable; the box must see none of them.
        r, w = os.pipe()
        hf = os.open(fx.canary, os.O_RDWR)
        sfd = os.dup(fx.tcp.fileno())
        leak_fds = [r, w, hf, sfd]
        for fd in leak_fds:
            os.set_inheritable(fd, True)
        pass_fds = tuple(leak_fds)
    wall = int(dict(zip(opts[::2], opts[1::2])).get("--wall-ms", "20000"))
    guard = wall / 1000.0 + 20.0
    t0 = time.monotonic()
    preexec = None
    if stdin_mode == "pty":
        # The pty becomes proctor's controlling terminal: if the box inherited it, TIOCSTI
        # would inject input into it (and the echo would show up on the master side).
        def preexec():
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    try:
        p = subprocess.Popen(argv, stdin=stdin_arg, stdout=outs["stdout"], stderr=outs["stderr"],
                             env=env, pass_fds=pass_fds, start_new_session=True,
                             preexec_fn=preexec)
    except OSError as e:
        return False, f"cannot start proctor: {e}", [repro]
    fx.record_pid(p.pid)
    for name, (cap, w) in captures.items():
        os.close(w)
        cap.start()
    if stdin_mode in ("pipe", "file"):
        os.close(stdin_arg)
    elif stdin_mode == "pty":
        os.close(stdin_arg)
    for fd in leak_fds:
        os.close(fd)
    for f in files:
        f.close()
    hung = False
    probe_err = None
    if "cgprobe" in dv and os.geteuid() == 0:
        # Proves the leftover check below can see this box's cgroups at all (naming contract:
        # the directory names carry the proctor pid). Polls while proctor runs.
        seen = False
        while p.poll() is None and not seen:
            seen = bool(cgroups_named_after(p.pid, cgroup_dirs()))
            time.sleep(0.05)
        if not seen:
            probe_err = ("no cgroup named after proctor pid %d while the box ran: the leftover "
                         "check would be blind (battery assumption broken)" % p.pid)
    if "killproctor" in dv:
        # The runner itself dies (crash, OOM kill, Ctrl-C): the box must not outlive it.
        ms, _, signame = dv["killproctor"].partition(":")
        time.sleep(int(ms) / 1000)
        try:
            os.kill(p.pid, getattr(signal, "SIG" + (signame or "KILL")))
        except OSError:
            pass
        fx.killed_proctors.append(p.pid)
    try:
        rc = p.wait(timeout=guard)
    except subprocess.TimeoutExpired:
        hung = True
        p.kill()  # only the proctor process we started, by its pid
        rc = p.wait()
    elapsed = (time.monotonic() - t0) * 1000
    if stdin_keep is not None:
        os.close(stdin_keep)
    injected = b""
    tty_changed = False
    if pty_master is not None:
        try:
            tty_changed = termios.tcgetattr(pty_master) != tty_before
        except termios.error:
            pass
        os.set_blocking(pty_master, False)
        try:
            injected = os.read(pty_master, 4096)
        except OSError:
            pass
        os.close(pty_master)
    texts = {}
    for name, path in (("stdout", out_path), ("stderr", err_path)):
        if name in captures:
            cap = captures[name][0]
            cap.join(timeout=10)
            texts[name] = bytes(cap.data).decode("utf-8", "replace")
            texts[name + "_size"] = cap.total
        else:
            texts[name], texts[name + "_size"] = read_capped(path)

    texts["proctor_pid"] = p.pid
    failures = []
    if racer is not None:
        try:
            racer.wait(timeout=15)
        except subprocess.TimeoutExpired:
            racer.kill()  # the racing proctor we started, by its pid
            racer.wait()
        racer_out, _ = read_capped(os.path.join(fx.out_root, case.name + ".racer.out"))
        if not re.search(r"swaps=[1-9]", racer_out):
            failures.append(f"battery bug: the racing box did not swap ({racer_out.strip()!r})")
        details.append(f"race: {race_runs} extra runs, {race_bound} bound the real directory")
        if race_hits:
            failures.append(f"race won in {len(race_hits)} of {race_runs + 1} runs: "
                            f"{race_hits[0]!r}")
    if probe_err:
        failures.append(probe_err)
    if hung:
        failures.append(f"proctor did not return within {guard:.0f} s (killed it)")
    res = None
    try:
        if "stderrresult" in dv:
            # The contract: the result object is the last line on stderr. Read it strictly, as a
            # consumer would: the whole last line must be one JSON object.
            last = texts["stderr"].rstrip("\n").rsplit("\n", 1)[-1]
            res = json.loads(last)
            if not isinstance(res, dict):
                raise ValueError("last stderr line is not an object")
        else:
            with open(result_path, encoding="utf-8") as f:
                res = json.load(f)
    except (OSError, ValueError) as e:
        if "ANY" not in case.accept:
            where = ("the last stderr line is not one result object" if "stderrresult" in dv
                     else "no valid --result file")
            failures.append(f"{where} ({e}); proctor exit {rc}; "
                            f"stderr: {texts['stderr'][-300:].strip()!r}")
    verdict = res.get("verdict") if isinstance(res, dict) else None
    viol = res.get("violation") if isinstance(res, dict) else None
    if isinstance(viol, dict):
        viol = viol.get("syscall")
    if res is not None and verdict not in case.accept and "ANY" not in case.accept:
        failures.append(f"verdict {verdict} not in {'|'.join(sorted(case.accept))}")

    for chk in case.checks:
        m = re.match(r"^([A-Z]{2,3}(?:\|[A-Z]{2,3})*):(.*)$", chk)
        if m:
            if verdict not in m.group(1).split("|"):
                continue
            chk = m.group(2)
        texts["tty_changed"] = tty_changed
        err = check_one(chk, res or {}, verdict, viol, texts, work, injected, fx)
        if err:
            failures.append(err)

    # Survivors: nothing of this case may still run once proctor has returned.
    markers = [c for c in cmd if c.startswith("/sec/") and c.endswith((".sh", ".py"))]
    pst = os.stat(proctor)
    uids = box_uids(p.pid) if "--slot" not in opts else ()
    surv = find_survivors(fx.inodes, markers, uids, (pst.st_dev, pst.st_ino))
    if surv:
        time.sleep(0.5)  # let the kernel finish reaping before calling anything a survivor
        surv = find_survivors(fx.inodes, markers, uids, (pst.st_dev, pst.st_ino))
    if surv:
        failures.append("survivors after the run: " + "; ".join(
            f"pid {s[0]} uid {s[1]} state {s[4]} {s[3][:60]!r}" for s in surv[:5]))
        kill_pids([s[0] for s in surv])
    # The host canary file (world-writable on purpose) must be untouched by every case.
    now = file_digest(fx.canary)
    if now != fx.canary_digest:
        failures.append(f"host canary file {fx.canary} was modified")
        fx.canary_digest = now  # report it once, here, not again for the group
    if stdin_file is not None:
        with open(stdin_file, encoding="ascii", errors="replace") as f:
            if f.read() != "test input owned by the runner\n":
                failures.append("the runner's stdin file was modified by the box")
    if "nospecial" in dv:
        # Files the box leaves behind must not carry setuid/setgid bits or be FIFOs/sockets/
        # devices the runner could trip over (isolate's chowntree).
        bad = []
        for dp, dns, fns in os.walk(work):
            for n in fns + dns:
                pth = os.path.join(dp, n)
                st = os.lstat(pth)

                if st.st_mode & (st_mod.S_ISUID | st_mod.S_ISGID) or not (
                        st_mod.S_ISREG(st.st_mode) or st_mod.S_ISDIR(st.st_mode)
                        or st_mod.S_ISLNK(st.st_mode)):
                    bad.append(f"{n} ({oct(st.st_mode)})")
        if bad:
            failures.append("special files left in the work dir: " + ", ".join(bad[:5]))
    # Heartbeat of a daemon must have stopped.
    if "heartbeat" in dv:
        hb = os.path.join(work, "heartbeat")
        s1 = os.path.getsize(hb) if os.path.exists(hb) else -1
        time.sleep(0.4)
        s2 = os.path.getsize(hb) if os.path.exists(hb) else -1
        if s1 != s2:
            failures.append(f"daemon heartbeat still growing after the run ({s1} -> {s2} bytes)")
        elif s1 < 0:
            failures.append("daemon never wrote a heartbeat (the case did not exercise anything)")
    # Cgroups created for this run must be gone.
    left = [d for d in cgroups_named_after(p.pid, cgroup_dirs())]
    for _ in range(10):  # a dying box may take a moment to leave its cgroups
        if not any(cgroup_has_tasks(d) for d in left):
            break
        time.sleep(0.1)
    if "killproctor" in dv:
        # A killed proctor cannot remove its cgroups; the next run sweeps the empty ones (checked
        # at the end of the group). Here only a cgroup still holding tasks is a failure.
        left = [d for d in left if cgroup_has_tasks(d)]
    if left:
        failures.append("cgroup directories left behind: " + ", ".join(left[:4]) + describe_tasks(left))

    summary = f"verdict={verdict}"
    if viol:
        summary += f" violation={viol}"
    if res is not None:
        summary += f" exit={res.get('exit_code')} signal={res.get('signal')} cpu={res.get('cpu_ms')}ms"
        summary += f" wall={res.get('wall_ms')}ms"
    summary += f" ({elapsed:.0f} ms)"
    if failures or verbose:
        details.append("repro: " + repro)
        if texts["stdout"]:
            details.append("stdout: " + texts["stdout"][:600].replace("\n", "\\n"))
        if texts["stderr"]:
            details.append("stderr: " + texts["stderr"][-400:].replace("\n", "\\n"))
        if res is not None and (failures or verbose):
            details.append("result: " + json.dumps(res, sort_keys=True)[:500])
    return (not failures), summary + ("" if not failures else " -- " + "; ".join(failures)), details


HOST_FS_ALLOWED = ("/usr", "/etc/", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin",
                   "/opt/")
VIRTUAL_FS = ("tmpfs", "proc", "devtmpfs", "sysfs", "mqueue", "cgroup", "cgroup2", "devpts",
              "ramfs")


def check_mountinfo(text, fx):
    """Every mount of a host file system seen in the box must be a system directory or one of
    the battery's own binds: no other host path may show up in the box's mountinfo."""
    bad, seen = [], 0
    in_block = False
    for line in text.splitlines():
        if line == "mountinfo:":
            in_block = True
            continue
        if not in_block:
            continue
        if not line.strip():
            break
        left, _, right = line.partition(" - ")
        f = left.split()
        fstype = right.split()[0] if right.split() else "?"
        if len(f) < 5:
            continue
        seen += 1
        root = f[3]
        if fstype in VIRTUAL_FS or root == "/":
            continue
        if root.startswith(fx.root + "/") or any(root == a.rstrip("/") or root.startswith(a)
                                                 for a in HOST_FS_ALLOWED):
            continue
        bad.append(f"{root} at {f[4]}")
    if not seen:
        return "no mountinfo lines in the output"
    return ("host paths beyond the binds in mountinfo: " + ", ".join(bad[:5])) if bad else None


def check_oom_victim(proctor_pid):
    """The kernel log says which task the OOM killer chose in this run's memory cgroup: it must
    be the program, never the box's own init (shown as "proctor"), else the verdict becomes a
    race between MLE and IE."""
    try:
        log_text = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=10,
                                  check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None  # no kernel log here: nothing to check
    tag = f"/proctor-{proctor_pid}-"
    victims, armed = [], False
    for line in log_text.splitlines():
        if "oom-kill:" in line:
            armed = tag in line
        m = re.search(r"Killed process (\d+) \(([^)]*)\)", line)
        if m and armed:
            victims.append(m.group(2))
            armed = False
    if not victims:
        return None
    if "proctor" in victims:
        return f"the OOM killer chose the box init (victims: {victims})"
    return None


def check_one(chk, res, verdict, viol, texts, work, injected, fx):
    """One extra check; returns an error string or None."""
    m = re.match(r"^(out|err)(!?~)(.*)$", chk, re.S)
    if m:
        text = texts["stdout" if m.group(1) == "out" else "stderr"]
        hit = re.search(m.group(3), text, re.M) is not None
        if m.group(2) == "~" and not hit:
            return f"{m.group(1)} does not match /{m.group(3)}/"
        if m.group(2) == "!~" and hit:
            return f"{m.group(1)} matches forbidden /{m.group(3)}/"
        return None
    m = re.match(r"^viol~(.*)$", chk)
    if m:
        if not viol or not re.search(m.group(1), str(viol)):
            return f"violation {viol!r} does not match /{m.group(1)}/"
        return None
    m = re.match(r"^(exit|signal|cpu_ms|wall_ms|max_rss_kb)(=|<|>=)(\d+)$", chk)
    if m:
        v = res.get({"exit": "exit_code"}.get(m.group(1), m.group(1)))
        n = int(m.group(3))
        ok = isinstance(v, int) and {"=": v == n, "<": v < n, ">=": v >= n}[m.group(2)]
        return None if ok else f"{m.group(1)}={v!r}, wanted {m.group(2)}{n}"
    if chk == "iso":
        iso = res.get("isolation") or {}
        missing = [k for k in ISO_KEYS if iso.get(k) is not True]
        if iso.get("cgroup") not in ("v1", "v2") and os.geteuid() == 0:
            missing.append("cgroup=" + str(iso.get("cgroup")))
        return ("isolation not in force: " + ", ".join(missing)) if missing else None
    m = re.match(r"^outsize(<|>=)(\d+)$", chk)
    if m:
        v, n = texts["stdout_size"], int(m.group(2))
        ok = v < n if m.group(1) == "<" else v >= n
        return None if ok else f"stdout size {v}, wanted {m.group(1)}{n}"
    m = re.match(r"^wsize:([^<]+)<=(\d+)$", chk)
    if m:
        path = os.path.join(work, m.group(1))
        size = os.path.getsize(path) if os.path.exists(path) else 0
        lim = int(m.group(2)) * 1024
        return None if size <= lim else f"{m.group(1)} in the work dir is {size} bytes (> {lim})"
    m = re.match(r"^nofile~(.*)$", chk)
    if m:
        bad = []
        for dp, dns, fns in os.walk(work):
            bad += [os.path.join(dp, n) for n in fns + dns if re.search(m.group(1), n)]
        return ("unexpected files in the work dir: " + ", ".join(bad[:3])) if bad else None
    if chk == "mountinfo":
        return check_mountinfo(texts["stdout"], fx)
    if chk == "oomvictim":
        return check_oom_victim(texts["proctor_pid"])
    if chk == "ttyintact":
        return "the box changed the runner's terminal settings" if texts["tty_changed"] else None
    if chk == "noinject":
        return (f"TIOCSTI injected {injected!r} into the runner's terminal") if injected else None
    if chk == "canary":
        return None  # checked after every case anyway (see run_case)
    if chk == "sane":
        return None
    return f"unknown check {chk!r} (battery bug)"


# ---------------------------------------------------------------------------- main

def survivor_selftest(fx):
    """The survivor check must be able to see a process: start a harmless copy of sleep(1) from
    the private bin dir on the host, look for it, kill it."""
    exe = os.path.join(fx.bin, "selftest_sleep")
    shutil.copy2("/bin/sleep", exe)
    inodes = set(fx.inodes)
    st = os.stat(exe)
    inodes.add((st.st_dev, st.st_ino))
    p = subprocess.Popen([exe, "30"])
    try:
        time.sleep(0.05)
        found = [s[0] for s in find_survivors(inodes, [])]
        if p.pid not in found:
            return f"survivor detection did not see pid {p.pid} running {exe}"
        return None
    finally:
        p.kill()
        p.wait()
        os.unlink(exe)


def state_dir(bin_dir):
    """Where each group of this build records the inodes of its private bin copy, so that the
    final check can recognise this build's box processes (and no one else's)."""
    return os.path.join(os.path.dirname(bin_dir), "state")


def leftovers(bin_dir):
    """Final check after all groups of this build: no process runs one of the executables this
    build's groups copied (recorded by inode: a running process keeps its inode alive, so the
    number cannot have been reused). Reports only: it never signals anything, because other
    builds may run boxes at the same time."""
    recorded, pids = set(), set()
    sd = state_dir(bin_dir)
    try:
        names = os.listdir(sd)
    except OSError:
        names = []
    for n in names:
        try:
            with open(os.path.join(sd, n), encoding="ascii") as f:
                for line in f:
                    a, b = line.split()
                    if a == "pid":
                        pids.add(int(b))
                    else:
                        recorded.add((int(a), int(b)))
        except (OSError, ValueError):
            continue
    bad = []
    for pid, uid, exe, cmd, state in proc_processes():
        try:
            st = os.stat(f"/proc/{pid}/exe")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in recorded:
            bad.append(f"pid {pid} uid {uid} state {state} exe {exe} cmd {cmd[:80]!r}")
    for line in bad:
        log("FAIL leftover process of this battery: " + line)
    # Cgroups of every proctor run of this build must be gone (those of runs killed on purpose
    # are swept by the next run's start-up, which the group checked already).
    dirs = cgroup_dirs()
    for pid in sorted(pids):
        for d in cgroups_named_after(pid, dirs):
            bad.append(d)
            log(f"FAIL leftover cgroup of proctor pid {pid}: {d}{describe_tasks([d])}")
    log(f"checked {len(recorded)} executables and {len(pids)} proctor runs of this battery")
    for n in names:
        try:
            os.unlink(os.path.join(sd, n))
        except OSError:
            pass
    others = [(pid, uid, state, cmd) for pid, uid, exe, cmd, state in proc_processes()
              if uid >= BOX_UID_MIN]
    for pid, uid, state, cmd in others[:10]:
        log(f"note: box-uid process (other builds or suites may run boxes now): pid {pid} "
            f"uid {uid} state {state} {cmd[:60]!r}")
    log(f"{0 if bad else 1} passed, {1 if bad else 0} failed")
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases")
    ap.add_argument("--bin", required=True)
    ap.add_argument("--group", default="all")
    ap.add_argument("--only", default=None, help="regex on case names")
    ap.add_argument("--leftovers", action="store_true")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    bin_dir = os.path.realpath(a.bin)
    if a.leftovers:
        return leftovers(bin_dir)
    cases, known, cover = load_cases(a.cases)
    sel = [c for c in cases if (a.group == "all" or c.group == a.group)
           and (a.only is None or re.search(a.only, c.name))]
    if a.list:
        for c in sel:
            log(f"{c.group}\t{c.name}")
        for row, names in cover.items():
            log(f"catalogue {row}: {' '.join(names)}")
        return 0
    proctor = os.environ.get("PROCTOR")
    if not proctor or not os.access(proctor, os.X_OK):
        log("SKIP: PROCTOR is not set to the built proctor binary")
        log(f"0 passed, 0 failed, {len(sel)} skipped")
        return 77
    if not userns_available():
        log("SKIP: user namespaces are unavailable on this host")
        log(f"0 passed, 0 failed, {len(sel)} skipped")
        return 77
    missing = [c.name for c in sel for w in c.command[:2] if w.startswith("/sec/")
               and w != "/sec/whoami_suid" and not os.path.exists(os.path.join(bin_dir, w[5:]))]
    if missing:
        log(f"battery bug: programs missing from {bin_dir} for {missing}")
        return 1
    fx = Fixtures(a.group, bin_dir)
    try:
        os.makedirs(state_dir(bin_dir), exist_ok=True)
        fx.state_file = os.path.join(state_dir(bin_dir), f"{a.group}-{os.getpid()}")
        with open(fx.state_file, "w", encoding="ascii") as f:
            for dev, ino in sorted(fx.inodes):
                f.write(f"{dev} {ino}\n")
    except OSError as e:
        log(f"note: cannot record inodes for the final leftover check: {e}")
    selftest = survivor_selftest(fx)
    if selftest:
        log("FAIL battery self-test: " + selftest)
        fx.close()
        log(f"0 passed, 1 failed")
        return 1
    passed = failed = skipped = 0
    known_fail, known_pass = [], []
    t0 = time.monotonic()
    try:
        for c in sel:
            if os.geteuid() != 0 and c.group in ("limits", "resources"):
                # Unprivileged, proctor falls back to rlimits without cgroups: tree CPU, memory
                # and pids limits (what these groups judge) do not exist in that mode.
                log(f"SKIP {c.name}: needs the privileged sandbox (cgroup limits)")
                skipped += 1
                continue
            if "/sec/whoami_suid" in c.command and not fx.setuid:
                log(f"SKIP {c.name}: not root, cannot make a setuid-root binary")
                skipped += 1
                continue
            ok, summary, details = run_case(c, fx, proctor, a.verbose)
            if c.name in known:
                (known_pass if ok else known_fail).append(c.name)
                tag = "XPASS" if ok else "KNOWN-FAIL"
            else:
                tag = "PASS" if ok else "FAIL"
                if ok:
                    passed += 1
                else:
                    failed += 1
            log(f"{tag} {c.group}/{c.name}: {summary}")
            for d in details:
                log("    " + d)
        for problem in fx.host_checks():
            log("FAIL host: " + problem)
            failed += 1
    finally:
        fx.close()
    if known:
        log("known-failing list (from cases.tsv, not counted as passed):")
        for n in sorted(set(known) & {c.name for c in sel}):
            state = "still failing" if n in known_fail else "now passes: remove it from the list"
            log(f"    {n}: {known[n]} [{state}]")
    log(f"battery group {a.group}: {len(sel)} cases in {time.monotonic() - t0:.1f} s")
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    if known_fail or known_pass:
        line += f", {len(known_fail) + len(known_pass)} known-failing"
    log(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
