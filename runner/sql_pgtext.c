/* PostgreSQL statement text helpers for the sql kind: splitting schema.sql into statements,
 * reading leading keywords, rewriting :name parameters to $n, and the statement-class checks.
 * These are a first gate with clear messages; the enforcement is the server's: the job role
 * may only SELECT during queries, and schema statements run one per extended-protocol call
 * (which refuses a second statement). */
#include "sql_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "proctor/buf.h"
#include "proctor/common.h"

/* Skips a quoted or commented span starting at i; returns the index after it, or len + 1 when
 * it is unterminated. Returns i when nothing special starts there. */
static size_t skip_special(const char *s, size_t len, size_t i)
{
    if (s[i] == '\'' || s[i] == '"') {
        char q = s[i];
        for (size_t j = i + 1; j < len; j++) {
            if (s[j] == q) {
                if (j + 1 < len && s[j + 1] == q) {
                    j++;
                    continue;
                }
                return j + 1;
            }
        }
        return len + 1;
    }
    if (s[i] == '-' && i + 1 < len && s[i + 1] == '-') {
        size_t j = i;
        while (j < len && s[j] != '\n')
            j++;
        return j;
    }
    if (s[i] == '/' && i + 1 < len && s[i + 1] == '*') {
        int depth = 0; /* PostgreSQL block comments nest */
        for (size_t j = i; j + 1 < len; j++) {
            if (s[j] == '/' && s[j + 1] == '*') {
                depth++;
                j++;
            } else if (s[j] == '*' && s[j + 1] == '/') {
                depth--;
                j++;
                if (depth == 0)
                    return j + 1;
            }
        }
        return len + 1;
    }
    if (s[i] == '$') {
        /* Dollar quote: $tag$ ... $tag$ (tag of letters, digits, underscores, not a digit
         * first); $1 is a parameter. */
        size_t j = i + 1;
        while (j < len && (isalnum((unsigned char)s[j]) || s[j] == '_'))
            j++;
        if (j < len && s[j] == '$' && !(j > i + 1 && isdigit((unsigned char)s[i + 1]))) {
            size_t taglen = j - i + 1;
            for (size_t k = j + 1; k + taglen <= len; k++) {
                if (memcmp(s + k, s + i, taglen) == 0)
                    return k + taglen;
            }
            return len + 1;
        }
    }
    return i;
}

static bool blank(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (isspace((unsigned char)s[i])) {
            i++;
            continue;
        }
        size_t j = skip_special(s, len, i);
        if (j == i || s[i] == '\'' || s[i] == '"' || s[i] == '$')
            return false;
        i = j;
    }
    return true;
}

json_t *pr_sql_pg_split(const char *sql, size_t len, size_t max, pr_error *err)
{
    json_t *out = json_array();
    size_t start = 0, i = 0;
    if (!out) {
        (void)pr_error_set(err, PR_ENOMEM, "out of memory");
        return NULL;
    }
    while (i <= len) {
        if (i == len || sql[i] == ';') {
            if (!blank(sql + start, i - start)) {
                if (json_array_size(out) >= max) {
                    (void)pr_error_set(err, PR_ELIMIT, "more than %zu statements", max);
                    json_decref(out);
                    return NULL;
                }
                json_t *st = json_stringn(sql + start, i - start);
                if (!st || json_array_append_new(out, st) != 0) {
                    (void)pr_error_set(err, PR_EINVAL, "statement %zu is not valid UTF-8",
                                       json_array_size(out) + 1);
                    json_decref(out);
                    return NULL;
                }
            }
            start = i + 1;
            i++;
            continue;
        }
        size_t j = skip_special(sql, len, i);
        if (j > len) {
            (void)pr_error_set(err, PR_EINVAL, "unterminated quote or comment");
            json_decref(out);
            return NULL;
        }
        i = j > i ? j : i + 1;
    }
    return out;
}

size_t pr_sql_pg_keywords(const char *sql, char words[][32], size_t n)
{
    size_t len = strlen(sql), i = 0, got = 0;
    while (i < len && got < n) {
        if (isspace((unsigned char)sql[i]) || sql[i] == '(') {
            i++;
            continue;
        }
        size_t j = skip_special(sql, len, i);
        if (j > i && (sql[i] == '-' || sql[i] == '/')) {
            i = j;
            continue;
        }
        if (!(isalpha((unsigned char)sql[i]) || sql[i] == '_' || sql[i] == '"'))
            break;
        size_t k = 0;
        if (sql[i] == '"') {
            /* A quoted identifier counts as one word, kept as written. */
            size_t e = skip_special(sql, len, i);
            if (e > len)
                break;
            for (size_t m = i; m < e && k < 31; m++)
                words[got][k++] = sql[m];
            i = e;
        } else {
            while (i < len && (isalnum((unsigned char)sql[i]) || sql[i] == '_' || sql[i] == '.' ||
                               sql[i] == '$')) {
                if (k < 31)
                    words[got][k++] = (char)toupper((unsigned char)sql[i]);
                i++;
            }
        }
        words[got][k] = '\0';
        got++;
    }
    return got;
}

char *pr_sql_pg_params(const char *sql, size_t len, json_t **names, pr_error *err)
{
    pr_buf out = PR_BUF_INIT(len * 2 + 64);
    json_t *list = json_array();
    size_t i = 0;
    int rc = 0;

    *names = NULL;
    if (!list) {
        (void)pr_error_set(err, PR_ENOMEM, "out of memory");
        return NULL;
    }
    while (i < len && rc == 0) {
        size_t j = skip_special(sql, len, i);
        if (j > len) {
            rc = pr_error_set(err, PR_EINVAL, "unterminated quote or comment");
            break;
        }
        if (j > i) {
            rc = pr_buf_put(&out, sql + i, j - i);
            i = j;
            continue;
        }
        if (sql[i] == ':' && i + 1 < len && sql[i + 1] == ':') {
            rc = pr_buf_put(&out, "::", 2); /* a cast */
            i += 2;
            continue;
        }
        if (sql[i] == ':' && i + 1 < len &&
            (isalpha((unsigned char)sql[i + 1]) || sql[i + 1] == '_')) {
            size_t k = i + 1;
            while (k < len && (isalnum((unsigned char)sql[k]) || sql[k] == '_'))
                k++;
            json_t *name = json_stringn(sql + i + 1, k - i - 1);
            size_t idx = 0, n = json_array_size(list);
            while (idx < n && !json_equal(json_array_get(list, idx), name))
                idx++;
            if (idx == n)
                (void)json_array_append(list, name);
            json_decref(name);
            rc = pr_buf_printf(&out, "$%zu", idx + 1);
            i = k;
            continue;
        }
        if (sql[i] == '$' && i + 1 < len && isdigit((unsigned char)sql[i + 1])) {
            rc = pr_error_set(err, PR_EINVAL,
                              "positional parameters ($1) are not supported; "
                              "use the named parameters");
            break;
        }
        rc = pr_buf_put(&out, sql + i, 1);
        i++;
    }
    if (rc == 0 && !out.ptr)
        rc = pr_buf_puts(&out, "");
    if (rc < 0) {
        if (err && !err->code)
            (void)pr_error_set(err, rc, "query too long");
        pr_buf_free(&out);
        json_decref(list);
        return NULL;
    }
    *names = list;
    return pr_buf_detach(&out);
}

static bool is_pack_table(const char *word, const char *const *tables)
{
    const char *name = word;
    if (strncasecmp(name, "PUBLIC.", 7) == 0)
        name += 7;
    for (size_t i = 0; tables[i]; i++) {
        if (strcasecmp(name, tables[i]) == 0)
            return true;
    }
    return false;
}

int pr_sql_pg_check_schema_stmt(const char *stmt, const char *const *tables, pr_error *err)
{
    char w[12][32];
    size_t n = pr_sql_pg_keywords(stmt, w, 12);
    size_t i = 0;
    if (n >= 1 && strcmp(w[0], "ANALYZE") == 0) {
        /* ANALYZE, ANALYZE VERBOSE, ANALYZE table: tables must be the pack's. */
        for (i = 1; i < n; i++) {
            if (strcmp(w[i], "VERBOSE") == 0)
                continue;
            if (!is_pack_table(w[i], tables))
                return pr_error_set(err, PR_EINVAL,
                                    "ANALYZE %s: not one of the challenge's "
                                    "tables",
                                    w[i]);
        }
        return 0;
    }
    if (n < 2 || strcmp(w[0], "CREATE") != 0)
        return pr_error_set(err, PR_EINVAL, "only CREATE INDEX and ANALYZE are allowed (got %s)",
                            n ? w[0] : "nothing");
    i = 1;
    if (strcmp(w[i], "UNIQUE") == 0)
        i++;
    if (i >= n || strcmp(w[i], "INDEX") != 0)
        return pr_error_set(err, PR_EINVAL,
                            "only CREATE INDEX and ANALYZE are allowed (got "
                            "CREATE %s)",
                            i < n ? w[i] : "");
    i++;
    if (i < n && strcmp(w[i], "CONCURRENTLY") == 0)
        return pr_error_set(err, PR_EINVAL, "CREATE INDEX CONCURRENTLY is not supported here");
    /* [IF NOT EXISTS] [name] ON [ONLY] table */
    if (i + 2 < n && strcmp(w[i], "IF") == 0 && strcmp(w[i + 1], "NOT") == 0 &&
        strcmp(w[i + 2], "EXISTS") == 0)
        i += 3;
    if (i < n && strcmp(w[i], "ON") != 0)
        i++; /* the index name */
    if (i >= n || strcmp(w[i], "ON") != 0)
        return pr_error_set(err, PR_EINVAL, "CREATE INDEX: expected ON <table>");
    i++;
    if (i < n && strcmp(w[i], "ONLY") == 0)
        i++;
    if (i >= n || !is_pack_table(w[i], tables))
        return pr_error_set(err, PR_EINVAL,
                            "CREATE INDEX on %s: not one of the challenge's "
                            "tables",
                            i < n ? w[i] : "?");
    return 0;
}

int pr_sql_pg_check_query(const char *sql, size_t len, pr_error *err)
{
    char w[1][32];
    json_t *parts = pr_sql_pg_split(sql, len, 2, err);
    if (!parts)
        return err && err->code == PR_ELIMIT
                   ? pr_error_set(err, PR_EINVAL,
                                  "a query file must hold exactly one SELECT statement")
                   : PR_EINVAL;
    size_t n = json_array_size(parts);
    if (n != 1) {
        json_decref(parts);
        return pr_error_set(err, PR_EINVAL,
                            n == 0 ? "no SQL statement"
                                   : "a query file must hold exactly one SELECT statement");
    }
    size_t k = pr_sql_pg_keywords(json_string_value(json_array_get(parts, 0)), w, 1);
    json_decref(parts);
    if (k == 0 || (strcmp(w[0], "SELECT") != 0 && strcmp(w[0], "WITH") != 0))
        return pr_error_set(err, PR_EINVAL, "%s is not allowed in a query file: only one SELECT",
                            k ? w[0] : "this statement");
    return 0;
}
