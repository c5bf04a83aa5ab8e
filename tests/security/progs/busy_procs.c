/* busy_procs N [reap]: N processes spin. Without "reap" they spin forever (TLE from the tree's
 * CPU). With "reap" each child burns ~400 ms of CPU and exits, the parent reaps them and exits 0:
 * work done in reaped children must still count (timing game of catalogue row 40). */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void burn_ms(long ms)
{
    struct timespec ts;
    volatile unsigned long x = 0;
    for (;;) {
        (void)clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        if (ts.tv_sec * 1000 + ts.tv_nsec / 1000000 >= ms)
            return;
        for (int i = 0; i < 100000; i++)
            x++;
    }
}

int main(int argc, char **argv)
{
    int i, n = argc > 1 ? atoi(argv[1]) : 4;
    int reap = argc > 2 && !strcmp(argv[2], "reap");
    for (i = 0; i < n; i++) {
        pid_t p = fork();
        if (p == 0) {
            if (reap) {
                burn_ms(400);
                _exit(0);
            }
            for (;;)
                ;
        }
    }
    if (reap) {
        while (wait(NULL) > 0)
            ;
        return 0;
    }
    for (;;)
        ;
}
