/* The sandbox: spawn a program in a fresh box, watch it, enforce its limits, report.
 *
 * Isolation model
 * ---------------
 * The monitor (the calling thread of proctor) clone()s the box init with new user, PID, mount,
 * network (or joins a prepared loopback netns), IPC and UTS namespaces; the init unshares a
 * cgroup namespace once it sits in its box cgroup. The user namespace maps box uid/gid 0 (the
 * init) and 1000 (the program) to unprivileged host ids unique per worker slot
 * (100000 + 2*slot and +1); host root is never mapped. The init drops the host's supplementary
 * groups, becomes box root, marks itself non-dumpable and builds a new root on tmpfs:
 * read-only, nosuid, nodev binds of /usr, /lib*, /bin, /sbin (symlinks where the host has
 * symlinks), a generated /etc (passwd, group, hosts, nsswitch.conf) plus read-only
 * ld.so.cache and alternatives/, a minimal /dev (null zero full random urandom, fd links, a
 * small /dev/shm tmpfs), a fresh /proc with hidepid=2 and /proc/sys, /proc/bus, /proc/fs,
 * /proc/irq read-only and kcore, keys, kmsg, sysrq-trigger, timer_list, sched_debug masked, a
 * size- and inode-limited /tmp, and the caller's --ro/--rw binds; then pivot_root, the old root
 * is detached and / is remounted read-only. Host /home, /root, /work, /sys, /run and the rest of
 * /etc are simply absent. lo is brought up for --net loopback; --net none has no usable
 * interface.
 *
 * The init forks the program, which calls setsid (no controlling tty), sets rlimits (CORE 0,
 * FSIZE, NOFILE, STACK, CPU as a backstop, MSGQUEUE 0, MEMLOCK 0, NPROC only without a pids
 * cgroup), empties the capability bounding and ambient sets, switches to uid/gid 1000 (all
 * capabilities gone), sets no_new_privs, marks every fd but stdio close-on-exec, installs the
 * profile's seccomp filter (default-deny allowlist, see seccomp.c) and execs. Every forbidden
 * call is a seccomp user notification that the monitor receives: it names the call and kills
 * the box (verdict SV).
 *
 * The init reaps orphans and reports the program's wait status; when the program ends, or when
 * the monitor kills the init for a limit, the kernel kills every process left in the PID
 * namespace, daemons included. The box cgroups (v2, else v1 memory + pids + cpuacct, nested
 * under proctor's own cgroup) bound resident memory (no swap; OOM kill = MLE), the number of
 * tasks (fork bombs get EAGAIN) and account CPU time of the whole tree. The monitor schedules
 * its CPU checks at (limit - used) / usable CPUs, so the CPU limit is enforced within a few
 * milliseconds, and the wall limit is a timer. Cgroups are emptied (SIGKILL, checked) and
 * removed after every box, on failure paths too.
 *
 * Limits of the model: the box shares the host kernel (a kernel bug reachable through the
 * allowed syscalls is an escape); /usr and the other system binds are readable by the program;
 * timing side channels (CPU caches, shared cores) are not closed unless boxes are pinned to
 * separate CPUs (sbx_spec.cpu); without cgroups memory is not limited (only reported) and the
 * process limit falls back to RLIMIT_NPROC. Run without root, proctor can only map its own
 * ids: the box then has one identity (box root = the caller, all capabilities gone, securebits
 * NOROOT locked so no exec regains any) and no cgroups. */
#include "proctor/sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "proctor/buf.h"
#include "proctor/log.h"

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define NEWROOT "/newroot"
#define OLDROOT "/oldroot"

static atomic_int g_inited;

/* ---------------------------------------------------------------- plan building */

typedef struct plan_builder {
    sbx__op *ops;
    size_t nops, cap;
    char **strs; /* every string the plan points to (owned) */
    size_t nstrs, strcap;
    int rc;
    pr_error *err;
} plan_builder;

static char *pb_str(plan_builder *b, const char *fmt, ...) PR_PRINTF(2, 3);

static char *pb_keep(plan_builder *b, char *s)
{
    if (!s) {
        if (b->rc == 0)
            b->rc = pr_error_set(b->err, PR_ENOMEM, "out of memory");
        return NULL;
    }
    if (b->nstrs == b->strcap) {
        size_t nc = b->strcap ? b->strcap * 2 : 64;
        char **n = pr_realloc(b->strs, nc * sizeof(*n));
        if (!n) {
            pr_free(s);
            if (b->rc == 0)
                b->rc = pr_error_set(b->err, PR_ENOMEM, "out of memory");
            return NULL;
        }
        b->strs = n;
        b->strcap = nc;
    }
    b->strs[b->nstrs++] = s;
    return s;
}

static char *pb_str(plan_builder *b, const char *fmt, ...)
{
    char tmp[PATH_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        if (b->rc == 0)
            b->rc = pr_error_set(b->err, PR_EINVAL, "path too long");
        return NULL;
    }
    return pb_keep(b, pr_strdup(tmp));
}

static void pb_op(plan_builder *b, sbx__op_kind kind, unsigned flags, const char *a, const char *bb,
                  size_t len, unsigned mode)
{
    if (b->rc)
        return;
    if (!a) {
        b->rc = pr_error_set(b->err, PR_ENOMEM, "out of memory");
        return;
    }
    if (b->nops == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 64;
        sbx__op *n = pr_realloc(b->ops, nc * sizeof(*n));
        if (!n) {
            b->rc = pr_error_set(b->err, PR_ENOMEM, "out of memory");
            return;
        }
        b->ops = n;
        b->cap = nc;
    }
    b->ops[b->nops++] = (sbx__op){ kind, flags, a, bb, len, mode };
}

static void pb_free(plan_builder *b)
{
    for (size_t i = 0; i < b->nstrs; i++)
        pr_free(b->strs[i]);
    pr_free(b->strs);
    pr_free(b->ops);
    memset(b, 0, sizeof(*b));
}

/* Mirrors a host path into the box: a symlink stays a symlink, a directory or file is bound. */
static void pb_system(plan_builder *b, const char *path, unsigned flags)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    char *dst = pb_str(b, NEWROOT "%s", path);
    if (S_ISLNK(st.st_mode)) {
        char target[PATH_MAX];
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        if (n <= 0)
            return;
        target[n] = '\0';
        pb_op(b, SBX__OP_SYMLINK, 0, dst, pb_str(b, "%s", target), 0, 0);
        return;
    }
    if (S_ISDIR(st.st_mode))
        pb_op(b, SBX__OP_MKDIR, 0, dst, NULL, 0, 0755);
    else
        pb_op(b, SBX__OP_FILE, 0, dst, NULL, 0, 0644);
    pb_op(b, SBX__OP_BIND, SBX__F_RO | flags, pb_str(b, OLDROOT "%s", path), dst, 0, 0);
}

static void pb_file(plan_builder *b, const char *path, const char *text)
{
    pb_op(b, SBX__OP_FILE, 0, pb_str(b, NEWROOT "%s", path), text, strlen(text), 0644);
}

/* Creates every missing parent of dst (a path inside the box) as a directory. */
static void pb_parents(plan_builder *b, const char *dst)
{
    char tmp[PATH_MAX];
    size_t n = strlen(dst);
    if (n >= sizeof(tmp))
        return;
    memcpy(tmp, dst, n + 1);
    for (size_t i = 1; i < n; i++) {
        if (tmp[i] != '/')
            continue;
        tmp[i] = '\0';
        pb_op(b, SBX__OP_MKDIR, 0, pb_str(b, NEWROOT "%s", tmp), NULL, 0, 0755);
        tmp[i] = '/';
    }
}

static bool dst_ok(const char *dst)
{
    if (!dst || dst[0] != '/' || strcmp(dst, "/") == 0)
        return false;
    if (strstr(dst, "/../") || strstr(dst, "/./") || strstr(dst, "//"))
        return false;
    size_t n = strlen(dst);
    if ((n >= 3 && strcmp(dst + n - 3, "/..") == 0) || (n >= 2 && strcmp(dst + n - 2, "/.") == 0))
        return false;
    static const char *const reserved[] = { "/proc", "/dev", "/oldroot", "/newroot" };
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        size_t l = strlen(reserved[i]);
        if (strncmp(dst, reserved[i], l) == 0 && (dst[l] == '\0' || dst[l] == '/'))
            return false;
    }
    return true;
}

/* A bind source as an absolute path without any symbolic link in it: a link planted by a
 * submission in its work directory (work/link -> /root) must never make us bind host files into
 * a later box. Relative paths are taken from the working directory (getcwd is canonical). The box
 * init opens the path again with the same rule, so swapping a component for a link in between
 * does not help either. */
static int bind_source(char *out, size_t outsz, const char *src, pr_error *err)
{
    if (!src || !*src)
        return pr_error_set(err, PR_EINVAL, "empty bind source");
    int n;
    if (src[0] == '/') {
        n = snprintf(out, outsz, "%s", src);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof(cwd)))
            return pr_error_sys(err, "getcwd");
        n = snprintf(out, outsz, "%s/%s", cwd, src);
    }
    if (n < 0 || (size_t)n >= outsz)
        return pr_error_set(err, PR_EINVAL, "bind source path too long");
    struct open_how how;
    memset(&how, 0, sizeof(how));
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    long fd = syscall(SYS_openat2, AT_FDCWD, out, &how, sizeof(how));
    if (fd < 0) {
        if (errno == ELOOP)
            return pr_error_set(err, PR_EUNSAFE,
                                "bind source %s: a component is a symbolic link (refused)", out);
        return pr_error_sys(err, "bind source %s", out);
    }
    (void)close((int)fd);
    return 0;
}

static const char passwd_text[] = "root:x:0:0:root:/:/bin/sh\n"
                                  "box:x:1000:1000:box:/tmp:/bin/sh\n"
                                  "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
static const char group_text[] = "root:x:0:\nbox:x:1000:\nnogroup:x:65534:\n";
static const char hosts_text[] = "127.0.0.1 localhost box\n::1 localhost ip6-localhost\n";
static const char nss_text[] = "passwd: files\ngroup: files\nshadow: files\nhosts: files\n"
                               "networks: files\nprotocols: files\nservices: files\n";

static int build_ops(plan_builder *b, const sbx_spec *spec, const sbx_limits *lim, char **bind_srcs)
{
    pb_op(b, SBX__OP_MKDIR, 0, pb_str(b, NEWROOT), NULL, 0, 0755);
    pb_op(b, SBX__OP_TMPFS, 0, pb_str(b, NEWROOT), "size=1m,nr_inodes=4096,mode=0755", 0, 0);

    /* System directories, as the host lays them out (merged /usr: symlinks). */
    static const char *const sys[] = { "/usr",   "/bin",   "/sbin",  "/lib",
                                       "/lib64", "/lib32", "/libx32" };
    for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++)
        pb_system(b, sys[i], 0);

    /* A minimal /etc: no host passwd/shadow, just what the dynamic loader, alternatives
     * (cc, java...) and name lookups need. */
    pb_op(b, SBX__OP_MKDIR, 0, pb_str(b, NEWROOT "/etc"), NULL, 0, 0755);
    pb_file(b, "/etc/passwd", passwd_text);
    pb_file(b, "/etc/group", group_text);
    pb_file(b, "/etc/hosts", hosts_text);
    pb_file(b, "/etc/nsswitch.conf", nss_text);
    pb_file(b, "/etc/hostname", "box\n");
    pb_system(b, "/etc/ld.so.cache", 0);
    pb_system(b, "/etc/alternatives", 0);
    pb_system(b, "/etc/localtime", 0);
    pb_op(b, SBX__OP_MKDIR, 0, pb_str(b, NEWROOT "/etc/ssl"), NULL, 0, 0755);
    pb_system(b, "/etc/ssl/openssl.cnf", 0);

    /* /dev: a tiny tmpfs with bound device nodes (no mknod in a user namespace). */
    pb_op(b, SBX__OP_MKDIR, 0, pb_str(b, NEWROOT "/dev"), NULL, 0, 0755);
    pb_op(b, SBX__OP_TMPFS, SBX__F_NOEXEC, pb_str(b, NEWROOT "/dev"),
          "size=64k,nr_inodes=64,mode=0755", 0, 0);
    static const char *const devs[] = { "null", "zero", "full", "random", "urandom" };
    for (size_t i = 0; i < sizeof(devs) / sizeof(devs[0]); i++) {
        char *dst = pb_str(b, NEWROOT "/dev/%s", devs[i]);
        pb_op(b, SBX__OP_FILE, 0, dst, NULL, 0, 0666);
        pb_op(b, SBX__OP_BIND, SBX__F_DEV | SBX__F_NOREMOUNT, pb_str(b, OLDROOT "/dev/%s", devs[i]),
              dst, 0, 0);
    }
    static const char *const links[][2] = { { "fd", "/proc/self/fd" },
                                            { "stdin", "/proc/self/fd/0" },
                                            { "stdout", "/proc/self/fd/1" },
                                            { "stderr", "/proc/self/fd/2" } };
    for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
        pb_op(b, SBX__OP_SYMLINK, 0, pb_str(b, NEWROOT "/dev/%s", links[i][0]), links[i][1], 0, 0);
    uint64_t tmp_kb = lim->tmp_mb * 1024;
    uint64_t inodes = lim->tmp_mb * 64 < 1024 ? 1024 : lim->tmp_mb * 64;
    pb_op(b, SBX__OP_MKDIR, 0, pb_str(b, NEWROOT "/dev/shm"), NULL, 0, 0755);
    pb_op(b, SBX__OP_TMPFS, SBX__F_NOEXEC, pb_str(b, NEWROOT "/dev/shm"),
          pb_str(b, "size=%" PRIu64 "k,nr_inodes=%" PRIu64 ",mode=1777", tmp_kb, inodes), 0, 0);

    /* A fresh /proc of the box's PID namespace; kernel-wide knobs read-only or masked. */
    pb_op(b, SBX__OP_MKDIR, 0, pb_str(b, NEWROOT "/proc"), NULL, 0, 0755);
    pb_op(b, SBX__OP_PROC, 0, pb_str(b, NEWROOT "/proc"), NULL, 0, 0);
    /* /proc/sys read-only; the world-readable files that show host-wide state masked with
     * /dev/null (the others are root-only, and the box user is not host root). */
    char *psys = pb_str(b, NEWROOT "/proc/sys");
    pb_op(b, SBX__OP_BIND, SBX__F_RO | SBX__F_OPTIONAL | SBX__F_REC, psys, psys, 0, 0);
    static const char *const masked[] = { "kcore",      "keys",        "sysrq-trigger",
                                          "timer_list", "sched_debug", "latency_stats" };
    for (size_t i = 0; i < sizeof(masked) / sizeof(masked[0]); i++)
        pb_op(b, SBX__OP_BIND, SBX__F_OPTIONAL | SBX__F_NOREMOUNT, pb_str(b, NEWROOT "/dev/null"),
              pb_str(b, NEWROOT "/proc/%s", masked[i]), 0, 0);

    pb_op(b, SBX__OP_MKDIR, 0, pb_str(b, NEWROOT "/tmp"), NULL, 0, 0755);
    pb_op(b, SBX__OP_TMPFS, 0, pb_str(b, NEWROOT "/tmp"),
          pb_str(b, "size=%" PRIu64 "k,nr_inodes=%" PRIu64 ",mode=1777", tmp_kb, inodes), 0, 0);

    /* The caller's binds, sources resolved on the host (symlinks included) first. */
    for (size_t i = 0; i < spec->nbinds && b->rc == 0; i++) {
        const sbx_bind *bd = &spec->binds[i];
        char real[PATH_MAX];
        int rc = bind_source(real, sizeof(real), bd->src, b->err);
        if (rc < 0)
            return b->rc = rc;
        const char *dst = bd->dst ? bd->dst : real;
        if (!dst_ok(dst))
            return b->rc = pr_error_set(b->err, PR_EINVAL,
                                        "bind target '%s' must be an absolute, normalised path "
                                        "outside /proc and /dev",
                                        dst);
        struct stat st;
        if (stat(real, &st) != 0)
            return b->rc = pr_error_sys(b->err, "bind source %s", real);
        pb_parents(b, dst);
        char *d = pb_str(b, NEWROOT "%s", dst);
        if (S_ISDIR(st.st_mode))
            pb_op(b, SBX__OP_MKDIR, 0, d, NULL, 0, 0755);
        else
            pb_op(b, SBX__OP_FILE, 0, d, NULL, 0, 0644);
        bind_srcs[i] = pb_str(b, "%s", real);
        pb_op(b, SBX__OP_BIND, bd->writable ? 0u : SBX__F_RO,
              pb_str(b, OLDROOT "/proc/self/fd/%d", SBX__FD_COUNT_END + (int)i), d, 0, 0);
    }
    return b->rc;
}

/* ---------------------------------------------------------------- deferred mount teardown */

/* The last reference to a box's mount namespace tears down its ~25 mounts (tmpfs superblocks,
 * proc, binds) and waits for an RCU grace period: about 0.1 ms. Held by the init, that happens
 * in its exit, before the kernel empties the PID namespace, so the monitor waits for it before
 * it can confirm the box is gone. The monitor therefore holds the namespace (an nsfs fd, no
 * process in it once the init is reaped) and hands the fd to a closer thread after the box, so
 * the teardown runs beside the caller's next work. At sbx_global_cleanup the thread is drained
 * and joined; without the thread (it could not be started) the fd is closed in place. */
static pthread_mutex_t g_closer_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_closer_w = -1; /* write end: one int per fd to close */
static pthread_t g_closer;
static bool g_closer_up;

static void *closer_main(void *arg)
{
    int r = (int)(intptr_t)arg;
    for (;;) {
        int fd;
        ssize_t n = read(r, &fd, sizeof(fd));
        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t)sizeof(fd))
            break;
        (void)close(fd);
    }
    (void)close(r);
    return NULL;
}

static void release_mntns(int *fdp)
{
    int fd = *fdp;
    *fdp = -1;
    if (fd < 0)
        return;
    (void)pthread_mutex_lock(&g_closer_lock);
    if (!g_closer_up) {
        int pp[2];
        if (pipe2(pp, O_CLOEXEC) == 0) {
            /* The thread takes no signals: the caller's handlers keep running where it expects. */
            sigset_t all, old;
            (void)sigfillset(&all);
            (void)pthread_sigmask(SIG_SETMASK, &all, &old);
            int prc = pthread_create(&g_closer, NULL, closer_main, (void *)(intptr_t)pp[0]);
            (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
            if (prc == 0) {
                g_closer_w = pp[1];
                g_closer_up = true;
            } else {
                (void)close(pp[0]);
                (void)close(pp[1]);
            }
        }
    }
    bool handed = false;
    if (g_closer_up) {
        ssize_t n;
        do {
            n = write(g_closer_w, &fd, sizeof(fd));
        } while (n < 0 && errno == EINTR);
        handed = n == (ssize_t)sizeof(fd);
    }
    (void)pthread_mutex_unlock(&g_closer_lock);
    if (!handed)
        (void)close(fd);
}

/* Drains and joins the closer thread: every held mount namespace is gone when this returns. */
static void closer_stop(void)
{
    (void)pthread_mutex_lock(&g_closer_lock);
    bool up = g_closer_up;
    pthread_t t = g_closer;
    if (up) {
        (void)close(g_closer_w);
        g_closer_w = -1;
        g_closer_up = false;
    }
    (void)pthread_mutex_unlock(&g_closer_lock);
    if (up)
        (void)pthread_join(t, NULL);
}

/* ---------------------------------------------------------------- the process object */

struct sbx_proc {
    pthread_mutex_t lock; /* guards cg against sbx_proc_kill/cpu/rss from other threads */
    pid_t pid;
    int pidfd;
    int release_w; /* lifeline of the init */
    int status_r;
    int exec_r;
    int sock_r;
    int listener;
    int netns;
    int mntns; /* the box's mount namespace, held so that the init's exit does not tear it down */
    sbx__cg cg;
    sbx_limits lim;
    int ncpus;
    uint64_t t_start, t_exec, t_end; /* ns, CLOCK_MONOTONIC */
    uint64_t cpu_base_ns;
    bool exec_seen, init_done, waited;
    atomic_int kill_reason; /* 0 none, else the sbx_verdict that made us kill, or -1 caller */
    bool have_exit, have_fail;
    sbx__msg exit_msg, fail_msg;
    char violation[64];
    sbx_isolation iso;
    char **scrub; /* owned: host paths of writable binds, cleaned after the box */
    size_t nscrub;
    /* Monitor state (sbx_proc_wait's thread, or an event loop through sbx_monitor). */
    uint64_t next_cpu; /* next CPU-limit check, ns */
    bool cg_cpu;       /* the cgroup accounts CPU */
    atomic_bool ended; /* the init is gone (readable from any thread) */
    int epfd;          /* watched mode: an epoll set of the fds below */
    int ep_reg[5];     /* fd registered in epfd per watch role, -1 none */
    bool watched;      /* a monitor took over the watching */
    bool watch_done;   /* the monitor has let go (guarded by lock, signalled by done_cv) */
    pthread_cond_t done_cv;
};

/* The process-wide monitor (an event loop), or NULL: each waiting thread watches its box. */
static _Atomic(const sbx_monitor *) g_monitor;
static void hand_to_monitor(sbx_proc *p);

unsigned sbx_slot_host_uid(int slot)
{
    if (slot < 0 || slot > SBX__MAX_SLOT)
        slot = 1000 + (int)(getpid() % 30000);
    return (unsigned)(SBX__HOST_ID_BASE + 2 * slot + 1);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void fill_limits(sbx_limits *l, const sbx_limits *in)
{
    *l = *in;
    if (!l->cpu_ms)
        l->cpu_ms = SBX_DEFAULT_CPU_MS;
    if (!l->wall_ms)
        l->wall_ms = SBX_DEFAULT_WALL_MS;
    if (!l->mem_mb)
        l->mem_mb = SBX_DEFAULT_MEM_MB;
    if (!l->procs)
        l->procs = SBX_DEFAULT_PROCS;
    if (!l->fsize_kb)
        l->fsize_kb = SBX_DEFAULT_FSIZE_KB;
    if (!l->nofile)
        l->nofile = SBX_DEFAULT_NOFILE;
    if (!l->tmp_mb)
        l->tmp_mb = SBX_DEFAULT_TMP_MB;
    if (!l->stack_mb)
        l->stack_mb = 8;
}

static int write_proc(pid_t pid, const char *file, const char *text, pr_error *err)
{
    char path[64];
    (void)snprintf(path, sizeof(path), "/proc/%ld/%s", (long)pid, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return pr_error_sys(err, "open %s", path);
    size_t len = strlen(text);
    ssize_t w = write(fd, text, len);
    if (w != (ssize_t)len) {
        int rc = pr_error_sys(err, "write %s", path);
        (void)close(fd);
        return rc;
    }
    (void)close(fd);
    return 0;
}

static int dup_stdio(int fd, pr_error *err)
{
    int r = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : open("/dev/null", O_RDWR | O_CLOEXEC);
    if (r < 0)
        return pr_error_sys(err, "stdio fd %d", fd);
    return r;
}

static int usable_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) != 0)
        return 1;
    int n = CPU_COUNT(&set);
    return n > 0 ? n : 1;
}

/* SIGKILL to the box init ends its PID namespace: the kernel kills every process in it. The
 * cgroup pass catches anything that might sit outside the namespace (there should be none). */
/* Longest time building a box may take before the program starts (then IE). */
#define SBX_SETUP_NS (10ull * 1000000000ull)

static void kill_box(sbx_proc *p, int reason)
{
    int expected = 0;
    (void)atomic_compare_exchange_strong(&p->kill_reason, &expected, reason);
    if (p->pidfd >= 0)
        (void)syscall(SYS_pidfd_send_signal, p->pidfd, SIGKILL, NULL, 0);
    (void)pthread_mutex_lock(&p->lock);
    (void)sbx__cg_kill_all(&p->cg);
    (void)pthread_mutex_unlock(&p->lock);
}

int sbx_spawn(sbx_proc **out, const sbx_spec *spec, pr_error *err)
{
    plan_builder pb = { 0 };
    sbx_proc *p = NULL;
    int rc = 0;
    int pipes[3][2] = { { -1, -1 }, { -1, -1 }, { -1, -1 } };
    int sv[2] = { -1, -1 };
    int stdio[3] = { -1, -1, -1 };
    int saved_net = -1;
    char **exec_paths = NULL;
    char **bind_srcs = NULL;
    const char *const *env_src = NULL;

    *out = NULL;
    if (!spec || !spec->argv || !spec->argv[0] || !spec->argv[0][0])
        return pr_error_set(err, PR_EINVAL, "sandbox: no program to run");
    /* A caller that forgot sbx_global_init still gets its box cgroups. */
    rc = sbx_global_init(err);
    if (rc < 0)
        return rc;
    p = pr_calloc(1, sizeof(*p));
    if (!p)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    p->pidfd = p->release_w = p->status_r = p->exec_r = p->sock_r = p->listener = p->netns = -1;
    p->mntns = p->epfd = -1;
    for (size_t i = 0; i < sizeof(p->ep_reg) / sizeof(p->ep_reg[0]); i++)
        p->ep_reg[i] = -1;
    (void)pthread_mutex_init(&p->lock, NULL);
    (void)pthread_cond_init(&p->done_cv, NULL);
    fill_limits(&p->lim, &spec->limits);
    p->ncpus = spec->cpu >= 0 ? 1 : usable_cpus();

    const char *profile = spec->profile ? spec->profile : "default";
    const struct sock_fprog *filter = NULL;
    rc = sbx__seccomp_get(&filter, profile, err);
    if (rc < 0)
        goto cleanup;

    pb.err = err;
    if (spec->nbinds > 256) {
        rc = pr_error_set(err, PR_ELIMIT, "too many binds (%zu, max 256)", spec->nbinds);
        goto cleanup;
    }
    bind_srcs = pr_calloc(spec->nbinds + 1, sizeof(*bind_srcs));
    if (!bind_srcs) {
        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }
    rc = build_ops(&pb, spec, &p->lim, bind_srcs);
    if (rc < 0)
        goto cleanup;
    p->scrub = pr_calloc(spec->nbinds + 1, sizeof(*p->scrub));
    if (!p->scrub) {
        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < spec->nbinds; i++) {
        if (!spec->binds[i].writable)
            continue;
        p->scrub[p->nscrub] = pr_strdup(bind_srcs[i]);
        if (!p->scrub[p->nscrub]) {
            rc = pr_error_set(err, PR_ENOMEM, "out of memory");
            goto cleanup;
        }
        p->nscrub++;
    }

    /* argv[0]: absolute, relative to chdir, or searched in the box's PATH. */
    const char *prog = spec->argv[0];
    exec_paths = pr_calloc(4, sizeof(*exec_paths));
    if (!exec_paths) {
        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }
    if (strchr(prog, '/')) {
        exec_paths[0] = (char *)prog;
    } else {
        exec_paths[0] = pb_str(&pb, "/usr/local/bin/%s", prog);
        exec_paths[1] = pb_str(&pb, "/usr/bin/%s", prog);
        exec_paths[2] = pb_str(&pb, "/bin/%s", prog);
    }
    static const char *const default_env[] = { "PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp",
                                               "LANG=C.UTF-8", NULL };
    env_src = spec->envp ? spec->envp : default_env;
    if (pb.rc) {
        rc = pb.rc;
        goto cleanup;
    }

    sbx__plan plan;
    memset(&plan, 0, sizeof(plan));
    plan.ops = pb.ops;
    plan.nops = pb.nops;
    plan.newroot = NEWROOT;
    plan.chdir = spec->chdir ? spec->chdir : "/";
    plan.argv = (char *const *)spec->argv;
    plan.envp = (char *const *)env_src;
    plan.exec_paths = exec_paths;
    plan.bind_srcs = bind_srcs;
    plan.nbind_srcs = spec->nbinds;
    plan.filter = filter;
    plan.loopback = spec->net == SBX_NET_LOOPBACK;
    plan.own_netns = spec->netns_fd < 0;
    plan.rl_fsize = p->lim.fsize_kb * 1024;
    plan.rl_nofile = p->lim.nofile;
    plan.rl_stack = p->lim.stack_mb * 1024 * 1024;
    plan.rl_cpu_s = (p->lim.cpu_ms + 999) / 1000 + 1;
    plan.rl_nproc = sbx__cg_has_pids() ? 0 : p->lim.procs;
    plan.cpu = spec->cpu;
    plan.unprivileged = geteuid() != 0;
    plan.prog_uid = plan.unprivileged ? 0 : SBX__BOX_UID;

    for (int i = 0; i < 3; i++) {
        if (pipe2(pipes[i], O_CLOEXEC) != 0) {
            rc = pr_error_sys(err, "pipe2");
            goto cleanup;
        }
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        rc = pr_error_sys(err, "socketpair");
        goto cleanup;
    }
    int ins[3] = { spec->stdin_fd, spec->stdout_fd, spec->stderr_fd };
    for (int i = 0; i < 3; i++) {
        stdio[i] = dup_stdio(ins[i], err);
        if (stdio[i] < 0) {
            rc = stdio[i];
            goto cleanup;
        }
    }
    plan.fds[SBX__FD_RELEASE - SBX__FD_RELEASE] = pipes[0][0];
    plan.fds[SBX__FD_STATUS - SBX__FD_RELEASE] = pipes[1][1];
    plan.fds[SBX__FD_EXEC - SBX__FD_RELEASE] = pipes[2][1];
    plan.fds[SBX__FD_SOCK - SBX__FD_RELEASE] = sv[1];
    plan.fds[SBX__FD_STDIN - SBX__FD_RELEASE] = stdio[0];
    plan.fds[SBX__FD_STDOUT - SBX__FD_RELEASE] = stdio[1];
    plan.fds[SBX__FD_STDERR - SBX__FD_RELEASE] = stdio[2];

    int slot = spec->slot;
    if (slot < 0 || slot > SBX__MAX_SLOT)
        slot = 1000 + (int)(getpid() % 30000);
    rc = sbx__cg_create(&p->cg, slot, &p->lim, err);
    if (rc < 0)
        goto cleanup;

    unsigned long flags =
        CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_PIDFD;
    if (spec->netns_fd >= 0) {
        /* Join the prepared netns: switch this thread into it for the clone only. */
        saved_net = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (saved_net < 0 || setns(spec->netns_fd, CLONE_NEWNET) != 0) {
            rc = pr_error_sys(err, "join network namespace");
            goto cleanup;
        }
    } else {
        flags |= CLONE_NEWNET;
    }
    bool entered = false;
    if (sbx__cg_can_enter(&p->cg)) {
        rc = sbx__cg_enter(&p->cg, err);
        if (rc < 0) {
            (void)sbx__cg_leave(&p->cg);
            goto cleanup;
        }
        entered = true;
    }
    int pidfd = -1;
    long pid = syscall(SYS_clone, flags, 0UL, &pidfd, 0UL, 0UL);
    if (pid == 0)
        sbx__box_main(&plan); /* never returns */
    int clone_errno = errno;
    if (entered && sbx__cg_leave(&p->cg) < 0) {
        /* This thread would stay charged to a box: unrecoverable. */
        abort();
    }
    if (saved_net >= 0) {
        if (setns(saved_net, CLONE_NEWNET) != 0) {
            /* This thread would now create sockets in a box's netns: unrecoverable. */
            pr_log(PR_LOG_ERROR, "event=sandbox-setns-restore errno=%d", errno);
            abort();
        }
    }
    if (pid < 0) {
        errno = clone_errno;
        rc = pr_error_sys(err, "clone (user namespaces unavailable?)");
        goto cleanup;
    }
    p->pid = (pid_t)pid;
    p->pidfd = pidfd;

    /* Map box root and the box user to this slot's unprivileged host ids. setgroups stays
     * allowed so the init can drop the host's supplementary groups; the program has no
     * CAP_SETGID to use it. */
    char map[96];
    if (plan.unprivileged) {
        /* Not root: the kernel allows one line mapping our own ids (and setgroups denied). The
         * program then runs as box root with every capability gone; slots share our uid. */
        (void)snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)geteuid());
        rc = write_proc(p->pid, "uid_map", map, err);
        if (rc == 0)
            rc = write_proc(p->pid, "setgroups", "deny", err);
        (void)snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)getegid());
        if (rc == 0)
            rc = write_proc(p->pid, "gid_map", map, err);
    } else {
        unsigned h0 = (unsigned)(SBX__HOST_ID_BASE + 2 * slot);
        (void)snprintf(map, sizeof(map), "0 %u 1\n%d %u 1\n", h0, SBX__BOX_UID, h0 + 1);
        rc = write_proc(p->pid, "uid_map", map, err);
        if (rc == 0)
            rc = write_proc(p->pid, "gid_map", map, err);
    }
    if (rc == 0 && !entered)
        rc = sbx__cg_attach(&p->cg, p->pid, err);
    if (rc < 0)
        goto cleanup;
    {
        char path[64];
        (void)snprintf(path, sizeof(path), "/proc/%ld/ns/net", (long)p->pid);
        p->netns = open(path, O_RDONLY | O_CLOEXEC);
        (void)snprintf(path, sizeof(path), "/proc/%ld/ns/mnt", (long)p->pid);
        p->mntns = open(path, O_RDONLY | O_CLOEXEC);
    }
    p->release_w = pipes[0][1];
    pipes[0][1] = -1;
    p->status_r = pipes[1][0];
    pipes[1][0] = -1;
    (void)fcntl(p->status_r, F_SETFL, O_NONBLOCK);
    p->exec_r = pipes[2][0];
    pipes[2][0] = -1;
    p->sock_r = sv[0];
    sv[0] = -1;
    p->iso.userns = p->iso.pidns = p->iso.netns = p->iso.mntns = true;
    p->iso.ipcns = p->iso.utsns = p->iso.cgroupns = true;
    p->iso.seccomp = filter != NULL;
    p->iso.no_new_privs = p->iso.caps_dropped = true;
    p->iso.cgroup = sbx__cg_kind();
    p->t_start = now_ns();
    p->cg_cpu = sbx__cg_cpu_ns(&p->cg) != UINT64_MAX;
    if (write(p->release_w, "g", 1) != 1) {
        rc = pr_error_sys(err, "release the box");
        goto cleanup;
    }
    hand_to_monitor(p);
    *out = p;
    p = NULL;
    rc = 0;
cleanup:
    if (saved_net >= 0)
        (void)close(saved_net);
    for (int i = 0; i < 3; i++) {
        pr_close(&pipes[i][0]);
        pr_close(&pipes[i][1]);
        pr_close(&stdio[i]);
    }
    pr_close(&sv[0]);
    pr_close(&sv[1]);
    pr_free(exec_paths);
    pr_free(bind_srcs);
    pb_free(&pb);
    if (p)
        sbx_proc_free(p);
    return rc;
}

int sbx_proc_netns_fd(const sbx_proc *p)
{
    return p ? p->netns : -1;
}

uint64_t sbx_proc_cpu_us(const sbx_proc *p)
{
    sbx_proc *mp = (sbx_proc *)p; /* the lock only */
    (void)pthread_mutex_lock(&mp->lock);
    uint64_t v = sbx__cg_cpu_ns(&p->cg);
    (void)pthread_mutex_unlock(&mp->lock);
    if (v == UINT64_MAX)
        return 0;
    return v > p->cpu_base_ns ? (v - p->cpu_base_ns) / 1000 : 0;
}

uint64_t sbx_proc_rss_kb(const sbx_proc *p)
{
    sbx_proc *mp = (sbx_proc *)p; /* the lock only */
    (void)pthread_mutex_lock(&mp->lock);
    uint64_t v = sbx__cg_mem_now_kb(&p->cg);
    (void)pthread_mutex_unlock(&mp->lock);
    return v;
}

void sbx_proc_kill(sbx_proc *p)
{
    /* A box already seen to end keeps its own verdict (an exit status is not "killed"). */
    if (p && !atomic_load(&p->ended))
        kill_box(p, -1);
}

static int recv_fd(int sock)
{
    char dummy;
    struct iovec iov = { .iov_base = &dummy, .iov_len = 1 };
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr msg;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = u.buf;
    msg.msg_controllen = sizeof(u.buf);
    ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n <= 0)
        return n == 0 ? -2 : -1;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
        return -2;
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof(int));
    return fd;
}

static void read_status(sbx_proc *p)
{
    for (;;) {
        sbx__msg m;
        ssize_t n = read(p->status_r, &m, sizeof(m));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n != (ssize_t)sizeof(m)) {
            pr_close(&p->status_r);
            return;
        }
        if (m.kind == SBX__MSG_FAIL && !p->have_fail) {
            p->have_fail = true;
            p->fail_msg = m;
        } else if (m.kind == SBX__MSG_EXIT) {
            p->have_exit = true;
            p->exit_msg = m;
            if (!p->t_end)
                p->t_end = now_ns();
        }
    }
}

static void handle_notif(sbx_proc *p)
{
    struct seccomp_notif req;
    memset(&req, 0, sizeof(req));
    if (ioctl(p->listener, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) {
        if (errno != EINTR && errno != ENOENT)
            pr_close(&p->listener);
        return;
    }
    if (!p->violation[0])
        sbx__seccomp_name(p->violation, sizeof(p->violation), req.data.arch, req.data.nr);
    kill_box(p, SBX_SV);
}

static uint64_t cpu_used_ns(const sbx_proc *p)
{
    uint64_t v = sbx__cg_cpu_ns(&p->cg);
    if (v == UINT64_MAX)
        return UINT64_MAX;
    return v > p->cpu_base_ns ? v - p->cpu_base_ns : 0;
}

/* After the box: no device, FIFO or socket and no setuid/setgid bit may stay in a writable
 * bind (the runner or a person may later open or run what the program left there). Walks
 * without following symlinks. A directory's names are read first and its DIR closed, so a level
 * holds one fd and a small frame: 512 levels deep at most; a directory nested deeper is made
 * inaccessible (mode 0) rather than left unchecked. */
#define SCRUB_MAX_DEPTH 512

static void scrub_entry(int dirfd, const char *name, int depth, size_t *budget);

static void scrub_dir(int dirfd, int depth, size_t *budget)
{
    int dfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            (void)close(dfd);
        return;
    }
    pr_buf names = PR_BUF_INIT(64u << 20);
    struct dirent *e;
    /* cppcheck-suppress readdirCalled */
    while (*budget > 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        (*budget)--;
        if (pr_buf_put(&names, e->d_name, strlen(e->d_name) + 1) < 0)
            break;
    }
    (void)closedir(d);
    for (size_t off = 0; names.ptr && off < names.len; off += strlen(names.ptr + off) + 1)
        scrub_entry(dirfd, names.ptr + off, depth, budget);
    pr_buf_free(&names);
}

static void scrub_entry(int dirfd, const char *name, int depth, size_t *budget)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        if (depth >= SCRUB_MAX_DEPTH) {
            (void)fchmodat(dirfd, name, 0, 0);
            return;
        }
        int sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0) {
            scrub_dir(sub, depth + 1, budget);
            (void)close(sub);
        }
    } else if (S_ISSOCK(st.st_mode) || S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode) ||
               S_ISBLK(st.st_mode)) {
        (void)unlinkat(dirfd, name, 0);
    } else if (S_ISREG(st.st_mode) && (st.st_mode & (S_ISUID | S_ISGID))) {
        int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0) {
            (void)fchmod(fd, st.st_mode & 0777);
            (void)close(fd);
        }
    }
}

static void scrub_binds(sbx_proc *p)
{
    for (size_t i = 0; i < p->nscrub; i++) {
        int fd = open(p->scrub[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue;            /* a file bind: nothing below it */
        size_t budget = 1000000; /* entries; past it the rest is left unchecked (logged) */
        scrub_dir(fd, 0, &budget);
        (void)close(fd);
        if (budget == 0)
            pr_log(PR_LOG_WARN, "event=sandbox-scrub-budget path=%s", p->scrub[i]);
    }
}

/* Thread-safe descriptions (strerror and strsignal may use a static buffer). */
static const char *errname(int e)
{
    const char *d = strerrordesc_np(e);
    return d ? d : "unknown error";
}

static const char *signame(int sig)
{
    const char *d = sigdescr_np(sig);
    return d ? d : "unknown signal";
}

static void result_fill(sbx_proc *p, sbx_result *out)
{
    memset(out, 0, sizeof(*out));
    out->isolation = p->iso;
    uint64_t start = p->exec_seen ? p->t_exec : p->t_start;
    uint64_t end = p->t_end ? p->t_end : now_ns();
    out->wall_ms = end > start ? (end - start) / 1000000 : 0;
    uint64_t cpu = cpu_used_ns(p);
    if (cpu != UINT64_MAX)
        out->cpu_ms = cpu / 1000000;
    else if (p->have_exit)
        out->cpu_ms = (uint64_t)(p->exit_msg.utime_us + p->exit_msg.stime_us) / 1000;
    out->max_rss_kb = sbx__cg_mem_peak_kb(&p->cg);
    if (!out->max_rss_kb && p->have_exit)
        out->max_rss_kb = (uint64_t)p->exit_msg.maxrss_kb;
    uint64_t ooms = sbx__cg_oom_kills(&p->cg);
    int st = p->exit_msg.status;
    if (p->have_exit) {
        if (WIFSIGNALED(st))
            out->signal = WTERMSIG(st);
        else
            out->exit_code = WEXITSTATUS(st);
    } else {
        out->signal = SIGKILL;
    }
    int reason = atomic_load(&p->kill_reason);

    if (p->have_fail) {
        out->verdict = SBX_IE;
        errno = p->fail_msg.err;
        (void)snprintf(out->message, sizeof(out->message), "sandbox setup failed at %s (%d): %s",
                       sbx__stage_name(p->fail_msg.stage), p->fail_msg.detail,
                       errname(p->fail_msg.err));
        if (p->fail_msg.stage == SBX__ST_EXEC || p->fail_msg.stage == SBX__ST_CHDIR)
            (void)snprintf(out->message, sizeof(out->message), "cannot %s: %s",
                           p->fail_msg.stage == SBX__ST_EXEC ? "execute the program"
                                                             : "enter the working directory",
                           errname(p->fail_msg.err));
        out->isolation.seccomp = out->isolation.seccomp && p->fail_msg.stage > SBX__ST_SECCOMP;
    } else if (p->violation[0]) {
        out->verdict = SBX_SV;
        (void)snprintf(out->violation, sizeof(out->violation), "%s", p->violation);
        (void)snprintf(out->message, sizeof(out->message), "forbidden system call %s",
                       p->violation);
    } else if (reason == SBX_IE) {
        out->verdict = SBX_IE;
        (void)snprintf(out->message, sizeof(out->message),
                       "the box was not ready within %llu s of set-up",
                       (unsigned long long)(SBX_SETUP_NS / 1000000000ull));
    } else if (reason == SBX_TLE || (cpu != UINT64_MAX && cpu >= p->lim.cpu_ms * 1000000ull) ||
               (p->have_exit && WIFSIGNALED(st) && WTERMSIG(st) == SIGXCPU)) {
        out->verdict = SBX_TLE;
        (void)snprintf(out->message, sizeof(out->message), "CPU time limit of %" PRIu64 " ms",
                       p->lim.cpu_ms);
    } else if (reason == SBX_WLE) {
        out->verdict = SBX_WLE;
        (void)snprintf(out->message, sizeof(out->message), "wall-clock limit of %" PRIu64 " ms",
                       p->lim.wall_ms);
    } else if (ooms > 0) {
        out->verdict = SBX_MLE;
        (void)snprintf(out->message, sizeof(out->message),
                       "memory limit of %" PRIu64 " MiB (OOM kill)", p->lim.mem_mb);
    } else if (reason == -1) {
        out->verdict = SBX_RE;
        (void)snprintf(out->message, sizeof(out->message), "killed by the caller");
    } else if (!p->have_exit) {
        out->verdict = SBX_IE;
        (void)snprintf(out->message, sizeof(out->message), "the box init ended unexpectedly");
    } else if ((WIFSIGNALED(st) && WTERMSIG(st) == SIGXFSZ) || p->exit_msg.tmp_full) {
        out->verdict = SBX_OLE;
        (void)snprintf(out->message, sizeof(out->message), "%s",
                       p->exit_msg.tmp_full ? "private /tmp or /dev/shm is full"
                                            : "file size limit");
    } else if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        out->verdict = SBX_OK;
    } else {
        out->verdict = SBX_RE;
        if (WIFSIGNALED(st))
            (void)snprintf(out->message, sizeof(out->message), "killed by signal %d (%s)",
                           WTERMSIG(st), signame(WTERMSIG(st)));
        else
            (void)snprintf(out->message, sizeof(out->message), "exit status %d", WEXITSTATUS(st));
    }
}

/* ---- the monitor: one state machine for a waiting thread (ppoll) and for an event loop ---- */

enum {
    W_PID,
    W_STATUS,
    W_EXEC,
    W_SOCK,
    W_LISTENER,
    W_N
};

static int role_fd(const sbx_proc *p, int role)
{
    switch (role) {
    case W_PID:
        return p->pidfd;
    case W_STATUS:
        return p->status_r;
    case W_EXEC:
        return p->exec_r;
    case W_SOCK:
        return p->sock_r;
    default:
        return p->listener;
    }
}

static void mark_exec(sbx_proc *p)
{
    p->exec_seen = true;
    p->t_exec = now_ns();
    uint64_t base = sbx__cg_cpu_ns(&p->cg);
    p->cpu_base_ns = base == UINT64_MAX ? 0 : base;
}

/* Enforces the set-up, wall and CPU limits at now; returns the next moment one needs checking.
 * The program's wall clock starts at its exec. Building the box is proctor's own work: on a
 * loaded machine it may take longer than a short wall limit, and that must not become the
 * program's WLE. Set-up gets its own allowance and, past it, the box ends as IE (the sandbox
 * failed, not the program). CPU is checked at the earliest moment the tree could reach the
 * limit: (limit - used) / usable CPUs. */
static uint64_t mon_limits(sbx_proc *p, uint64_t now)
{
    uint64_t deadline =
        p->exec_seen ? p->t_exec + p->lim.wall_ms * 1000000ull : p->t_start + SBX_SETUP_NS;
    if (now >= deadline) {
        kill_box(p, p->exec_seen ? SBX_WLE : SBX_IE);
        deadline = now + 1000000000ull; /* only waiting for the init to go */
    }
    if (p->cg_cpu && p->exec_seen && atomic_load(&p->kill_reason) == 0) {
        if (now >= p->next_cpu) {
            uint64_t cpu_ns = p->lim.cpu_ms * 1000000ull;
            uint64_t used = cpu_used_ns(p);
            if (used != UINT64_MAX && used >= cpu_ns) {
                kill_box(p, SBX_TLE);
            } else if (used != UINT64_MAX) {
                uint64_t wait = (cpu_ns - used) / (uint64_t)p->ncpus;
                if (wait < 1000000)
                    wait = 1000000;
                p->next_cpu = now + wait;
            }
        }
        if (p->next_cpu > now && p->next_cpu < deadline)
            deadline = p->next_cpu;
    }
    return deadline;
}

/* Handles whatever rev[] (poll revents per role) says is ready. may_block: the init has said
 * the program ended, so wait for it to exit here rather than another trip through poll (a
 * thread of our own may; an event loop may not). */
static void mon_handle(sbx_proc *p, const short rev[W_N], bool may_block)
{
    if (p->listener >= 0 && (rev[W_LISTENER] & POLLIN))
        handle_notif(p);
    else if (p->listener >= 0 && (rev[W_LISTENER] & (POLLHUP | POLLERR | POLLNVAL)))
        pr_close(&p->listener);
    if (p->sock_r >= 0 && rev[W_SOCK]) {
        int fd = recv_fd(p->sock_r);
        if (fd >= 0) {
            p->listener = fd;
            pr_close(&p->sock_r);
            /* The listener comes a few system calls before execve: take it as the start and
             * save the monitor a wake-up for the exec pipe (an exec failure still arrives as a
             * status record). */
            if (!p->exec_seen && !p->have_fail) {
                pr_close(&p->exec_r);
                mark_exec(p);
            }
        } else if (fd == -2 || (rev[W_SOCK] & (POLLHUP | POLLERR))) {
            pr_close(&p->sock_r);
        }
    }
    if (p->exec_r >= 0 && rev[W_EXEC]) {
        char c;
        ssize_t k = read(p->exec_r, &c, 1);
        if (k <= 0 && !(k < 0 && (errno == EINTR || errno == EAGAIN))) {
            pr_close(&p->exec_r);
            if (!p->have_fail)
                mark_exec(p);
        }
    }
    if (p->status_r >= 0 && rev[W_STATUS])
        read_status(p);
    bool reap = (rev[W_PID] & POLLIN) != 0 || (p->have_exit && p->listener < 0);
    if (reap) {
        siginfo_t si;
        memset(&si, 0, sizeof(si));
        int flags = WEXITED | __WALL | (may_block ? 0 : WNOHANG);
        int r = waitid((idtype_t)P_PIDFD, (id_t)p->pidfd, &si, flags);
        if ((r == 0 && si.si_pid != 0) || (r != 0 && errno == ECHILD)) {
            p->init_done = true;
            if (!p->t_end)
                p->t_end = now_ns();
            atomic_store(&p->ended, true);
        }
    }
}

static int mon_pollfds(const sbx_proc *p, struct pollfd pf[W_N], int role[W_N])
{
    int n = 0;
    for (int r = 0; r < W_N; r++) {
        int fd = role_fd(p, r);
        if (fd >= 0) {
            pf[n] = (struct pollfd){ fd, POLLIN, 0 };
            role[n++] = r;
        }
    }
    return n;
}

/* Keeps the epoll set equal to the fds the monitor waits on (each role's fd changes at most
 * from one value to -1, or from -1 to one value: deletions first, then additions). */
static void ep_sync(sbx_proc *p)
{
    if (p->epfd < 0)
        return;
    for (int r = 0; r < W_N; r++) {
        if (p->ep_reg[r] >= 0 && p->ep_reg[r] != role_fd(p, r)) {
            (void)epoll_ctl(p->epfd, EPOLL_CTL_DEL, p->ep_reg[r], NULL);
            p->ep_reg[r] = -1;
        }
    }
    for (int r = 0; r < W_N; r++) {
        int fd = role_fd(p, r);
        if (fd >= 0 && p->ep_reg[r] != fd) {
            struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)r };
            if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) == 0 || errno == EEXIST)
                p->ep_reg[r] = fd;
        }
    }
}

static void hand_to_monitor(sbx_proc *p)
{
    const sbx_monitor *m = atomic_load(&g_monitor);
    if (!m)
        return;
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p->epfd < 0)
        return; /* the waiting thread watches it itself */
    ep_sync(p);
    p->watched = true;
    if (!m->watch(m->ctx, p)) {
        p->watched = false;
        pr_close(&p->epfd);
    }
}

void sbx_set_monitor(const sbx_monitor *m)
{
    atomic_store(&g_monitor, m);
}

int sbx_proc_watch_fd(const sbx_proc *p)
{
    return p ? p->epfd : -1;
}

int sbx_proc_step(sbx_proc *p, uint64_t *wait_ms)
{
    *wait_ms = 0;
    if (p->init_done)
        return 1;
    struct pollfd pf[W_N];
    int role[W_N];
    short rev[W_N] = { 0 };
    int n = mon_pollfds(p, pf, role);
    if (poll(pf, (nfds_t)n, 0) > 0) {
        for (int i = 0; i < n; i++)
            rev[role[i]] = pf[i].revents;
    }
    mon_handle(p, rev, false);
    if (p->init_done)
        return 1;
    uint64_t now = now_ns();
    uint64_t deadline = mon_limits(p, now);
    ep_sync(p);
    uint64_t to = deadline > now ? deadline - now : 0;
    *wait_ms = (to + 999999ull) / 1000000ull;
    return 0;
}

void sbx_proc_watch_end(sbx_proc *p)
{
    (void)pthread_mutex_lock(&p->lock);
    p->watch_done = true;
    (void)pthread_cond_broadcast(&p->done_cv);
    (void)pthread_mutex_unlock(&p->lock);
}

bool sbx_proc_ended(const sbx_proc *p)
{
    return !p || atomic_load(&p->ended);
}

/* A watched box: wait until the monitor lets go of it (it has seen the init exit). */
static void wait_watch_done(sbx_proc *p)
{
    (void)pthread_mutex_lock(&p->lock);
    while (!p->watch_done)
        (void)pthread_cond_wait(&p->done_cv, &p->lock);
    (void)pthread_mutex_unlock(&p->lock);
}

int sbx_proc_wait(sbx_proc *p, sbx_result *out, pr_error *err)
{
    if (!p || p->waited)
        return pr_error_set(err, PR_EINVAL, "sbx_proc_wait: already waited");
    p->waited = true;
    if (p->watched)
        wait_watch_done(p);
    while (!p->init_done) {
        struct pollfd pf[W_N];
        int role[W_N];
        short rev[W_N] = { 0 };
        int n = mon_pollfds(p, pf, role);
        uint64_t now = now_ns();
        uint64_t deadline = mon_limits(p, now);
        uint64_t to = deadline > now ? deadline - now : 0;
        struct timespec ts = { (time_t)(to / 1000000000ull), (long)(to % 1000000000ull) };
        int r = ppoll(pf, (nfds_t)n, &ts, NULL);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return pr_error_sys(err, "ppoll");
        }
        for (int i = 0; i < n; i++)
            rev[role[i]] = pf[i].revents;
        mon_handle(p, rev, true);
    }
    /* The init is gone, so is its PID namespace; drain what it said. A pending notification
     * from a task that died meanwhile still names the violation. */
    if (p->status_r >= 0)
        read_status(p);
    if (p->listener >= 0 && !p->violation[0]) {
        struct pollfd lp = { p->listener, POLLIN, 0 };
        if (poll(&lp, 1, 0) == 1 && (lp.revents & POLLIN))
            handle_notif(p);
    }
    result_fill(p, out);
    /* Reported figures are in; now empty and remove the cgroups. */
    (void)pthread_mutex_lock(&p->lock);
    sbx__cg_destroy(&p->cg);
    (void)pthread_mutex_unlock(&p->lock);
    scrub_binds(p);
    if (out->verdict == SBX_IE)
        return pr_error_set(err, PR_ESYS, "%s", out->message);
    return 0;
}

void sbx_proc_free(sbx_proc *p)
{
    if (!p)
        return;
    if (p->watched) {
        /* The monitor reaps it; it lets go once the init is gone. */
        if (!atomic_load(&p->ended))
            kill_box(p, -1);
        wait_watch_done(p);
    }
    if (p->pidfd >= 0 && !p->init_done) {
        kill_box(p, -1);
        siginfo_t si;
        while (waitid((idtype_t)P_PIDFD, (id_t)p->pidfd, &si, WEXITED | __WALL) != 0 &&
               errno == EINTR) {
        }
        p->init_done = true;
    }
    sbx__cg_destroy(&p->cg);
    (void)pthread_mutex_destroy(&p->lock);
    (void)pthread_cond_destroy(&p->done_cv);
    pr_close(&p->epfd);
    pr_close(&p->pidfd);
    pr_close(&p->release_w);
    pr_close(&p->status_r);
    pr_close(&p->exec_r);
    pr_close(&p->sock_r);
    pr_close(&p->listener);
    pr_close(&p->netns);
    release_mntns(&p->mntns);
    for (size_t i = 0; i < p->nscrub; i++)
        pr_free(p->scrub[i]);
    pr_free(p->scrub);
    pr_free(p);
}

int sbx_run(sbx_result *out, const sbx_spec *spec, pr_error *err)
{
    sbx_proc *p = NULL;
    int rc = sbx_spawn(&p, spec, err);
    if (rc < 0) {
        memset(out, 0, sizeof(*out));
        out->verdict = SBX_IE;
        out->isolation.cgroup = "none";
        (void)snprintf(out->message, sizeof(out->message), "%s",
                       err && err->msg[0] ? err->msg : "sandbox could not be built");
        return rc;
    }
    rc = sbx_proc_wait(p, out, err);
    sbx_proc_free(p);
    return rc;
}

static pthread_mutex_t g_init_lock = PTHREAD_MUTEX_INITIALIZER;

int sbx_global_init(pr_error *err)
{
    if (atomic_load(&g_inited))
        return 0;
    int rc = 0;
    (void)pthread_mutex_lock(&g_init_lock);
    if (!atomic_load(&g_inited)) {
        rc = sbx__cg_global_init(err);
        if (rc == 0)
            atomic_store(&g_inited, 1);
    }
    (void)pthread_mutex_unlock(&g_init_lock);
    return rc;
}

void sbx_global_cleanup(void)
{
    (void)pthread_mutex_lock(&g_init_lock);
    closer_stop();
    sbx__seccomp_cleanup();
    sbx__cg_global_cleanup();
    atomic_store(&g_inited, 0);
    (void)pthread_mutex_unlock(&g_init_lock);
}

/* ---------------------------------------------------------------- shared loopback netns */

/* Closes every descriptor from 3 up except keep_a and keep_b. The helper below is a copy of a
 * multi-threaded caller that never execs: without this it would hold the pipes of boxes and
 * helpers that other threads are creating at the same moment (their parents then wait for an
 * EOF that never comes) and the daemon's listening socket. Async-signal-safe. */
static void close_all_but(int keep_a, int keep_b)
{
    int lo = keep_a < keep_b ? keep_a : keep_b;
    int hi = keep_a < keep_b ? keep_b : keep_a;
    if (lo > 3)
        (void)syscall(SYS_close_range, 3U, (unsigned)(lo - 1), 0U);
    if (hi > lo + 1)
        (void)syscall(SYS_close_range, (unsigned)(lo + 1), (unsigned)(hi - 1), 0U);
    (void)syscall(SYS_close_range, (unsigned)(hi + 1), ~0U, 0U);
}

static PR_NORETURN void netns_child(int ready_w, int hold_r)
{
    close_all_but(ready_w, hold_r);
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    char ok = 0;
    if (s >= 0) {
        struct ifreq ifr;
        memset(&ifr, 0, sizeof(ifr));
        memcpy(ifr.ifr_name, "lo", 3);
        ifr.ifr_flags = IFF_UP | IFF_RUNNING;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) == 0)
            ok = 1;
    }
    (void)!write(ready_w, &ok, 1);
    char c;
    while (read(hold_r, &c, 1) < 0 && errno == EINTR) {
    }
    _exit(0);
}

int sbx_netns_new(pr_error *err)
{
    int ready[2] = { -1, -1 }, hold[2] = { -1, -1 };
    int pidfd = -1, rc = -1;
    if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(hold, O_CLOEXEC) != 0) {
        rc = pr_error_sys(err, "pipe2");
        goto cleanup;
    }
    long pid = syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | CLONE_NEWNET | CLONE_PIDFD), 0UL,
                       &pidfd, 0UL, 0UL);
    if (pid == 0) {
        (void)close(ready[0]);
        (void)close(hold[1]);
        netns_child(ready[1], hold[0]);
    }
    if (pid < 0) {
        rc = pr_error_sys(err, "clone network namespace");
        goto cleanup;
    }
    pr_close(&ready[1]);
    char ok = 0;
    ssize_t n;
    do {
        n = read(ready[0], &ok, 1);
    } while (n < 0 && errno == EINTR);
    if (n == 1 && ok) {
        char path[64];
        (void)snprintf(path, sizeof(path), "/proc/%ld/ns/net", pid);
        rc = open(path, O_RDONLY | O_CLOEXEC);
        if (rc < 0)
            rc = pr_error_sys(err, "open %s", path);
    } else {
        rc = pr_error_set(err, PR_ESYS, "could not bring loopback up in the new netns");
    }
    pr_close(&hold[1]);
    siginfo_t si;
    while (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED | __WALL) != 0 && errno == EINTR) {
    }
cleanup:
    pr_close(&ready[0]);
    pr_close(&ready[1]);
    pr_close(&hold[0]);
    pr_close(&hold[1]);
    pr_close(&pidfd);
    return rc;
}
