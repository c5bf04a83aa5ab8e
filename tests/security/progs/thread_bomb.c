/* Creates sleeping threads until the box refuses, prints how many and the error, exits 3. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include "sec.h"

static void *sleeper(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

int main(void)
{
    pthread_attr_t at;
    pthread_t t;
    int n = 0, rc = 0;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 64 * 1024);
    while (n < 100000 && (rc = pthread_create(&t, &at, sleeper, NULL)) == 0)
        n++;
    printf("threads=%d err=%s\n", n, sec_errname(rc));
    fflush(stdout);
    return 3;
}
