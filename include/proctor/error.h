#ifndef PROCTOR_ERROR_H
#define PROCTOR_ERROR_H
/* Error codes and the optional caller-provided error detail (STYLE.md section 4). */

#include "proctor/common.h"

typedef enum pr_errcode {
    PR_OK = 0,
    PR_ENOMEM = -1,    /* allocation failed */
    PR_EINVAL = -2,    /* bad argument, bad configuration or malformed input */
    PR_ELIMIT = -3,    /* a configured cap was exceeded */
    PR_ESYS = -4,      /* a system call failed; sys_errno says which errno */
    PR_EGIT = -5,      /* libgit2 failed */
    PR_EJSON = -6,     /* JSON parse or shape error */
    PR_ENOTFOUND = -7, /* a named thing (file, ref, challenge, id) does not exist */
    PR_EUNSAFE = -8,   /* refused for safety (symlink out of tree, path traversal) */
    PR_ETIMEOUT = -9,  /* an infrastructure step timed out */
    PR_EINTERNAL = -10 /* a bug in proctor */
} pr_errcode;

typedef struct pr_error {
    int code;      /* a pr_errcode, 0 when no error was recorded */
    int sys_errno; /* errno saved by pr_error_sys, else 0 */
    char msg[256]; /* one line, no trailing newline */
} pr_error;

/** Records code and a formatted message in err (which may be NULL); returns code. */
int pr_error_set(pr_error *err, int code, const char *fmt, ...) PR_PRINTF(3, 4);
/** Like pr_error_set with PR_ESYS, appending ": strerror(errno)"; saves errno first. */
int pr_error_sys(pr_error *err, const char *fmt, ...) PR_PRINTF(2, 3);
/** Prefixes err->msg with "context: " (keeps the code). Returns err->code. */
int pr_error_wrap(pr_error *err, const char *fmt, ...) PR_PRINTF(2, 3);
/** Short stable name of a code, for example "ENOMEM". */
const char *pr_errcode_name(int code);

void pr_assert_fail(const char *expr, const char *file, int line);

/* Debug: abort. Release: log and return PR_EINTERNAL from the calling function. */
#ifdef NDEBUG
#define PR_ASSERT(x)                                \
    do {                                            \
        if (!(x)) {                                 \
            pr_assert_fail(#x, __FILE__, __LINE__); \
            return PR_EINTERNAL;                    \
        }                                           \
    } while (0)
#else
#define PR_ASSERT(x)                                \
    do {                                            \
        if (!(x))                                   \
            pr_assert_fail(#x, __FILE__, __LINE__); \
    } while (0)
#endif

#endif
