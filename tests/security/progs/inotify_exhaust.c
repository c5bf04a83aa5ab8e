/* Creates inotify instances and watches until refused; prints counts. The per-user limit must
 * belong to the box's own uid (the host can still create instances afterwards: the driver
 * checks). */
#include <errno.h>
#include <stdio.h>
#include <sys/inotify.h>

#include "sec.h"

int main(void)
{
    int n = 0, w = 0, fd = -1, e = 0;
    while (n < 100000) {
        int f = inotify_init1(IN_CLOEXEC);
        if (f < 0) {
            e = errno;
            break;
        }
        fd = f;
        n++;
    }
    printf("instances=%d err=%s\n", n, sec_errname(e));
    if (fd >= 0) {
        while (w < 100000 && inotify_add_watch(fd, "/tmp", IN_ALL_EVENTS | IN_MASK_CREATE) >= 0)
            w++;
        printf("watches=%d\n", w);
    }
    return 0;
}
