/* The inside of a box: the init (pid 1 of the new PID namespace) and the program it forks.
 *
 * Everything in this file runs in a child cloned from a possibly multi-threaded process, so it
 * makes raw system calls only: no malloc, no stdio, no logging, no glibc wrappers that take
 * locks or talk to other threads (the set*id family broadcasts to every thread, so we call the
 * kernel directly). Failures are reported as {stage, errno} on the status pipe, then _exit. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <linux/securebits.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static PR_NORETURN void box_fail(int stage, int detail)
{
    sbx__msg m;
    memset(&m, 0, sizeof(m));
    m.kind = SBX__MSG_FAIL;
    m.stage = stage;
    m.err = errno;
    m.detail = detail;
    (void)!write(SBX__FD_STATUS, &m, sizeof(m));
    _exit(127);
}

/* Moves the parent-side fds to SBX__FD_RELEASE.. and closes every other descriptor the clone
 * inherited from the daemon (listening sockets, git pipes, log files). */
static void compact_fds(const sbx__plan *p)
{
    enum {
        N = SBX__FD_COUNT_END - SBX__FD_RELEASE
    };
    int tmp[N];
    int base = SBX__FD_COUNT_END;
    for (int i = 0; i < N; i++)
        if (p->fds[i] >= base)
            base = p->fds[i] + 1;
    for (int i = 0; i < N; i++) {
        tmp[i] = fcntl(p->fds[i], F_DUPFD_CLOEXEC, base);
        if (tmp[i] < 0)
            _exit(126); /* no status pipe yet to report on */
    }
    for (int i = 0; i < N; i++) {
        if (dup2(tmp[i], SBX__FD_RELEASE + i) < 0)
            _exit(126);
    }
    if (syscall(SYS_close_range, (unsigned)SBX__FD_COUNT_END, ~0U, 0) != 0) {
        for (int fd = SBX__FD_COUNT_END; fd < 65536; fd++)
            (void)close(fd);
    }
}

/* Handlers of the daemon must never run in the box, and SIG_IGN would survive execve. */
static void reset_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < 65; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP)
            (void)sigaction(sig, &sa, NULL);
    }
}

/* Mount flags of an existing mount that must be kept on a remount inside a user namespace
 * (the kernel refuses to clear locked nosuid/nodev/noexec/atime flags). */
static unsigned long locked_flags(const char *path)
{
    struct statfs sf;
    unsigned long f = 0;
    if (statfs(path, &sf) != 0)
        return 0;
    if (sf.f_flags & ST_NOSUID)
        f |= MS_NOSUID;
    if (sf.f_flags & ST_NODEV)
        f |= MS_NODEV;
    if (sf.f_flags & ST_NOEXEC)
        f |= MS_NOEXEC;
    if (sf.f_flags & ST_NOATIME)
        f |= MS_NOATIME;
    if (sf.f_flags & ST_NODIRATIME)
        f |= MS_NODIRATIME;
    if (sf.f_flags & ST_RELATIME)
        f |= MS_RELATIME;
    return f;
}

static void run_op(const sbx__op *op, int idx)
{
    switch (op->kind) {
    case SBX__OP_MKDIR:
        if (mkdir(op->a, op->mode) != 0 && errno != EEXIST)
            box_fail(SBX__ST_OP, idx);
        break;
    case SBX__OP_FILE: {
        int fd = open(op->a, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, op->mode);
        if (fd < 0)
            box_fail(SBX__ST_OP, idx);
        size_t off = 0;
        while (op->b && off < op->len) {
            ssize_t w = write(fd, op->b + off, op->len - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                box_fail(SBX__ST_OP, idx);
            off += (size_t)w;
        }
        (void)close(fd);
        break;
    }
    case SBX__OP_SYMLINK:
        if (symlink(op->b, op->a) != 0 && errno != EEXIST)
            box_fail(SBX__ST_OP, idx);
        break;
    case SBX__OP_BIND: {
        unsigned long bf = MS_BIND | ((op->flags & SBX__F_REC) ? MS_REC : 0);
        if (mount(op->a, op->b, NULL, bf, NULL) != 0) {
            if ((op->flags & SBX__F_OPTIONAL) && (errno == ENOENT || errno == ENOTDIR))
                break;
            box_fail(SBX__ST_OP, idx);
        }
        if (op->flags & SBX__F_NOREMOUNT)
            break;
        unsigned long rf = MS_BIND | MS_REMOUNT | MS_NOSUID | locked_flags(op->b);
        if (!(op->flags & SBX__F_DEV))
            rf |= MS_NODEV;
        if (op->flags & SBX__F_RO)
            rf |= MS_RDONLY;
        if (op->flags & SBX__F_NOEXEC)
            rf |= MS_NOEXEC;
        if (mount(NULL, op->b, NULL, rf, NULL) != 0)
            box_fail(SBX__ST_OP, idx);
        break;
    }
    case SBX__OP_TMPFS: {
        unsigned long f = MS_NOSUID | MS_NODEV | ((op->flags & SBX__F_NOEXEC) ? MS_NOEXEC : 0);
        if (mount("tmpfs", op->a, "tmpfs", f, op->b) != 0)
            box_fail(SBX__ST_OP, idx);
        break;
    }
    case SBX__OP_PROC:
        /* hidepid=2: the program (uid 1000) cannot see init's (uid 0) /proc entries. */
        if (mount("proc", op->a, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2") != 0)
            box_fail(SBX__ST_OP, idx);
        break;
    }
}

static void build_root(const sbx__plan *p)
{
    /* Nothing we mount may propagate back to the host. */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        box_fail(SBX__ST_MOUNT_PRIVATE, 0);
    /* A staging tmpfs: after the first pivot the host tree is at /oldroot (so binds of paths
     * anywhere, /tmp included, still resolve) and the box root is built at /newroot. */
    if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,nr_inodes=16,mode=0700") !=
        0)
        box_fail(SBX__ST_MOUNT_BASE, 0);
    if (chdir("/tmp") != 0 || mkdir("oldroot", 0700) != 0 || mkdir("newroot", 0755) != 0)
        box_fail(SBX__ST_MOUNT_BASE, 1);
    if (syscall(SYS_pivot_root, "/tmp", "/tmp/oldroot") != 0)
        box_fail(SBX__ST_PIVOT_BASE, 0);
    if (chdir("/") != 0)
        box_fail(SBX__ST_PIVOT_BASE, 1);
    for (size_t i = 0; i < p->nops; i++)
        run_op(&p->ops[i], (int)i);
    /* Enter the new root and drop the staging tree with the host root under it. */
    if (chdir(p->newroot) != 0)
        box_fail(SBX__ST_PIVOT_ROOT, 0);
    if (syscall(SYS_pivot_root, ".", ".") != 0)
        box_fail(SBX__ST_PIVOT_ROOT, 1);
    if (umount2(".", MNT_DETACH) != 0)
        box_fail(SBX__ST_PIVOT_ROOT, 2);
    if (chdir("/") != 0)
        box_fail(SBX__ST_PIVOT_ROOT, 3);
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0)
        box_fail(SBX__ST_REMOUNT_ROOT, 0);
}

static void loopback_up(void)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        box_fail(SBX__ST_LOOPBACK, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, "lo", 3);
    ifr.ifr_flags = IFF_UP | IFF_RUNNING;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0)
        box_fail(SBX__ST_LOOPBACK, 1);
    (void)close(s);
}

static void set_rlimit(int res, uint64_t v)
{
    struct rlimit rl;
    rl.rlim_cur = (rlim_t)v;
    rl.rlim_max = (rlim_t)v;
    if (setrlimit(res, &rl) != 0)
        box_fail(SBX__ST_RLIMIT, res);
}

static int send_fd(int sock, int fd)
{
    char dummy = 'L';
    struct iovec iov = { .iov_base = &dummy, .iov_len = 1 };
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof(u));
    struct msghdr msg;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = u.buf;
    msg.msg_controllen = sizeof(u.buf);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    return sendmsg(sock, &msg, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

/* The program's process (pid 2 in the box): drop everything, then execve. */
static PR_NORETURN void program_main(const sbx__plan *p)
{
    sigset_t none;
    sigemptyset(&none);
    /* Signal dispositions were default in init except what we set: reset the mask. */
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
    if (setsid() < 0)
        box_fail(SBX__ST_STDIO, 0);
    if (dup2(SBX__FD_STDIN, 0) < 0 || dup2(SBX__FD_STDOUT, 1) < 0 || dup2(SBX__FD_STDERR, 2) < 0)
        box_fail(SBX__ST_STDIO, 1);
    (void)close(SBX__FD_RELEASE);
    (void)close(SBX__FD_STDIN);
    (void)close(SBX__FD_STDOUT);
    (void)close(SBX__FD_STDERR);

    if (p->cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(p->cpu, &set);
        if (sched_setaffinity(0, sizeof(set), &set) != 0)
            box_fail(SBX__ST_AFFINITY, 0);
    }
    set_rlimit(RLIMIT_CORE, 0);
    set_rlimit(RLIMIT_FSIZE, p->rl_fsize);
    set_rlimit(RLIMIT_NOFILE, p->rl_nofile);
    set_rlimit(RLIMIT_STACK, p->rl_stack);
    set_rlimit(RLIMIT_CPU, p->rl_cpu_s);
    set_rlimit(RLIMIT_MSGQUEUE, 0);
    set_rlimit(RLIMIT_MEMLOCK, 0);
    if (p->rl_nproc)
        set_rlimit(RLIMIT_NPROC, p->rl_nproc);

    /* Empty the bounding set while we still hold CAP_SETPCAP, so nothing exec'd can regain a
     * capability, then switch to the box user, which clears permitted/effective. */
    for (int cap = 0; cap <= 63; cap++) {
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
            box_fail(SBX__ST_CAPS, cap);
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
        box_fail(SBX__ST_CAPS, 100);
    /* Root of the box must not get capabilities back from an execve (matters when the program
     * stays uid 0: proctor unprivileged); locked so the program cannot undo it. */
    if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_KEEP_CAPS_LOCKED, 0,
              0, 0) != 0)
        box_fail(SBX__ST_CAPS, 102);
    int id = p->prog_uid;
    if (syscall(SYS_setresgid, id, id, id) != 0)
        box_fail(SBX__ST_SETGID, 0);
    if (syscall(SYS_setresuid, id, id, id) != 0)
        box_fail(SBX__ST_SETUID, 0);
    struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof(data));
    if (syscall(SYS_capset, &hdr, data) != 0)
        box_fail(SBX__ST_CAPS, 101);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        box_fail(SBX__ST_NNP, 0);
    if (chdir(p->chdir) != 0)
        box_fail(SBX__ST_CHDIR, 0);
    /* Nothing but stdio survives the exec; the status and exec pipes stay open until then. */
    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
        box_fail(SBX__ST_STDIO, 2);

    if (p->filter) {
        /* The filter's "forbidden" action is SECCOMP_RET_USER_NOTIF: the listener goes to the
         * monitor outside the box, which names the call and ends the box. Everything from here
         * to execve (sendmsg, close, execve) is allowed by every profile. */
        long lfd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
                           p->filter);
        if (lfd < 0)
            box_fail(SBX__ST_SECCOMP, 0);
        if (send_fd(SBX__FD_SOCK, (int)lfd) != 0)
            box_fail(SBX__ST_LISTENER, 0);
        (void)close((int)lfd);
    }
    (void)close(SBX__FD_SOCK);

    int last = ENOENT;
    for (size_t i = 0; p->exec_paths[i]; i++) {
        execve(p->exec_paths[i], p->argv, p->envp);
        if (errno != ENOENT && errno != ENOTDIR)
            last = errno;
    }
    errno = last;
    box_fail(SBX__ST_EXEC, 0);
}

/* We share the pages of the (possibly large) process that cloned us copy-on-write, so a
 * memory-cgroup OOM kill could pick us over the program. Lowering our own score needs
 * CAP_SYS_RESOURCE on the host, so raise the program's instead, once it has exec'd (the kernel
 * copies a score to every process sharing our memory, which the program did until then). The
 * program may lower it back to 0; then an OOM kill of the init still ends the box as MLE. */
static void prefer_oom_victim(int pid)
{
    char path[40] = "/proc/";
    size_t n = 6;
    char digits[12];
    int nd = 0;
    do {
        digits[nd++] = (char)('0' + pid % 10);
        pid /= 10;
    } while (pid > 0 && nd < 11);
    while (nd > 0)
        path[n++] = digits[--nd];
    memcpy(path + n, "/oom_score_adj", 15);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)!write(fd, "1000", 4);
        (void)close(fd);
    }
}

static int g_sfd = -1; /* read by the program before it closes its copy */

static int program_entry(void *arg)
{
    (void)close(g_sfd);
    program_main((const sbx__plan *)arg);
}

static int fs_full(const char *path)
{
    struct statfs sf;
    if (statfs(path, &sf) != 0)
        return 0;
    return sf.f_bavail == 0 || (sf.f_files > 0 && sf.f_ffree == 0);
}

PR_NORETURN void sbx__box_main(const sbx__plan *p)
{
    reset_signals();
    compact_fds(p);
    /* Wait for the parent: it writes our uid/gid maps and puts us into the box cgroups. */
    char b = 0;
    ssize_t r;
    do {
        r = read(SBX__FD_RELEASE, &b, 1);
    } while (r < 0 && errno == EINTR);
    if (r != 1)
        _exit(125); /* the parent died or gave up */
    /* Bind sources are opened while our file access is still the caller's (a source below a
     * directory only the caller may search stays reachable); mounts use them through
     * /oldroot/proc/self/fd/N. */
    for (size_t i = 0; i < p->nbind_srcs; i++) {
        struct open_how how;
        memset(&how, 0, sizeof(how));
        how.flags = O_PATH | O_CLOEXEC;
        how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
        int fd = (int)syscall(SYS_openat2, AT_FDCWD, p->bind_srcs[i], &how, sizeof(how));
        if (fd != SBX__FD_COUNT_END + (int)i)
            box_fail(SBX__ST_BIND_SOURCE, (int)i);
    }
    /* Until now our kernel uid was the parent's; become the box root for real. The parent left
     * setgroups allowed so that we can drop the host's supplementary groups here. */
    if (!p->unprivileged && syscall(SYS_setgroups, 0, NULL) != 0)
        box_fail(SBX__ST_SETGROUPS, 0);
    if (syscall(SYS_setresgid, 0, 0, 0) != 0 || syscall(SYS_setresuid, 0, 0, 0) != 0)
        box_fail(SBX__ST_SETID_INIT, 0);
    /* Not dumpable: the program (another uid) can neither ptrace us nor open our /proc files. */
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

    build_root(p);
    if (p->nbind_srcs)
        (void)syscall(SYS_close_range, (unsigned)SBX__FD_COUNT_END, ~0U, 0);
    /* The box cgroup is the root of the box's cgroup namespace. */
    if (unshare(CLONE_NEWCGROUP) != 0)
        box_fail(SBX__ST_CGROUPNS, 0);
    if (sethostname("box", 3) != 0)
        box_fail(SBX__ST_HOSTNAME, 0);
    if (p->loopback && p->own_netns)
        loopback_up();

    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &chld, NULL) != 0)
        box_fail(SBX__ST_SIGNALFD, 0);
    int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0)
        box_fail(SBX__ST_SIGNALFD, 1);

    /* The program shares our memory until it execs (CLONE_VM | CLONE_VFORK, as posix_spawn
     * does): no page tables to copy, no copy-on-write faults, and we sleep until the exec. It
     * runs on its own stack; per-process state (credentials, rlimits, fds, signal handlers,
     * seccomp) is its own. */
    const size_t stack_size = (size_t)256 * 1024;
    void *stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED)
        box_fail(SBX__ST_FORK, 0);
    g_sfd = sfd;
    int pid = clone(program_entry, (char *)stack + stack_size, CLONE_VM | CLONE_VFORK | SIGCHLD,
                    (void *)p);
    if (pid < 0)
        box_fail(SBX__ST_FORK, 1);
    (void)munmap(stack, stack_size);
    prefer_oom_victim(pid);
    (void)close(SBX__FD_EXEC);
    (void)close(SBX__FD_SOCK);
    (void)close(SBX__FD_STDIN);
    (void)close(SBX__FD_STDOUT);
    (void)close(SBX__FD_STDERR);

    /* Reap everything; when the program itself ends, report and exit: the kernel then kills
     * every process left in the PID namespace (daemons included). */
    for (;;) {
        struct pollfd pf[2] = { { SBX__FD_RELEASE, POLLIN, 0 }, { sfd, POLLIN, 0 } };
        int n = poll(pf, 2, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || (pf[0].revents & (POLLIN | POLLHUP | POLLERR)))
            _exit(124); /* parent gone or asked us to end the box */
        struct signalfd_siginfo si;
        while (read(sfd, &si, sizeof(si)) > 0) {
        }
        for (;;) {
            int st = 0;
            struct rusage ru;
            memset(&ru, 0, sizeof(ru));
            pid_t w = wait4(-1, &st, WNOHANG | __WALL, &ru);
            if (w <= 0)
                break;
            if (w == pid) {
                sbx__msg m;
                memset(&m, 0, sizeof(m));
                m.kind = SBX__MSG_EXIT;
                m.status = st;
                m.utime_us = (int64_t)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec;
                m.stime_us = (int64_t)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
                m.maxrss_kb = ru.ru_maxrss;
                m.tmp_full = fs_full("/tmp") || fs_full("/dev/shm");
                (void)!write(SBX__FD_STATUS, &m, sizeof(m));
                _exit(0);
            }
        }
    }
}

const char *sbx__stage_name(int stage)
{
    static const char *const names[SBX__ST_COUNT] = {
        "none",          "release",          "setid-init", "bind-source",
        "mount-private", "mount-base",       "pivot-base", "root-op",
        "pivot-root",    "remount-root",     "cgroupns",   "hostname",
        "loopback",      "signalfd",         "fork",       "stdio",
        "rlimit",        "setgroups",        "setgid",     "setuid",
        "capabilities",  "no-new-privs",     "chdir",      "affinity",
        "seccomp",       "seccomp-listener", "exec"
    };
    if (stage >= 0 && stage < SBX__ST_COUNT)
        return names[stage];
    return "unknown";
}
