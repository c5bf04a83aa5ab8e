/* Streaming comparators (exact, tokens, float tolerance) and the checker protocol parser.
 * Both sides are read through fixed buffers; the current line keeps a short context window so
 * that the first difference can be shown with the text around it. */
#include "compare.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RD_BUF   65536
#define CTX_KEEP 48 /* bytes of the current line kept before the difference */

typedef struct rd {
    int fd; /* -1 for memory */
    const unsigned char *mem;
    size_t memlen, mempos;
    unsigned char buf[RD_BUF];
    size_t len, pos;
    bool eof;
    int err;       /* errno of a failed read, else 0 */
    uint64_t line; /* 1-based line of the next byte */
    uint64_t col;  /* bytes consumed on the current line */
    unsigned char ctx[CTX_KEEP];
    size_t ctxlen;   /* bytes in ctx (a ring once full) */
    size_t ctxstart; /* ring start */
} rd;

static void rd_init_fd(rd *r, int fd)
{
    memset(r, 0, offsetof(rd, buf));
    r->fd = fd;
    r->len = r->pos = 0;
    r->eof = false;
    r->err = 0;
    r->line = 1;
    r->col = 0;
    r->ctxlen = r->ctxstart = 0;
}

static void rd_init_mem(rd *r, const char *data, size_t len)
{
    rd_init_fd(r, -1);
    r->mem = (const unsigned char *)data;
    r->memlen = data ? len : 0;
}

/* Makes at least want (<= 2) bytes available unless EOF. */
static void rd_fill(rd *r, size_t want)
{
    while (r->len - r->pos < want && !r->eof && !r->err) {
        if (r->pos > 0) {
            memmove(r->buf, r->buf + r->pos, r->len - r->pos);
            r->len -= r->pos;
            r->pos = 0;
        }
        if (r->fd < 0) {
            size_t n = r->memlen - r->mempos;
            if (n > RD_BUF - r->len)
                n = RD_BUF - r->len;
            if (n == 0) {
                r->eof = true;
                break;
            }
            memcpy(r->buf + r->len, r->mem + r->mempos, n);
            r->mempos += n;
            r->len += n;
            continue;
        }
        ssize_t n = read(r->fd, r->buf + r->len, RD_BUF - r->len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            r->err = errno;
            break;
        }
        if (n == 0) {
            r->eof = true;
            break;
        }
        r->len += (size_t)n;
    }
}

/* The byte at offset k (0 or 1) from the read position, or -1 at EOF (or on error). */
static int rd_peek_at(rd *r, size_t k)
{
    if (r->len - r->pos <= k)
        rd_fill(r, k + 1);
    if (r->len - r->pos <= k)
        return -1;
    return r->buf[r->pos + k];
}

static int rd_peek(rd *r)
{
    return rd_peek_at(r, 0);
}

static void rd_note(rd *r, int c)
{
    if (c == '\n') {
        r->line++;
        r->col = 0;
        r->ctxlen = r->ctxstart = 0;
        return;
    }
    r->col++;
    if (r->ctxlen < CTX_KEEP) {
        r->ctx[(r->ctxstart + r->ctxlen) % CTX_KEEP] = (unsigned char)c;
        r->ctxlen++;
    } else {
        r->ctx[r->ctxstart] = (unsigned char)c;
        r->ctxstart = (r->ctxstart + 1) % CTX_KEEP;
    }
}

static int rd_get(rd *r)
{
    int c = rd_peek(r);
    if (c < 0)
        return c;
    r->pos++;
    rd_note(r, c);
    return c;
}

/* Exact mode: "\r\n" reads as "\n". */
static int rd_peek_norm(rd *r)
{
    int c = rd_peek(r);
    if (c == '\r' && rd_peek_at(r, 1) == '\n')
        return '\n';
    return c;
}

static int rd_get_norm(rd *r)
{
    int c = rd_peek(r);
    if (c == '\r' && rd_peek_at(r, 1) == '\n') {
        r->pos++;
        c = rd_get(r);
    } else if (c >= 0) {
        c = rd_get(r);
    }
    return c;
}

/* True when only one line end ("\n" or "\r\n") remains before EOF. */
static bool rd_only_newline_left(rd *r)
{
    if (rd_peek_norm(r) != '\n')
        return false;
    (void)rd_get_norm(r);
    return rd_peek(r) < 0;
}

/* Builds the excerpt of r around its read position: the kept context of the current line,
 * then bytes ahead up to the end of the line. Consumes what it reads ahead. */
static void excerpt(rd *r, char *out, size_t *out_len)
{
    size_t o = 0;
    if (r->col > r->ctxlen) {
        for (; o < 3; o++)
            out[o] = '.';
    }
    for (size_t i = 0; i < r->ctxlen; i++)
        out[o++] = (char)r->ctx[(r->ctxstart + i) % CTX_KEEP];
    while (o < PR_CMP_EXCERPT_MAX) {
        int c = rd_peek(r);
        if (c < 0 || c == '\n' || (c == '\r' && rd_peek_at(r, 1) == '\n'))
            break;
        out[o++] = (char)c;
        r->pos++;
    }
    if (o >= PR_CMP_EXCERPT_MAX && rd_peek(r) >= 0 && rd_peek(r) != '\n') {
        for (int k = 0; k < 3; k++)
            out[o++] = '.';
    }
    *out_len = o;
}

static void set_diff(pr_cmp_result *res, rd *e, rd *g, const char *reason)
{
    res->equal = false;
    res->line = g->line;
    res->exp_line = e->line;
    (void)snprintf(res->reason, sizeof(res->reason), "%s", reason);
    excerpt(e, res->expected, &res->expected_len);
    excerpt(g, res->got, &res->got_len);
}

static void cmp_exact(pr_cmp_result *res, rd *e, rd *g)
{
    for (;;) {
        int a = rd_peek_norm(e);
        int b = rd_peek_norm(g);
        if (a < 0 && b < 0)
            break;
        if (a == b) {
            (void)rd_get_norm(e);
            (void)rd_get_norm(g);
            continue;
        }
        if (a < 0 && rd_only_newline_left(g))
            break;
        if (b < 0 && rd_only_newline_left(e))
            break;
        uint64_t col = g->col + 1;
        if (a < 0)
            set_diff(res, e, g, "the output goes on after the expected end");
        else if (b < 0)
            set_diff(res, e, g, "the output ends early");
        else if (a == '\n')
            set_diff(res, e, g, "the output line is longer than expected");
        else if (b == '\n')
            set_diff(res, e, g, "the output line is shorter than expected");
        else
            set_diff(res, e, g, "the lines differ");
        res->column = col;
        return;
    }
    res->equal = true;
}

static bool is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static void skip_space(rd *r)
{
    while (is_space(rd_peek(r)))
        (void)rd_get(r);
}

/* Reads up to PR_CMP_TOKEN_MAX bytes of the token at r into buf; *more tells whether the token
 * goes on. The bytes stay in r's context window for excerpts. */
static size_t read_token(rd *r, char *buf, bool *more)
{
    size_t n = 0;
    while (n < PR_CMP_TOKEN_MAX) {
        int c = rd_peek(r);
        if (c < 0 || is_space(c))
            break;
        buf[n++] = (char)rd_get(r);
    }
    int c = rd_peek(r);
    *more = c >= 0 && !is_space(c);
    return n;
}

static bool ci_eq(const char *a, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    if (n != l)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = a[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != lit[i])
            return false;
    }
    return true;
}

/* Parses a decimal number token (sign, digits, optional fraction, optional exponent) or
 * nan/inf/infinity. False for anything else, hexadecimal included. */
static bool parse_number(const char *s, size_t n, double *out)
{
    char tmp[PR_CMP_TOKEN_MAX + 1];
    size_t i = 0;
    bool neg = false;
    if (n == 0 || n > PR_CMP_TOKEN_MAX)
        return false;
    if (s[0] == '+' || s[0] == '-') {
        neg = s[0] == '-';
        i = 1;
    }
    if (ci_eq(s + i, n - i, "nan")) {
        *out = NAN;
        return true;
    }
    if (ci_eq(s + i, n - i, "inf") || ci_eq(s + i, n - i, "infinity")) {
        *out = neg ? -INFINITY : INFINITY;
        return true;
    }
    size_t digits = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        i++;
        digits++;
    }
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
            digits++;
        }
    }
    if (digits == 0)
        return false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t ed = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
            ed++;
        }
        if (ed == 0)
            return false;
    }
    if (i != n)
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    *out = strtod(tmp, NULL); /* overflow gives +-HUGE_VAL, which compares as infinity */
    return true;
}

static bool within(double exp, double got, double abs_tol, double rel_tol)
{
    if (isnan(exp) || isnan(got))
        return isnan(exp) && isnan(got);
    if (isinf(exp) || isinf(got))
        return exp == got;
    double d = fabs(got - exp);
    return d <= abs_tol || d <= rel_tol * fabs(exp);
}

/* Float mode, when the expected token is complete: 1 when it is a number and the output's
 * token matches it, -1 (difference recorded) when it is a number and does not, 0 when the
 * expected token is not a number (compare bytes). */
static int cmp_float_token(pr_cmp_result *res, rd *e, rd *g, const pr_cmp_spec *spec,
                           const char *ta, size_t na, const char *tb, size_t nb, bool more_b)
{
    double x, y;
    if (!parse_number(ta, na, &x))
        return 0;
    if (more_b || !parse_number(tb, nb, &y)) {
        set_diff(res, e, g, "expected a number");
        return -1;
    }
    if (!within(x, y, spec->abs_tol, spec->rel_tol)) {
        char why[160];
        (void)snprintf(why, sizeof(why),
                       "the number differs beyond tolerance (abs %g, rel %g): expected %.17g, "
                       "got %.17g",
                       spec->abs_tol, spec->rel_tol, x, y);
        set_diff(res, e, g, why);
        return -1;
    }
    return 1;
}

static void cmp_tokens(pr_cmp_result *res, rd *e, rd *g, const pr_cmp_spec *spec)
{
    char ta[PR_CMP_TOKEN_MAX], tb[PR_CMP_TOKEN_MAX];
    for (;;) {
        skip_space(e);
        skip_space(g);
        int a = rd_peek(e);
        int b = rd_peek(g);
        if (a < 0 && b < 0)
            break;
        if (a < 0) {
            set_diff(res, e, g, "the output has more tokens than expected");
            return;
        }
        if (b < 0) {
            set_diff(res, e, g, "the output ends early (fewer tokens than expected)");
            return;
        }
        /* The excerpt shows the token from its start: forget the line context before it
         * only for the purpose of locating, not for display. */
        bool more_a, more_b;
        size_t na = read_token(e, ta, &more_a);
        size_t nb = read_token(g, tb, &more_b);
        if (spec->mode == PR_CMP_FLOAT && !more_a) {
            int f = cmp_float_token(res, e, g, spec, ta, na, tb, nb, more_b);
            if (f < 0)
                return;
            if (f > 0)
                continue;
        }
        if (na != nb || memcmp(ta, tb, na) != 0 || more_a != more_b) {
            set_diff(res, e, g, "the tokens differ");
            return;
        }
        /* Both tokens are longer than the buffer and equal so far: stream the rest. */
        while (more_a) {
            int c = rd_peek(e), d = rd_peek(g);
            bool end_c = c < 0 || is_space(c), end_d = d < 0 || is_space(d);
            if (end_c && end_d)
                break;
            if (end_c != end_d || c != d) {
                set_diff(res, e, g, "the tokens differ");
                return;
            }
            (void)rd_get(e);
            (void)rd_get(g);
        }
    }
    res->equal = true;
}

static void compare_readers(pr_cmp_result *res, rd *e, rd *g, const pr_cmp_spec *spec)
{
    memset(res, 0, sizeof(*res));
    if (spec->mode == PR_CMP_EXACT)
        cmp_exact(res, e, g);
    else
        cmp_tokens(res, e, g, spec);
}

int pr_compare_fds(pr_cmp_result *out, int expected_fd, int got_fd, const pr_cmp_spec *spec,
                   pr_error *err)
{
    rd *e = pr_malloc(sizeof(rd));
    rd *g = pr_malloc(sizeof(rd));
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (!e || !g) {
        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }
    rd_init_fd(e, expected_fd);
    rd_init_fd(g, got_fd);
    compare_readers(out, e, g, spec);
    if (e->err || g->err) {
        errno = e->err ? e->err : g->err;
        rc = pr_error_sys(err, "reading %s for comparison", e->err ? "expected output" : "output");
    }
cleanup:
    pr_free(e);
    pr_free(g);
    return rc;
}

void pr_compare_mem(pr_cmp_result *out, const char *expected, size_t expected_len, const char *got,
                    size_t got_len, const pr_cmp_spec *spec)
{
    /* The readers are large (two 64 KiB buffers): keep them off the stack. */
    static _Thread_local rd e, g;
    rd_init_mem(&e, expected, expected_len);
    rd_init_mem(&g, got, got_len);
    compare_readers(out, &e, &g, spec);
}

int pr_cmp_mode_parse(const char *name, pr_cmp_mode *mode, bool *is_checker)
{
    *is_checker = false;
    if (strcmp(name, "exact") == 0) {
        *mode = PR_CMP_EXACT;
        return 0;
    }
    if (strcmp(name, "tokens") == 0) {
        *mode = PR_CMP_TOKENS;
        return 0;
    }
    if (strcmp(name, "checker") == 0) {
        *mode = PR_CMP_EXACT;
        *is_checker = true;
        return 0;
    }
    return PR_EINVAL;
}

int pr_checker_parse(pr_checker_verdict *out, const char *text, size_t len, pr_error *err)
{
    json_t *root = NULL;
    json_error_t jerr;
    int rc = 0;
    size_t start = 0, end = len;

    memset(out, 0, sizeof(*out));
    if (!text || len == 0)
        return pr_error_set(err, PR_EINVAL, "the checker printed nothing");
    if (len > PR_CHECKER_OUTPUT_MAX)
        return pr_error_set(err, PR_EINVAL, "the checker printed more than %d bytes",
                            PR_CHECKER_OUTPUT_MAX);
    while (start < end && is_space((unsigned char)text[start]))
        start++;
    while (end > start && is_space((unsigned char)text[end - 1]))
        end--;
    if (start == end)
        return pr_error_set(err, PR_EINVAL, "the checker printed only whitespace");
    if (memchr(text + start, '\n', end - start))
        return pr_error_set(err, PR_EINVAL, "the checker printed more than one line");
    root = json_loadb(text + start, end - start, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        rc = pr_error_set(err, PR_EINVAL, "the checker's line is not JSON: %s", jerr.text);
        goto cleanup;
    }
    if (!json_is_object(root)) {
        rc = pr_error_set(err, PR_EINVAL, "the checker's line is not a JSON object");
        goto cleanup;
    }
    const char *verdict = json_string_value(json_object_get(root, "verdict"));
    if (!verdict || (strcmp(verdict, "AC") != 0 && strcmp(verdict, "WA") != 0)) {
        rc = pr_error_set(err, PR_EINVAL, "the checker's \"verdict\" is not \"AC\" or \"WA\"");
        goto cleanup;
    }
    out->accepted = strcmp(verdict, "AC") == 0;
    const json_t *score = json_object_get(root, "score");
    if (score) {
        if (!json_is_number(score) || !isfinite(json_number_value(score)) ||
            json_number_value(score) < 0 || json_number_value(score) > 1) {
            rc = pr_error_set(err, PR_EINVAL, "the checker's \"score\" is not a number 0..1");
            goto cleanup;
        }
        out->score = json_number_value(score);
    } else {
        out->score = out->accepted ? 1.0 : 0.0;
    }
    if (out->accepted && out->score != 1.0) {
        rc = pr_error_set(err, PR_EINVAL, "the checker said AC with a score below 1");
        goto cleanup;
    }
    if (!out->accepted && out->score >= 1.0) {
        rc = pr_error_set(err, PR_EINVAL, "the checker said WA with a score of 1");
        goto cleanup;
    }
    const json_t *msg = json_object_get(root, "message");
    if (msg && !json_is_string(msg)) {
        rc = pr_error_set(err, PR_EINVAL, "the checker's \"message\" is not a string");
        goto cleanup;
    }
    if (msg) {
        size_t n = json_string_length(msg);
        if (n >= sizeof(out->message))
            n = sizeof(out->message) - 1;
        memcpy(out->message, json_string_value(msg), n);
        out->message[n] = '\0';
    }
cleanup:
    json_decref(root);
    if (rc < 0) {
        out->accepted = false;
        out->score = 0;
    }
    return rc;
}
