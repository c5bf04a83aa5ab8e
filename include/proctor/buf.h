#ifndef PROCTOR_BUF_H
#define PROCTOR_BUF_H
/* Growable byte buffer with a hard maximum (curl dynbuf), and text sanitizing helpers. */

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "proctor/common.h"

typedef struct pr_buf {
    char *ptr;  /* owned; always NUL-terminated when non-NULL */
    size_t len; /* bytes used, excluding the terminator */
    size_t cap; /* bytes allocated */
    size_t max; /* hard cap on len; going past it fails with PR_ELIMIT */
} pr_buf;

#define PR_BUF_INIT(maxbytes)  \
    {                          \
        NULL, 0, 0, (maxbytes) \
    }

/** Initialises an empty buffer that may grow to max bytes. */
void pr_buf_init(pr_buf *b, size_t max);
/** Appends n bytes. PR_ELIMIT past max (nothing appended), PR_ENOMEM. */
int pr_buf_put(pr_buf *b, const void *data, size_t n);
int pr_buf_puts(pr_buf *b, const char *s);
int pr_buf_printf(pr_buf *b, const char *fmt, ...) PR_PRINTF(2, 3);
int pr_buf_vprintf(pr_buf *b, const char *fmt, va_list ap) PR_PRINTF(2, 0);
/** Empties the buffer, keeping its memory. */
void pr_buf_clear(pr_buf *b);
/** Hands the contents to the caller (pr_free it) and resets b; never NULL unless OOM. */
char *pr_buf_detach(pr_buf *b);
void pr_buf_free(pr_buf *b);

/** Copies at most max bytes of data into a new NUL-terminated string that is valid UTF-8:
 * invalid sequences become U+FFFD, NUL bytes become U+FFFD, a cut never splits a character.
 * *truncated (may be NULL) tells whether anything was cut. Returns NULL only on OOM. */
char *pr_text_clean(const char *data, size_t len, size_t max, bool *truncated);

/** Escapes a short excerpt for a log line (at most 200 bytes of input, C escapes). */
void pr_text_log_excerpt(char *out, size_t outsz, const char *data, size_t len);

#endif
