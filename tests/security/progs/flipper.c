/* flipper DIR TARGET SECONDS: in DIR, swaps "link" between a real directory (one entry) and a
 * symlink to TARGET as fast as it can (renameat2 RENAME_EXCHANGE) for SECONDS, so that another
 * run naming DIR/link as a bind source races the check against the mount. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "sec.h"

int main(int argc, char **argv)
{
    struct timespec t0, t;
    long swaps = 0, secs;
    int fd;
    if (argc != 4 || chdir(argv[1]) != 0)
        return 2;
    secs = atol(argv[3]);
    (void)mkdir("link", 0755);
    fd = open("link/inside", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0)
        (void)close(fd);
    if (symlink(argv[2], "sym") != 0) {
        sec_report("symlink", -1);
        return 0;
    }
    (void)clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (syscall(SYS_renameat2, AT_FDCWD, "sym", AT_FDCWD, "link", 2 /* EXCHANGE */) != 0) {
            sec_report("renameat2", -1);
            return 0;
        }
        swaps++;
        (void)clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec >= secs)
            break;
    }
    printf("swaps=%ld\n", swaps);
    return 0;
}
