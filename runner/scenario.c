/* Scenario engine of the http kind: templates, JSON Pointer, checks and the step runner. */
#include "scenario.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "proctor/common.h"
#include "proctor/report.h"
#include "httpc.h"
#include "jwt.h"

#define EXCERPT_MAX 2048
/* Formats a field path into the local buffer f; a cut path is still a useful message. */
#define FIELDF(...) ((void)(snprintf(f, sizeof(f), __VA_ARGS__) < 0))
#if defined(__GNUC__) && !defined(__clang__)
/* Field paths in messages are cut at 600 bytes on purpose. */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

/* ------------------------------------------------------------------ JSON Pointer */

bool pr_json_pointer_valid(const char *ptr)
{
    if (!ptr)
        return false;
    if (ptr[0] == '\0')
        return true;
    if (ptr[0] != '/')
        return false;
    for (const char *p = ptr; *p; p++) {
        if (*p == '~' && p[1] != '0' && p[1] != '1')
            return false;
    }
    return true;
}

/* Copies the next reference token of ptr (after a '/') into tok, unescaped; returns the rest. */
static const char *next_token(const char *ptr, pr_buf *tok)
{
    pr_buf_clear(tok);
    const char *p = ptr + 1;
    while (*p && *p != '/') {
        char ch = *p;
        if (ch == '~') {
            ch = p[1] == '1' ? '/' : '~';
            p++;
        }
        if (pr_buf_put(tok, &ch, 1) < 0)
            return NULL;
        p++;
    }
    if (!tok->ptr && pr_buf_put(tok, "", 0) < 0)
        return NULL;
    return p;
}

static bool array_index(const char *s, size_t *out)
{
    if (!*s || (s[0] == '0' && s[1]) || strlen(s) > 9)
        return false;
    size_t v = 0;
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return false;
        v = v * 10 + (size_t)(*p - '0');
    }
    *out = v;
    return true;
}

static json_t *pointer_eval(const json_t *node, const char *ptr, int depth)
{
    if (depth > 64)
        return NULL;
    if (*ptr == '\0')
        return json_incref((json_t *)node);
    pr_buf tok = PR_BUF_INIT(4096);
    json_t *out = NULL;
    const char *rest = next_token(ptr, &tok);
    if (!rest)
        goto cleanup;
    if (strcmp(tok.ptr, "*") == 0 && (json_is_array(node) || json_is_object(node))) {
        out = json_array();
        size_t i;
        json_t *el;
        const char *key;
        if (json_is_array(node)) {
            json_array_foreach (node, i, el) {
                json_t *sub = pointer_eval(el, rest, depth + 1);
                if (sub)
                    (void)json_array_append_new(out, sub);
            }
        } else {
            json_object_foreach ((json_t *)node, key, el) {
                json_t *sub = pointer_eval(el, rest, depth + 1);
                if (sub)
                    (void)json_array_append_new(out, sub);
            }
        }
        goto cleanup;
    }
    const json_t *child = NULL;
    if (json_is_object(node)) {
        child = json_object_get(node, tok.ptr);
    } else if (json_is_array(node)) {
        size_t idx;
        if (array_index(tok.ptr, &idx))
            child = json_array_get(node, idx);
    }
    if (child)
        out = pointer_eval(child, rest, depth + 1);
cleanup:
    pr_buf_free(&tok);
    return out;
}

json_t *pr_json_pointer(const json_t *root, const char *ptr)
{
    if (!root || !pr_json_pointer_valid(ptr))
        return NULL;
    return pointer_eval(root, ptr, 0);
}

/* ------------------------------------------------------------------ templates */

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64: small, seeded, good enough for picking test data. */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int put_value(pr_buf *out, const json_t *v)
{
    char num[64];
    if (json_is_string(v))
        return pr_buf_put(out, json_string_value(v), json_string_length(v));
    if (json_is_integer(v)) {
        (void)snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return pr_buf_puts(out, num);
    }
    if (json_is_real(v)) {
        (void)snprintf(num, sizeof(num), "%.17g", json_real_value(v));
        return pr_buf_puts(out, num);
    }
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
        return PR_ENOMEM;
    int rc = pr_buf_puts(out, s);
    pr_free(s);
    return rc;
}

static int put_url_encoded(pr_buf *out, const json_t *v)
{
    pr_buf tmp = PR_BUF_INIT(1 << 20);
    int rc = put_value(&tmp, v);
    for (size_t i = 0; rc == 0 && i < tmp.len; i++) {
        unsigned char ch = (unsigned char)tmp.ptr[i];
        if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            rc = pr_buf_put(out, &tmp.ptr[i], 1);
        } else {
            char enc[4];
            (void)snprintf(enc, sizeof(enc), "%%%02X", ch);
            rc = pr_buf_put(out, enc, 3);
        }
    }
    pr_buf_free(&tmp);
    return rc;
}

/* Resolves "name", "url:name", "json:name", "pick:name" into a borrowed variable. */
static const json_t *lookup(const char *expr, size_t n, const json_t *vars, uint64_t *rng,
                            char *mode, pr_error *err)
{
    char name[128];
    *mode = 0;
    while (n > 0 && isspace((unsigned char)*expr)) {
        expr++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)expr[n - 1]))
        n--;
    static const char *const modes[] = { "url:", "json:", "pick:" };
    for (size_t i = 0; i < PR_ARRAY_LEN(modes); i++) {
        size_t ml = strlen(modes[i]);
        if (n > ml && strncmp(expr, modes[i], ml) == 0) {
            *mode = modes[i][0];
            expr += ml;
            n -= ml;
            break;
        }
    }
    if (n == 0 || n >= sizeof(name)) {
        (void)pr_error_set(err, PR_EINVAL, "bad template variable name");
        return NULL;
    }
    memcpy(name, expr, n);
    name[n] = '\0';
    const json_t *v = json_object_get(vars, name);
    if (!v) {
        (void)pr_error_set(err, PR_EINVAL, "unknown variable '%s'", name);
        return NULL;
    }
    if (*mode == 'p') {
        if (!json_is_array(v) || json_array_size(v) == 0) {
            (void)pr_error_set(err, PR_EINVAL, "variable '%s' is not a non-empty array", name);
            return NULL;
        }
        size_t idx = rng ? (size_t)(rng_next(rng) % json_array_size(v)) : 0;
        v = json_array_get(v, idx);
    }
    return v;
}

int pr_tmpl_expand(pr_buf *out, const char *s, const json_t *vars, uint64_t *rng, pr_error *err)
{
    const char *p = s;
    int rc = 0;
    while (*p) {
        const char *open = strstr(p, "{{");
        if (!open)
            return pr_buf_puts(out, p) < 0 ? pr_error_set(err, PR_ELIMIT, "template too long") : 0;
        const char *close = strstr(open + 2, "}}");
        if (!close)
            return pr_error_set(err, PR_EINVAL, "unterminated '{{' in template");
        rc = pr_buf_put(out, p, (size_t)(open - p));
        if (rc < 0)
            return pr_error_set(err, rc, "template too long");
        char mode;
        const json_t *v = lookup(open + 2, (size_t)(close - open - 2), vars, rng, &mode, err);
        if (!v)
            return PR_EINVAL;
        if (mode == 'u') {
            rc = put_url_encoded(out, v);
        } else if (mode == 'j') {
            char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            rc = d ? pr_buf_puts(out, d) : PR_ENOMEM;
            pr_free(d);
        } else {
            rc = put_value(out, v);
        }
        if (rc < 0)
            return pr_error_set(err, rc, "template too long");
        p = close + 2;
    }
    return 0;
}

static int expand_json(json_t **out, const json_t *v, const json_t *vars, uint64_t *rng, int depth,
                       pr_error *err)
{
    *out = NULL;
    if (depth > 64)
        return pr_error_set(err, PR_ELIMIT, "JSON nested too deeply");
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        if (len > 4 && strncmp(s, "{{", 2) == 0 && strcmp(s + len - 2, "}}") == 0 &&
            !strstr(s + 2, "{{") && strstr(s + 2, "}}") == s + len - 2) {
            char mode;
            const json_t *var = lookup(s + 2, len - 4, vars, rng, &mode, err);
            if (!var)
                return PR_EINVAL;
            if (mode == 0 || mode == 'p') {
                *out = json_deep_copy(var);
                return *out ? 0 : pr_error_set(err, PR_ENOMEM, "out of memory");
            }
        }
        pr_buf b = PR_BUF_INIT(1 << 20);
        int rc = pr_tmpl_expand(&b, s, vars, rng, err);
        if (rc == 0) {
            *out = json_stringn(b.ptr ? b.ptr : "", b.len);
            if (!*out)
                rc = pr_error_set(err, PR_EINVAL, "template result is not valid UTF-8");
        }
        pr_buf_free(&b);
        return rc;
    }
    if (json_is_array(v)) {
        json_t *arr = json_array();
        size_t i;
        json_t *el;
        json_array_foreach (v, i, el) {
            json_t *x;
            int rc = expand_json(&x, el, vars, rng, depth + 1, err);
            if (rc < 0) {
                json_decref(arr);
                return rc;
            }
            (void)json_array_append_new(arr, x);
        }
        *out = arr;
        return 0;
    }
    if (json_is_object(v)) {
        json_t *obj = json_object();
        const char *key;
        json_t *el;
        json_object_foreach ((json_t *)v, key, el) {
            json_t *x;
            int rc = expand_json(&x, el, vars, rng, depth + 1, err);
            if (rc < 0) {
                json_decref(obj);
                return rc;
            }
            (void)json_object_set_new(obj, key, x);
        }
        *out = obj;
        return 0;
    }
    *out = json_deep_copy(v);
    return *out ? 0 : pr_error_set(err, PR_ENOMEM, "out of memory");
}

int pr_tmpl_expand_json(json_t **out, const json_t *v, const json_t *vars, uint64_t *rng,
                        pr_error *err)
{
    return expand_json(out, v, vars, rng, 0, err);
}

/* ------------------------------------------------------------------ validation */

static int bad(pr_error *err, const char *file, const char *field, const char *what)
{
    return pr_error_set(err, PR_EINVAL, "%s: %s: %s", file, field, what);
}

static bool key_in(const char *key, const char *const *allowed)
{
    for (size_t i = 0; allowed[i]; i++) {
        if (strcmp(key, allowed[i]) == 0)
            return true;
    }
    return false;
}

static int check_keys(const json_t *obj, const char *const *allowed, const char *file,
                      const char *field, pr_error *err)
{
    const char *key = pr_json_unknown_key(obj, allowed);
    if (key) {
        char f[600];
        FIELDF("%s.%s", field, key);
        return bad(err, file, f, "unknown field");
    }
    return 0;
}

static const char *const assert_ops[] = {
    "exists",     "equal", "not_equal", "type",     "length",       "min_length",
    "max_length", "regex", "unique",    "sorted",   "gte",          "lte",
    "gt",         "lt",    "one_of",    "includes", "includes_all", "includes_in_order",
    "excludes",   NULL
};

static int validate_regex(const char *pattern, const char *file, const char *field, pr_error *err)
{
    regex_t re;
    int rc = regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char msg[128];
        (void)regerror(rc, &re, msg, sizeof(msg));
        char what[200];
        (void)snprintf(what, sizeof(what), "bad regular expression: %s", msg);
        return bad(err, file, field, what);
    }
    regfree(&re);
    return 0;
}

static int validate_assert(const json_t *a, const char *file, const char *field, bool need_var,
                           pr_error *err)
{
    char f[600];
    if (!json_is_object(a))
        return bad(err, file, field, "expected an object");
    const json_t *path = json_object_get(a, "path");
    const json_t *var = json_object_get(a, "var");
    if (need_var && !json_is_string(var))
        return bad(err, file, field, "expected \"var\": a variable name");
    if (!need_var && !var && !json_is_string(path))
        return bad(err, file, field, "expected \"path\": a JSON Pointer");
    if (var && !json_is_string(var)) {
        FIELDF("%s.var", field);
        return bad(err, file, f, "expected a string");
    }
    if (path && (!json_is_string(path) || !pr_json_pointer_valid(json_string_value(path)))) {
        FIELDF("%s.path", field);
        return bad(err, file, f, "expected a JSON Pointer (\"\" or \"/a/0/b\")");
    }
    int nops = 0;
    const char *key;
    json_t *v;
    json_object_foreach ((json_t *)a, key, v) {
        FIELDF("%s.%s", field, key);
        if (strcmp(key, "path") == 0 || strcmp(key, "var") == 0)
            continue;
        if (!key_in(key, assert_ops))
            return bad(err, file, f,
                       "unknown assertion (exists, equal, not_equal, type, length, "
                       "min_length, max_length, regex, unique, sorted, gte, lte, "
                       "gt, lt, one_of, includes, includes_all, includes_in_order, excludes)");
        nops++;
        if ((strcmp(key, "exists") == 0 || strcmp(key, "unique") == 0) && !json_is_boolean(v))
            return bad(err, file, f, "expected true or false");
        if (strcmp(key, "type") == 0) {
            static const char *const types[] = { "string", "integer", "number", "boolean",
                                                 "null",   "array",   "object", NULL };
            if (!json_is_string(v) || !key_in(json_string_value(v), types))
                return bad(err, file, f,
                           "expected string, integer, number, boolean, null, array or object");
        }
        if ((strstr(key, "length") || strcmp(key, "gte") == 0 || strcmp(key, "lte") == 0 ||
             strcmp(key, "gt") == 0 || strcmp(key, "lt") == 0) &&
            !json_is_number(v) && !json_is_string(v))
            return bad(err, file, f, "expected a number (or a \"{{var}}\" template)");
        if (strcmp(key, "regex") == 0) {
            if (!json_is_string(v))
                return bad(err, file, f, "expected a POSIX extended regular expression");
            int rc = validate_regex(json_string_value(v), file, f, err);
            if (rc < 0)
                return rc;
        }
        if (strcmp(key, "sorted") == 0 &&
            (!json_is_string(v) || (strcmp(json_string_value(v), "asc") != 0 &&
                                    strcmp(json_string_value(v), "desc") != 0)))
            return bad(err, file, f, "expected \"asc\" or \"desc\"");
        if (strcmp(key, "one_of") == 0 && !json_is_array(v))
            return bad(err, file, f, "expected an array of values");
    }
    if (nops == 0)
        return bad(err, file, field, "no assertion given");
    return 0;
}

int pr_scenario_validate_request(const json_t *req, const char *file, const char *field,
                                 pr_error *err)
{
    char f[600];
    const json_t *method = json_object_get(req, "method");
    const json_t *path = json_object_get(req, "path");
    FIELDF("%s.method", field);
    if (!json_is_string(method) || json_string_length(method) == 0 ||
        json_string_length(method) > 16)
        return bad(err, file, f, "expected an HTTP method such as \"GET\"");
    for (const char *p = json_string_value(method); *p; p++) {
        if (!isupper((unsigned char)*p))
            return bad(err, file, f, "expected an upper-case HTTP method");
    }
    FIELDF("%s.path", field);
    if (!json_is_string(path) || json_string_value(path)[0] != '/')
        return bad(err, file, f, "expected a path starting with '/'");
    const json_t *headers = json_object_get(req, "headers");
    if (headers) {
        FIELDF("%s.headers", field);
        if (!json_is_object(headers))
            return bad(err, file, f, "expected an object of header names and string values");
        const char *key;
        json_t *v;
        json_object_foreach ((json_t *)headers, key, v) {
            if (!json_is_string(v) || strpbrk(key, "\r\n: ") || !*key)
                return bad(err, file, f, "expected header names and string values");
        }
    }
    if (json_object_get(req, "json") && json_object_get(req, "body")) {
        FIELDF("%s.body", field);
        return bad(err, file, f, "give either \"json\" or \"body\", not both");
    }
    const json_t *body = json_object_get(req, "body");
    if (body && !json_is_string(body)) {
        FIELDF("%s.body", field);
        return bad(err, file, f, "expected a string (raw body); use \"json\" for JSON");
    }
    const json_t *timeout = json_object_get(req, "timeout_ms");
    if (timeout && (!json_is_integer(timeout) || json_integer_value(timeout) < 1 ||
                    json_integer_value(timeout) > 60000)) {
        FIELDF("%s.timeout_ms", field);
        return bad(err, file, f, "expected an integer 1..60000");
    }
    const json_t *jwt = json_object_get(req, "jwt");
    if (jwt) {
        FIELDF("%s.jwt", field);
        if (!json_is_object(jwt))
            return bad(err, file, f, "expected an object");
        static const char *const jk[] = { "role",   "sub",   "exp_offset_s", "secret", "alg",
                                          "claims", "token", "scheme",       NULL };
        int rc = check_keys(jwt, jk, file, f, err);
        if (rc < 0)
            return rc;
        const json_t *alg = json_object_get(jwt, "alg");
        static const char *const algs[] = { "HS256", "HS384", "HS512", "none", NULL };
        if (alg && (!json_is_string(alg) || !key_in(json_string_value(alg), algs)))
            return bad(err, file, f, "alg: expected HS256, HS384, HS512 or none");
        const json_t *exp = json_object_get(jwt, "exp_offset_s");
        if (exp && !json_is_integer(exp) && !json_is_null(exp))
            return bad(err, file, f, "exp_offset_s: expected an integer or null");
        const json_t *claims = json_object_get(jwt, "claims");
        if (claims && !json_is_object(claims))
            return bad(err, file, f, "claims: expected an object");
        static const char *const strs[] = { "sub", "secret", "token", "scheme", NULL };
        for (size_t i = 0; strs[i]; i++) {
            const json_t *s = json_object_get(jwt, strs[i]);
            if (s && !json_is_string(s))
                return bad(err, file, f, "sub, secret, token and scheme must be strings");
        }
        const json_t *role = json_object_get(jwt, "role");
        if (role && !json_is_string(role) && !json_is_null(role))
            return bad(err, file, f, "role: expected a string or null");
    }
    return 0;
}

static int validate_expect(const json_t *ex, const char *file, const char *field, pr_error *err)
{
    char f[600];
    if (!json_is_object(ex))
        return bad(err, file, field, "expected an object");
    static const char *const keys[] = { "status", "headers", "json", NULL };
    int rc = check_keys(ex, keys, file, field, err);
    if (rc < 0)
        return rc;
    const json_t *status = json_object_get(ex, "status");
    if (status) {
        FIELDF("%s.status", field);
        bool ok = json_is_integer(status);
        if (json_is_array(status) && json_array_size(status) > 0) {
            ok = true;
            size_t i;
            json_t *s;
            json_array_foreach (status, i, s) {
                ok = ok && json_is_integer(s);
            }
        }
        if (!ok)
            return bad(err, file, f, "expected a status code or a list of them");
    }
    const json_t *headers = json_object_get(ex, "headers");
    if (headers) {
        if (!json_is_object(headers)) {
            FIELDF("%s.headers", field);
            return bad(err, file, f, "expected an object");
        }
        const char *key;
        json_t *v;
        json_object_foreach ((json_t *)headers, key, v) {
            FIELDF("%s.headers.%s", field, key);
            if (json_is_string(v))
                continue;
            if (!json_is_object(v))
                return bad(err, file, f, "expected a string or {equal, regex, present}");
            static const char *const hk[] = { "equal", "regex", "present", NULL };
            rc = check_keys(v, hk, file, f, err);
            if (rc < 0)
                return rc;
            const json_t *re = json_object_get(v, "regex");
            if (re) {
                if (!json_is_string(re))
                    return bad(err, file, f, "regex: expected a string");
                rc = validate_regex(json_string_value(re), file, f, err);
                if (rc < 0)
                    return rc;
            }
            const json_t *present = json_object_get(v, "present");
            if (present && !json_is_boolean(present))
                return bad(err, file, f, "present: expected true or false");
            const json_t *eq = json_object_get(v, "equal");
            if (eq && !json_is_string(eq))
                return bad(err, file, f, "equal: expected a string");
        }
    }
    const json_t *js = json_object_get(ex, "json");
    if (js) {
        FIELDF("%s.json", field);
        if (!json_is_array(js))
            return bad(err, file, f, "expected an array of assertions");
        size_t i;
        json_t *a;
        json_array_foreach (js, i, a) {
            FIELDF("%s.json[%zu]", field, i);
            rc = validate_assert(a, file, f, false, err);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

static int validate_step(const json_t *st, const char *file, size_t idx, pr_error *err)
{
    char field[64], f[600];
    (void)snprintf(field, sizeof(field), "steps[%zu]", idx);
    if (!json_is_object(st))
        return bad(err, file, field, "expected an object");
    const json_t *name = json_object_get(st, "name");
    if (name && !json_is_string(name)) {
        FIELDF("%s.name", field);
        return bad(err, file, f, "expected a string");
    }
    const json_t *asserts = json_object_get(st, "assert");
    if (asserts) {
        static const char *const ak[] = { "name", "assert", NULL };
        int rc = check_keys(st, ak, file, field, err);
        if (rc < 0)
            return rc;
        FIELDF("%s.assert", field);
        if (!json_is_array(asserts) || json_array_size(asserts) == 0)
            return bad(err, file, f, "expected a non-empty array of assertions");
        size_t i;
        json_t *a;
        json_array_foreach (asserts, i, a) {
            FIELDF("%s.assert[%zu]", field, i);
            rc = validate_assert(a, file, f, true, err);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    static const char *const keys[] = { "name", "method",   "path",         "headers", "jwt",
                                        "json", "body",     "timeout_ms",   "expect",  "capture",
                                        "loop", "parallel", "expect_group", "repeat",  NULL };
    int rc = check_keys(st, keys, file, field, err);
    if (rc < 0)
        return rc;
    rc = pr_scenario_validate_request(st, file, field, err);
    if (rc < 0)
        return rc;
    const json_t *ex = json_object_get(st, "expect");
    if (ex) {
        FIELDF("%s.expect", field);
        rc = validate_expect(ex, file, f, err);
        if (rc < 0)
            return rc;
    }
    const json_t *cap = json_object_get(st, "capture");
    if (cap) {
        FIELDF("%s.capture", field);
        if (!json_is_object(cap))
            return bad(err, file, f, "expected an object of variable names");
        const char *key;
        json_t *v;
        json_object_foreach ((json_t *)cap, key, v) {
            FIELDF("%s.capture.%s", field, key);
            if (json_is_string(v) && pr_json_pointer_valid(json_string_value(v)))
                continue;
            if (json_is_object(v) && json_object_size(v) == 1 &&
                ((json_is_string(json_object_get(v, "path")) &&
                  pr_json_pointer_valid(json_string_value(json_object_get(v, "path")))) ||
                 json_is_string(json_object_get(v, "header"))))
                continue;
            return bad(err, file, f,
                       "expected a JSON Pointer, {\"path\": pointer} or {\"header\": name}");
        }
    }
    const json_t *loop = json_object_get(st, "loop");
    if (loop) {
        FIELDF("%s.loop", field);
        static const char *const lk[] = { "while", "max", "path", NULL };
        if (!json_is_object(loop))
            return bad(err, file, f, "expected {while, max, path}");
        rc = check_keys(loop, lk, file, f, err);
        if (rc < 0)
            return rc;
        const json_t *max = json_object_get(loop, "max");
        if (!json_is_string(json_object_get(loop, "while")) ||
            !json_is_string(json_object_get(loop, "path")) || !json_is_integer(max) ||
            json_integer_value(max) < 1 || json_integer_value(max) > PR_SCN_MAX_LOOP)
            return bad(err, file, f,
                       "expected while (variable name), path (string) and max (1..1000)");
    }
    const json_t *rep = json_object_get(st, "repeat");
    if (rep) {
        FIELDF("%s.repeat", field);
        if (!json_is_integer(rep) || json_integer_value(rep) < 1 ||
            json_integer_value(rep) > PR_SCN_MAX_LOOP)
            return bad(err, file, f, "expected an integer 1..1000 (sequential copies, {{i}})");
        if (loop || json_object_get(st, "parallel"))
            return bad(err, file, f, "repeat cannot be combined with loop or parallel");
    }
    const json_t *par = json_object_get(st, "parallel");
    if (par) {
        FIELDF("%s.parallel", field);
        if (!json_is_integer(par) || json_integer_value(par) < 2 ||
            json_integer_value(par) > PR_SCN_MAX_PARALLEL)
            return bad(err, file, f, "expected an integer 2..32");
        if (loop)
            return bad(err, file, f, "a parallel step cannot loop");
    }
    const json_t *grp = json_object_get(st, "expect_group");
    if (grp) {
        FIELDF("%s.expect_group", field);
        if (!par)
            return bad(err, file, f, "only allowed with \"parallel\"");
        static const char *const gk[] = { "same_status", "same_body", "status_counts", NULL };
        if (!json_is_object(grp))
            return bad(err, file, f, "expected an object");
        rc = check_keys(grp, gk, file, f, err);
        if (rc < 0)
            return rc;
        const json_t *sc = json_object_get(grp, "status_counts");
        if (sc && !json_is_object(sc))
            return bad(err, file, f, "status_counts: expected {\"201\": 1, ...}");
    }
    return 0;
}

int pr_scenario_validate(const json_t *scn, const char *file, pr_error *err)
{
    if (!json_is_object(scn))
        return bad(err, file, "(root)", "expected an object with \"steps\"");
    static const char *const keys[] = { "name", "description", "vars", "steps", NULL };
    int rc = check_keys(scn, keys, file, "(root)", err);
    if (rc < 0)
        return rc;
    const json_t *vars = json_object_get(scn, "vars");
    if (vars && !json_is_object(vars))
        return bad(err, file, "vars", "expected an object");
    const json_t *steps = json_object_get(scn, "steps");
    if (!json_is_array(steps) || json_array_size(steps) == 0 ||
        json_array_size(steps) > PR_SCN_MAX_STEPS)
        return bad(err, file, "steps", "expected an array of 1..200 steps");
    size_t i;
    json_t *st;
    json_array_foreach (steps, i, st) {
        rc = validate_step(st, file, i, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------ rendering */

static int shell_quote(pr_buf *out, const char *s, size_t n)
{
    int rc = pr_buf_put(out, "'", 1);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (s[i] == '\'')
            rc = pr_buf_puts(out, "'\\''");
        else
            rc = pr_buf_put(out, &s[i], 1);
    }
    return rc == 0 ? pr_buf_put(out, "'", 1) : rc;
}

static int make_jwt(char **out, pr_scn_ctx *ctx, const json_t *jwt, pr_error *err)
{
    const json_t *token = json_object_get(jwt, "token");
    if (token) {
        pr_buf b = PR_BUF_INIT(16384);
        int rc = pr_tmpl_expand(&b, json_string_value(token), ctx->vars, &ctx->rng, err);
        *out = rc == 0 ? pr_buf_detach(&b) : NULL;
        pr_buf_free(&b);
        return rc;
    }
    json_t *claims = NULL;
    int rc = 0;
    const json_t *extra = json_object_get(jwt, "claims");
    if (extra) {
        rc = pr_tmpl_expand_json(&claims, extra, ctx->vars, &ctx->rng, err);
        if (rc < 0)
            return rc;
    } else {
        claims = json_object();
    }
    const json_t *sub = json_object_get(jwt, "sub");
    if (!json_object_get(claims, "sub"))
        (void)json_object_set_new(claims, "sub",
                                  json_string(sub ? json_string_value(sub) : "tester"));
    const json_t *role = json_object_get(jwt, "role");
    if (json_is_string(role))
        (void)json_object_set(claims, "role", (json_t *)role);
    long long now = (long long)time(NULL);
    const json_t *exp = json_object_get(jwt, "exp_offset_s");
    if (!json_is_null(exp) && !json_object_get(claims, "exp"))
        (void)json_object_set_new(claims, "exp",
                                  json_integer(now + (exp ? json_integer_value(exp) : 3600)));
    if (!json_object_get(claims, "iat"))
        (void)json_object_set_new(claims, "iat", json_integer(now));
    const json_t *sec = json_object_get(jwt, "secret");
    const char *secret = ctx->jwt_secret ? ctx->jwt_secret : "";
    if (sec && strcmp(json_string_value(sec), "$JWT_SECRET") != 0)
        secret = json_string_value(sec);
    const json_t *alg = json_object_get(jwt, "alg");
    rc = pr_jwt_make(out, alg ? json_string_value(alg) : "HS256", claims, secret, err);
    json_decref(claims);
    return rc;
}

static bool has_header(const json_t *hdrs, const char *name)
{
    const char *key;
    json_t *v;
    json_object_foreach ((json_t *)hdrs, key, v) {
        if (strcasecmp(key, name) == 0)
            return true;
    }
    return false;
}

int pr_scenario_render(pr_buf *raw, pr_buf *curl, json_t **desc, pr_scn_ctx *ctx, const json_t *req,
                       const char *path_override, pr_error *err)
{
    pr_buf path = PR_BUF_INIT(16384);
    pr_buf tmp = PR_BUF_INIT(1 << 20);
    json_t *hdrs = json_object(); /* rendered headers, in order */
    json_t *jbody = NULL;
    char *body = NULL;
    char *token = NULL;
    size_t body_len = 0;
    int rc;
    const char *method = json_string_value(json_object_get(req, "method"));

    rc = pr_tmpl_expand(
        &path, path_override ? path_override : json_string_value(json_object_get(req, "path")),
        ctx->vars, &ctx->rng, err);
    if (rc < 0)
        goto cleanup;
    for (size_t i = 0; i < path.len; i++) {
        if ((unsigned char)path.ptr[i] <= ' ' || path.ptr[i] == 0x7f) {
            rc = pr_error_set(err, PR_EINVAL, "rendered path contains a space or control byte");
            goto cleanup;
        }
    }
    const json_t *h = json_object_get(req, "headers");
    const char *key;
    json_t *v;
    json_object_foreach ((json_t *)h, key, v) {
        pr_buf_clear(&tmp);
        rc = pr_tmpl_expand(&tmp, json_string_value(v), ctx->vars, &ctx->rng, err);
        if (rc < 0)
            goto cleanup;
        if (tmp.ptr && strpbrk(tmp.ptr, "\r\n")) {
            rc = pr_error_set(err, PR_EINVAL, "header %s: rendered value contains a newline", key);
            goto cleanup;
        }
        (void)json_object_set_new(hdrs, key, json_string(tmp.ptr ? tmp.ptr : ""));
    }
    const json_t *jwt = json_object_get(req, "jwt");
    if (jwt) {
        rc = make_jwt(&token, ctx, jwt, err);
        if (rc < 0)
            goto cleanup;
        const json_t *scheme = json_object_get(jwt, "scheme");
        pr_buf_clear(&tmp);
        rc = pr_buf_printf(&tmp, "%s%s%s", scheme ? json_string_value(scheme) : "Bearer",
                           scheme && json_string_length(scheme) == 0 ? "" : " ", token);
        if (rc < 0)
            goto cleanup;
        (void)json_object_set_new(hdrs, "Authorization", json_string(tmp.ptr));
    }
    const json_t *js = json_object_get(req, "json");
    const json_t *rb = json_object_get(req, "body");
    if (js) {
        rc = pr_tmpl_expand_json(&jbody, js, ctx->vars, &ctx->rng, err);
        if (rc < 0)
            goto cleanup;
        body = json_dumps(jbody, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!body) {
            rc = pr_error_set(err, PR_ENOMEM, "cannot encode the JSON body");
            goto cleanup;
        }
        body_len = strlen(body);
        if (!has_header(hdrs, "Content-Type"))
            (void)json_object_set_new(hdrs, "Content-Type", json_string("application/json"));
    } else if (rb) {
        pr_buf_clear(&tmp);
        rc = pr_tmpl_expand(&tmp, json_string_value(rb), ctx->vars, &ctx->rng, err);
        if (rc < 0)
            goto cleanup;
        body_len = tmp.len;
        body = pr_buf_detach(&tmp);
        if (!body) {
            rc = pr_error_set(err, PR_ENOMEM, "out of memory");
            goto cleanup;
        }
    }

    pr_buf_clear(raw);
    rc =
        pr_buf_printf(raw, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n", method, path.ptr, ctx->port);
    if (rc == 0 && !has_header(hdrs, "User-Agent"))
        rc = pr_buf_puts(raw, "User-Agent: proctor-http/1\r\n");
    if (rc == 0 && !has_header(hdrs, "Accept"))
        rc = pr_buf_puts(raw, "Accept: application/json\r\n");
    json_object_foreach (hdrs, key, v) {
        if (rc == 0)
            rc = pr_buf_printf(raw, "%s: %s\r\n", key, json_string_value(v));
    }
    if (rc == 0 && (body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
                    strcmp(method, "PATCH") == 0))
        rc = pr_buf_printf(raw, "Content-Length: %zu\r\n", body_len);
    if (rc == 0)
        rc = pr_buf_put(raw, "\r\n", 2);
    if (rc == 0 && body_len)
        rc = pr_buf_put(raw, body, body_len);
    if (rc < 0) {
        rc = pr_error_set(err, rc, "request too large");
        goto cleanup;
    }
    if (curl) {
        pr_buf_clear(curl);
        rc = pr_buf_printf(curl, "curl -sS -i -X %s ", method);
        if (rc == 0)
            rc = pr_buf_puts(curl, "\"http://127.0.0.1:${PORT:-8080}\"");
        if (rc == 0)
            rc = shell_quote(curl, path.ptr, path.len);
        json_object_foreach (hdrs, key, v) {
            pr_buf_clear(&tmp);
            if (rc == 0)
                rc = pr_buf_printf(&tmp, "%s: %s", key, json_string_value(v));
            if (rc == 0)
                rc = pr_buf_puts(curl, " -H ");
            if (rc == 0)
                rc = shell_quote(curl, tmp.ptr, tmp.len);
        }
        if (rc == 0 && body) {
            rc = pr_buf_puts(curl, " --data-raw ");
            if (rc == 0)
                rc = shell_quote(curl, body, body_len < 8192 ? body_len : 8192);
        }
        if (rc < 0) {
            rc = 0; /* the curl line is a convenience; a cut one is still useful */
        }
    }
    if (desc) {
        bool cut = false;
        char *bx = body ? pr_text_clean(body, body_len, EXCERPT_MAX, &cut) : NULL;
        *desc = json_pack("{s:s, s:s, s:O, s:o}", "method", method, "path", path.ptr, "headers",
                          hdrs, "body", bx ? json_string(bx) : json_null());
        pr_free(bx);
    }
cleanup:
    pr_free(token);
    pr_free(body);
    json_decref(jbody);
    json_decref(hdrs);
    pr_buf_free(&tmp);
    pr_buf_free(&path);
    return rc;
}

/* ------------------------------------------------------------------ checks */

static bool values_equal(const json_t *a, const json_t *b, int depth)
{
    if (depth > 64)
        return false;
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    if (json_is_array(a) && json_is_array(b)) {
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (size_t i = 0; i < json_array_size(a); i++) {
            if (!values_equal(json_array_get(a, i), json_array_get(b, i), depth + 1))
                return false;
        }
        return true;
    }
    if (json_is_object(a) && json_is_object(b)) {
        if (json_object_size(a) != json_object_size(b))
            return false;
        const char *key;
        json_t *v;
        json_object_foreach ((json_t *)a, key, v) {
            if (!values_equal(v, json_object_get(b, key), depth + 1))
                return false;
        }
        return true;
    }
    return json_equal((json_t *)a, (json_t *)b) != 0;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    default:
        return "null";
    }
}

/* Appends a short JSON excerpt of v to b. */
static void put_excerpt(pr_buf *b, const json_t *v)
{
    if (!v) {
        (void)pr_buf_puts(b, "(absent)");
        return;
    }
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
        return;
    size_t n = strlen(s);
    if (n > 200) {
        (void)pr_buf_put(b, s, 200);
        (void)pr_buf_puts(b, "...");
    } else {
        (void)pr_buf_put(b, s, n);
    }
    pr_free(s);
}

static long long length_of(const json_t *v)
{
    if (json_is_array(v))
        return (long long)json_array_size(v);
    if (json_is_object(v))
        return (long long)json_object_size(v);
    if (json_is_string(v))
        return (long long)json_string_length(v);
    return -1;
}

static bool regex_match(const char *pattern, const char *s)
{
    regex_t re;
    if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
        return false;
    bool ok = regexec(&re, s, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

static int cmp_json(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b)) {
        double x = json_number_value(a), y = json_number_value(b);
        return x < y ? -1 : x > y;
    }
    if (json_is_string(a) && json_is_string(b))
        return strcmp(json_string_value(a), json_string_value(b));
    return 2; /* not comparable */
}

static bool array_has(const json_t *arr, const json_t *x)
{
    for (size_t i = 0; i < json_array_size(arr); i++) {
        if (values_equal(json_array_get(arr, i), x, 0))
            return true;
    }
    return false;
}

/* Checks one operation on target (NULL = absent). 1 pass, 0 fail (why filled), < 0 error. */
static int check_op(const char *op, const json_t *want_t, const json_t *target, pr_scn_ctx *ctx,
                    pr_buf *why, pr_error *err)
{
    json_t *want = NULL;
    pr_error terr = { 0 };
    int rc = pr_tmpl_expand_json(&want, want_t, ctx->vars, &ctx->rng, &terr);
    if (rc < 0) {
        /* A variable that was never captured: the step fails, the run goes on. */
        (void)pr_buf_printf(why, "%s: cannot evaluate the expected value: %s", op, terr.msg);
        return 0;
    }
    int ok = 1;
    if (strcmp(op, "exists") == 0) {
        ok = json_is_true(want) == (target != NULL);
        if (!ok)
            (void)pr_buf_puts(why, target ? "present, expected absent" : "absent");
        goto done;
    }
    if (!target) {
        ok = 0;
        (void)pr_buf_puts(why, "absent");
        goto done;
    }
    if (strcmp(op, "equal") == 0 || strcmp(op, "not_equal") == 0) {
        bool eq = values_equal(target, want, 0);
        ok = op[0] == 'e' ? eq : !eq;
    } else if (strcmp(op, "type") == 0) {
        const char *t = json_string_value(want);
        ok = strcmp(type_name(target), t) == 0 ||
             (strcmp(t, "number") == 0 && json_is_number(target));
    } else if (strstr(op, "length")) {
        long long n = length_of(target);
        long long w = json_is_number(want) ? (long long)json_number_value(want) : -1;
        if (json_is_string(want))
            w = strtoll(json_string_value(want), NULL, 10);
        ok = n >= 0 && (op[0] == 'l' ? n == w : op[1] == 'i' ? n >= w : n <= w);
        if (!ok && n >= 0) {
            (void)pr_buf_printf(why, "length %lld, ", n);
        }
    } else if (strcmp(op, "regex") == 0) {
        ok = json_is_string(target) &&
             regex_match(json_string_value(want), json_string_value(target));
    } else if (strcmp(op, "unique") == 0) {
        ok = json_is_array(target);
        bool uniq = true;
        for (size_t i = 0; ok && uniq && i < json_array_size(target); i++) {
            for (size_t j = i + 1; uniq && j < json_array_size(target); j++) {
                if (values_equal(json_array_get(target, i), json_array_get(target, j), 0)) {
                    uniq = false;
                    (void)pr_buf_printf(why, "items %zu and %zu are equal, ", i, j);
                }
            }
        }
        if (ok)
            ok = uniq == json_is_true(want);
    } else if (strcmp(op, "sorted") == 0) {
        ok = json_is_array(target);
        int dir = strcmp(json_string_value(want), "asc") == 0 ? 1 : -1;
        for (size_t i = 1; ok && i < json_array_size(target); i++) {
            int c = cmp_json(json_array_get(target, i - 1), json_array_get(target, i));
            if (c == 2 || c * dir > 0) {
                ok = 0;
                (void)pr_buf_printf(why, "out of order at index %zu, ", i);
            }
        }
    } else if (strcmp(op, "gte") == 0 || strcmp(op, "lte") == 0 || strcmp(op, "gt") == 0 ||
               strcmp(op, "lt") == 0) {
        int c = cmp_json(target, want);
        ok = c != 2 && ((strcmp(op, "gte") == 0 && c >= 0) || (strcmp(op, "lte") == 0 && c <= 0) ||
                        (strcmp(op, "gt") == 0 && c > 0) || (strcmp(op, "lt") == 0 && c < 0));
    } else if (strcmp(op, "one_of") == 0) {
        ok = array_has(want, target);
    } else if (strcmp(op, "includes") == 0 || strcmp(op, "excludes") == 0) {
        ok = json_is_array(target) && array_has(target, want) == (op[0] == 'i');
    } else if (strcmp(op, "includes_in_order") == 0) {
        /* want is a subsequence of target: every element, in the same relative order. */
        ok = json_is_array(target) && json_is_array(want);
        size_t k = 0;
        for (size_t i = 0; ok && i < json_array_size(target) && k < json_array_size(want); i++) {
            if (values_equal(json_array_get(target, i), json_array_get(want, k), 0))
                k++;
        }
        if (ok && k < json_array_size(want)) {
            ok = 0;
            (void)pr_buf_printf(why, "element %zu (", k);
            put_excerpt(why, json_array_get(want, k));
            (void)pr_buf_puts(why, ") missing or out of order, ");
        }
    } else if (strcmp(op, "includes_all") == 0) {
        ok = json_is_array(target) && json_is_array(want);
        for (size_t i = 0; ok && i < json_array_size(want); i++) {
            if (!array_has(target, json_array_get(want, i))) {
                ok = 0;
                (void)pr_buf_puts(why, "missing ");
                put_excerpt(why, json_array_get(want, i));
                (void)pr_buf_puts(why, ", ");
            }
        }
    }
    if (!ok) {
        (void)pr_buf_puts(why, "got ");
        put_excerpt(why, target);
    }
done:
    if (!ok) {
        pr_buf tmp = PR_BUF_INIT(4096);
        (void)pr_buf_printf(&tmp, "%s ", op);
        put_excerpt(&tmp, want);
        (void)pr_buf_puts(&tmp, ": ");
        (void)pr_buf_put(&tmp, why->ptr ? why->ptr : "", why->len);
        pr_buf_clear(why);
        (void)pr_buf_put(why, tmp.ptr, tmp.len);
        pr_buf_free(&tmp);
    }
    json_decref(want);
    return ok;
}

/* Evaluates one assertion object against body (or a variable). */
static int check_assert(const json_t *a, const json_t *body, pr_scn_ctx *ctx, pr_buf *why,
                        pr_error *err)
{
    const json_t *var = json_object_get(a, "var");
    const char *path = json_string_value(json_object_get(a, "path"));
    const json_t *root = body;
    if (var)
        root = json_object_get(ctx->vars, json_string_value(var));
    json_t *target = root ? pr_json_pointer(root, path ? path : "") : NULL;
    const char *key;
    json_t *v;
    int rc = 1;
    json_object_foreach ((json_t *)a, key, v) {
        if (strcmp(key, "path") == 0 || strcmp(key, "var") == 0)
            continue;
        pr_buf_clear(why);
        rc = check_op(key, v, target, ctx, why, err);
        if (rc <= 0) {
            pr_buf tmp = PR_BUF_INIT(4096);
            if (var)
                (void)pr_buf_printf(&tmp, "variable %s%s: ", json_string_value(var),
                                    path ? path : "");
            else
                (void)pr_buf_printf(&tmp, "body %s: ", path && *path ? path : "(root)");
            (void)pr_buf_put(&tmp, why->ptr ? why->ptr : "", why->len);
            pr_buf_clear(why);
            (void)pr_buf_put(why, tmp.ptr, tmp.len);
            pr_buf_free(&tmp);
            break;
        }
    }
    json_decref(target);
    return rc;
}

/* ------------------------------------------------------------------ running */

static bool status_ok(const json_t *want, int status)
{
    if (!want)
        return true;
    if (json_is_integer(want))
        return json_integer_value(want) == status;
    size_t i;
    json_t *s;
    json_array_foreach (want, i, s) {
        if (json_integer_value(s) == status)
            return true;
    }
    return false;
}

static json_t *resp_actual(const pr_httpc_resp *r)
{
    json_t *hdrs = json_object();
    const char *p = r->head.ptr;
    for (size_t i = 0; p && i < r->nheaders && i < 40; i++) {
        const char *value = p + strlen(p) + 1;
        char *clean = pr_text_clean(value, strlen(value), 512, NULL);
        if (clean)
            (void)json_object_set_new(hdrs, p, json_string(clean));
        pr_free(clean);
        p = value + strlen(value) + 1;
    }
    bool cut = false;
    char *body = pr_text_clean(r->body.ptr ? r->body.ptr : "", r->body.len, EXCERPT_MAX, &cut);
    json_t *a = json_pack("{s:i, s:o, s:s, s:b, s:I}", "status", r->status, "headers", hdrs, "body",
                          body ? body : "", "body_truncated", cut || r->truncated, "duration_us",
                          (json_int_t)((r->done_ns - r->sent_ns) / 1000));
    if (a && r->err)
        (void)json_object_set_new(a, "error", json_string(r->errmsg));
    pr_free(body);
    return a;
}

static int capture_value(json_t **out, const json_t *spec, const pr_httpc_resp *r,
                         const json_t *body)
{
    *out = NULL;
    const char *path = json_is_string(spec) ? json_string_value(spec)
                                            : json_string_value(json_object_get(spec, "path"));
    if (path) {
        *out = body ? pr_json_pointer(body, path) : NULL;
        return *out ? 0 : -1;
    }
    const char *h = pr_httpc_resp_header(r, json_string_value(json_object_get(spec, "header")), 0);
    if (!h)
        return -1;
    *out = json_string(h);
    return *out ? 0 : -1;
}

/* Checks one response against the step; 1 pass, 0 fail (why), < 0 infrastructure. Captures
 * go into ctx->vars when do_capture. */
static int check_response(const json_t *st, const pr_httpc_resp *r, pr_scn_ctx *ctx,
                          bool do_capture, pr_buf *why, pr_error *err)
{
    const json_t *ex = json_object_get(st, "expect");
    const json_t *cap = json_object_get(st, "capture");
    json_t *body = NULL;
    int rc = 1;
    pr_buf_clear(why);
    if (r->err) {
        (void)pr_buf_printf(why, "request failed: %s", r->errmsg);
        return 0;
    }
    const json_t *want_status = json_object_get(ex, "status");
    if (!status_ok(want_status, r->status)) {
        (void)pr_buf_printf(why, "status %d, expected ", r->status);
        put_excerpt(why, want_status);
        return 0;
    }
    const json_t *jasserts = json_object_get(ex, "json");
    bool need_body = jasserts != NULL;
    const char *key;
    json_t *v;
    json_object_foreach ((json_t *)cap, key, v) {
        if (json_is_string(v) || json_object_get(v, "path"))
            need_body = true;
    }
    if (need_body) {
        if (r->truncated) {
            (void)pr_buf_puts(why, "response body exceeds 1 MiB (truncated)");
            return 0;
        }
        json_error_t jerr;
        body = json_loadb(r->body.ptr ? r->body.ptr : "", r->body.len,
                          JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
        if (!body) {
            (void)pr_buf_printf(why, "body is not JSON: %s", jerr.text);
            return 0;
        }
    }
    if (do_capture) {
        json_object_foreach ((json_t *)cap, key, v) {
            json_t *val;
            if (capture_value(&val, v, r, body) < 0) {
                (void)pr_buf_printf(why, "capture %s: ", key);
                put_excerpt(why, v);
                (void)pr_buf_puts(why, " not found in the response");
                rc = 0;
                goto cleanup;
            }
            size_t kl = strlen(key);
            if (kl > 1 && key[kl - 1] == '+') {
                char name[128];
                (void)snprintf(name, sizeof(name), "%.*s", (int)(kl - 1), key);
                json_t *acc = json_object_get(ctx->vars, name);
                if (!json_is_array(acc)) {
                    acc = json_array();
                    (void)json_object_set_new(ctx->vars, name, acc);
                }
                if (json_is_array(val))
                    (void)json_array_extend(acc, val);
                else
                    (void)json_array_append(acc, val);
                json_decref(val);
            } else {
                (void)json_object_set_new(ctx->vars, key, val);
            }
        }
    }
    const json_t *hx = json_object_get(ex, "headers");
    json_object_foreach ((json_t *)hx, key, v) {
        const char *got = pr_httpc_resp_header(r, key, 0);
        const json_t *eq = json_is_string(v) ? v : json_object_get(v, "equal");
        const json_t *re = json_object_get(v, "regex");
        const json_t *present = json_object_get(v, "present");
        if (present && json_is_true(present) != (got != NULL)) {
            (void)pr_buf_printf(why, "header %s: %s", key,
                                got ? "present, expected absent" : "missing");
            rc = 0;
            goto cleanup;
        }
        if ((eq || re) && !got) {
            (void)pr_buf_printf(why, "header %s: missing", key);
            rc = 0;
            goto cleanup;
        }
        if (eq) {
            pr_buf want = PR_BUF_INIT(16384);
            pr_error terr = { 0 };
            rc = pr_tmpl_expand(&want, json_string_value(eq), ctx->vars, &ctx->rng, &terr);
            if (rc < 0) {
                (void)pr_buf_printf(why, "header %s: cannot evaluate the expected value: %s", key,
                                    terr.msg);
                rc = 0;
            } else if (strcmp(want.ptr ? want.ptr : "", got) != 0) {
                (void)pr_buf_printf(why, "header %s: expected \"%.200s\", got \"%.200s\"", key,
                                    want.ptr ? want.ptr : "", got);
                rc = 0;
            } else if (rc == 0) {
                rc = 1;
            }
            pr_buf_free(&want);
            if (rc <= 0)
                goto cleanup;
        }
        if (re && !regex_match(json_string_value(re), got)) {
            (void)pr_buf_printf(why, "header %s: \"%.200s\" does not match /%s/", key, got,
                                json_string_value(re));
            rc = 0;
            goto cleanup;
        }
    }
    size_t i;
    json_t *a;
    json_array_foreach (jasserts, i, a) {
        rc = check_assert(a, body, ctx, why, err);
        if (rc <= 0)
            goto cleanup;
    }
    rc = 1;
cleanup:
    json_decref(body);
    return rc;
}

static void set_failure(pr_buf *msg, json_t **details, size_t idx, const json_t *st,
                        const pr_buf *why, json_t *req_desc, const pr_buf *curl,
                        const pr_httpc_resp *r)
{
    const char *name = json_string_value(json_object_get(st, "name"));
    pr_buf_clear(msg);
    (void)pr_buf_printf(msg, "step %zu%s%s%s: %s", idx + 1, name ? " (" : "", name ? name : "",
                        name ? ")" : "", why->ptr ? why->ptr : "failed");
    json_t *expect = json_object_get(st, "expect");
    json_t *d = json_pack("{s:I, s:s?, s:s}", "step", (json_int_t)idx + 1, "step_name", name,
                          "failure", why->ptr ? why->ptr : "");
    if (!d)
        return;
    if (req_desc)
        (void)json_object_set(d, "request", req_desc);
    if (expect)
        (void)json_object_set_new(d, "expected", json_deep_copy(expect));
    if (json_object_get(st, "assert"))
        (void)json_object_set_new(d, "expected", json_deep_copy(json_object_get(st, "assert")));
    if (r)
        (void)json_object_set_new(d, "actual", resp_actual(r));
    if (curl && curl->ptr)
        (void)json_object_set_new(d, "curl", json_string(curl->ptr));
    json_decref(*details);
    *details = d;
}

typedef struct par_slot {
    pr_httpc_conn *conn;
    pr_httpc_resp *resp;
    bool done;
} par_slot;

static void par_cb(pr_httpc_conn *c, pr_httpc_resp *resp, void *payload)
{
    par_slot *s = payload;
    s->resp = resp;
    s->done = true;
}

static uint64_t step_timeout(const pr_scn_ctx *ctx, const json_t *st)
{
    const json_t *t = json_object_get(st, "timeout_ms");
    return t ? (uint64_t)json_integer_value(t) : ctx->timeout_ms;
}

/* Runs a parallel step: n copies on n fresh connections, released together. */
static int run_parallel(pr_scn_ctx *ctx, const json_t *st, size_t idx, bool *passed, pr_buf *msg,
                        json_t **details, pr_error *err)
{
    size_t n = (size_t)json_integer_value(json_object_get(st, "parallel"));
    par_slot slots[PR_SCN_MAX_PARALLEL];
    pr_buf raw = PR_BUF_INIT(8 << 20), curl = PR_BUF_INIT(64 << 10), why = PR_BUF_INIT(8192);
    json_t *desc = NULL;
    int rc = 0;
    memset(slots, 0, sizeof(slots));
    rc = pr_scenario_render(&raw, &curl, &desc, ctx, st, NULL, err);
    if (rc < 0) {
        why.len = 0;
        (void)pr_buf_printf(&why, "cannot render the request: %s", err ? err->msg : "");
        set_failure(msg, details, idx, st, &why, NULL, NULL, NULL);
        *passed = false;
        rc = 0;
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        rc = pr_httpc_conn_new(&slots[i].conn, ctx->loop, ctx->addr, 0, false);
        if (rc < 0)
            goto cleanup;
    }
    /* Connect all first, so the requests leave together. */
    for (size_t i = 0; i < n; i++) {
        rc = pr_httpc_conn_send(slots[i].conn, raw.ptr, raw.len, step_timeout(ctx, st), par_cb,
                                &slots[i]);
        if (rc < 0)
            goto cleanup;
    }
    for (;;) {
        bool all = true;
        for (size_t i = 0; i < n; i++)
            all = all && slots[i].done;
        if (all)
            break;
        (void)uv_run(ctx->loop, UV_RUN_ONCE);
    }
    *passed = true;
    for (size_t i = 0; i < n && *passed; i++) {
        rc = check_response(st, slots[i].resp, ctx, i == 0, &why, err);
        if (rc < 0)
            goto cleanup;
        if (rc == 0) {
            pr_buf tmp = PR_BUF_INIT(8192);
            (void)pr_buf_printf(&tmp, "parallel copy %zu of %zu: %s", i + 1, n,
                                why.ptr ? why.ptr : "");
            set_failure(msg, details, idx, st, &tmp, desc, &curl, slots[i].resp);
            pr_buf_free(&tmp);
            *passed = false;
        }
    }
    rc = 0;
    const json_t *grp = json_object_get(st, "expect_group");
    if (*passed && grp) {
        pr_buf_clear(&why);
        for (size_t i = 1; i < n && *passed; i++) {
            const pr_httpc_resp *a = slots[0].resp, *b = slots[i].resp;
            if (json_is_true(json_object_get(grp, "same_status")) && a->status != b->status) {
                (void)pr_buf_printf(&why, "copies 1 and %zu got different statuses %d and %d",
                                    i + 1, a->status, b->status);
                *passed = false;
            } else if (json_is_true(json_object_get(grp, "same_body")) &&
                       (a->body.len != b->body.len ||
                        (a->body.len && memcmp(a->body.ptr, b->body.ptr, a->body.len) != 0))) {
                (void)pr_buf_printf(&why, "copies 1 and %zu got different bodies", i + 1);
                *passed = false;
            }
            if (!*passed)
                set_failure(msg, details, idx, st, &why, desc, &curl, slots[i].resp);
        }
        const json_t *counts = json_object_get(grp, "status_counts");
        const char *key;
        json_t *v;
        json_object_foreach ((json_t *)counts, key, v) {
            if (!*passed)
                break;
            long want = (long)json_integer_value(v);
            long got = 0;
            for (size_t i = 0; i < n; i++)
                got += slots[i].resp->status == (int)strtol(key, NULL, 10);
            if (got != want) {
                pr_buf_clear(&why);
                (void)pr_buf_printf(&why, "%ld responses with status %s, expected %ld", got, key,
                                    want);
                set_failure(msg, details, idx, st, &why, desc, &curl, slots[0].resp);
                *passed = false;
            }
        }
    }
cleanup:
    for (size_t i = 0; i < n; i++)
        pr_httpc_conn_free(slots[i].conn);
    json_decref(desc);
    pr_buf_free(&raw);
    pr_buf_free(&curl);
    pr_buf_free(&why);
    return rc;
}

int pr_scenario_run(pr_scn_ctx *ctx, const json_t *scn, bool *passed, pr_buf *msg, json_t **details,
                    pr_error *err)
{
    pr_httpc_conn *conn = NULL;
    pr_buf raw = PR_BUF_INIT(8 << 20), curl = PR_BUF_INIT(64 << 10), why = PR_BUF_INIT(8192);
    json_t *desc = NULL;
    int rc;
    *passed = true;
    *details = NULL;
    const json_t *svars = json_object_get(scn, "vars");
    if (svars) {
        json_t *expanded = NULL;
        rc = pr_tmpl_expand_json(&expanded, svars, ctx->vars, &ctx->rng, err);
        if (rc < 0)
            goto cleanup;
        (void)json_object_update(ctx->vars, expanded);
        json_decref(expanded);
    }
    rc = pr_httpc_conn_new(&conn, ctx->loop, ctx->addr, 0, false);
    if (rc < 0)
        goto cleanup;
    const json_t *steps = json_object_get(scn, "steps");
    size_t idx;
    const json_t *st;
    json_array_foreach (steps, idx, st) {
        if (json_object_get(st, "assert")) {
            size_t i;
            json_t *a;
            json_array_foreach (json_object_get(st, "assert"), i, a) {
                rc = check_assert(a, NULL, ctx, &why, err);
                if (rc < 0)
                    goto cleanup;
                if (rc == 0) {
                    set_failure(msg, details, idx, st, &why, NULL, NULL, NULL);
                    *passed = false;
                    rc = 0;
                    goto cleanup;
                }
            }
            continue;
        }
        if (json_object_get(st, "parallel")) {
            rc = run_parallel(ctx, st, idx, passed, msg, details, err);
            if (rc < 0 || !*passed)
                goto cleanup;
            continue;
        }
        const json_t *loop = json_object_get(st, "loop");
        const json_t *rep = json_object_get(st, "repeat");
        long max = loop ? (long)json_integer_value(json_object_get(loop, "max")) : 1;
        long nrep = rep ? (long)json_integer_value(rep) : 1;
        const char *path_override = NULL;
        for (long iter = 0;; iter++) {
            if (rep)
                (void)json_object_set_new(ctx->vars, "i", json_integer(iter));
            json_decref(desc);
            desc = NULL;
            rc = pr_scenario_render(&raw, &curl, &desc, ctx, st, path_override, err);
            if (rc < 0) {
                pr_buf_clear(&why);
                (void)pr_buf_printf(&why, "cannot render the request: %s", err ? err->msg : "");
                set_failure(msg, details, idx, st, &why, NULL, NULL, NULL);
                *passed = false;
                rc = 0;
                goto cleanup;
            }
            pr_httpc_resp *r = pr_httpc_conn_do(conn, raw.ptr, raw.len, step_timeout(ctx, st));
            rc = check_response(st, r, ctx, true, &why, err);
            if (rc < 0)
                goto cleanup;
            if (rc == 0) {
                if (loop || rep) {
                    pr_buf tmp = PR_BUF_INIT(8192);
                    (void)pr_buf_printf(&tmp, "iteration %ld: %s", iter + 1,
                                        why.ptr ? why.ptr : "");
                    pr_buf_clear(&why);
                    (void)pr_buf_put(&why, tmp.ptr, tmp.len);
                    pr_buf_free(&tmp);
                }
                set_failure(msg, details, idx, st, &why, desc, &curl, r);
                *passed = false;
                rc = 0;
                goto cleanup;
            }
            if (rep && iter + 1 < nrep)
                continue;
            if (!loop)
                break;
            const json_t *w =
                json_object_get(ctx->vars, json_string_value(json_object_get(loop, "while")));
            if (!w || json_is_null(w) || (json_is_string(w) && json_string_length(w) == 0))
                break;
            if (iter + 1 >= max) {
                pr_buf_clear(&why);
                (void)pr_buf_printf(&why, "loop still going after %ld iterations (%s is ", max,
                                    json_string_value(json_object_get(loop, "while")));
                put_excerpt(&why, w);
                (void)pr_buf_puts(&why, ")");
                set_failure(msg, details, idx, st, &why, desc, &curl, r);
                *passed = false;
                rc = 0;
                goto cleanup;
            }
            path_override = json_string_value(json_object_get(loop, "path"));
        }
    }
    rc = 0;
cleanup:
    pr_httpc_conn_free(conn);
    /* Let libuv run the close callbacks of this scenario's sockets. */
    (void)uv_run(ctx->loop, UV_RUN_NOWAIT);
    json_decref(desc);
    pr_buf_free(&raw);
    pr_buf_free(&curl);
    pr_buf_free(&why);
    return rc;
}
