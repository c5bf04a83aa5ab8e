#include "proctor/common.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Remaining successful allocations before failures start; negative disables the hook. */
static atomic_long fail_after = -1;

static int alloc_allowed(void)
{
    long n = atomic_load(&fail_after);
    if (n < 0)
        return 1;
    while (n > 0) {
        if (atomic_compare_exchange_weak(&fail_after, &n, n - 1))
            return 1;
    }
    return 0;
}

void pr_alloc_fail_after(long n)
{
    atomic_store(&fail_after, n);
}

void *pr_malloc(size_t n)
{
    if (!alloc_allowed())
        return NULL;
    return malloc(n ? n : 1);
}

void *pr_calloc(size_t n, size_t size)
{
    if (!alloc_allowed())
        return NULL;
    return calloc(n ? n : 1, size ? size : 1);
}

void *pr_realloc(void *p, size_t n)
{
    if (!alloc_allowed())
        return NULL;
    return realloc(p, n ? n : 1);
}

void pr_free(void *p)
{
    free(p);
}

char *pr_strndup(const char *s, size_t n)
{
    if (!s)
        return NULL;
    size_t len = strnlen(s, n);
    char *d = pr_malloc(len + 1);
    if (!d)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *pr_strdup(const char *s)
{
    if (!s)
        return NULL;
    return pr_strndup(s, strlen(s));
}

void pr_close(int *fd)
{
    if (fd && *fd >= 0) {
        (void)close(*fd);
        *fd = -1;
    }
}

unsigned long long pr_now_ns(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
}

void pr_time_rfc3339(char *out, size_t outsz, long long unix_seconds)
{
    time_t t = (time_t)unix_seconds;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        if (outsz > 0)
            out[0] = '\0';
    }
}
