/* Prints ids and the security state of this process from /proc/self/status: uids, capability
 * sets, NoNewPrivs, Seccomp. Also built as a setuid-root copy by the driver: no privilege may be
 * gained through it. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
    char line[512];
    FILE *f = fopen("/proc/self/status", "re");
    printf("uid=%d euid=%d gid=%d egid=%d\n", (int)getuid(), (int)geteuid(), (int)getgid(),
           (int)getegid());
    if (!f)
        return 1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "Cap", 3) || !strncmp(line, "NoNewPrivs", 10) ||
            !strncmp(line, "Seccomp", 7) || !strncmp(line, "Uid", 3) || !strncmp(line, "Gid", 3))
            fputs(line, stdout);
    (void)fclose(f);
    return 0;
}
