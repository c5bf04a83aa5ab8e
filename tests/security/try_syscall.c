/* try_syscall ACTION [ARG...]: attempts one forbidden system call or action from inside the
 * sandbox and prints "ACTION: OK" (it worked) or "ACTION: ERR ENAME" (it failed with that errno),
 * then exits 0. The battery's table (cases.tsv) says which outcomes are acceptable; a seccomp kill
 * shows up as verdict SV instead of a printed line. Modelled on bubblewrap's try-syscall.c.
 *
 * Every action is chosen so that it is harmless even if it succeeds (it writes back current
 * values, unloads nothing that is loaded, never connects anywhere unless the box has no network
 * interface but lo). Never run this outside the box. Exit 2: unknown action or bad usage. */
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/kexec.h>
#include <linux/perf_event.h>
#include <linux/reboot.h>
#include <linux/sched.h>
#include <linux/vm_sockets.h>
#include <mqueue.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/io.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/quota.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "progs/sec.h"

static const char *g_action;

static int report(long rc)
{
    sec_report(g_action, rc);
    return 0;
}

/* The box must have no interface but lo before any outbound attempt is made: if it has, print
 * UNSAFE and refuse (so a broken sandbox can never make this program reach the network). */
static int only_loopback(void)
{
    char line[512];
    int n = 0, bad = 0;
    FILE *f = fopen("/proc/net/dev", "re");
    if (!f) {
        printf("%s: UNSAFE cannot read /proc/net/dev (%s)\n", g_action, sec_errname(errno));
        return 0;
    }
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        char *p = line;
        if (++n <= 2 || !colon)
            continue;
        while (*p == ' ')
            p++;
        *colon = '\0';
        if (strcmp(p, "lo") != 0) {
            printf("%s: UNSAFE interface %s present, not connecting\n", g_action, p);
            bad = 1;
        }
    }
    (void)fclose(f);
    return !bad;
}

static int connect_timed(int fd, const struct sockaddr *sa, socklen_t len)
{
    struct pollfd pfd = { .fd = fd, .events = POLLOUT };
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (connect(fd, sa, len) == 0)
        return 0;
    if (errno != EINPROGRESS)
        return -1;
    if (poll(&pfd, 1, 1000) <= 0) {
        errno = ETIMEDOUT;
        return -1;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
        return -1;
    if (soerr) {
        errno = soerr;
        return -1;
    }
    return 0;
}

static int do_connect4(const char *addr, const char *port, int type)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port)) };
    int fd;
    if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
        return 2;
    if (!only_loopback())
        return 0;
    fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return report(-1);
    if (type == SOCK_DGRAM)
        return report(sendto(fd, "x", 1, 0, (struct sockaddr *)&sin, sizeof sin));
    return report(connect_timed(fd, (struct sockaddr *)&sin, sizeof sin));
}

static int do_connect6(const char *addr, const char *port)
{
    struct sockaddr_in6 sin = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)atoi(port)) };
    int fd;
    if (inet_pton(AF_INET6, addr, &sin.sin6_addr) != 1)
        return 2;
    if (!only_loopback())
        return 0;
    fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return report(-1);
    return report(connect_timed(fd, (struct sockaddr *)&sin, sizeof sin));
}

static int do_unix_abstract(const char *name)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    size_t n = strlen(name);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return report(-1);
    if (n + 1 > sizeof sun.sun_path)
        return 2;
    memcpy(sun.sun_path + 1, name, n);
    return report(connect(fd, (struct sockaddr *)&sun,
                          (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n)));
}

/* The pid of a process outside "us": the parent if there is one, else the namespace's init
 * when that is not us. 0 when there is none. */
static pid_t other_pid(void)
{
    pid_t pp = getppid();
    if (pp > 0)
        return pp;
    return getpid() != 1 ? 1 : 0;
}

static int do_process_vm_readv(void)
{
    char buf[16];
    struct iovec local = { buf, sizeof buf };
    struct iovec remote = { (void *)0x400000, sizeof buf };
    pid_t t = other_pid();
    if (!t) {
        printf("%s: ERR ESRCH (no other process)\n", g_action);
        return 0;
    }
    return report(process_vm_readv(t, &local, 1, &remote, 1, 0));
}

static int do_proc_mem(void)
{
    char path[64];
    pid_t t = other_pid();
    if (!t) {
        printf("%s: ERR ESRCH (no other process)\n", g_action);
        return 0;
    }
    (void)snprintf(path, sizeof path, "/proc/%d/mem", (int)t);
    return report(open(path, O_RDWR | O_CLOEXEC));
}

static int do_ptrace(pid_t t)
{
    long rc;
    if (t <= 0 || t == getpid()) {
        printf("%s: ERR ESRCH (target %d is us or absent)\n", g_action, (int)t);
        return 0;
    }
    rc = ptrace(PTRACE_ATTACH, t, NULL, NULL);
    if (rc == 0) {
        (void)waitpid(t, NULL, __WALL);
        (void)ptrace(PTRACE_DETACH, t, NULL, NULL);
    }
    return report(rc);
}

static int do_clone_newuser(void)
{
    long pid = syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), NULL, NULL, NULL, 0);
    if (pid == 0)
        _exit(0);
    if (pid > 0)
        (void)waitpid((pid_t)pid, NULL, 0);
    return report(pid);
}

static int do_clone3_newuser(void)
{
    struct clone_args ca;
    long pid;
    memset(&ca, 0, sizeof ca);
    ca.flags = CLONE_NEWUSER;
    ca.exit_signal = SIGCHLD;
    pid = syscall(SYS_clone3, &ca, sizeof ca);
    if (pid == 0)
        _exit(0);
    if (pid > 0)
        (void)waitpid((pid_t)pid, NULL, 0);
    return report(pid);
}

static int do_int80(void)
{
#if defined(__x86_64__)
    long ret = 20; /* i386 __NR_getpid */
    __asm__ volatile("int $0x80" : "+a"(ret) : : "memory");
    printf("%s: OK ret=%ld\n", g_action, ret);
    return 0;
#else
    printf("%s: SKIP not x86_64\n", g_action);
    return 0;
#endif
}

static int do_rewrite(const char *path)
{
    /* Write back exactly what is there (harmless even if it works). */
    char buf[4096];
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        n = 0;
        buf[0] = '\n';
        n = 1;
    } else {
        n = read(fd, buf, sizeof buf);
        (void)close(fd);
        if (n <= 0) {
            buf[0] = '\n';
            n = 1;
        }
    }
    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return report(-1);
    return report(write(fd, buf, (size_t)n));
}

static int do_flock(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return report(-1);
    return report(flock(fd, LOCK_EX | LOCK_NB));
}

static int do_getlk(const char *path)
{
    struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET };
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return report(-1);
    if (fcntl(fd, F_GETLK, &fl) < 0)
        return report(-1);
    printf("%s: %s\n", g_action, fl.l_type == F_UNLCK ? "UNLOCKED" : "SEES_FOREIGN_LOCK");
    return 0;
}

/* Other ways to observe a lock held outside the box: OFD getlk, and trying to take a read lock
 * (EAGAIN/EACCES when the host holds a write lock). */
static int do_lockprobe(const char *path, int cmd)
{
    struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET };
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return report(-1);
    if (fcntl(fd, cmd, &fl) < 0)
        return report(-1);
    if (cmd == F_OFD_GETLK)
        printf("%s: %s\n", g_action, fl.l_type == F_UNLCK ? "UNLOCKED" : "SEES_FOREIGN_LOCK");
    else
        printf("%s: OK\n", g_action);
    return 0;
}

static int do_chroot_escape(void)
{
    int i;
    (void)mkdir("/tmp/jail", 0755);
    if (chroot("/tmp/jail") < 0)
        return report(-1);
    for (i = 0; i < 64; i++)
        (void)chdir("..");
    if (chroot(".") < 0)
        return report(-1);
    /* We are somewhere: the box root at best. Host paths must still be invisible. */
    if (access("/work/main", F_OK) == 0 || access("/root/.bashrc", F_OK) == 0 ||
        access("/home", F_OK) == 0)
        printf("%s: OK HOST_VISIBLE\n", g_action);
    else
        printf("%s: OK host still invisible\n", g_action);
    return 0;
}

static int do_tiocsti(int fd)
{
    char c = '#';
    return report(ioctl(fd, TIOCSTI, &c));
}

int main(int argc, char **argv)
{
    const char *a;
    if (argc < 2) {
        fprintf(stderr, "usage: try_syscall ACTION [ARG...]\n");
        return 2;
    }
    a = g_action = argv[1];
    errno = 0;

    if (!strcmp(a, "mount"))
        return report(mount("none", "/tmp", "tmpfs", 0, NULL));
    if (!strcmp(a, "mount_proc"))
        return report(mount("proc", "/tmp", "proc", 0, NULL));
    if (!strcmp(a, "remount_rw"))
        return report(mount(NULL, "/usr", NULL, MS_REMOUNT | MS_BIND, NULL));
    if (!strcmp(a, "umount"))
        return report(umount2("/proc", MNT_DETACH));
    if (!strcmp(a, "pivot_root"))
        return report(syscall(SYS_pivot_root, "/tmp", "/tmp"));
    if (!strcmp(a, "chroot"))
        return report(chroot("/tmp"));
    if (!strcmp(a, "chroot_escape"))
        return do_chroot_escape();
    if (!strcmp(a, "setns")) {
        int fd = open("/proc/1/ns/mnt", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            fd = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return report(-1);
        return report(setns(fd, 0));
    }
    if (!strcmp(a, "unshare_user"))
        return report(unshare(CLONE_NEWUSER));
    if (!strcmp(a, "unshare_ns"))
        return report(unshare(CLONE_NEWNS));
    if (!strcmp(a, "unshare_net"))
        return report(unshare(CLONE_NEWNET));
    if (!strcmp(a, "clone_newuser"))
        return do_clone_newuser();
    if (!strcmp(a, "clone3_newuser"))
        return do_clone3_newuser();
    if (!strcmp(a, "connect4") && argc == 4)
        return do_connect4(argv[2], argv[3], SOCK_STREAM);
    if (!strcmp(a, "udp4") && argc == 4)
        return do_connect4(argv[2], argv[3], SOCK_DGRAM);
    if (!strcmp(a, "connect6") && argc == 4)
        return do_connect6(argv[2], argv[3]);
    if (!strcmp(a, "tcp_local") && argc == 3) {
        /* Loopback inside the box's own netns: a port the host listens on must be absent. */
        struct sockaddr_in sin = { .sin_family = AF_INET,
                                   .sin_port = htons((uint16_t)atoi(argv[2])) };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd < 0)
            return report(-1);
        return report(connect_timed(fd, (struct sockaddr *)&sin, sizeof sin));
    }
    if (!strcmp(a, "unix_abstract") && argc == 3)
        return do_unix_abstract(argv[2]);
    if (!strcmp(a, "ifaces")) {
        /* Lists the interfaces from /proc/net/dev (netlink may be denied); the table requires
         * lo alone. */
        char line[512];
        int n = 0;
        FILE *f = fopen("/proc/net/dev", "re");
        if (!f)
            return report(-1);
        while (fgets(line, sizeof line, f)) {
            char *p = line, *colon = strchr(line, ':');
            if (++n <= 2 || !colon)
                continue;
            while (*p == ' ')
                p++;
            *colon = '\0';
            printf("iface %s\n", p);
        }
        (void)fclose(f);
        return report(0);
    }
    if (!strcmp(a, "vsock"))
        return report(socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!strcmp(a, "raw"))
        return report(socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP));
    if (!strcmp(a, "packet"))
        return report(socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL)));
    if (!strcmp(a, "netlink"))
        return report(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (!strcmp(a, "netlink_audit"))
        return report(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT));
    if (!strcmp(a, "io_uring_setup")) {
        struct io_uring_params p;
        memset(&p, 0, sizeof p);
        return report(syscall(SYS_io_uring_setup, 4, &p));
    }
    if (!strcmp(a, "bpf")) {
        union bpf_attr attr;
        memset(&attr, 0, sizeof attr);
        attr.map_type = BPF_MAP_TYPE_ARRAY;
        attr.key_size = 4;
        attr.value_size = 4;
        attr.max_entries = 1;
        return report(syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr));
    }
    if (!strcmp(a, "userfaultfd"))
        return report(syscall(SYS_userfaultfd, O_CLOEXEC));
    if (!strcmp(a, "keyctl"))
        return report(syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -4 /* user */, 1));
    if (!strcmp(a, "add_key"))
        return report(syscall(SYS_add_key, "user", "proctor-sec", "leak", 4, -4));
    if (!strcmp(a, "perf_event_open")) {
        struct perf_event_attr pe;
        memset(&pe, 0, sizeof pe);
        pe.type = PERF_TYPE_SOFTWARE;
        pe.size = sizeof pe;
        pe.config = PERF_COUNT_SW_CPU_CLOCK;
        pe.disabled = 1;
        return report(syscall(SYS_perf_event_open, &pe, 0, -1, -1, 0));
    }
    if (!strcmp(a, "personality_rie")) {
        int rc = personality(READ_IMPLIES_EXEC);
        if (rc >= 0 && !(personality(0xffffffff) & READ_IMPLIES_EXEC)) {
            printf("%s: ERR ignored\n", a);
            return 0;
        }
        return report(rc);
    }
    if (!strcmp(a, "personality_norandom"))
        return report(personality(ADDR_NO_RANDOMIZE));
    if (!strcmp(a, "personality_query"))
        return report(personality(0xffffffff));
    if (!strcmp(a, "clock_settime")) {
        struct timespec ts;
        (void)clock_gettime(CLOCK_REALTIME, &ts);
        return report(clock_settime(CLOCK_REALTIME, &ts));
    }
    if (!strcmp(a, "settimeofday")) {
        struct timeval tv;
        (void)gettimeofday(&tv, NULL);
        /* The raw call: glibc implements settimeofday() with clock_settime(). */
        return report(syscall(SYS_settimeofday, &tv, NULL));
    }
    if (!strcmp(a, "adjtimex")) {
        struct timex tx;
        memset(&tx, 0, sizeof tx);
        if (adjtimex(&tx) < 0)
            return report(-1);
        tx.modes = ADJ_STATUS; /* writes back the current status */
        return report(adjtimex(&tx));
    }
    if (!strcmp(a, "kexec_load"))
        return report(syscall(SYS_kexec_load, 0UL, 0UL, NULL, (unsigned long)KEXEC_ON_CRASH));
    if (!strcmp(a, "kexec_file_load"))
        return report(syscall(SYS_kexec_file_load, -1, -1, 0UL, "",
                              (unsigned long)(KEXEC_FILE_UNLOAD | KEXEC_FILE_ON_CRASH)));
    if (!strcmp(a, "init_module"))
        return report(syscall(SYS_init_module, NULL, 0UL, ""));
    if (!strcmp(a, "finit_module"))
        return report(syscall(SYS_finit_module, -1, "", 0));
    if (!strcmp(a, "delete_module"))
        return report(syscall(SYS_delete_module, "proctor_no_such_module", O_NONBLOCK));
    if (!strcmp(a, "reboot"))
        return report(syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
                              LINUX_REBOOT_CMD_CAD_OFF, NULL));
    if (!strcmp(a, "swapon"))
        return report(swapon("/tmp/proctor-no-swap", 0));
    if (!strcmp(a, "swapoff"))
        return report(swapoff("/tmp/proctor-no-swap"));
    if (!strcmp(a, "syslog")) {
        static char buf[4096];
        return report(klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, sizeof buf));
    }
    if (!strcmp(a, "acct"))
        return report(acct("/tmp/proctor-acct"));
    if (!strcmp(a, "quotactl"))
        return report(quotactl(QCMD(Q_QUOTAOFF, USRQUOTA), "/dev/null", 0, NULL));
    if (!strcmp(a, "sethostname"))
        return report(sethostname("proctor-pwned", 13));
    if (!strcmp(a, "setdomainname"))
        return report(setdomainname("proctor-pwned", 13));
    if (!strcmp(a, "ptrace_init"))
        return do_ptrace(1);
    if (!strcmp(a, "ptrace_parent"))
        return do_ptrace(getppid());
    if (!strcmp(a, "process_vm_readv"))
        return do_process_vm_readv();
    if (!strcmp(a, "proc_mem"))
        return do_proc_mem();
    if (!strcmp(a, "kill_init")) {
        if (getpid() == 1) {
            printf("%s: ERR ESRCH (we are init)\n", a);
            return 0;
        }
        return report(kill(1, SIGKILL));
    }
    if (!strcmp(a, "mknod"))
        return report(mknod("/tmp/mem", S_IFCHR | 0600, makedev(1, 1)));
    if (!strcmp(a, "mknod_blk"))
        return report(mknod("/tmp/sda", S_IFBLK | 0600, makedev(8, 0)));
    if (!strcmp(a, "tiocsti") && argc == 3)
        return do_tiocsti(atoi(argv[2]));
    if (!strcmp(a, "tcsets") && argc == 3) {
        /* Turns echo off on an inherited terminal: it belongs to the runner, not the box. */
        struct termios t;
        int fd = atoi(argv[2]);
        if (tcgetattr(fd, &t) < 0)
            return report(-1);
        t.c_lflag &= ~(tcflag_t)(ECHO | ICANON);
        return report(tcsetattr(fd, TCSANOW, &t));
    }
    if (!strcmp(a, "tioclinux") && argc == 3) {
        char sub = 3; /* TIOCL_PASTESEL */
        return report(ioctl(atoi(argv[2]), TIOCLINUX, &sub));
    }
    if (!strcmp(a, "shm_host") && argc == 3)
        return report(shmget((key_t)strtol(argv[2], NULL, 0), 0, 0));
    if (!strcmp(a, "mq_open")) {
        struct mq_attr at = { .mq_maxmsg = 4, .mq_msgsize = 64 };
        return report(mq_open("/proctor-sec", O_CREAT | O_RDWR | O_CLOEXEC, 0600, &at));
    }
    if (!strcmp(a, "affinity_all")) {
        /* Re-pin to every CPU; then report how many CPUs we may really run on. */
        cpu_set_t set;
        long rc;
        CPU_ZERO(&set);
        for (int c = 0; c < CPU_SETSIZE; c++)
            CPU_SET(c, &set);
        rc = sched_setaffinity(0, sizeof set, &set);
        if (sched_getaffinity(0, sizeof set, &set) == 0)
            printf("%s: cpus=%d\n", a, CPU_COUNT(&set));
        return report(rc);
    }
    if (!strcmp(a, "setpriority_neg"))
        return report(setpriority(PRIO_PROCESS, 0, -10));
    if (!strcmp(a, "sched_fifo")) {
        struct sched_param sp = { .sched_priority = 1 };
        return report(sched_setscheduler(0, SCHED_FIFO, &sp));
    }
    if (!strcmp(a, "ioprio_rt"))
        return report(syscall(SYS_ioprio_set, 1 /* WHO_PROCESS */, 0, (1 << 13) | 0));
    if (!strcmp(a, "flock") && argc == 3)
        return do_flock(argv[2]);
    if (!strcmp(a, "getlk") && argc == 3)
        return do_getlk(argv[2]);
    if (!strcmp(a, "ofd_getlk") && argc == 3)
        return do_lockprobe(argv[2], F_OFD_GETLK);
    if (!strcmp(a, "setlk_rd") && argc == 3)
        return do_lockprobe(argv[2], F_SETLK);
    if (!strcmp(a, "ofd_setlk_rd") && argc == 3)
        return do_lockprobe(argv[2], F_OFD_SETLK);
    if (!strcmp(a, "lease") && argc == 3) {
        int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return report(-1);
        return report(fcntl(fd, F_SETLEASE, F_RDLCK));
    }
    if (!strcmp(a, "open_by_handle_at")) {
        struct {
            struct file_handle fh;
            unsigned char pad[128];
        } h;
        memset(&h, 0, sizeof h);
        h.fh.handle_bytes = 8;
        h.fh.handle_type = 1;
        return report(syscall(SYS_open_by_handle_at, AT_FDCWD, &h.fh, O_RDONLY));
    }
    if (!strcmp(a, "iopl"))
        return report(iopl(3));
    if (!strcmp(a, "ioperm"))
        return report(ioperm(0x80, 1, 1));
    if (!strcmp(a, "vhangup"))
        return report(vhangup());
    if (!strcmp(a, "int80"))
        return do_int80();
    if (!strcmp(a, "x32"))
        return report(syscall(0x40000000 | SYS_getpid));
    if (!strcmp(a, "rewrite") && argc == 3)
        return do_rewrite(argv[2]);
    if (!strcmp(a, "write") && argc == 3) {
        int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
            return report(-1);
        return report(write(fd, "proctor-sec\n", 12));
    }
    if (!strcmp(a, "open") && argc == 3)
        return report(open(argv[2], O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
    if (!strcmp(a, "mkfifo") && argc == 3)
        return report(mkfifo(argv[2], 0666));
    if (!strcmp(a, "reopen_rw") && argc == 3) {
        /* Reopen an inherited fd through /proc/self/fd with more access than it was given. */
        char path[64];
        (void)snprintf(path, sizeof path, "/proc/self/fd/%d", atoi(argv[2]));
        return report(open(path, O_RDWR | O_CLOEXEC));
    }
    if (!strcmp(a, "special_files")) {
        /* Leaves setuid/setgid executables, a FIFO and a socket in the work dir for the host. */
        int fd = open("/box/suid", O_WRONLY | O_CREAT | O_CLOEXEC, 0755);
        struct sockaddr_un sun = { .sun_family = AF_UNIX, .sun_path = "/box/sock" };
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0)
            (void)close(fd);
        (void)chmod("/box/suid", 06755);
        if (s >= 0)
            (void)bind(s, (struct sockaddr *)&sun, sizeof sun);
        (void)mkfifo("/box/fifo", 0666); /* last: the box may be killed for it */
        return report(0);
    }
    if (!strcmp(a, "special_files_deep") && argc == 3) {
        /* The same, below N nested directories (a bounded clean-up walk must not miss it). */
        int n = atoi(argv[2]), fd;
        if (chdir("/box") != 0)
            return report(-1);
        for (int i = 0; i < n; i++)
            if (mkdir("d", 0755) != 0 || chdir("d") != 0)
                return report(-1);
        fd = open("suid", O_WRONLY | O_CREAT | O_CLOEXEC, 0755);
        if (fd >= 0)
            (void)close(fd);
        return report(chmod("suid", 06755));
    }
    if (!strcmp(a, "symlink") && argc == 4)
        return report(symlink(argv[2], argv[3]));
    if (!strcmp(a, "fsopen"))
        return report(syscall(SYS_fsopen, "tmpfs", 0));
    if (!strcmp(a, "fspick"))
        return report(syscall(SYS_fspick, AT_FDCWD, "/usr", 0));
    if (!strcmp(a, "open_tree"))
        return report(syscall(SYS_open_tree, AT_FDCWD, "/usr", 1 /* OPEN_TREE_CLONE */));
    if (!strcmp(a, "move_mount"))
        return report(syscall(SYS_move_mount, AT_FDCWD, "/tmp", AT_FDCWD, "/box", 0));
    if (!strcmp(a, "mount_setattr")) {
        unsigned long long attr[4] = { 0, 1 /* clear MOUNT_ATTR_RDONLY */, 0, 0 };
        return report(syscall(SYS_mount_setattr, AT_FDCWD, "/usr", 0, attr, sizeof attr));
    }
    if (!strcmp(a, "pidfd_getfd")) {
        long pfd = syscall(SYS_pidfd_open, 1, 0);
        if (pfd < 0)
            return report(-1);
        return report(syscall(SYS_pidfd_getfd, (int)pfd, 0, 0));
    }
    if (!strcmp(a, "pidfd_signal_init")) {
        long pfd = syscall(SYS_pidfd_open, 1, 0);
        if (pfd < 0)
            return report(-1);
        return report(syscall(SYS_pidfd_send_signal, (int)pfd, SIGKILL, NULL, 0));
    }
    if (!strcmp(a, "process_madvise")) {
        char b[16];
        struct iovec iov = { b, sizeof b };
        long pfd = syscall(SYS_pidfd_open, 1, 0);
        if (pfd < 0)
            return report(-1);
        return report(syscall(SYS_process_madvise, (int)pfd, &iov, 1, 21 /* MADV_COLD */, 0));
    }
    if (!strcmp(a, "mlock_big")) {
        size_t len = 32 << 20;
        char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return report(-1);
        return report(mlock(m, len));
    }
    if (!strcmp(a, "ptrace_traceme"))
        return report(ptrace(PTRACE_TRACEME, 0, NULL, NULL));
    if (!strcmp(a, "clone_newpid")) {
        long pid = syscall(SYS_clone, (unsigned long)(CLONE_NEWPID | SIGCHLD), NULL, NULL, NULL, 0);
        if (pid == 0)
            _exit(0);
        if (pid > 0)
            (void)waitpid((pid_t)pid, NULL, 0);
        return report(pid);
    }
    if (!strcmp(a, "setuid0"))
        return report(syscall(SYS_setuid, 0));
    if (!strcmp(a, "setgroups0")) {
        gid_t g = 0;
        return report(syscall(SYS_setgroups, 1, &g));
    }
    if (!strcmp(a, "capset_raise")) {
        struct {
            unsigned version;
            int pid;
        } hdr = { 0x20080522, 0 };
        struct {
            unsigned eff, perm, inh;
        } data[2] = { { 0xffffffffu, 0xffffffffu, 0 }, { 0xffu, 0xffu, 0 } };
        return report(syscall(SYS_capset, &hdr, data));
    }
    if (!strcmp(a, "ambient_raise"))
        return report(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, 21 /* CAP_SYS_ADMIN */, 0, 0));
    if (!strcmp(a, "chown_root")) {
        int fd = open("/box/chown-me", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            return report(-1);
        return report(fchown(fd, 0, 0));
    }
    if (!strcmp(a, "modify_ldt")) {
        char buf[16];
        return report(syscall(SYS_modify_ldt, 0, buf, sizeof buf));
    }
    if (!strcmp(a, "request_key"))
        return report(syscall(SYS_request_key, "user", "proctor-sec", NULL, 0));
    if (!strcmp(a, "uselib"))
        return report(syscall(SYS_uselib, "/sec/try_syscall"));
    if (!strcmp(a, "oom_score_adj")) {
        /* Lowering it would shield the box from the OOM killer (memory limit evasion). */
        int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        if (fd < 0)
            return report(-1);
        return report(write(fd, "-1000", 5));
    }
    if (!strcmp(a, "setrlimit_raise")) {
        struct rlimit rl;
        (void)getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = rl.rlim_max = rl.rlim_max + 1024;
        return report(setrlimit(RLIMIT_NOFILE, &rl));
    }
    fprintf(stderr, "try_syscall: unknown action or bad arguments: %s\n", a);
    return 2;
}
