#ifndef PROCTOR_LOG_H
#define PROCTOR_LOG_H
/* One line of key=value pairs per entry on stderr (STYLE.md section 7). */

#include "proctor/common.h"

typedef enum pr_log_level {
    PR_LOG_DEBUG = 0,
    PR_LOG_INFO = 1,
    PR_LOG_WARN = 2,
    PR_LOG_ERROR = 3,
    PR_LOG_OFF = 4
} pr_log_level;

extern int pr_log_threshold; /* entries below this level are skipped before formatting */

/** Sets the threshold (default WARN; PROCTOR_LOG=debug|info|warn|error overrides at start). */
void pr_log_set_level(pr_log_level level);
/** Formats into one local buffer and emits it with a single write(2). Any thread. */
void pr_log_write(pr_log_level level, const char *fmt, ...) PR_PRINTF(2, 3);

#define pr_log(level, ...)                      \
    do {                                        \
        if ((int)(level) >= pr_log_threshold)   \
            pr_log_write((level), __VA_ARGS__); \
    } while (0)

#endif
