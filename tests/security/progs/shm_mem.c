/* shm_mem MB: allocates a SysV shared memory segment and /dev/shm-less shmem (memfd) and touches
 * it: shared memory must be charged to the box (MLE), not escape its memory limit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <unistd.h>

#include "sec.h"

int main(int argc, char **argv)
{
    long mb = argc > 1 ? atol(argv[1]) : 1024;
    size_t len = (size_t)mb << 20;
    int id = shmget(IPC_PRIVATE, len, IPC_CREAT | 0600);
    char *p;
    if (id < 0) {
        sec_report("shmget", -1);
        return 0;
    }
    p = shmat(id, NULL, 0);
    if (p == (void *)-1) {
        sec_report("shmat", -1);
        return 0;
    }
    (void)shmctl(id, IPC_RMID, NULL);
    for (size_t i = 0; i < len; i += 4096)
        p[i] = 1;
    printf("touched %ld MiB of shm: NOT STOPPED\n", mb);
    return 0;
}
