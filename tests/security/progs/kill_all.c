/* Forks a sleeper, then kill(-1, SIGKILL): must reach only the box's own processes. Prints
 * whether it is still alive and what happened to its child. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sec.h"

int main(void)
{
    int st = 0;
    pid_t c = fork();
    if (c == 0) {
        for (;;)
            pause();
    }
    usleep(100000);
    sec_report("kill(-1)", kill(-1, SIGKILL));
    if (waitpid(c, &st, 0) == c && WIFSIGNALED(st))
        printf("child killed by %d\n", WTERMSIG(st));
    printf("still alive pid=%d\n", (int)getpid());
    return 0;
}
