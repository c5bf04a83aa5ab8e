/* Test subject run INSIDE the sandbox by the tests in tests/sbx/. One action per run:
 *
 *   ok | exit N | segv | spin | sleep MS | membomb | reserve | fsize | tmpfill | inodes
 *   ptrace | mount | unshare_user | clone_newuser | packet | netlo | netnone | daemon
 *   forkbomb | cat | write PATH | read PATH | ls PATH | whoami | spin_procs N
 *
 * It prints a short line about what happened and exits 0 when the behaviour it probes was
 * observed (for example netnone exits 0 when no connection to 127.0.0.1 was possible). */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int num(const char *s)
{
    return (int)strtol(s, NULL, 10);
}

static int spin(void)
{
    volatile unsigned long x = 0;
    for (;;)
        x++;
    return 0;
}

static int membomb(void)
{
    size_t total = 0;
    for (;;) {
        size_t chunk = 16u << 20;
        char *p = mmap(NULL, chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            printf("mmap failed after %zu MiB\n", total >> 20);
            return 3;
        }
        for (size_t i = 0; i < chunk; i += 4096)
            p[i] = 1;
        total += chunk;
    }
}

static int reserve(void)
{
    /* A 4 GiB PROT_NONE reservation (as V8, the JVM and Go do) plus a little real use. */
    void *r = mmap(NULL, 4ull << 30, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED) {
        printf("reserve failed: %s\n", strerror(errno));
        return 1;
    }
    char *p = malloc(8u << 20);
    if (!p) {
        munmap(r, 4ull << 30);
        return 1;
    }
    memset(p, 1, 8u << 20);
    printf("reserved 4 GiB, touched 8 MiB (%d)\n", p[4096]);
    free(p);
    munmap(r, 4ull << 30);
    return 0;
}

static int fill(const char *path, size_t max)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        printf("open %s: %s\n", path, strerror(errno));
        return 2;
    }
    static char buf[65536];
    memset(buf, 'x', sizeof(buf));
    size_t total = 0;
    while (total < max) {
        ssize_t w = write(fd, buf, sizeof(buf));
        if (w < 0) {
            printf("write after %zu KiB: %s\n", total >> 10, strerror(errno));
            return 1;
        }
        total += (size_t)w;
    }
    printf("wrote %zu KiB\n", total >> 10);
    return 0;
}

static int inodes(void)
{
    char name[64];
    for (long i = 0;; i++) {
        snprintf(name, sizeof(name), "/tmp/f%ld", i);
        int fd = open(name, O_WRONLY | O_CREAT, 0644);
        if (fd < 0) {
            printf("created %ld files: %s\n", i, strerror(errno));
            return 1;
        }
        close(fd);
    }
}

static int net_try(int expect_ok)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s, 1) != 0) {
        printf("bind/listen: %s\n", strerror(errno));
        return expect_ok ? 1 : 0;
    }
    socklen_t al = sizeof(a);
    getsockname(s, (struct sockaddr *)&a, &al);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)&a, sizeof(a)) != 0) {
        printf("connect: %s\n", strerror(errno));
        return expect_ok ? 1 : 0;
    }
    int k = accept(s, NULL, NULL);
    if (k < 0 || write(c, "ping", 4) != 4) {
        printf("accept/write: %s\n", strerror(errno));
        return expect_ok ? 1 : 0;
    }
    char buf[8] = { 0 };
    if (read(k, buf, 4) != 4 || memcmp(buf, "ping", 4) != 0)
        return expect_ok ? 1 : 0;
    printf("loopback works\n");
    return expect_ok ? 0 : 1;
}

static int daemonize(void)
{
    pid_t p = fork();
    if (p < 0)
        return 1;
    if (p == 0) {
        setsid();
        if (fork() == 0) {
            for (int i = 0; i < 3; i++)
                close(i);
            for (;;)
                pause();
        }
        _exit(0);
    }
    waitpid(p, NULL, 0);
    printf("daemon started\n");
    return 0;
}

static int forkbomb(void)
{
    int n = 0;
    for (;;) {
        pid_t p = fork();
        if (p == 0) {
            pause();
            _exit(0);
        }
        if (p < 0) {
            printf("fork failed after %d: %s\n", n, strerror(errno));
            return errno == EAGAIN ? 0 : 1;
        }
        n++;
        if (n > 100000)
            return 1;
    }
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2)
        return 64;
    const char *a = argv[1];
    const char *arg = argc > 2 ? argv[2] : "";
    if (!strcmp(a, "ok"))
        return 0;
    if (!strcmp(a, "exit"))
        return num(arg);
    if (!strcmp(a, "segv"))
        raise(SIGSEGV);
    if (!strcmp(a, "spin"))
        return spin();
    if (!strcmp(a, "spin_procs")) {
        int n = num(arg);
        for (int i = 1; i < n; i++)
            if (fork() == 0)
                spin();
        return spin();
    }
    if (!strcmp(a, "sleep")) {
        struct timespec ts = { num(arg) / 1000, (num(arg) % 1000) * 1000000L };
        nanosleep(&ts, NULL);
        return 0;
    }
    if (!strcmp(a, "membomb"))
        return membomb();
    if (!strcmp(a, "reserve"))
        return reserve();
    if (!strcmp(a, "fsize"))
        return fill("/tmp/big", 1ull << 30);
    if (!strcmp(a, "tmpfill"))
        return fill("/tmp/fill", 1ull << 34);
    if (!strcmp(a, "inodes"))
        return inodes();
    if (!strcmp(a, "ptrace")) {
        long r = ptrace(PTRACE_ATTACH, 1, NULL, NULL);
        printf("ptrace: %ld %s\n", r, strerror(errno));
        return 1;
    }
    if (!strcmp(a, "mount")) {
        int r = mount("tmpfs", "/tmp", "tmpfs", 0, NULL);
        printf("mount: %d %s\n", r, strerror(errno));
        return 1;
    }
    if (!strcmp(a, "unshare_user")) {
        int r = unshare(CLONE_NEWUSER);
        printf("unshare: %d %s\n", r, strerror(errno));
        return 1;
    }
    if (!strcmp(a, "clone_newuser")) {
        long r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
        if (r == 0)
            _exit(0);
        printf("clone: %ld %s\n", r, strerror(errno));
        return 1;
    }
    if (!strcmp(a, "packet")) {
        int r = socket(17 /* AF_PACKET */, SOCK_RAW, 0);
        printf("packet: %d %s\n", r, strerror(errno));
        return 1;
    }
    if (!strcmp(a, "netlo"))
        return net_try(1);
    if (!strcmp(a, "netnone"))
        return net_try(0);
    if (!strcmp(a, "daemon"))
        return daemonize();
    if (!strcmp(a, "forkbomb"))
        return forkbomb();
    if (!strcmp(a, "cat")) {
        char buf[4096];
        ssize_t n;
        while ((n = read(0, buf, sizeof(buf))) > 0)
            if (write(1, buf, (size_t)n) != n)
                return 1;
        return 0;
    }
    if (!strcmp(a, "write")) {
        int fd = open(arg, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || write(fd, "written\n", 8) != 8) {
            printf("write %s: %s\n", arg, strerror(errno));
            return 1;
        }
        close(fd);
        printf("write %s: OK\n", arg);
        return 0;
    }
    if (!strcmp(a, "read")) {
        char buf[256] = { 0 };
        int fd = open(arg, O_RDONLY);
        if (fd < 0 || read(fd, buf, sizeof(buf) - 1) < 0) {
            printf("read %s: %s\n", arg, strerror(errno));
            return 1;
        }
        printf("%s", buf);
        return 0;
    }
    if (!strcmp(a, "ls")) {
        DIR *d = opendir(arg);
        if (!d) {
            printf("ls %s: %s\n", arg, strerror(errno));
            return 1;
        }
        struct dirent *e;
        /* cppcheck-suppress readdirCalled */
        while ((e = readdir(d)))
            printf("%s\n", e->d_name);
        closedir(d);
        return 0;
    }
    if (!strcmp(a, "whoami")) {
        char cwd[256];
        printf("uid=%d gid=%d pid=%d cwd=%s\n", (int)getuid(), (int)getgid(), (int)getpid(),
               getcwd(cwd, sizeof(cwd)) ? cwd : "?");
        return 0;
    }
    return 64;
}
