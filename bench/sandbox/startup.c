/* Start-up cost of one sandboxed /bin/true, side by side with peers, measured interleaved in one
 * run so that a noisy shared machine slows every contender alike.
 *
 *   pr_bench_startup N PROCTOR
 *
 * Contenders, each run N times in turn (round robin):
 *   bare     fork + exec of /bin/true (the floor of any runner)
 *   allns    clone with every namespace proctor uses + exec of /bin/true (the floor with
 *            isolation, before any mount, cgroup or seccomp work)
 *   bwrap    bwrap --unshare-all --ro-bind / / /bin/true (Debian's bubblewrap: no seccomp, no
 *            limits)
 *   proctor  proctor sandbox -- /bin/true (all namespaces, pivot_root, seccomp, cgroups, limits)
 * Prints the median, p10 and p90 of each in milliseconds and the ratio proctor / bwrap. */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXN 5000

static double now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int spawn_wait(char *const argv[], int quiet)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (quiet) {
            FILE *f = freopen("/dev/null", "w", stderr);
            (void)f;
        }
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char clone_stack[256 * 1024];

static int allns_child(void *arg)
{
    (void)arg;
    char *const argv[] = { "/bin/true", NULL };
    execv(argv[0], argv);
    return 127;
}

static int run_allns(void)
{
    int flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC |
                CLONE_NEWUTS | CLONE_NEWCGROUP | SIGCHLD;
    pid_t pid = clone(allns_child, clone_stack + sizeof(clone_stack), flags, NULL);
    if (pid < 0)
        return -1;
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    int i = (int)(p * (n - 1) + 0.5);
    return v[i];
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s N PROCTOR_BINARY\n", argv[0]);
        return 2;
    }
    char *end = NULL;
    long n = strtol(argv[1], &end, 10);
    if (!end || *end || n < 5 || n > MAXN) {
        fprintf(stderr, "N must be 5..%d\n", MAXN);
        return 2;
    }
    char *proctor_argv[] = { argv[2], "sandbox", "--result", "/dev/null", "--", "/bin/true", NULL };
    char *bwrap_argv[] = {
        "/usr/bin/bwrap", "--unshare-all", "--ro-bind", "/", "/", "/bin/true", NULL
    };
    char *bare_argv[] = { "/bin/true", NULL };
    int have_bwrap = access(bwrap_argv[0], X_OK) == 0;
    static double t[4][MAXN];
    const char *names[4] = { "bare", "allns", "bwrap", "proctor" };

    for (long i = 0; i < n; i++) {
        for (int c = 0; c < 4; c++) {
            double t0 = now_ms();
            int rc = 0;
            if (c == 0)
                rc = spawn_wait(bare_argv, 0);
            else if (c == 1)
                rc = run_allns();
            else if (c == 2)
                rc = have_bwrap ? spawn_wait(bwrap_argv, 1) : 0;
            else
                rc = spawn_wait(proctor_argv, 1);
            t[c][i] = now_ms() - t0;
            if (rc != 0) {
                fprintf(stderr, "%s failed with status %d\n", names[c], rc);
                return 1;
            }
        }
    }
    double med[4];
    printf("%-8s %9s %9s %9s   (ms, %ld interleaved runs each)\n", "runner", "median", "p10", "p90",
           n);
    for (int c = 0; c < 4; c++) {
        if (c == 2 && !have_bwrap) {
            printf("%-8s not installed\n", names[c]);
            continue;
        }
        double p10 = pct(t[c], (int)n, 0.10);
        med[c] = pct(t[c], (int)n, 0.50);
        double p90 = pct(t[c], (int)n, 0.90);
        printf("%-8s %9.3f %9.3f %9.3f\n", names[c], med[c], p10, p90);
    }
    if (have_bwrap)
        printf("ratio proctor/bwrap (median): %.2f\n", med[3] / med[2]);
    return 0;
}
