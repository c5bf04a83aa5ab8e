#include "proctor/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int pr_log_threshold = PR_LOG_WARN;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void pr_log_set_level(pr_log_level level)
{
    pr_log_threshold = (int)level;
}

void pr_log_write(pr_log_level level, const char *fmt, ...)
{
    char line[1024];
    int lv = (int)level;
    if (lv < 0 || lv > PR_LOG_ERROR)
        lv = PR_LOG_ERROR;
    int n = snprintf(line, sizeof(line), "proctor level=%s ", level_names[lv]);
    if (n < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t len = strnlen(line, sizeof(line) - 2);
    line[len++] = '\n';
    /* One write(2) so concurrent threads never interleave inside a line. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
