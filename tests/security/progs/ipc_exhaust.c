/* ipc_exhaust shm|msg|mq|sem: creates SysV or POSIX IPC objects until refused (or 4096 of
 * them), prints the count and the error. Contained by the box's IPC namespace and limits. */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>

#include "sec.h"

int main(int argc, char **argv)
{
    const char *m = argc > 1 ? argv[1] : "shm";
    int n, e = 0;
    for (n = 0; n < 4096; n++) {
        long rc;
        if (!strcmp(m, "shm")) {
            rc = shmget(IPC_PRIVATE, 1 << 20, IPC_CREAT | 0600);
        } else if (!strcmp(m, "msg")) {
            rc = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
            if (rc >= 0) {
                struct {
                    long t;
                    char d[8000];
                } msg = { 1, { 0 } };
                while (msgsnd((int)rc, &msg, sizeof msg.d, IPC_NOWAIT) == 0)
                    ;
            }
        } else if (!strcmp(m, "sem")) {
            rc = semget(IPC_PRIVATE, 250, IPC_CREAT | 0600);
        } else if (!strcmp(m, "mq")) {
            char name[64];
            struct mq_attr at = { .mq_maxmsg = 10, .mq_msgsize = 8192 };
            (void)snprintf(name, sizeof name, "/proctor-sec-%d", n);
            rc = mq_open(name, O_CREAT | O_RDWR | O_CLOEXEC, 0600, &at);
        } else {
            return 2;
        }
        if (rc < 0) {
            e = errno;
            break;
        }
    }
    printf("%s objects=%d err=%s\n", m, n, e ? sec_errname(e) : "none");
    return 0;
}
