/* Creates pipes until refused, grows each to its maximum size and fills it: pipe buffers are
 * kernel memory the box must not be able to use without bound. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sec.h"

static char block[1 << 16];

int main(void)
{
    int p[2], n = 0, e = 0;
    long bytes = 0;
    memset(block, 'p', sizeof block);
    while (n < 100000) {
        if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) {
            e = errno;
            break;
        }
        (void)fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
        for (;;) {
            ssize_t w = write(p[1], block, sizeof block);
            if (w <= 0)
                break;
            bytes += w;
        }
        n++;
    }
    printf("pipes=%d bytes=%ld err=%s\n", n, bytes, sec_errname(e));
    return 0;
}
