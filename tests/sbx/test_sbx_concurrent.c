/* Boxes and shared netns helpers created from many threads at once, as the daemon's workers
 * and the stdio grader's test threads do. A helper cloned from a multi-threaded process
 * inherits whatever descriptors exist at that moment (it never execs); if it kept them, it
 * would hold pipes that other threads' helpers and boxes are waiting on, and the callers would
 * wait forever. A watchdog turns such a hang into a failure instead of a CI timeout. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proctor/sandbox.h"
#include "t.h"

#define THREADS    6
#define ITERATIONS 15

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "FAIL: concurrent sandbox creation hung (watchdog)\n";
    (void)!write(2, msg, sizeof(msg) - 1);
    _exit(1);
}

typedef struct worker {
    long failures;
    int slot; /* unique per thread: boxes of different threads never share uids */
} worker;

static void *netns_worker(void *arg)
{
    long *failures = &((worker *)arg)->failures;
    for (int i = 0; i < ITERATIONS; i++) {
        pr_error err = { 0 };
        int fd = sbx_netns_new(&err);
        if (fd < 0) {
            fprintf(stderr, "sbx_netns_new: %s\n", err.msg);
            (*failures)++;
            continue;
        }
        (void)close(fd);
    }
    return NULL;
}

static void *box_worker(void *arg)
{
    worker *w = arg;
    long *failures = &w->failures;
    for (int i = 0; i < ITERATIONS / 3; i++) {
        pr_error err = { 0 };
        int netns = sbx_netns_new(&err);
        sbx_spec spec;
        sbx_spec_init(&spec);
        const char *argv[] = { "/bin/true", NULL };
        spec.argv = argv;
        spec.netns_fd = netns;
        spec.slot = w->slot;
        sbx_result res;
        int rc = sbx_run(&res, &spec, &err);
        if (netns >= 0)
            (void)close(netns);
        if (rc < 0 || res.verdict != SBX_OK) {
            fprintf(stderr, "box: rc %d verdict %s %s\n", rc, sbx_verdict_name(res.verdict),
                    res.message);
            (*failures)++;
        }
    }
    return NULL;
}

int main(void)
{
    pr_error err = { 0 };
    if (sbx_global_init(&err) < 0)
        T_SKIP("sandbox unavailable: %s", err.msg);
    int probe = sbx_netns_new(&err);
    if (probe < 0)
        T_SKIP("cannot create a network namespace here: %s", err.msg);
    (void)close(probe);

    (void)signal(SIGALRM, on_alarm);
    (void)alarm(90);

    pthread_t th[THREADS];
    worker w[THREADS];
    memset(w, 0, sizeof(w));
    for (int i = 0; i < THREADS; i++) {
        w[i].slot = 40 + i;
        void *(*fn)(void *) = (i % 2) ? box_worker : netns_worker;
        T_EQ_INT(pthread_create(&th[i], NULL, fn, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        T_EQ_INT(pthread_join(th[i], NULL), 0);
    (void)alarm(0);
    for (int i = 0; i < THREADS; i++)
        T_EQ_INT(w[i].failures, 0);
    sbx_global_cleanup();
    return 0;
}
