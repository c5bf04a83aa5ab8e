/* Seccomp profiles: default-deny allowlists, compiled once per profile with libseccomp and
 * exported as classic BPF (seccomp_export_bpf into a memfd, read back into a sock_fprog).
 *
 * Every call that is not allowed ends in SECCOMP_RET_USER_NOTIF. The program installs the
 * filter with SECCOMP_FILTER_FLAG_NEW_LISTENER and hands the listener to the monitor outside
 * the box, which reads the syscall number of the first forbidden call, names it and ends the box
 * (verdict SV). The program cannot suppress this: the forbidden call blocks in the kernel until
 * the monitor kills the box, and the monitor holds the only listener.
 *
 * libseccomp refuses rules whose action equals the default action, so the filter is built with a
 * marker default action (SECCOMP_RET_TRACE | SBX_DENY_MARK) that is rewritten to USER_NOTIF in
 * the exported program. A hand-written prologue runs first: non-native architectures (i386 via
 * int 0x80) and the x32 ABI are denied, and the ioctl/fcntl arguments libseccomp cannot express
 * as "all but" (TIOCSTI, TIOCLINUX, F_SETLEASE) are checked on their low 32 bits, which is what
 * the kernel uses (details and the no-op locks above build_prologue).
 *
 * A few harmless probes get an errno instead of SV, because runtimes call them and fall back:
 *   clone3          -> ENOSYS  glibc tries it for threads and fork, then uses clone (whose
 *                              flags we can inspect; clone3 passes them in memory)
 *   io_uring_setup  -> ENOSYS  libuv (node) probes it; without a ring io_uring_enter is useless
 *   socket(AF_NETLINK) -> EAFNOSUPPORT  glibc getaddrinfo/getifaddrs probe routes this way
 *   sched_setaffinity -> EPERM  runtimes may try to widen their CPU set; we pin the box
 *   mbind/set_mempolicy/get_mempolicy/migrate_pages -> EPERM  NUMA hints from V8 and Go */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SBX_DENY_MARK 0x5b5u

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#endif

/* ---- syscall groups; every profile is a union of groups ---- */

/* I/O on descriptors the program holds: all objects it can reach are its own (pipes, sockets,
 * files under its ro binds and private tmpfs). */
static const char *const grp_io[] = { "read",
                                      "write",
                                      "readv",
                                      "writev",
                                      "pread64",
                                      "pwrite64",
                                      "preadv",
                                      "pwritev",
                                      "preadv2",
                                      "pwritev2",
                                      "lseek",
                                      "close",
                                      "close_range",
                                      "dup",
                                      "dup2",
                                      "dup3",
                                      "sendfile",
                                      "splice",
                                      "tee",
                                      "copy_file_range",
                                      "fsync",
                                      "fdatasync",
                                      "sync_file_range",
                                      "fadvise64",
                                      "fallocate",
                                      "ftruncate",
                                      "truncate",
                                      "pipe",
                                      "pipe2",
                                      "ioctl",
                                      "fcntl",
                                      NULL };

/* The file system as the box sees it (ro system binds, private /tmp, the work dir): names,
 * metadata, directories. Permission checks apply to the unprivileged box user. */
static const char *const grp_fs[] = { "open",
                                      "openat",
                                      "openat2",
                                      "creat",
                                      "stat",
                                      "fstat",
                                      "lstat",
                                      "newfstatat",
                                      "statx",
                                      "statfs",
                                      "fstatfs",
                                      "access",
                                      "faccessat",
                                      "faccessat2",
                                      "readlink",
                                      "readlinkat",
                                      "getdents",
                                      "getdents64",
                                      "getcwd",
                                      "chdir",
                                      "fchdir",
                                      "mkdir",
                                      "mkdirat",
                                      "rmdir",
                                      "unlink",
                                      "unlinkat",
                                      "rename",
                                      "renameat",
                                      "renameat2",
                                      "link",
                                      "linkat",
                                      "symlink",
                                      "symlinkat",
                                      "chmod",
                                      "fchmod",
                                      "fchmodat",
                                      "utime",
                                      "utimes",
                                      "utimensat",
                                      "futimesat",
                                      "umask",
                                      "getxattr",
                                      "lgetxattr",
                                      "fgetxattr",
                                      "listxattr",
                                      "llistxattr",
                                      "flistxattr",
                                      "inotify_init",
                                      "inotify_init1",
                                      "inotify_add_watch",
                                      "inotify_rm_watch",
                                      NULL };

/* Memory management of the process itself; the cgroup bounds resident memory, RLIMIT_MEMLOCK 0
 * makes mlock fail cleanly; pkeys are per-process protection (V8 probes them). */
static const char *const grp_mem[] = { "brk",           "mmap",         "munmap",     "mremap",
                                       "mprotect",      "madvise",      "msync",      "mincore",
                                       "mlock",         "mlock2",       "munlock",    "mlockall",
                                       "munlockall",    "memfd_create", "pkey_alloc", "pkey_free",
                                       "pkey_mprotect", "membarrier",   NULL };

/* Signals: only processes of the box are visible (PID namespace) and the box init is another
 * uid, so kill(-1) and friends stay inside. restart_syscall is made by the kernel's own return
 * path when a sleep interrupted by a signal resumes (Go's preemption signals hit it). */
static const char *const grp_sig[] = { "rt_sigaction",
                                       "rt_sigprocmask",
                                       "rt_sigreturn",
                                       "restart_syscall",
                                       "rt_sigpending",
                                       "rt_sigtimedwait",
                                       "rt_sigsuspend",
                                       "rt_sigqueueinfo",
                                       "rt_tgsigqueueinfo",
                                       "sigaltstack",
                                       "kill",
                                       "tkill",
                                       "tgkill",
                                       "pause",
                                       "alarm",
                                       "getitimer",
                                       "setitimer",
                                       "signalfd",
                                       "signalfd4",
                                       NULL };

/* Reading clocks, sleeping and timers (setting clocks is denied: it needs CAP_SYS_TIME and would
 * break the runner's timing). */
static const char *const grp_time[] = { "clock_gettime",
                                        "clock_getres",
                                        "clock_nanosleep",
                                        "nanosleep",
                                        "gettimeofday",
                                        "time",
                                        "times",
                                        "timer_create",
                                        "timer_settime",
                                        "timer_gettime",
                                        "timer_getoverrun",
                                        "timer_delete",
                                        "timerfd_create",
                                        "timerfd_settime",
                                        "timerfd_gettime",
                                        NULL };

/* Threads and per-thread runtime state (glibc, V8, Go): futexes, robust lists, TLS, rseq. */
static const char *const grp_thread[] = { "futex",
                                          "futex_waitv",
                                          "set_robust_list",
                                          "get_robust_list",
                                          "set_tid_address",
                                          "arch_prctl",
                                          "rseq",
                                          "gettid",
                                          "sched_yield",
                                          "sched_getaffinity",
                                          "sched_getparam",
                                          "sched_getscheduler",
                                          "sched_get_priority_max",
                                          "sched_get_priority_min",
                                          "getpriority",
                                          "setpriority",
                                          "getcpu",
                                          NULL };

/* Queries about the process and limits; setrlimit can only lower hard limits without caps. */
static const char *const grp_ident[] = { "getpid",    "getppid",   "getuid",    "geteuid",
                                         "getgid",    "getegid",   "getresuid", "getresgid",
                                         "getgroups", "getpgrp",   "getpgid",   "getsid",
                                         "setpgid",   "setsid",    "uname",     "sysinfo",
                                         "getrusage", "getrlimit", "setrlimit", "prlimit64",
                                         "getrandom", "capget",    "capset",    NULL };

/* Processes: fork bombs are bounded by pids.max, exec only reaches the ro binds, wait. clone is
 * added separately with its namespace flags checked. */
static const char *const grp_proc[] = { "fork",   "vfork", "execve",     "wait4",
                                        "waitid", "exit",  "exit_group", NULL };

/* Readiness and event notification. */
static const char *const grp_poll[] = {
    "poll",          "ppoll",     "select",     "pselect6",    "epoll_create",
    "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2",
    "eventfd",       "eventfd2",  NULL
};

/* Sockets in the box's own network namespace (loopback at most). socket and socketpair are
 * added separately with their address family checked. */
static const char *const grp_net[] = { "connect",     "bind",        "listen",     "accept",
                                       "accept4",     "sendto",      "recvfrom",   "sendmsg",
                                       "recvmsg",     "sendmmsg",    "recvmmsg",   "shutdown",
                                       "getsockname", "getpeername", "setsockopt", "getsockopt",
                                       NULL };

/* SysV IPC: private to the box (IPC namespace) and charged to its memory cgroup; POSIX
 * semaphores of python's multiprocessing use /dev/shm instead. */
static const char *const grp_ipc[] = { "shmget", "shmat",  "shmdt",      "shmctl", "semget",
                                       "semop",  "semctl", "semtimedop", "msgget", "msgsnd",
                                       "msgrcv", "msgctl", NULL };

/* Build tools: make switches its effective ids back and forth (harmless without capabilities),
 * cp -p and tar restore owners. */
static const char *const grp_build[] = { "setresuid", "setresgid", "setuid", "setgid",
                                         "setreuid",  "setregid",  "chown",  "fchown",
                                         "lchown",    "fchownat",  NULL };

/* Go's runtime and os package: pidfd for os/exec (go >= 1.23), signals to its own threads. */
static const char *const grp_go[] = { "pidfd_open", "pidfd_send_signal", "waitid", NULL };

typedef struct profile_def {
    const char *name;
    const char *const *groups[16];
} profile_def;

static const profile_def profiles[] = {
    { "default",
      { grp_io, grp_fs, grp_mem, grp_sig, grp_time, grp_thread, grp_ident, grp_proc, grp_poll,
        grp_net, grp_ipc, NULL } },
    { "python",
      { grp_io, grp_fs, grp_mem, grp_sig, grp_time, grp_thread, grp_ident, grp_proc, grp_poll,
        grp_net, grp_ipc, NULL } },
    { "node",
      { grp_io, grp_fs, grp_mem, grp_sig, grp_time, grp_thread, grp_ident, grp_proc, grp_poll,
        grp_net, grp_ipc, NULL } },
    { "go",
      { grp_io, grp_fs, grp_mem, grp_sig, grp_time, grp_thread, grp_ident, grp_proc, grp_poll,
        grp_net, grp_ipc, grp_go, NULL } },
    { "build",
      { grp_io, grp_fs, grp_mem, grp_sig, grp_time, grp_thread, grp_ident, grp_proc, grp_poll,
        grp_net, grp_ipc, grp_go, grp_build, NULL } },
};

#define NPROFILES (sizeof(profiles) / sizeof(profiles[0]))

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sock_fprog *g_compiled[NPROFILES]; /* owned; written under g_lock once */

bool sbx__seccomp_profile_known(const char *profile)
{
    for (size_t i = 0; i < NPROFILES; i++)
        if (strcmp(profiles[i].name, profile) == 0)
            return true;
    return false;
}

static int add(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n,
               struct scmp_arg_cmp a, pr_error *err)
{
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR)
        return 0; /* unknown to this libseccomp/arch: stays denied */
    int rc = n ? seccomp_rule_add(ctx, action, nr, 1, a) : seccomp_rule_add(ctx, action, nr, 0);
    if (rc < 0)
        return pr_error_set(err, PR_EINTERNAL, "seccomp rule %s: %s", name, strerrordesc_np(-rc));
    return 0;
}

static int add_rules(scmp_filter_ctx ctx, const profile_def *pd, pr_error *err)
{
    struct scmp_arg_cmp none = { 0 };
    int rc;
    for (size_t g = 0; pd->groups[g]; g++) {
        for (size_t i = 0; pd->groups[g][i]; i++) {
            rc = add(ctx, SCMP_ACT_ALLOW, pd->groups[g][i], 0, none, err);
            if (rc < 0)
                return rc;
        }
    }
    /* Threads and fork, but no new namespaces: CLONE_NEW* would give the program a user
     * namespace with capabilities (kernel attack surface, raw sockets). */
    const uint64_t ns = CLONE_NEWNS | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC |
                        CLONE_NEWUTS | CLONE_NEWCGROUP | CLONE_NEWTIME;
    rc = add(ctx, SCMP_ACT_ALLOW, "clone", 1, SCMP_A0(SCMP_CMP_MASKED_EQ, ns, 0), err);
    if (rc == 0)
        rc = add(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, none, err);
    /* Unix and IP sockets only: no packet, vsock (not namespaced), bluetooth... */
    static const int fams[] = { AF_UNIX, AF_INET, AF_INET6 };
    for (size_t i = 0; rc == 0 && i < 3; i++)
        rc = add(ctx, SCMP_ACT_ALLOW, "socket", 1,
                 SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, (scmp_datum_t)fams[i]), err);
    if (rc == 0)
        rc = add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), "socket", 1,
                 SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, AF_NETLINK), err);
    if (rc == 0)
        rc = add(ctx, SCMP_ACT_ALLOW, "socketpair", 1,
                 SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, AF_UNIX), err);
    /* personality: only the query; READ_IMPLIES_EXEC or ADDR_NO_RANDOMIZE weaken exploits'
     * obstacles. */
    if (rc == 0)
        rc = add(ctx, SCMP_ACT_ALLOW, "personality", 1,
                 SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, 0xffffffffu), err);
    /* prctl: naming threads and memory, death signals, reading dumpable/seccomp/caps state.
     * PR_SET_MM, PR_SET_SECCOMP, PR_SET_PTRACER and the rest stay denied. */
    static const int prctls[] = { PR_SET_NAME,         PR_GET_NAME,       PR_SET_PDEATHSIG,
                                  PR_GET_PDEATHSIG,    PR_GET_DUMPABLE,   PR_SET_DUMPABLE,
                                  PR_GET_SECCOMP,      PR_CAPBSET_READ,   PR_GET_NO_NEW_PRIVS,
                                  PR_SET_NO_NEW_PRIVS, PR_GET_TIMERSLACK, PR_SET_TIMERSLACK,
                                  PR_GET_THP_DISABLE,  PR_GET_KEEPCAPS,   PR_SET_VMA,
                                  PR_GET_SECUREBITS,   PR_CAP_AMBIENT };
    for (size_t i = 0; rc == 0 && i < sizeof(prctls) / sizeof(prctls[0]); i++)
        rc = add(ctx, SCMP_ACT_ALLOW, "prctl", 1,
                 SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, (scmp_datum_t)prctls[i]), err);
    /* Documented benign probes (see the top of this file). */
    static const char *const eperm[] = { "sched_setaffinity", "mbind",         "set_mempolicy",
                                         "get_mempolicy",     "migrate_pages", NULL };
    for (size_t i = 0; rc == 0 && eperm[i]; i++)
        rc = add(ctx, SCMP_ACT_ERRNO(EPERM), eperm[i], 0, none, err);
    if (rc == 0)
        rc = add(ctx, SCMP_ACT_ERRNO(ENOSYS), "io_uring_setup", 0, none, err);
    /* flock succeeds without locking (see the prologue on locks). */
    if (rc == 0)
        rc = add(ctx, SCMP_ACT_ERRNO(0), "flock", 0, none, err);
    return rc;
}

#define DENY_RET (SECCOMP_RET_USER_NOTIF)

/* The prologue runs before the libseccomp program (which starts with its own loads): arch and
 * x32 checks, and the argument checks libseccomp cannot express as "all but", on the low 32
 * bits of the argument, which is what the kernel uses:
 *   ioctl TIOCSTI, TIOCLINUX                      -> SV (terminal injection)
 *   ioctl that changes a terminal (0x54xx but the read-only queries below) -> EPERM: a tty
 *         passed as stdin must not be reconfigured under the runner (raw mode, TIOCSPGRP...)
 *   fcntl F_SETLEASE                              -> SV
 *   fcntl F_GETLK, F_OFD_GETLK                    -> EPERM
 *   fcntl F_SETLK(W), F_OFD_SETLK(W)              -> 0 without doing anything
 * Locks are no-ops in a box: a box is one process tree on its own files, and real locks on the
 * inodes every box shares (read-only binds) would be a side channel between boxes and to the
 * host. sqlite and the go tool take locks and keep working; flock is handled the same way in
 * the rules below. */
enum {
    L_NEXT = -1,
    L_DENY = -2,
    L_EPERM = -3,
    L_OK0 = -4,
    L_END = -5,
    L_FCNTL = -6
};

typedef struct pro_ins {
    struct sock_filter f;
    int jt, jf; /* labels, or >= 0: relative already */
} pro_ins;

#define P_LD(off)                                       \
    {                                                   \
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (off)), 0, 0 \
    }
#define P_JEQ(k, t, f)                                           \
    {                                                            \
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (k), 0, 0), (t), (f) \
    }
#define P_JGE(k, t, f)                                           \
    {                                                            \
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, (k), 0, 0), (t), (f) \
    }
#define P_AND(k)                                       \
    {                                                  \
        BPF_STMT(BPF_ALU | BPF_AND | BPF_K, (k)), 0, 0 \
    }
#define P_JA(t)                                       \
    {                                                 \
        BPF_STMT(BPF_JMP | BPF_JA | BPF_K, 0), (t), 0 \
    }
#define P_RET(k)                             \
    {                                        \
        BPF_STMT(BPF_RET | BPF_K, (k)), 0, 0 \
    }
#define P_LABEL(l)                  \
    {                               \
        BPF_STMT(0xffff, 0), (l), 0 \
    }

#define ARG1 offsetof(struct seccomp_data, args[1])

static const pro_ins prologue_src[] = {
    P_LD(offsetof(struct seccomp_data, arch)),
    P_JEQ(AUDIT_ARCH_X86_64, L_NEXT, L_DENY),
    P_LD(offsetof(struct seccomp_data, nr)),
    P_JGE(0x40000000u, L_DENY, L_NEXT),
    P_JEQ(__NR_ioctl, L_NEXT, L_FCNTL),
    P_LD(ARG1),
    P_JEQ(TIOCSTI, L_DENY, L_NEXT),
    P_JEQ(TIOCLINUX, L_DENY, L_NEXT),
    P_AND(0xff00u),
    P_JEQ(0x5400u, L_NEXT, L_END),
    P_LD(ARG1),
    /* terminal ioctls that only read, or that every fd supports */
    P_JEQ(TCGETS, L_END, L_NEXT),
    P_JEQ(TCGETA, L_END, L_NEXT),
    P_JEQ(TIOCGPGRP, L_END, L_NEXT),
    P_JEQ(TIOCOUTQ, L_END, L_NEXT),
    P_JEQ(TIOCGWINSZ, L_END, L_NEXT),
    P_JEQ(FIONREAD, L_END, L_NEXT),
    P_JEQ(TIOCGSID, L_END, L_NEXT),
    P_JEQ(TIOCGETD, L_END, L_NEXT),
    P_JEQ(0x802C542Au /* TCGETS2 */, L_END, L_NEXT),
    P_JEQ(FIONBIO, L_END, L_NEXT),
    P_JEQ(FIOASYNC, L_END, L_NEXT),
    P_JEQ(FIOCLEX, L_END, L_NEXT),
    P_JEQ(FIONCLEX, L_END, L_NEXT),
    P_JEQ(FIOQSIZE, L_END, L_NEXT),
    P_JA(L_EPERM),
    P_LABEL(L_FCNTL),
    P_JEQ(__NR_fcntl, L_NEXT, L_END),
    P_LD(ARG1),
    P_JEQ(F_SETLEASE, L_DENY, L_NEXT),
    P_JEQ(F_GETLK, L_EPERM, L_NEXT),
    P_JEQ(F_OFD_GETLK, L_EPERM, L_NEXT),
    P_JEQ(F_SETLK, L_OK0, L_NEXT),
    P_JEQ(F_SETLKW, L_OK0, L_NEXT),
    P_JEQ(F_OFD_SETLK, L_OK0, L_NEXT),
    P_JEQ(F_OFD_SETLKW, L_OK0, L_END),
    P_LABEL(L_OK0),
    P_RET(SECCOMP_RET_ERRNO | 0),
    P_LABEL(L_EPERM),
    P_RET(SECCOMP_RET_ERRNO | EPERM),
    P_LABEL(L_DENY),
    P_RET(DENY_RET),
    P_LABEL(L_END),
};

/* Resolves the labels into relative jumps; returns the instruction count (labels dropped). */
static size_t build_prologue(struct sock_filter *out, size_t cap)
{
    const size_t n = sizeof(prologue_src) / sizeof(prologue_src[0]);
    int pos[8] = { 0 }; /* label -> pc, indexed by -label */
    size_t pc = 0;
    for (size_t i = 0; i < n; i++) {
        if (prologue_src[i].f.code == 0xffff)
            pos[-prologue_src[i].jt] = (int)pc;
        else
            pc++;
    }
    if (pc > cap)
        return 0;
    pc = 0;
    for (size_t i = 0; i < n; i++) {
        const pro_ins *in = &prologue_src[i];
        if (in->f.code == 0xffff)
            continue;
        struct sock_filter f = in->f;
        if (BPF_CLASS(f.code) == BPF_JMP) {
            if (BPF_OP(f.code) == BPF_JA) {
                f.k = (uint32_t)(pos[-in->jt] - (int)pc - 1);
            } else {
                f.jt = (uint8_t)(in->jt == L_NEXT ? 0 : pos[-in->jt] - (int)pc - 1);
                f.jf = (uint8_t)(in->jf == L_NEXT ? 0 : pos[-in->jf] - (int)pc - 1);
            }
        }
        out[pc++] = f;
    }
    return pc;
}

static int compile(struct sock_fprog **out, const profile_def *pd, pr_error *err)
{
    scmp_filter_ctx ctx = NULL;
    int mfd = -1;
    struct sock_fprog *prog = NULL;
    int rc;

    *out = NULL;
#if !defined(__x86_64__)
    /* The prologue (arch, x32, ioctl and fcntl numbers) is written for x86_64. */
    rc = pr_error_set(err, PR_EINTERNAL, "seccomp profiles exist for x86_64 only");
    goto cleanup;
#endif
    const uint32_t mark = SCMP_ACT_TRACE(SBX_DENY_MARK);
    ctx = seccomp_init(mark);
    if (!ctx) {
        rc = pr_error_set(err, PR_EINTERNAL, "seccomp_init failed");
        goto cleanup;
    }
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, mark);
    if (rc == 0)
        rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0); /* the box sets it itself */
    /* A binary search over syscall numbers instead of a linear chain: every syscall of the
     * program runs this filter. */
    if (rc == 0)
        rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
    if (rc < 0) {
        rc = pr_error_set(err, PR_EINTERNAL, "seccomp attributes: %s", strerrordesc_np(-rc));
        goto cleanup;
    }
    rc = add_rules(ctx, pd, err);
    if (rc < 0)
        goto cleanup;
    mfd = memfd_create("sbx-bpf", MFD_CLOEXEC);
    if (mfd < 0) {
        rc = pr_error_sys(err, "memfd_create");
        goto cleanup;
    }
    rc = seccomp_export_bpf(ctx, mfd);
    if (rc < 0) {
        rc = pr_error_set(err, PR_EINTERNAL, "seccomp_export_bpf: %s", strerrordesc_np(-rc));
        goto cleanup;
    }
    off_t size = lseek(mfd, 0, SEEK_END);
    struct sock_filter pro[128];
    size_t npro = build_prologue(pro, sizeof(pro) / sizeof(pro[0]));
    if (npro == 0) {
        rc = pr_error_set(err, PR_EINTERNAL, "seccomp prologue too long");
        goto cleanup;
    }
    if (size <= 0 || size % (off_t)sizeof(struct sock_filter) != 0 ||
        (size_t)size / sizeof(struct sock_filter) + npro > BPF_MAXINSNS) {
        rc = pr_error_set(err, PR_EINTERNAL, "seccomp: bad exported program size %lld",
                          (long long)size);
        goto cleanup;
    }
    size_t n = (size_t)size / sizeof(struct sock_filter);
    prog = pr_calloc(1, sizeof(*prog));
    struct sock_filter *ins = pr_calloc(n + npro, sizeof(*ins));
    if (!prog || !ins) {
        pr_free(ins);
        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }
    prog->filter = ins;
    prog->len = (unsigned short)(n + npro);
    memcpy(ins, pro, npro * sizeof(pro[0]));
    if (pread(mfd, ins + npro, (size_t)size, 0) != (ssize_t)size) {
        rc = pr_error_sys(err, "seccomp: read back the program");
        goto cleanup;
    }
    for (size_t i = npro; i < n + npro; i++) {
        if (ins[i].code == (BPF_RET | BPF_K) && ins[i].k == mark)
            ins[i].k = DENY_RET;
    }
    *out = prog;
    prog = NULL;
    rc = 0;
cleanup:
    if (prog) {
        pr_free(prog->filter);
        pr_free(prog);
    }
    if (mfd >= 0)
        (void)close(mfd);
    if (ctx)
        seccomp_release(ctx);
    return rc;
}

size_t sbx__seccomp_nprofiles(void)
{
    return NPROFILES;
}

const char *sbx__seccomp_profile_name(size_t i)
{
    return i < NPROFILES ? profiles[i].name : NULL;
}

int sbx__seccomp_compile(struct sock_fprog **out, size_t i, pr_error *err)
{
    if (i >= NPROFILES)
        return pr_error_set(err, PR_EINVAL, "no profile %zu", i);
    return compile(out, &profiles[i], err);
}

void sbx__seccomp_free(struct sock_fprog *prog)
{
    if (prog) {
        pr_free(prog->filter);
        pr_free(prog);
    }
}

#ifdef SBX_HAVE_PRECOMPILED
/* Generated at build time by sandbox/gen/bpfgen.c from the very tables above (compiling with
 * libseccomp costs about a millisecond per profile, which `proctor sandbox` would pay on every
 * start). */
#include "sbx_profiles_bpf.h"
#endif

int sbx__seccomp_get(const struct sock_fprog **out, const char *profile, pr_error *err)
{
    *out = NULL;
    for (size_t i = 0; i < NPROFILES; i++) {
        if (strcmp(profiles[i].name, profile) != 0)
            continue;
#ifdef SBX_HAVE_PRECOMPILED
        if (i < sizeof(sbx_precompiled) / sizeof(sbx_precompiled[0]) &&
            strcmp(sbx_precompiled[i].name, profile) == 0) {
            *out = &sbx_precompiled[i].prog;
            return 0;
        }
#endif
        int rc = 0;
        (void)pthread_mutex_lock(&g_lock);
        if (!g_compiled[i])
            rc = compile(&g_compiled[i], &profiles[i], err);
        *out = g_compiled[i];
        (void)pthread_mutex_unlock(&g_lock);
        return rc;
    }
    return pr_error_set(err, PR_EINVAL, "unknown seccomp profile '%s'", profile);
}

void sbx__seccomp_cleanup(void)
{
    (void)pthread_mutex_lock(&g_lock);
    for (size_t i = 0; i < NPROFILES; i++) {
        if (g_compiled[i]) {
            pr_free(g_compiled[i]->filter);
            pr_free(g_compiled[i]);
            g_compiled[i] = NULL;
        }
    }
    (void)pthread_mutex_unlock(&g_lock);
}

void sbx__seccomp_name(char *out, size_t outsz, uint32_t arch, int nr)
{
    const char *prefix = "";
    uint32_t sarch = SCMP_ARCH_X86_64;
    if (arch == AUDIT_ARCH_I386) {
        prefix = "i386:";
        sarch = SCMP_ARCH_X86;
    } else if (arch == AUDIT_ARCH_X86_64 && nr >= 0x40000000) {
        prefix = "x32:";
        sarch = SCMP_ARCH_X32;
    } else if (arch != AUDIT_ARCH_X86_64) {
        (void)snprintf(out, outsz, "arch_%x:%d", arch, nr);
        return;
    }
    char *name = seccomp_syscall_resolve_num_arch(sarch, nr);
    if (name) {
        (void)snprintf(out, outsz, "%s%s", prefix, name);
        free(name); /* allocated by libseccomp with malloc */
    } else {
        (void)snprintf(out, outsz, "%ssyscall_%d", prefix, nr);
    }
}
