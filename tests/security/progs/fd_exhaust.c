/* Opens /dev/null until refused; prints the count and error. Then tries to raise the limit. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#include "sec.h"

int main(void)
{
    int n = 0, e = 0;
    struct rlimit rl;
    while (n < 10000000) {
        if (open("/dev/null", O_RDONLY) < 0) {
            e = errno;
            break;
        }
        n++;
    }
    printf("fds=%d err=%s\n", n, sec_errname(e));
    (void)getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_max += 4096;
    rl.rlim_cur = rl.rlim_max;
    sec_report("raise_nofile", setrlimit(RLIMIT_NOFILE, &rl));
    return 0;
}
