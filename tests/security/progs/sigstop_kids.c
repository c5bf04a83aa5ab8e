/* sigstop_kids [wait]: forks children that stop themselves (SIGSTOP) and one traced by another
 * child, then exits 0 (or waits forever with "wait"). Stopped or traced children must not
 * survive the run. */
#include <signal.h>
#include <string.h>
#include <sys/ptrace.h>
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
        /* A tracer that stops its tracee and then stops itself. */
        (void)ptrace(PTRACE_ATTACH, tracee, NULL, NULL);
        (void)raise(SIGSTOP);
        for (;;)
            pause();
    }
    usleep(200000);
    if (argc > 1 && !strcmp(argv[1], "wait"))
        for (;;)
            pause();
    return 0;
}
