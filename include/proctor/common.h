#ifndef PROCTOR_COMMON_H
#define PROCTOR_COMMON_H
/* Allocation hooks, small fd helpers and attribute macros shared by every module. */

#include <stddef.h>

#if defined(__GNUC__)
#define PR_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define PR_NORETURN     __attribute__((noreturn))
#define PR_UNUSED       __attribute__((unused))
#else
#define PR_PRINTF(f, a)
#define PR_NORETURN
#define PR_UNUSED
#endif

#define PR_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/** All allocation goes through these. Test builds may make the Nth call fail
 * (pr_alloc_fail_after). Thread-safe. pr_free accepts NULL. */
void *pr_malloc(size_t n);
void *pr_calloc(size_t n, size_t size);
void *pr_realloc(void *p, size_t n);
void pr_free(void *p);
/** Duplicates a NUL-terminated string; NULL on allocation failure or NULL input. */
char *pr_strdup(const char *s);
/** Duplicates at most n bytes and terminates; NULL on allocation failure. */
char *pr_strndup(const char *s, size_t n);

/** Test hook: after n more successful allocations every allocation fails; -1 disables. */
void pr_alloc_fail_after(long n);

/** Closes *fd when it is >= 0 and sets it to -1. Safe to call twice. */
void pr_close(int *fd);

/** Monotonic clock in nanoseconds (CLOCK_MONOTONIC); async-signal-safe. */
unsigned long long pr_now_ns(void);

/** Formats a UNIX time as RFC 3339 UTC ("2026-11-25T12:00:00Z") into out (>= 32 bytes). */
void pr_time_rfc3339(char *out, size_t outsz, long long unix_seconds);

/** Creates dir and missing parents with mode 0755 (like mkdir -p). 0 or PR_ESYS (errno kept). */
int pr_mkdir_p(const char *dir);
/** Removes a tree without following symlinks (like rm -rf); missing is fine. 0 or PR_ESYS. */
int pr_rm_rf(const char *path);
/** Writes all n bytes (retrying short writes and EINTR). 0, or -1 with errno set. */
int pr_write_all(int fd, const void *p, size_t n);
/** Opens (creating with mode, never through a symlink) the lock file path and takes an
 * exclusive flock on it, waiting as long as it takes. Returns the fd (O_CLOEXEC; closing it
 * releases the lock), or -1 with errno set. flock locks belong to the open file description, so
 * two calls in one process exclude each other too. */
int pr_lock_file(const char *path, unsigned mode);
/** The user's cache directory for proctor: $XDG_CACHE_HOME/proctor/SUB, else
 * $HOME/.cache/proctor/SUB (absolute values only), else fallback; sub "" means proctor's own
 * directory. Not created. 0, or PR_ELIMIT when out is too small. */
int pr_cache_home(char *out, size_t outsz, const char *sub, const char *fallback);

#endif
