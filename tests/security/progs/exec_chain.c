/* exec_chain N: burns ~100 ms of CPU, then execs itself with N+1, forever. Limits and CPU
 * accounting must survive execve: the chain must end with TLE. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    char next[32];
    struct timespec ts;
    volatile unsigned long x = 0;
    long n = argc > 1 ? atol(argv[1]) : 0;
    for (;;) {
        (void)clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        if (ts.tv_sec * 1000 + ts.tv_nsec / 1000000 >= 100)
            break;
        for (int i = 0; i < 100000; i++)
            x++;
    }
    (void)snprintf(next, sizeof next, "%ld", n + 1);
    char *args[] = { argv[0], next, NULL };
    execv("/proc/self/exe", args);
    perror("execv");
    return 1;
}
