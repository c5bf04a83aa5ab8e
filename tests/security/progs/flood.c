/* flood FD MB: writes MB MiB (default 4096) to fd 1 or 2 as fast as it can, then exits 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char block[1 << 16];

int main(int argc, char **argv)
{
    int fd = argc > 1 ? atoi(argv[1]) : 1;
    long mb = argc > 2 ? atol(argv[2]) : 4096, i;
    memset(block, 'A', sizeof block);
    block[sizeof block - 1] = '\n';
    for (i = 0; i < mb * 16; i++)
        if (write(fd, block, sizeof block) < 0)
            return 5;
    return 0;
}
