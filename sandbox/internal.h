#ifndef PROCTOR_SANDBOX_INTERNAL_H
#define PROCTOR_SANDBOX_INTERNAL_H
/* Private to sandbox/: the plan the parent prepares for the box, the records the box sends
 * back, the cgroup and seccomp helpers. Nothing here is part of the public contract. */

#include <linux/filter.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "proctor/sandbox.h"

/* Box credentials: uid/gid 0 is the box's init (setup, reaping), 1000 runs the program. Both are
 * mapped to unprivileged host ids unique per slot: 0 -> base + 2*slot, 1000 -> base + 2*slot + 1.
 */
#define SBX__BOX_UID      1000
#define SBX__HOST_ID_BASE 100000
#define SBX__MAX_SLOT     32000

/* One step of building the new root, executed in order by the box init. Paths are absolute and
 * already point into the staging tree ("/newroot/...", "/oldroot/..."). */
typedef enum sbx__op_kind {
    SBX__OP_MKDIR,   /* a = path, mode */
    SBX__OP_FILE,    /* a = path, b = contents (may be NULL), len, mode */
    SBX__OP_SYMLINK, /* a = link path, b = target */
    SBX__OP_BIND,    /* a = source, b = target; flags below */
    SBX__OP_TMPFS,   /* a = target, b = mount data, flags: SBX__F_NOEXEC */
    SBX__OP_PROC     /* a = target */
} sbx__op_kind;

#define SBX__F_RO        1u  /* read-only bind */
#define SBX__F_OPTIONAL  2u  /* a missing source is skipped */
#define SBX__F_DEV       4u  /* device node bind: keep it usable (no nodev) */
#define SBX__F_NOEXEC    8u  /* add MS_NOEXEC */
#define SBX__F_REC       16u /* recursive bind */
#define SBX__F_NOREMOUNT 32u /* keep the source mount's flags (device nodes, masks) */

typedef struct sbx__op {
    sbx__op_kind kind;
    unsigned flags;
    const char *a;
    const char *b;
    size_t len;
    unsigned mode;
} sbx__op;

/* Failure stages reported by the box as {stage, errno}. */
typedef enum sbx__stage {
    SBX__ST_NONE = 0,
    SBX__ST_RELEASE,
    SBX__ST_SETID_INIT,
    SBX__ST_BIND_SOURCE,
    SBX__ST_MOUNT_PRIVATE,
    SBX__ST_MOUNT_BASE,
    SBX__ST_PIVOT_BASE,
    SBX__ST_OP,
    SBX__ST_PIVOT_ROOT,
    SBX__ST_REMOUNT_ROOT,
    SBX__ST_CGROUPNS,
    SBX__ST_HOSTNAME,
    SBX__ST_LOOPBACK,
    SBX__ST_SIGNALFD,
    SBX__ST_FORK,
    SBX__ST_STDIO,
    SBX__ST_RLIMIT,
    SBX__ST_SETGROUPS,
    SBX__ST_SETGID,
    SBX__ST_SETUID,
    SBX__ST_CAPS,
    SBX__ST_NNP,
    SBX__ST_CHDIR,
    SBX__ST_AFFINITY,
    SBX__ST_SECCOMP,
    SBX__ST_LISTENER,
    SBX__ST_EXEC,
    SBX__ST_COUNT
} sbx__stage;

const char *sbx__stage_name(int stage);

/* Records the box writes to the status pipe (each one write(2), below PIPE_BUF). */
typedef enum sbx__msg_kind {
    SBX__MSG_FAIL = 1,
    SBX__MSG_EXIT = 2
} sbx__msg_kind;

typedef struct sbx__msg {
    int32_t kind;      /* sbx__msg_kind */
    int32_t stage;     /* FAIL: sbx__stage */
    int32_t err;       /* FAIL: errno */
    int32_t detail;    /* FAIL at SBX__ST_OP: index of the op */
    int32_t status;    /* EXIT: wait status of the program */
    int32_t tmp_full;  /* EXIT: /tmp or /dev/shm had no free block or inode left */
    int64_t utime_us;  /* EXIT: rusage of the program and its reaped children */
    int64_t stime_us;  /* EXIT */
    int64_t maxrss_kb; /* EXIT */
} sbx__msg;

/* Fixed fd numbers inside the box after the init compacted its descriptors. */
enum {
    SBX__FD_RELEASE = 3, /* read end: one byte releases the box; EOF means the parent died */
    SBX__FD_STATUS,      /* write end of the status pipe */
    SBX__FD_EXEC,        /* write end of the exec pipe (CLOEXEC in the program: EOF = exec) */
    SBX__FD_SOCK,        /* unix socket: the program sends its seccomp listener here */
    SBX__FD_STDIN,
    SBX__FD_STDOUT,
    SBX__FD_STDERR,
    SBX__FD_COUNT_END /* first fd that is closed */
};

/* Everything the box needs, prepared by the parent before clone(); the box only reads it. */
typedef struct sbx__plan {
    const sbx__op *ops;
    size_t nops;
    const char *newroot; /* "/newroot" in the staging tmpfs */
    const char *chdir;   /* inside the box */
    char *const *argv;
    char *const *envp;
    char *const *exec_paths; /* NULL-terminated candidates for argv[0] */
    char *const *bind_srcs;  /* host paths the init opens (O_PATH) at fd SBX__FD_COUNT_END + i
                                while it still has the caller's file access */
    size_t nbind_srcs;
    const struct sock_fprog *filter; /* NULL: no seccomp */
    bool loopback;                   /* bring lo up */
    bool own_netns;                  /* the box got a new netns (else it joined one) */
    uint64_t rl_fsize;               /* bytes */
    uint64_t rl_nofile;
    uint64_t rl_stack; /* bytes */
    uint64_t rl_cpu_s; /* backstop */
    uint64_t rl_nproc; /* 0: not set (pids cgroup in force) */
    int cpu;           /* -1 none */
    bool unprivileged; /* single-id map (proctor not root): no setgroups, program stays box
                          root with every capability gone */
    int prog_uid;      /* SBX__BOX_UID, or 0 when unprivileged */
    int fds[SBX__FD_COUNT_END - SBX__FD_RELEASE]; /* parent-side numbers, in enum order */
} sbx__plan;

/** The box init: runs in the cloned child, never returns. Async-signal-safe code only. */
PR_NORETURN void sbx__box_main(const sbx__plan *plan);

/* ---- cgroups (cgroup.c) ---- */
typedef struct sbx__cg {
    int version; /* 0 none, 1 v1, 2 v2 */
    char *mem;   /* owned box directories; NULL when that controller is missing */
    char *pids;
    char *cpu;
    char *v2;
} sbx__cg;

int sbx__cg_global_init(pr_error *err);
void sbx__cg_global_cleanup(void);
/** "v2", "v1" or "none": what boxes get. */
const char *sbx__cg_kind(void);
bool sbx__cg_has_pids(void);
int sbx__cg_create(sbx__cg *cg, int slot, const sbx_limits *lim, pr_error *err);
/** v1: moves the calling thread into / out of the box cgroups around clone(). */
bool sbx__cg_can_enter(const sbx__cg *cg);
int sbx__cg_enter(const sbx__cg *cg, pr_error *err);
int sbx__cg_leave(const sbx__cg *cg);
int sbx__cg_attach(const sbx__cg *cg, pid_t pid, pr_error *err);
uint64_t sbx__cg_cpu_ns(const sbx__cg *cg);      /* UINT64_MAX when unknown */
uint64_t sbx__cg_mem_peak_kb(const sbx__cg *cg); /* 0 when unknown */
uint64_t sbx__cg_mem_now_kb(const sbx__cg *cg);  /* 0 when unknown */
uint64_t sbx__cg_oom_kills(const sbx__cg *cg);
/** SIGKILLs every task in the box cgroups (SIGCONT first). Returns how many were seen. */
int sbx__cg_kill_all(const sbx__cg *cg);
/** Kills leftovers and removes the box directories (retries while busy). */
void sbx__cg_destroy(sbx__cg *cg);

/* ---- seccomp (seccomp.c) ---- */
/** The compiled filter of a profile, compiled on first use and kept for the process lifetime.
 * Thread-safe. */
int sbx__seccomp_get(const struct sock_fprog **out, const char *profile, pr_error *err);
bool sbx__seccomp_profile_known(const char *profile);
void sbx__seccomp_cleanup(void);
/* For the build-time generator (sandbox/gen/bpfgen.c) and tests. */
size_t sbx__seccomp_nprofiles(void);
const char *sbx__seccomp_profile_name(size_t i);
int sbx__seccomp_compile(struct sock_fprog **out, size_t i, pr_error *err);
void sbx__seccomp_free(struct sock_fprog *prog);
/** Names a syscall number of an audit arch into out ("ptrace", "i386:mount", "syscall_999"). */
void sbx__seccomp_name(char *out, size_t outsz, uint32_t arch, int nr);

#endif
