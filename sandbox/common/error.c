#include "proctor/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proctor/log.h"

int pr_error_set(pr_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        err->sys_errno = 0;
        (void)vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

int pr_error_sys(pr_error *err, const char *fmt, ...)
{
    int saved = errno;
    if (err) {
        char head[200];
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(head, sizeof(head), fmt, ap);
        va_end(ap);
        err->code = PR_ESYS;
        err->sys_errno = saved;
        (void)snprintf(err->msg, sizeof(err->msg), "%s: %s", head, strerror(saved));
    }
    errno = saved;
    return PR_ESYS;
}

int pr_error_wrap(pr_error *err, const char *fmt, ...)
{
    if (!err)
        return PR_EINTERNAL;
    char head[128];
    char old[sizeof(err->msg)];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(head, sizeof(head), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    /* Build by hand: the joined message is cut at the buffer's end on purpose. */
    size_t hl = strnlen(head, sizeof(head));
    size_t cap = sizeof(err->msg) - 1;
    size_t o = 0;
    for (size_t i = 0; i < hl && o < cap; i++)
        err->msg[o++] = head[i];
    for (const char *sep = ": "; *sep && o < cap; sep++)
        err->msg[o++] = *sep;
    for (size_t i = 0; old[i] && o < cap; i++)
        err->msg[o++] = old[i];
    err->msg[o] = '\0';
    if (err->code == 0)
        err->code = PR_EINTERNAL;
    return err->code;
}

const char *pr_errcode_name(int code)
{
    switch (code) {
    case PR_OK:
        return "OK";
    case PR_ENOMEM:
        return "ENOMEM";
    case PR_EINVAL:
        return "EINVAL";
    case PR_ELIMIT:
        return "ELIMIT";
    case PR_ESYS:
        return "ESYS";
    case PR_EGIT:
        return "EGIT";
    case PR_EJSON:
        return "EJSON";
    case PR_ENOTFOUND:
        return "ENOTFOUND";
    case PR_EUNSAFE:
        return "EUNSAFE";
    case PR_ETIMEOUT:
        return "ETIMEOUT";
    default:
        return "EINTERNAL";
    }
}

void pr_assert_fail(const char *expr, const char *file, int line)
{
    pr_log_write(PR_LOG_ERROR, "event=assert expr=\"%s\" at=%s:%d", expr, file, line);
#ifndef NDEBUG
    abort();
#endif
}
