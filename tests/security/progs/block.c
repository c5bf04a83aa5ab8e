/* block MODE: never finishes without using CPU. MODE sleep | pause | stdin | deadlock | select |
 * stop.
 * The box must end it with WLE. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

static pthread_mutex_t a = PTHREAD_MUTEX_INITIALIZER, b = PTHREAD_MUTEX_INITIALIZER;

static void *other(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&b);
    usleep(200000);
    pthread_mutex_lock(&a);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *m = argc > 1 ? argv[1] : "sleep";
    char c;
    if (!strcmp(m, "sleep"))
        for (;;)
            sleep(1000);
    if (!strcmp(m, "pause")) {
        (void)signal(SIGTERM, SIG_IGN);
        (void)signal(SIGINT, SIG_IGN);
        (void)signal(SIGHUP, SIG_IGN);
        for (;;)
            pause();
    }
    if (!strcmp(m, "stdin")) {
        ssize_t n = read(0, &c, 1);
        printf("read returned %zd\n", n);
        return 3; /* stdin closed: the driver gave a never-closing pipe, so this is wrong */
    }
    if (!strcmp(m, "deadlock")) {
        pthread_t t;
        pthread_mutex_lock(&a);
        (void)pthread_create(&t, NULL, other, NULL);
        usleep(200000);
        pthread_mutex_lock(&b);
        return 0;
    }
    if (!strcmp(m, "stop")) {
        (void)raise(SIGSTOP); /* a stopped main process must still hit the wall limit */
        return 0;
    }
    if (!strcmp(m, "select"))
        for (;;)
            (void)select(0, NULL, NULL, NULL, NULL);
    return 2;
}
