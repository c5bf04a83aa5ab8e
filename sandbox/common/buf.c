#include "proctor/buf.h"

#include <stdio.h>
#include <string.h>

#include "proctor/error.h"

void pr_buf_init(pr_buf *b, size_t max)
{
    b->ptr = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

static int buf_reserve(pr_buf *b, size_t extra)
{
    size_t need;
    if (__builtin_add_overflow(b->len, extra, &need) || need > b->max)
        return PR_ELIMIT;
    if (need + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need + 1) {
        if (__builtin_mul_overflow(cap, 2, &cap))
            return PR_ENOMEM;
    }
    char *p = pr_realloc(b->ptr, cap);
    if (!p)
        return PR_ENOMEM;
    b->ptr = p;
    b->cap = cap;
    return 0;
}

int pr_buf_put(pr_buf *b, const void *data, size_t n)
{
    int rc = buf_reserve(b, n);
    if (rc < 0)
        return rc;
    if (n)
        memcpy(b->ptr + b->len, data, n);
    b->len += n;
    b->ptr[b->len] = '\0';
    return 0;
}

int pr_buf_puts(pr_buf *b, const char *s)
{
    return pr_buf_put(b, s, strlen(s));
}

int pr_buf_vprintf(pr_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return PR_EINVAL;
    int rc = buf_reserve(b, (size_t)n);
    if (rc < 0)
        return rc;
    (void)vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int pr_buf_printf(pr_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = pr_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void pr_buf_clear(pr_buf *b)
{
    b->len = 0;
    if (b->ptr)
        b->ptr[0] = '\0';
}

char *pr_buf_detach(pr_buf *b)
{
    char *p = b->ptr;
    if (!p)
        p = pr_strdup("");
    b->ptr = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

void pr_buf_free(pr_buf *b)
{
    if (!b)
        return;
    pr_free(b->ptr);
    b->ptr = NULL;
    b->len = 0;
    b->cap = 0;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid or incomplete. */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t n;
    unsigned int cp;
    if (c < 0x80)
        return c ? 1 : 0;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

char *pr_text_clean(const char *data, size_t len, size_t max, bool *truncated)
{
    static const char repl[] = "\xEF\xBF\xBD";
    pr_buf out = PR_BUF_INIT(max + 4);
    const unsigned char *s = (const unsigned char *)data;
    size_t i = 0;
    bool cut = false;

    if (truncated)
        *truncated = false;
    while (data && i < len) {
        size_t n = utf8_seq_len(s + i, len - i);
        const void *piece = n ? (const void *)(s + i) : (const void *)repl;
        size_t plen = n ? n : 3;
        if (out.len + plen > max) {
            cut = true;
            break;
        }
        if (pr_buf_put(&out, piece, plen) < 0) {
            pr_buf_free(&out);
            return NULL;
        }
        i += n ? n : 1;
    }
    if (truncated)
        *truncated = cut;
    return pr_buf_detach(&out);
}

void pr_text_log_excerpt(char *out, size_t outsz, const char *data, size_t len)
{
    size_t o = 0;
    if (outsz == 0)
        return;
    if (len > 200)
        len = 200;
    for (size_t i = 0; i < len && o + 5 < outsz; i++) {
        unsigned char c = (unsigned char)data[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c >= 0x20 && c < 0x7F) {
            out[o++] = (char)c;
        } else {
            (void)snprintf(out + o, outsz - o, "\\x%02x", c);
            o += 4;
        }
    }
    out[o] = '\0';
}
