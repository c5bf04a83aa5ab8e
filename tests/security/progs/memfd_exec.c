/* memfd_exec PROG ARG...: copies PROG into a memfd and executes it from there (fileless exec).
 * The table runs try_syscall this way: confinement must survive the exec. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sec.h"

extern char **environ;

int main(int argc, char **argv)
{
    char buf[1 << 16];
    ssize_t n;
    int in, mfd;
    if (argc < 2)
        return 2;
    in = open(argv[1], O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return 3;
    mfd = memfd_create("payload", 0);
    if (mfd < 0) {
        sec_report("memfd_create", -1);
        return 0;
    }
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(mfd, buf, (size_t)n) != n)
            return 4;
    (void)syscall(SYS_execveat, mfd, "", argv + 1, environ, AT_EMPTY_PATH);
    sec_report("execveat", -1);
    return 0;
}
