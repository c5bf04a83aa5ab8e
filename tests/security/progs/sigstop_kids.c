/* sigstop_kids [wait]: forks children that stop themselves (SIGSTOP), one stopped by a sibling
 * that then stops itself, and one that ignores SIGTERM/SIGHUP, then exits 0 (or waits forever
 * with "wait"). Stopped children must not survive the run. */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int i;
    pid_t tracee;
    for (i = 0; i < 3; i++)
        if (fork() == 0) {
            (void)raise(SIGSTOP);
            for (;;)
                pause();
        }
    tracee = fork();
    if (tracee == 0) {
        for (;;)
            pause();
    }
    if (fork() == 0) {
        /* Stops its sibling, then itself. */
        (void)kill(tracee, SIGSTOP);
        (void)raise(SIGSTOP);
        for (;;)
            pause();
    }
    if (fork() == 0) {
        (void)signal(SIGTERM, SIG_IGN);
        (void)signal(SIGHUP, SIG_IGN);
        (void)signal(SIGCONT, SIG_IGN);
        (void)raise(SIGTSTP);
        for (;;)
            pause();
    }
    usleep(200000);
    if (argc > 1 && !strcmp(argv[1], "wait"))
        for (;;)
            pause();
    return 0;
}
