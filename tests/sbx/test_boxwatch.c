/* The box watcher (runner/boxwatch.c): a libuv loop watches boxes and enforces their limits as
 * timers. A spawned box that nobody waits for (an HTTP challenge's server while the grader talks
 * to it) must still be stopped at its CPU or wall limit by the loop, and boxes started from many
 * threads must all be seen through to the end. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proctor/boxwatch.h"
#include "proctor/sandbox.h"
#include "t.h"

static char g_probe_dir[4096];

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void spec_probe(sbx_spec *s, sbx_bind *b, const char **argv, int slot)
{
    sbx_spec_init(s);
    b->src = g_probe_dir;
    b->dst = "/t";
    b->writable = false;
    s->binds = b;
    s->nbinds = 1;
    s->argv = argv;
    s->slot = slot;
}

/* Spawns, then only watches sbx_proc_ended from this thread: no one sits in sbx_proc_wait
 * until the box has ended, so only the loop can have enforced the limit. */
static sbx_result unattended(const char *what, const char *arg, sbx_limits lim, uint64_t *ended_ms)
{
    const char *argv[] = { "/t/sbx_probe", what, arg, NULL };
    sbx_spec s;
    sbx_bind b;
    spec_probe(&s, &b, argv, 7);
    s.limits = lim;
    sbx_proc *p = NULL;
    pr_error err = { 0 };
    T_EQ_INT(sbx_spawn(&p, &s, &err), 0);
    uint64_t t0 = now_ms();
    while (!sbx_proc_ended(p) && now_ms() - t0 < 8000) {
        struct timespec ts = { 0, 5 * 1000000L };
        nanosleep(&ts, NULL);
    }
    *ended_ms = now_ms() - t0;
    T_TRUE(sbx_proc_ended(p));
    sbx_result r;
    T_EQ_INT(sbx_proc_wait(p, &r, &err), 0);
    sbx_proc_free(p);
    fprintf(stderr, "  %-6s %s cpu=%llu wall=%llu ended after %llu ms: %s\n", what,
            sbx_verdict_name(r.verdict), (unsigned long long)r.cpu_ms,
            (unsigned long long)r.wall_ms, (unsigned long long)*ended_ms, r.message);
    return r;
}

typedef struct worker {
    int slot;
    int failures;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < 8; i++) {
        const char *argv[] = { "/t/sbx_probe", i % 2 ? "exit" : "ok", "3", NULL };
        sbx_spec s;
        sbx_bind b;
        spec_probe(&s, &b, argv, w->slot);
        sbx_result r;
        pr_error err = { 0 };
        int rc = sbx_run(&r, &s, &err);
        sbx_verdict want = i % 2 ? SBX_RE : SBX_OK;
        if (rc < 0 || r.verdict != want || (i % 2 && r.exit_code != 3)) {
            fprintf(stderr, "  thread %d box %d: %s %s\n", w->slot, i, sbx_verdict_name(r.verdict),
                    r.message);
            w->failures++;
        }
    }
    return NULL;
}

int main(void)
{
    if (geteuid() != 0)
        T_SKIP("limit enforcement needs cgroups (root)");
    snprintf(g_probe_dir, sizeof(g_probe_dir), "%s/tests/sbx", PR_BINARY_DIR);
    pr_error err = { 0 };
    if (sbx_global_init(&err) < 0)
        T_SKIP("sandbox unavailable: %s", err.msg);

    pr_boxwatch *bw = NULL;
    T_EQ_INT(pr_boxwatch_start_thread(&bw, &err), 0);
    pr_boxwatch_stats st;

    /* CPU limit of a box nobody waits for: killed by the loop's timer at about 300 ms of CPU
     * (RLIMIT_CPU, the backstop, would only act a second later and give RE). */
    uint64_t ended = 0;
    sbx_result r =
        unattended("spin", NULL, (sbx_limits){ .cpu_ms = 300, .wall_ms = 20000 }, &ended);
    T_EQ_STR(sbx_verdict_name(r.verdict), "TLE");
    T_TRUE(r.cpu_ms >= 300 && r.cpu_ms < 700);
    pr_boxwatch_get_stats(bw, &st);
    T_TRUE(st.limit_checks >= 1);

    /* Wall limit of a sleeping box nobody waits for. */
    r = unattended("sleep", "20000", (sbx_limits){ .wall_ms = 300 }, &ended);
    T_EQ_STR(sbx_verdict_name(r.verdict), "WLE");
    T_TRUE(r.wall_ms >= 300 && r.wall_ms < 2000);
    T_TRUE(ended < 4000);

    /* Forbidden system call seen by the loop through the seccomp listener. */
    r = unattended("ptrace", NULL, (sbx_limits){ 0 }, &ended);
    T_EQ_STR(sbx_verdict_name(r.verdict), "SV");
    T_EQ_STR(r.violation, "ptrace");

    /* Many threads, one loop. */
    pr_boxwatch_get_stats(bw, &st);
    uint64_t before = st.watched;
    enum {
        NT = 4
    };
    worker ws[NT];
    pthread_t th[NT];
    for (int i = 0; i < NT; i++) {
        ws[i] = (worker){ .slot = 20 + i, .failures = 0 };
        T_EQ_INT(pthread_create(&th[i], NULL, worker_main, &ws[i]), 0);
    }
    for (int i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
        T_EQ_INT(ws[i].failures, 0);
    }
    pr_boxwatch_get_stats(bw, &st);
    T_EQ_INT((int)(st.watched - before), NT * 8);
    T_EQ_INT((int)st.active, 0);

    /* After stop, boxes are watched by their waiting thread again. */
    pr_boxwatch_stop(bw);
    const char *argv[] = { "/t/sbx_probe", "ok", NULL };
    sbx_spec s;
    sbx_bind b;
    spec_probe(&s, &b, argv, 7);
    T_EQ_INT(sbx_run(&r, &s, &err), 0);
    T_EQ_STR(sbx_verdict_name(r.verdict), "OK");
    sbx_global_cleanup();
    return 0;
}
