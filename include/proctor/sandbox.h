#ifndef PROCTOR_SANDBOX_H
#define PROCTOR_SANDBOX_H
/* Run one program in a fresh, locked-down box: user, PID, mount, network, IPC, UTS and cgroup
 * namespaces, a pivot_root'ed root of read-only system binds, no_new_privs, no capabilities, a
 * default-deny seccomp allowlist per profile, cgroup (v2, else v1) and rlimit limits.
 *
 * The sandbox module knows nothing of JSON, git, libuv or challenges: callers render sbx_result
 * themselves (runner/sbxjson.c). Every function may be called from any thread unless noted;
 * sbx_global_init() must have run once first (main does it). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proctor/error.h"

typedef enum sbx_verdict {
    SBX_OK = 0, /* ran and exited 0 */
    SBX_RE,     /* nonzero exit or killed by a signal */
    SBX_TLE,    /* CPU-time limit */
    SBX_WLE,    /* wall-clock limit */
    SBX_MLE,    /* memory limit (cgroup OOM kill or allocation refused) */
    SBX_OLE,    /* file size / output limit */
    SBX_SV,     /* forbidden system call; sbx_result.violation names it */
    SBX_IE      /* the sandbox itself failed; sbx_result.message says why */
} sbx_verdict;

typedef enum sbx_net {
    SBX_NET_NONE = 0,    /* a new network namespace with no interface up */
    SBX_NET_LOOPBACK = 1 /* a new network namespace with lo up (127.0.0.1, ::1) */
} sbx_net;

typedef struct sbx_limits {
    uint64_t cpu_ms;   /* CPU time of the whole tree (cgroup accounting); 0 = none */
    uint64_t wall_ms;  /* wall clock from exec; 0 = none */
    uint64_t mem_mb;   /* resident memory of the whole tree (cgroup), not address space */
    uint64_t procs;    /* processes + threads (pids cgroup, else RLIMIT_NPROC per box uid) */
    uint64_t fsize_kb; /* RLIMIT_FSIZE: largest file written, stdout files included */
    uint64_t nofile;   /* RLIMIT_NOFILE */
    uint64_t tmp_mb;   /* size of the private tmpfs /tmp (also caps its inodes) */
    uint64_t stack_mb; /* RLIMIT_STACK; 0 = 8 MiB */
} sbx_limits;

/* Defaults used where a field is 0 and by `proctor sandbox` without options. */
#define SBX_DEFAULT_CPU_MS   10000
#define SBX_DEFAULT_WALL_MS  20000
#define SBX_DEFAULT_MEM_MB   256
#define SBX_DEFAULT_PROCS    64
#define SBX_DEFAULT_FSIZE_KB 65536
#define SBX_DEFAULT_NOFILE   256
#define SBX_DEFAULT_TMP_MB   64

typedef struct sbx_bind {
    const char *src; /* host path (absolute) */
    const char *dst; /* path inside the box; NULL = same as src */
    bool writable;   /* false: read-only bind (MS_RDONLY|MS_NOSUID|MS_NODEV) */
} sbx_bind;

typedef struct sbx_spec {
    const char *const *argv; /* argv[0]: absolute path inside the box, or a name searched in
                                the box's PATH (/usr/local/bin:/usr/bin:/bin) */
    const char *const *envp; /* NULL: PATH, HOME=/tmp, LANG=C.UTF-8 only (host env scrubbed) */
    const sbx_bind *binds;   /* extra binds on top of the profile's system binds */
    size_t nbinds;
    const char *chdir;   /* working directory inside the box; NULL = "/" */
    sbx_net net;         /* always a new netns */
    const char *profile; /* seccomp profile: "default" (C, static), "python", "node", "go",
                            "build" (compilers, make); NULL = "default" */
    sbx_limits limits;   /* 0 fields take the defaults above */
    int stdin_fd;        /* -1: /dev/null. Duplicated into the box, never closed by sbx_ */
    int stdout_fd;       /* -1: /dev/null. A regular file is subject to fsize_kb (OLE) */
    int stderr_fd;       /* -1: /dev/null */
    int slot;            /* worker slot >= 0, picks unique box uids; -1 = derived from pid */
    int cpu;             /* pin the box to this CPU (cpuset/affinity); -1 = no pinning */
    int netns_fd;        /* >= 0: join this network namespace instead of making one (stdio
                            runs reuse one per worker slot); -1 = new */
} sbx_spec;

/** Fills spec with the defaults (all fds -1, slot -1, cpu -1, profile "default"). */
void sbx_spec_init(sbx_spec *spec);

typedef struct sbx_isolation {
    bool userns, pidns, netns, mntns, ipcns, utsns, cgroupns;
    bool seccomp;
    bool no_new_privs;
    bool caps_dropped;
    const char *cgroup; /* static string: "v2", "v1" or "none" */
} sbx_isolation;

typedef struct sbx_result {
    sbx_verdict verdict;
    int exit_code;       /* valid when signal == 0 */
    int signal;          /* 0 when the program exited normally */
    uint64_t cpu_ms;     /* user + system of the whole tree */
    uint64_t wall_ms;    /* from exec to the end of the last process */
    uint64_t max_rss_kb; /* peak resident memory of the tree (cgroup), else of the program */
    char violation[64];  /* SV: name of the forbidden syscall; else "" */
    char message[256];   /* IE and limit details, one line; else "" */
    sbx_isolation isolation;
} sbx_result;

/** Stable short name, "OK" ... "IE". */
const char *sbx_verdict_name(sbx_verdict v);

/** Process-wide set-up: finds proctor's own cgroups (read from /proc/self/cgroup), compiles the
 * seccomp profiles once. Call once from main before any thread starts. Returns 0 or < 0; a host
 * without cgroups is not an error (isolation.cgroup reports "none"). */
int sbx_global_init(pr_error *err);
/** Removes proctor's cgroups and frees compiled profiles. Main thread, at exit. */
void sbx_global_cleanup(void);

/** Runs spec to completion. Returns 0 whenever the program ran, whatever its verdict (the
 * verdict is data); returns < 0 with err set only when the sandbox could not be built, and then
 * out->verdict is SBX_IE with out->message set too. Blocks the calling thread. */
int sbx_run(sbx_result *out, const sbx_spec *spec, pr_error *err);

/* Long-running boxes (HTTP challenges): start, talk to it through its netns, stop. */
typedef struct sbx_proc sbx_proc;

/** Starts spec and returns at once; the caller owns *out (sbx_proc_free). Memory and process
 * limits (cgroup) and rlimits apply from the start. The CPU and wall limits are enforced by the
 * monitor when one is installed (sbx_set_monitor: from the start, whoever waits), else by
 * whichever thread sits in sbx_proc_wait, with RLIMIT_CPU as the backstop. */
int sbx_spawn(sbx_proc **out, const sbx_spec *spec, pr_error *err);
/** An fd (O_CLOEXEC, owned by p) of the box's network namespace, for setns(2) from a thread
 * that then creates sockets inside the box. -1 if unavailable. */
int sbx_proc_netns_fd(const sbx_proc *p);
/** CPU time used so far by the whole box (cgroup accounting), in microseconds. */
uint64_t sbx_proc_cpu_us(const sbx_proc *p);
/** Current resident memory of the box in KiB (cgroup). */
uint64_t sbx_proc_rss_kb(const sbx_proc *p);
/** Kills the whole box (every process in it). Idempotent; a no-op once the box is seen to have
 * ended (sbx_proc_ended), so its verdict stays the program's own. */
void sbx_proc_kill(sbx_proc *p);
/** Waits for the box to end while enforcing its limits (wall, CPU, memory), then fills out.
 * Returns 0 or < 0 as sbx_run does. Call once. Blocks. */
int sbx_proc_wait(sbx_proc *p, sbx_result *out, pr_error *err);
/** Kills if still running, removes its cgroups, frees. NULL-safe. */
void sbx_proc_free(sbx_proc *p);
/** True once the box's init has exited (its program ended or was killed for a limit). Any
 * thread; never blocks. NULL-safe (true). */
bool sbx_proc_ended(const sbx_proc *p);

/* Event-loop monitoring. By default the thread in sbx_proc_wait watches its box (ppoll on the
 * box's descriptors, limits as poll timeouts). A process with an event loop may install a
 * monitor instead: sbx_spawn then hands every new box to it, and the loop watches all boxes
 * (readiness of one descriptor per box, limits as timers) while sbx_proc_wait only waits for the
 * loop to let go. Both paths run the same state machine. */
typedef struct sbx_monitor {
    /** Called by sbx_spawn, in the spawning thread, right after the box started. Must not block.
     * Return false to decline (the waiting thread then watches the box itself). On true, the
     * monitor's own thread calls sbx_proc_step(p) whenever sbx_proc_watch_fd(p) is readable or
     * the time it asked for has passed, and once it returns 1 stops using p and calls
     * sbx_proc_watch_end(p). */
    bool (*watch)(void *ctx, sbx_proc *p);
    void *ctx;
} sbx_monitor;

/** Installs m (caller-owned, must outlive every box it took), or NULL to go back to waiting
 * threads. Boxes already handed over stay with the monitor. */
void sbx_set_monitor(const sbx_monitor *m);
/** For a monitor: an fd (an epoll set of the box's pidfd and pipes) that is readable whenever
 * sbx_proc_step has work. */
int sbx_proc_watch_fd(const sbx_proc *p);
/** For a monitor: handles what is ready without blocking and enforces the wall, CPU and set-up
 * limits (killing the box on one). Returns 1 when the box has ended, else 0 with *wait_ms set to
 * when the next limit check is due. */
int sbx_proc_step(sbx_proc *p, uint64_t *wait_ms);
/** For a monitor: the loop is done with p (after sbx_proc_step returned 1); wakes the thread in
 * sbx_proc_wait or sbx_proc_free. */
void sbx_proc_watch_end(sbx_proc *p);

/** The unprivileged host uid (and gid) the program of a box in this worker slot runs as: unique
 * per slot, never root. A writable bind (sbx_bind.writable) must be writable by this id, e.g.
 * chown the work directory to it. Slot -1 derives the slot from the pid, as sbx_spawn does. */
unsigned sbx_slot_host_uid(int slot);

/** Creates a network namespace with lo up, owned by a fresh user namespace, for reuse by many
 * stdio runs (sbx_spec.netns_fd). Returns the fd (O_CLOEXEC) or < 0. */
int sbx_netns_new(pr_error *err);

#endif
