/* busy_threads N: N threads spin forever; CPU time of the tree grows N times faster than wall
 * time, so the box must end with TLE long before the wall limit. */
#include <pthread.h>
#include <stdlib.h>

static void *spin(void *arg)
{
    volatile unsigned long x = 0;
    (void)arg;
    for (;;)
        x++;
    return NULL;
}

int main(int argc, char **argv)
{
    int i, n = argc > 1 ? atoi(argv[1]) : 4;
    pthread_t t;
    for (i = 1; i < n; i++)
        (void)pthread_create(&t, NULL, spin, NULL);
    spin(NULL);
    return 0;
}
