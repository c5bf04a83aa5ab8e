/* daemonize DIR [spin] [hold]: double fork + setsid; the grandchild ignores every catchable signal
 * and appends a heartbeat to DIR/heartbeat every 50 ms forever (or spins). The parent exits 0 as
 * soon as the first heartbeat exists ("hold": then sleeps forever instead). No process may outlive
 * the run and the heartbeat must stop. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    char path[4096];
    int s, spin = argc > 2 && !strcmp(argv[2], "spin");
    int hold = argc > 3 && !strcmp(argv[3], "hold");
    if (argc < 2)
        return 2;
    (void)snprintf(path, sizeof path, "%s/heartbeat", argv[1]);
    if (fork() != 0) {
        /* Exit only once the daemon is provably running (its first heartbeat exists). */
        for (int i = 0; i < 200 && access(path, F_OK) != 0; i++)
            usleep(10000);
        while (hold)
            pause();
        return 0;
    }
    (void)setsid();
    if (fork() != 0)
        _exit(0);
    for (s = 1; s < 32; s++)
        (void)signal(s, SIG_IGN);
    (void)chdir("/");
    for (;;) {
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            (void)write(fd, "beat\n", 5);
            (void)close(fd);
        }
        if (spin) {
            for (volatile long i = 0; i < 50000000; i++)
                ;
        } else {
            usleep(50000);
        }
    }
}
