/* Reserves 8 GiB PROT_NONE and 4 GiB of lazily committed read-write memory (as JVM, V8 and Go
 * do), touches 8 MiB of it and exits 0: must be OK under a small memory limit. */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

int main(void)
{
    size_t big = (size_t)8 << 30, rw = (size_t)4 << 30;
    void *a = mmap(NULL, big, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    char *b =
        mmap(NULL, rw, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (a == MAP_FAILED || b == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    memset(b, 1, 8 << 20);
    printf("reserved 12 GiB, touched 8 MiB\n");
    return 0;
}
