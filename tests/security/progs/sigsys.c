/* sigsys MODE: tries to get away with a forbidden call. "handler": installs a SIGSYS handler
 * first (a SECCOMP_RET_TRAP filter would let the program survive); "child": a forked child
 * makes the call and the parent exits 0 whatever happened; "thread": a second thread makes the
 * call while the main thread exits 0. The verdict must still be SV. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sec.h"

static void on_sigsys(int sig)
{
    (void)sig;
    (void)write(1, "caught SIGSYS\n", 14);
}

static void *forbidden(void *arg)
{
    (void)arg;
    sec_report("mount", mount("none", "/tmp", "tmpfs", 0, NULL));
    return NULL;
}

int main(int argc, char **argv)
{
    const char *m = argc > 1 ? argv[1] : "handler";
    if (!strcmp(m, "handler")) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_sigsys;
        (void)sigaction(SIGSYS, &sa, NULL);
        forbidden(NULL);
        printf("survived the forbidden call\n");
        return 0;
    }
    if (!strcmp(m, "child")) {
        int st = 0;
        pid_t c = fork();
        if (c == 0) {
            forbidden(NULL);
            _exit(0);
        }
        (void)waitpid(c, &st, 0);
        printf("child status %d, parent exits 0\n", st);
        return 0;
    }
    if (!strcmp(m, "thread")) {
        pthread_t t;
        (void)pthread_create(&t, NULL, forbidden, NULL);
        (void)pthread_join(t, NULL);
        printf("thread returned, main exits 0\n");
        return 0;
    }
    return 2;
}
