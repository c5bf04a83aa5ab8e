/* mem_bomb [MB]: allocates and touches 1 MiB blocks up to MB (default: forever). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every block escapes through here, so no compiler may elide the allocation or the writes. */
static char *volatile g_last;

int main(int argc, char **argv)
{
    long i, max = argc > 1 ? atol(argv[1]) : -1;
    for (i = 0; max < 0 || i < max; i++) {
        char *p = malloc(1 << 20);
        if (!p) {
            printf("malloc failed after %ld MiB\n", i);
            return 4;
        }
        memset(p, (int)(i & 0xff) | 1, 1 << 20);
        g_last = p;
    }
    printf("touched %ld MiB\n", i);
    return 0;
}
