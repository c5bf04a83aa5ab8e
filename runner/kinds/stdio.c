/* The stdio kind: run the submission once per test with a file on stdin, compare what it writes
 * on stdout with the expected output (or let the pack's checker decide).
 *
 * Manifest (challenge.json), besides the common fields:
 *
 *   "tests": [{
 *       "name", "group", "points", "visibility"      common fields (pr_test_meta_parse)
 *       "input":    "tests/1.in"                      a regular file inside the pack, opened
 *                                                     beneath the pack without following any
 *                                                     symlink; or
 *                   {"generate": ["arg", ...]}        made by the pack's generator (below)
 *       "expected": "tests/1.out"                     a file inside the pack; or
 *                   "reference"                       made by running the pack's reference
 *                                                     program on the input; or absent (only
 *                                                     with "compare": "checker")
 *       "compare":  "exact" (default) | "tokens" | "checker" |
 *                   {"float": {"abs": 1e-6, "rel": 1e-6}}   (see runner/compare.h)
 *       "limits":   {"cpu_ms": ..., ...}              per-test override of the pack's limits
 *   }]
 *   "checker":  {"source": "checker/check.py", "runtime": "python" | "c"}
 *   "generate": {"program":   {"source": "tests/gen.py", "runtime": "python" | "c"},
 *                "reference": {"source": "solutions/c/main.c", "runtime": "c" | "python"}}
 *
 * Pack programs (checker, generator, reference) are trusted pack code, yet they run in the
 * sandbox too: a C source is compiled once (gcc -O2 in the "build" profile, into a cache), a
 * Python source runs with /usr/bin/python3 -I. The program sits read-only at /tool.
 *
 * Generated files are cached outside the pack (so the pack digest and the committed pack stay
 * small) under $PROCTOR_CACHE_DIR/stdio, else $XDG_CACHE_HOME/proctor/stdio, else
 * $HOME/.cache/proctor/stdio, else /var/tmp/proctor-stdio (and when none of these is writable,
 * a directory in the job's scratch space). Every entry is content-addressed: the
 * SHA-256 of the program source, its runtime and its arguments (and, for a reference output, of
 * the input's key), so editing a generator or a reference solution regenerates exactly what it
 * affects. Entries are written to a temporary name and renamed; an flock on the cache's lock
 * file serialises generation between concurrent jobs. The generator is run as
 * `gen ARG...` and writes the input on stdout; the reference reads that input on stdin and
 * writes the expected output on stdout.
 *
 * Checker protocol: the checker runs in the sandbox with /check/input, /check/expected (when
 * the test has one) and /check/output (the candidate's stdout) read-only, and prints one JSON
 * line {"verdict": "AC"|"WA", "score": 0..1, "message": "..."} (runner/compare.h). The test
 * earns score * points. A checker that crashes, times out, prints anything else, or gives a
 * score out of range makes the test IE (never WA): the pack is at fault, not the candidate.
 *
 * Grading runs the tests on up to g->parallel threads, each with its own sandbox slot; the
 * candidate's stdout and stderr go to files in g->scratch (so RLIMIT_FSIZE gives OLE and output
 * is never held whole in memory), and results are appended in manifest order at the end. */
#include "proctor/kind.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "proctor/buf.h"
#include "proctor/log.h"
#include "proctor/report.h"
#include "compare.h"

#define STDIO_PATH_MAX        512
#define STDIO_GEN_ARGS_MAX    16
#define STDIO_GEN_ARG_MAX     128
#define STDIO_STDERR_TAIL     600
#define STDIO_TOOL_SOURCE_MAX ((size_t)4 * 1024 * 1024)
#define STDIO_INPUT_MAX       ((size_t)1 << 31) /* bytes of an input hashed for a reference */

typedef enum tool_rt {
    TOOL_NONE = 0,
    TOOL_C,
    TOOL_PYTHON
} tool_rt;

typedef struct stdio_tool {
    char *source; /* path inside the pack; NULL when absent */
    tool_rt rt;
} stdio_tool;

typedef struct stdio_test {
    char *input;    /* path inside the pack, or NULL when generated */
    char **gen;     /* generator arguments (NULL-terminated) when generated */
    char *expected; /* path inside the pack, or NULL */
    bool expected_ref;
    bool checker;
    pr_cmp_spec cmp;
    sbx_limits over; /* per-test overrides; UINT64_MAX = not overridden */
} stdio_test;

typedef struct stdio_state {
    char *dir; /* the pack, absolute */
    stdio_test *tests;
    size_t ntests;
    stdio_tool checker, gen, ref;
} stdio_state;

/* snprintf that reports truncation (true when cut); the text is always terminated. */
static bool fmtbuf(char *out, size_t outsz, const char *fmt, ...) PR_PRINTF(3, 4);
static bool fmtbuf(char *out, size_t outsz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, outsz, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= outsz;
}

/* A thread-safe description of an errno value (strerror is not). */
static const char *errdesc(int e)
{
    const char *d = strerrordesc_np(e);
    return d ? d : "unknown error";
}

/* ---- parsing ------------------------------------------------------------------------------ */

static void tool_clear(stdio_tool *t)
{
    pr_free(t->source);
    t->source = NULL;
}

static void stdio_free(void *p)
{
    stdio_state *s = p;
    if (!s)
        return;
    for (size_t i = 0; i < s->ntests; i++) {
        stdio_test *t = &s->tests[i];
        pr_free(t->input);
        pr_free(t->expected);
        for (size_t j = 0; t->gen && t->gen[j]; j++)
            pr_free(t->gen[j]);
        pr_free(t->gen);
    }
    pr_free(s->tests);
    tool_clear(&s->checker);
    tool_clear(&s->gen);
    tool_clear(&s->ref);
    pr_free(s->dir);
    pr_free(s);
}

/* Opens a regular file of the pack read-only. Returns the fd or -1 with errno set (ELOOP for a
 * symlink on the way, EXDEV for an escape, EINVAL for a non-regular file). */
static int pack_open(const char *dir, const char *rel)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    int fd = pr_pack_open_beneath(dfd, rel, 0);
    int saved = errno;
    pr_close(&dfd);
    if (fd < 0) {
        errno = saved;
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        pr_close(&fd);
        errno = EINVAL;
        return -1;
    }
    return fd;
}

static void describe(char *out, size_t outsz, const json_t *v)
{
    if (!v) {
        (void)fmtbuf(out, outsz, "nothing (missing)");
    } else if (json_is_string(v)) {
        char ex[64];
        size_t n = json_string_length(v);
        pr_text_log_excerpt(ex, sizeof(ex), json_string_value(v), n > 40 ? 40 : n);
        (void)fmtbuf(out, outsz, "\"%s\"%s", ex, n > 40 ? "..." : "");
    } else if (json_is_object(v)) {
        (void)fmtbuf(out, outsz, "an object");
    } else if (json_is_array(v)) {
        (void)fmtbuf(out, outsz, "an array");
    } else if (json_is_number(v)) {
        (void)fmtbuf(out, outsz, "%g", json_number_value(v));
    } else {
        (void)fmtbuf(out, outsz, "a %s", json_is_boolean(v) ? "boolean" : "null");
    }
}

static int field_err(pr_error *err, const char *dir, const char *field, const char *expected,
                     const json_t *got)
{
    char g[96];
    describe(g, sizeof(g), got);
    return pr_error_set(err, PR_EINVAL, "%s/challenge.json: %s: expected %s, got %s", dir, field,
                        expected, g);
}

/* Validates a pack path field and checks that it names a regular file inside the pack. */
static int parse_pack_path(char **out, const json_t *v, const char *dir, const char *field,
                           pr_error *err)
{
    if (!json_is_string(v) || !pr_pack_path_ok(json_string_value(v), STDIO_PATH_MAX))
        return field_err(err, dir, field,
                         "a relative path inside the pack like \"tests/1.in\" (no \"..\", no "
                         "leading \"/\")",
                         v);
    int fd = pack_open(dir, json_string_value(v));
    if (fd < 0) {
        int e = errno;
        const char *why = e == ENOENT   ? "no such file"
                          : e == ELOOP  ? "a symlink (refused)"
                          : e == EXDEV  ? "outside the pack (refused)"
                          : e == EINVAL ? "not a regular file"
                                        : errdesc(e);
        char g[96];
        describe(g, sizeof(g), v);
        return pr_error_set(err, PR_EINVAL,
                            "%s/challenge.json: %s: expected a regular file inside the pack, got "
                            "%s: %s",
                            dir, field, g, why);
    }
    pr_close(&fd);
    *out = pr_strdup(json_string_value(v));
    return *out ? 0 : pr_error_set(err, PR_ENOMEM, "out of memory");
}

static int parse_tool(stdio_tool *t, const json_t *v, const char *dir, const char *field,
                      pr_error *err)
{
    char f[64];
    if (!json_is_object(v))
        return field_err(err, dir, field,
                         "an object {\"source\": \"path in the pack\", \"runtime\": \"c\" or "
                         "\"python\"}",
                         v);
    const char *key;
    const json_t *x;
    json_object_foreach ((json_t *)v, key, x) {
        if (strcmp(key, "source") != 0 && strcmp(key, "runtime") != 0) {
            (void)fmtbuf(f, sizeof(f), "%s.%.24s", field, key);
            return field_err(err, dir, f, "only \"source\" and \"runtime\"", x);
        }
    }
    const json_t *rt = json_object_get(v, "runtime");
    const char *r = json_string_value(rt);
    (void)fmtbuf(f, sizeof(f), "%s.runtime", field);
    if (!r || (strcmp(r, "c") != 0 && strcmp(r, "python") != 0))
        return field_err(err, dir, f, "\"c\" or \"python\"", rt);
    t->rt = strcmp(r, "c") == 0 ? TOOL_C : TOOL_PYTHON;
    (void)fmtbuf(f, sizeof(f), "%s.source", field);
    return parse_pack_path(&t->source, json_object_get(v, "source"), dir, f, err);
}

static int parse_compare(stdio_test *t, const json_t *v, const char *dir, const char *field,
                         pr_error *err)
{
    static const char what[] = "\"exact\", \"tokens\", \"checker\" or {\"float\": {\"abs\": "
                               "1e-6, \"rel\": 1e-6}}";
    t->cmp.mode = PR_CMP_EXACT;
    if (!v)
        return 0;
    if (json_is_string(v)) {
        if (pr_cmp_mode_parse(json_string_value(v), &t->cmp.mode, &t->checker) < 0)
            return field_err(err, dir, field, what, v);
        return 0;
    }
    const json_t *fl = json_object_get(v, "float");
    if (!json_is_object(v) || json_object_size(v) != 1 || !json_is_object(fl))
        return field_err(err, dir, field, what, v);
    t->cmp.mode = PR_CMP_FLOAT;
    const char *key;
    const json_t *x;
    bool any = false;
    json_object_foreach ((json_t *)fl, key, x) {
        char f[96];
        (void)fmtbuf(f, sizeof(f), "%s.float.%.16s", field, key);
        if (strcmp(key, "abs") != 0 && strcmp(key, "rel") != 0)
            return field_err(err, dir, f, "only \"abs\" and \"rel\"", x);
        if (!json_is_number(x) || !isfinite(json_number_value(x)) || json_number_value(x) < 0 ||
            json_number_value(x) > 1e300)
            return field_err(err, dir, f, "a finite number >= 0", x);
        if (strcmp(key, "abs") == 0)
            t->cmp.abs_tol = json_number_value(x);
        else
            t->cmp.rel_tol = json_number_value(x);
        any = true;
    }
    if (!any)
        return field_err(err, dir, field, "a float tolerance with \"abs\" and/or \"rel\"", v);
    return 0;
}

static int parse_test(stdio_test *t, const json_t *v, size_t i, const stdio_state *s, pr_error *err)
{
    static const char *const keys[] = { "name",     "group",   "points", "visibility",  "input",
                                        "expected", "compare", "limits", "description", NULL };
    const char *dir = s->dir;
    char f[64];
    int rc;

    const char *key;
    const json_t *x;
    json_object_foreach ((json_t *)v, key, x) {
        bool known = false;
        for (size_t k = 0; keys[k]; k++)
            known = known || strcmp(keys[k], key) == 0;
        if (!known) {
            (void)fmtbuf(f, sizeof(f), "tests[%zu].%.32s", i, key);
            return field_err(err, dir, f,
                             "no such field (known: input, expected, compare, limits and the "
                             "common ones)",
                             x);
        }
    }

    (void)fmtbuf(f, sizeof(f), "tests[%zu].compare", i);
    rc = parse_compare(t, json_object_get(v, "compare"), dir, f, err);
    if (rc < 0)
        return rc;
    if (t->checker && !s->checker.source)
        return pr_error_set(err, PR_EINVAL,
                            "%s/challenge.json: tests[%zu].compare: \"checker\" needs a top-level "
                            "\"checker\" {\"source\", \"runtime\"}",
                            dir, i);

    const json_t *in = json_object_get(v, "input");
    (void)fmtbuf(f, sizeof(f), "tests[%zu].input", i);
    if (json_is_object(in)) {
        const json_t *args = json_object_get(in, "generate");
        size_t n = json_array_size(args);
        if (json_object_size(in) != 1 || !json_is_array(args) || n > STDIO_GEN_ARGS_MAX)
            return field_err(err, dir, f,
                             "a path in the pack, or {\"generate\": [up to 16 argument strings]}",
                             in);
        if (!s->gen.source)
            return pr_error_set(err, PR_EINVAL,
                                "%s/challenge.json: %s: \"generate\" needs a top-level "
                                "\"generate\": {\"program\": {...}}",
                                dir, f);
        t->gen = pr_calloc(n + 1, sizeof(char *));
        if (!t->gen)
            return pr_error_set(err, PR_ENOMEM, "out of memory");
        for (size_t k = 0; k < n; k++) {
            const json_t *a = json_array_get(args, k);
            char fa[80];
            (void)fmtbuf(fa, sizeof(fa), "%s.generate[%zu]", f, k);
            if (!json_is_string(a) || json_string_length(a) == 0 ||
                json_string_length(a) > STDIO_GEN_ARG_MAX ||
                strlen(json_string_value(a)) != json_string_length(a))
                return field_err(err, dir, fa, "a string of 1..128 bytes", a);
            t->gen[k] = pr_strdup(json_string_value(a));
            if (!t->gen[k])
                return pr_error_set(err, PR_ENOMEM, "out of memory");
        }
    } else {
        rc = parse_pack_path(&t->input, in, dir, f, err);
        if (rc < 0)
            return rc;
    }

    const json_t *ex = json_object_get(v, "expected");
    (void)fmtbuf(f, sizeof(f), "tests[%zu].expected", i);
    if (!ex) {
        if (!t->checker)
            return field_err(err, dir, f,
                             "a path in the pack or \"reference\" (it may be absent only with "
                             "\"compare\": \"checker\")",
                             ex);
    } else if (json_is_string(ex) && strcmp(json_string_value(ex), "reference") == 0) {
        if (!s->ref.source)
            return pr_error_set(err, PR_EINVAL,
                                "%s/challenge.json: %s: \"reference\" needs a top-level "
                                "\"generate\": {\"reference\": {...}}",
                                dir, f);
        t->expected_ref = true;
    } else {
        rc = parse_pack_path(&t->expected, ex, dir, f, err);
        if (rc < 0)
            return rc;
    }

    memset(&t->over, 0xff, sizeof(t->over));
    const json_t *lim = json_object_get(v, "limits");
    if (lim) {
        char file[PATH_MAX];
        (void)fmtbuf(file, sizeof(file), "%s/challenge.json", dir);
        (void)fmtbuf(f, sizeof(f), "tests[%zu].limits", i);
        rc = pr_limits_parse(&t->over, lim, file, f, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int stdio_parse(void **state_out, const json_t *manifest, const char *dir, pr_error *err)
{
    stdio_state *s = NULL;
    int rc = 0;

    *state_out = NULL;
    s = pr_calloc(1, sizeof(*s));
    if (!s || !(s->dir = pr_strdup(dir))) {
        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }
    const json_t *chk = json_object_get(manifest, "checker");
    if (chk) {
        rc = parse_tool(&s->checker, chk, dir, "checker", err);
        if (rc < 0)
            goto cleanup;
    }
    const json_t *gen = json_object_get(manifest, "generate");
    if (gen) {
        const char *key;
        const json_t *x;
        if (!json_is_object(gen) || !json_object_get(gen, "program")) {
            rc = field_err(err, dir, "generate",
                           "{\"program\": {\"source\", \"runtime\"}, \"reference\": {...}}", gen);
            goto cleanup;
        }
        json_object_foreach ((json_t *)gen, key, x) {
            if (strcmp(key, "program") != 0 && strcmp(key, "reference") != 0) {
                char f[64];
                (void)fmtbuf(f, sizeof(f), "generate.%.32s", key);
                rc = field_err(err, dir, f, "only \"program\" and \"reference\"", x);
                goto cleanup;
            }
        }
        rc = parse_tool(&s->gen, json_object_get(gen, "program"), dir, "generate.program", err);
        if (rc < 0)
            goto cleanup;
        if (json_object_get(gen, "reference")) {
            rc = parse_tool(&s->ref, json_object_get(gen, "reference"), dir, "generate.reference",
                            err);
            if (rc < 0)
                goto cleanup;
        }
    }
    const json_t *tests = json_object_get(manifest, "tests");
    size_t n = json_array_size(tests);
    if (!json_is_array(tests) || n == 0) {
        rc = field_err(err, dir, "tests", "a non-empty array of test objects", tests);
        goto cleanup;
    }
    s->tests = pr_calloc(n, sizeof(*s->tests));
    if (!s->tests) {
        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        s->ntests = i + 1;
        const json_t *t = json_array_get(tests, i);
        if (!json_is_object(t)) {
            char f[32];
            (void)fmtbuf(f, sizeof(f), "tests[%zu]", i);
            rc = field_err(err, dir, f, "an object", t);
            goto cleanup;
        }
        rc = parse_test(&s->tests[i], t, i, s, err);
        if (rc < 0)
            goto cleanup;
    }
    *state_out = s;
    s = NULL;
cleanup:
    stdio_free(s);
    return rc;
}

/* ---- the cache of pack programs and generated files ---------------------------------------- */

typedef struct prep {
    char root[PATH_MAX];                                             /* cache directory */
    char gen_prog[PATH_MAX], ref_prog[PATH_MAX], chk_prog[PATH_MAX]; /* tool dirs, or "" */
    char gen_key[65], ref_key[65];
    char (*input)[PATH_MAX];    /* per test: host path of the input */
    char (*expected)[PATH_MAX]; /* per test: host path of the expected output, or "" */
    char **fail;                /* per test: why it could not be prepared (owned), or NULL */
    char *tool_fail;            /* checker problem, for every checker test (owned) */
} prep;

static int cache_root(char *out, size_t outsz)
{
    const char *v = secure_getenv("PROCTOR_CACHE_DIR");
    if (v && v[0] == '/') {
        int n = snprintf(out, outsz, "%s/stdio", v);
        if (n < 0 || (size_t)n >= outsz)
            return PR_ELIMIT;
    } else if (pr_cache_home(out, outsz, "stdio", "/var/tmp/proctor-stdio") < 0) {
        return PR_ELIMIT;
    }
    return pr_mkdir_p(out);
}

static void hex_of(char out[65], const unsigned char md[32])
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[(size_t)2 * i] = hx[md[i] >> 4];
        out[(size_t)2 * i + 1] = hx[md[i] & 15];
    }
    out[64] = '\0';
}

/* SHA-256 over NUL-separated parts, plus the contents of fd (>= 0, at most max bytes). */
static int key_of(char out[65], const char *const *parts, int fd, size_t max, pr_error *err)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[32];
    unsigned int mdlen = 0;
    int rc = 0;
    char buf[16384];

    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        rc = pr_error_set(err, PR_ENOMEM, "sha256: out of memory");
        goto cleanup;
    }
    for (size_t i = 0; parts[i]; i++) {
        if (EVP_DigestUpdate(ctx, parts[i], strlen(parts[i]) + 1) != 1) {
            rc = pr_error_set(err, PR_EINTERNAL, "sha256 failed");
            goto cleanup;
        }
    }
    size_t total = 0;
    while (fd >= 0) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = pr_error_sys(err, "reading a pack program");
            goto cleanup;
        }
        if (n == 0)
            break;
        total += (size_t)n;
        if (total > max) {
            rc = pr_error_set(err, PR_ELIMIT, "a hashed file is larger than %zu bytes", max);
            goto cleanup;
        }
        if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1) {
            rc = pr_error_set(err, PR_EINTERNAL, "sha256 failed");
            goto cleanup;
        }
    }
    if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32) {
        rc = pr_error_set(err, PR_EINTERNAL, "sha256 failed");
        goto cleanup;
    }
    hex_of(out, md);
cleanup:
    EVP_MD_CTX_free(ctx);
    return rc;
}

static bool is_file(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Opens a test's input or expected file: a pack file beneath the pack without following any
 * symlink (rel), else a file of the cache (path). */
static int open_test_file(const stdio_state *s, const char *rel, const char *path)
{
    if (rel)
        return pack_open(s->dir, rel);
    return open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
}

/* Copies src (an open fd) into a new file path with mode. */
static int copy_fd_to(int src, const char *path, mode_t mode, pr_error *err)
{
    int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    char buf[16384];
    int rc = 0;
    if (out < 0)
        return pr_error_sys(err, "%s: create", path);
    for (;;) {
        ssize_t n = read(src, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = pr_error_sys(err, "%s: read", path);
            break;
        }
        if (n == 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                rc = pr_error_sys(err, "%s: write", path);
                goto done;
            }
            off += w;
        }
    }
done:
    if (fchmod(out, mode) != 0 && rc == 0)
        rc = pr_error_sys(err, "%s: chmod", path);
    pr_close(&out);
    return rc;
}

/* Runs a program in the sandbox. Returns 0 when it ran (res says how), < 0 on sandbox failure. */
static int tool_run(sbx_result *res, const char *const *argv, const char *profile,
                    const sbx_bind *binds, size_t nbinds, int in, int out, int errfd, int slot,
                    const sbx_limits *lim, pr_error *err)
{
    sbx_spec spec;
    sbx_spec_init(&spec);
    spec.argv = argv;
    spec.profile = profile;
    spec.binds = binds;
    spec.nbinds = nbinds;
    spec.chdir = "/tool";
    spec.stdin_fd = in;
    spec.stdout_fd = out;
    spec.stderr_fd = errfd;
    spec.slot = slot;
    spec.limits = *lim;
    memset(res, 0, sizeof(*res));
    return sbx_run(res, &spec, err);
}

static const sbx_limits tool_limits = { 60000, 120000, 1024, 32, 524288, 64, 256, 0 };

/* Reads the last bytes of a small file (stderr of a tool) into out as one cleaned line. */
static void tail_of(const char *path, char *out, size_t outsz)
{
    out[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return;
    off_t end = lseek(fd, 0, SEEK_END);
    off_t from = end > (off_t)(outsz - 1) ? end - (off_t)(outsz - 1) : 0;
    ssize_t n = pread(fd, out, outsz - 1, from);
    pr_close(&fd);
    if (n <= 0)
        return;
    out[n] = '\0';
    for (ssize_t i = 0; i < n; i++) {
        if (out[i] == '\n' || out[i] == '\r' || out[i] == '\0')
            out[i] = ' ';
    }
}

/* Prepares a pack program in the cache: dir <root>/tool-<key>/ holding main.py, or prog (a
 * binary compiled in the sandbox). Fills dir_out and key_out. */
static int tool_prepare(char *dir_out, char key_out[65], const stdio_state *s, const stdio_tool *t,
                        const char *root, int slot, pr_error *err)
{
    int src = -1, out = -1, errfd = -1;
    int rc = 0;
    char tmp[PATH_MAX], errpath[PATH_MAX], path[PATH_MAX];
    const char *parts[] = { "proctor-stdio-tool/1", t->rt == TOOL_C ? "c" : "python", NULL };

    src = pack_open(s->dir, t->source);
    if (src < 0) {
        rc = pr_error_sys(err, "%s/%s: open", s->dir, t->source);
        goto cleanup;
    }
    rc = key_of(key_out, parts, src, STDIO_TOOL_SOURCE_MAX, err);
    if (rc < 0)
        goto cleanup;
    (void)fmtbuf(dir_out, PATH_MAX, "%s/tool-%s", root, key_out);
    (void)fmtbuf(path, sizeof(path), "%s/%s", dir_out, t->rt == TOOL_C ? "prog" : "main.py");
    if (is_file(path))
        goto cleanup;
    (void)fmtbuf(tmp, sizeof(tmp), "%s.tmp%ld", dir_out, (long)getpid());
    (void)pr_rm_rf(tmp);
    if (mkdir(tmp, 0755) != 0 || chmod(tmp, 0755) != 0) {
        rc = pr_error_sys(err, "%s: mkdir", tmp);
        goto cleanup;
    }
    if (lseek(src, 0, SEEK_SET) != 0) {
        rc = pr_error_sys(err, "%s: seek", t->source);
        goto cleanup;
    }
    (void)fmtbuf(path, sizeof(path), "%s/%s", tmp, t->rt == TOOL_C ? "main.c" : "main.py");
    rc = copy_fd_to(src, path, 0644, err);
    if (rc < 0)
        goto cleanup;
    if (t->rt == TOOL_C) {
        /* Compile in the sandbox into its private /tmp, then stream the binary to stdout: the
         * box never needs a writable bind of ours. */
        static const char *const argv[] = {
            "/bin/sh", "-c", "gcc -O2 -std=gnu11 -o /tmp/prog /tool/main.c -lm && cat /tmp/prog",
            NULL
        };
        sbx_bind b = { tmp, "/tool", false };
        sbx_result res;
        (void)fmtbuf(path, sizeof(path), "%s/prog", tmp);
        (void)fmtbuf(errpath, sizeof(errpath), "%s/build.log", tmp);
        out = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0755);
        errfd = open(errpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (out < 0 || errfd < 0) {
            rc = pr_error_sys(err, "%s: create", path);
            goto cleanup;
        }
        rc = tool_run(&res, argv, "build", &b, 1, -1, out, errfd, slot, &tool_limits, err);
        if (rc < 0)
            goto cleanup;
        if (res.verdict != SBX_OK) {
            char tail[200];
            tail_of(errpath, tail, sizeof(tail));
            rc = pr_error_set(err, PR_EINVAL, "%s/%s: compiling failed (%s, exit %d): %s", s->dir,
                              t->source, sbx_verdict_name(res.verdict), res.exit_code, tail);
            goto cleanup;
        }
        if (fchmod(out, 0755) != 0) {
            rc = pr_error_sys(err, "%s: chmod", path);
            goto cleanup;
        }
    }
    if (rename(tmp, dir_out) != 0 && errno != EEXIST && errno != ENOTEMPTY) {
        rc = pr_error_sys(err, "%s: rename", dir_out);
        goto cleanup;
    }
cleanup:
    if (rc < 0 || !is_file(tmp))
        (void)pr_rm_rf(tmp);
    pr_close(&src);
    pr_close(&out);
    pr_close(&errfd);
    return rc;
}

/* argv of a prepared tool with extra arguments, into argv (>= 24 slots). */
static void tool_argv(const char **argv, tool_rt rt, char *const *args)
{
    size_t n = 0;
    if (rt == TOOL_PYTHON) {
        argv[n++] = "/usr/bin/python3";
        argv[n++] = "-I";
        argv[n++] = "/tool/main.py";
    } else {
        argv[n++] = "/tool/prog";
    }
    for (size_t i = 0; args && args[i] && n < 22; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
}

/* Runs tool (prepared in tooldir) with stdin from in_path (or /dev/null) and writes its stdout
 * to target atomically. */
static int tool_produce(const char *target, const char *tooldir, tool_rt rt, char *const *args,
                        const char *in_path, int slot, const char *what, pr_error *err)
{
    char tmp[PATH_MAX], errpath[PATH_MAX];
    const char *argv[24];
    int in = -1, out = -1, errfd = -1;
    int rc = 0;
    sbx_result res;

    (void)fmtbuf(tmp, sizeof(tmp), "%s.tmp%ld", target, (long)getpid());
    (void)fmtbuf(errpath, sizeof(errpath), "%s.err%ld", target, (long)getpid());
    if (in_path) {
        in = open(in_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (in < 0) {
            rc = pr_error_sys(err, "%s: open", in_path);
            goto cleanup;
        }
    }
    out = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    errfd = open(errpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (out < 0 || errfd < 0) {
        rc = pr_error_sys(err, "%s: create", tmp);
        goto cleanup;
    }
    tool_argv(argv, rt, args);
    sbx_bind b = { tooldir, "/tool", false };
    rc = tool_run(&res, argv, rt == TOOL_PYTHON ? "python" : "default", &b, 1, in, out, errfd, slot,
                  &tool_limits, err);
    if (rc < 0)
        goto cleanup;
    if (res.verdict != SBX_OK) {
        char tail[200];
        tail_of(errpath, tail, sizeof(tail));
        rc = pr_error_set(err, PR_EINVAL, "the pack's %s failed (%s, exit %d, signal %d): %s", what,
                          sbx_verdict_name(res.verdict), res.exit_code, res.signal, tail);
        goto cleanup;
    }
    if (fsync(out) != 0 || rename(tmp, target) != 0) {
        rc = pr_error_sys(err, "%s: rename", target);
        goto cleanup;
    }
cleanup:
    pr_close(&in);
    pr_close(&out);
    pr_close(&errfd);
    (void)unlink(errpath);
    if (rc < 0)
        (void)unlink(tmp);
    return rc;
}

static void prep_free(prep *p, size_t n)
{
    if (p->fail) {
        for (size_t i = 0; i < n; i++)
            pr_free(p->fail[i]);
    }
    pr_free(p->fail);
    pr_free(p->input);
    pr_free(p->expected);
    pr_free(p->tool_fail);
}

/* Makes the generated input and/or reference output of test i. A failure of the pack's
 * programs is written to twhy (the test becomes IE); < 0 only for infrastructure errors. */
static int prepare_test(prep *p, const stdio_state *s, size_t i, int slot, char *twhy,
                        size_t twhysz, pr_error *err)
{
    const stdio_test *t = &s->tests[i];
    pr_error e = { 0 };

    twhy[0] = '\0';
    if (t->gen) {
        const char *parts[STDIO_GEN_ARGS_MAX + 4];
        size_t k = 0;
        char key[65];
        parts[k++] = "proctor-stdio-input/1";
        parts[k++] = p->gen_key;
        for (size_t j = 0; t->gen[j]; j++)
            parts[k++] = t->gen[j];
        parts[k] = NULL;
        if (key_of(key, parts, -1, 0, &e) < 0) {
            return pr_error_set(err, e.code, "%s", e.msg);
        }
        (void)fmtbuf(p->input[i], PATH_MAX, "%s/in-%s", p->root, key);
        if (!is_file(p->input[i]) && tool_produce(p->input[i], p->gen_prog, s->gen.rt, t->gen, NULL,
                                                  slot, "generator", &e) < 0) {
            (void)fmtbuf(twhy, twhysz, "%s", e.msg);
        }
    }
    if (!twhy[0] && t->expected_ref) {
        char ikey[65], key[65];
        int in = open_test_file(s, t->input, p->input[i]);
        const char *kp[] = { "proctor-stdio-input-bytes/1", NULL };
        if (in < 0 || key_of(ikey, kp, in, STDIO_INPUT_MAX, &e) < 0) {
            (void)fmtbuf(twhy, twhysz, "%s: cannot read the input", p->input[i]);
        }
        pr_close(&in);
        if (!twhy[0]) {
            const char *parts[] = { "proctor-stdio-expected/1", p->ref_key, ikey, NULL };
            if (key_of(key, parts, -1, 0, &e) < 0) {
                return pr_error_set(err, e.code, "%s", e.msg);
            }
            (void)fmtbuf(p->expected[i], PATH_MAX, "%s/out-%s", p->root, key);
            if (!is_file(p->expected[i]) &&
                tool_produce(p->expected[i], p->ref_prog, s->ref.rt, NULL, p->input[i], slot,
                             "reference solution", &e) < 0) {
                (void)fmtbuf(twhy, twhysz, "%s", e.msg);
            }
        }
    }
    return 0;
}

/* Makes every generated file and pack program the tests need. A failure is recorded against
 * the tests it affects (they become IE); only out-of-memory is returned. */
static int prepare(prep *p, const stdio_state *s, const pr_grading *g, pr_error *err)
{
    int lockfd = -1;
    int rc = 0;
    pr_error e = { 0 };
    bool need_gen = false, need_ref = false;
    size_t n = s->ntests;

    memset(p, 0, sizeof(*p));
    p->input = pr_calloc(n, PATH_MAX);
    p->expected = pr_calloc(n, PATH_MAX);
    p->fail = pr_calloc(n, sizeof(char *));
    if (!p->input || !p->expected || !p->fail)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const stdio_test *t = &s->tests[i];
        need_gen = need_gen || t->gen;
        need_ref = need_ref || t->expected_ref;
        if (t->input)
            (void)fmtbuf(p->input[i], PATH_MAX, "%s/%s", s->dir, t->input);
        if (t->expected)
            (void)fmtbuf(p->expected[i], PATH_MAX, "%s/%s", s->dir, t->expected);
    }
    if (!need_gen && !need_ref && !s->checker.source)
        return 0;

    const char *fail = NULL;
    char why[300];
    if (cache_root(p->root, sizeof(p->root)) < 0 || access(p->root, W_OK) != 0) {
        /* No usable shared cache (read-only home, for instance): this job's scratch directory
         * still works, at the price of preparing again for every job. */
        int e1 = errno;
        pr_log(PR_LOG_WARN, "job=%s event=stdio_cache_unusable dir=%s errno=%d",
               g->job_id ? g->job_id : "-", p->root, e1);
        if (fmtbuf(p->root, sizeof(p->root), "%s/stdio-cache", g->scratch) ||
            pr_mkdir_p(p->root) < 0) {
            (void)fmtbuf(why, sizeof(why), "cannot create a cache for generated tests: %s",
                         errdesc(errno));
            fail = why;
        }
    }
    if (!fail) {
        char lock[PATH_MAX];
        (void)fmtbuf(lock, sizeof(lock), "%s/lock", p->root);
        lockfd = pr_lock_file(lock, 0644);
    }
    if (fail && s->checker.source) {
        p->tool_fail = pr_strdup(fail);
        if (!p->tool_fail) {
            rc = pr_error_set(err, PR_ENOMEM, "out of memory");
            goto cleanup;
        }
    }
    if (g->progress && (need_gen || need_ref))
        g->progress(g->payload, "test", "preparing generated tests");
    int slot = g->slot_base;
    if (!fail && s->checker.source &&
        tool_prepare(p->chk_prog, (char[65]){ 0 }, s, &s->checker, p->root, slot, &e) < 0) {
        p->tool_fail = pr_strdup(e.msg);
        if (!p->tool_fail) {
            rc = pr_error_set(err, PR_ENOMEM, "out of memory");
            goto cleanup;
        }
        p->chk_prog[0] = '\0';
    }
    if (!fail && need_gen &&
        tool_prepare(p->gen_prog, p->gen_key, s, &s->gen, p->root, slot, &e) < 0) {
        (void)fmtbuf(why, sizeof(why), "%s", e.msg);
        fail = why;
    }
    if (!fail && need_ref &&
        tool_prepare(p->ref_prog, p->ref_key, s, &s->ref, p->root, slot, &e) < 0) {
        (void)fmtbuf(why, sizeof(why), "%s", e.msg);
        fail = why;
    }
    for (size_t i = 0; i < n; i++) {
        const stdio_test *t = &s->tests[i];
        const char *tfail = fail;
        char twhy[300] = "";
        if (!t->gen && !t->expected_ref)
            continue;
        if (!tfail) {
            rc = prepare_test(p, s, i, slot, twhy, sizeof(twhy), err);
            if (rc < 0)
                goto cleanup;
            if (twhy[0])
                tfail = twhy;
        }
        if (tfail) {
            pr_log(PR_LOG_WARN, "job=%s event=stdio_prepare_failed test=%zu reason=\"%s\"",
                   g->job_id ? g->job_id : "-", i, tfail);
            p->fail[i] = pr_strdup(tfail);
            if (!p->fail[i]) {
                rc = pr_error_set(err, PR_ENOMEM, "out of memory");
                goto cleanup;
            }
        }
    }
cleanup:
    pr_close(&lockfd);
    return rc;
}

/* ---- grading ------------------------------------------------------------------------------ */

typedef struct outcome {
    const char *verdict; /* static */
    double points;
    sbx_result res;
    pr_buf msg; /* message (candidate text) */
    bool has_details;
    uint64_t line, column;
    char *exp_excerpt, *got_excerpt; /* owned, raw bytes */
    size_t exp_len, got_len;
    char reason[160];
    pr_error err; /* infrastructure failure of this test */
    bool failed;  /* err is set: the whole grade fails */
} outcome;

typedef struct grader {
    pr_grading *g;
    const stdio_state *s;
    const prep *p;
    outcome *out;
    atomic_size_t next;
} grader;

static void msg_add(outcome *o, const char *fmt, ...) PR_PRINTF(2, 3);
static void msg_add(outcome *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)pr_buf_vprintf(&o->msg, fmt, ap);
    va_end(ap);
}

/* Appends the tail of the stderr file (the candidate's last words) to the message. */
static void add_stderr_tail(outcome *o, int errfd)
{
    char buf[STDIO_STDERR_TAIL];
    off_t end = lseek(errfd, 0, SEEK_END);
    if (end <= 0)
        return;
    off_t from = end > (off_t)sizeof(buf) ? end - (off_t)sizeof(buf) : 0;
    ssize_t n = pread(errfd, buf, sizeof(buf), from);
    if (n <= 0)
        return;
    msg_add(o, "\nstderr%s:\n", from > 0 ? " (last bytes)" : "");
    (void)pr_buf_put(&o->msg, buf, (size_t)n);
}

static void describe_sbx(outcome *o, const sbx_result *r, const sbx_limits *lim)
{
    switch (r->verdict) {
    case SBX_TLE:
        msg_add(o, "CPU time limit exceeded: %llu ms used, limit %llu ms",
                (unsigned long long)r->cpu_ms, (unsigned long long)lim->cpu_ms);
        break;
    case SBX_WLE:
        msg_add(o, "wall-clock limit exceeded: %llu ms, limit %llu ms",
                (unsigned long long)r->wall_ms, (unsigned long long)lim->wall_ms);
        break;
    case SBX_MLE:
        msg_add(o, "memory limit exceeded: limit %llu MB, peak %llu KiB",
                (unsigned long long)(lim->mem_mb ? lim->mem_mb : SBX_DEFAULT_MEM_MB),
                (unsigned long long)r->max_rss_kb);
        break;
    case SBX_OLE:
        msg_add(o, "output limit exceeded: more than %llu KiB written",
                (unsigned long long)(lim->fsize_kb ? lim->fsize_kb : SBX_DEFAULT_FSIZE_KB));
        break;
    case SBX_SV:
        msg_add(o, "forbidden system call: %s", r->violation[0] ? r->violation : "unknown");
        break;
    case SBX_RE:
        if (r->signal) {
            const char *abbrev = sigabbrev_np(r->signal);
            msg_add(o, "runtime error: killed by signal %d (SIG%s)", r->signal,
                    abbrev ? abbrev : "?");
        } else {
            msg_add(o, "runtime error: exit code %d", r->exit_code);
        }
        break;
    default:
        msg_add(o, "sandbox verdict %s", sbx_verdict_name(r->verdict));
        break;
    }
    if (r->message[0])
        msg_add(o, " (%s)", r->message);
}

static int scratch_file(const pr_grading *g, size_t i, const char *suffix, char *path,
                        size_t pathsz)
{
    (void)fmtbuf(path, pathsz, "%s/stdio-%zu.%s", g->scratch, i, suffix);
    (void)unlink(path);
    return open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
}

/* Copies a test file (input or expected) to dst for the checker's /check directory. */
static int place_test_file(const stdio_state *s, const char *rel, const char *path, const char *dst,
                           pr_error *err)
{
    int fd = open_test_file(s, rel, path);
    if (fd < 0)
        return pr_error_sys(err, "%s: open", rel ? rel : path);
    int rc = copy_fd_to(fd, dst, 0644, err);
    pr_close(&fd);
    return rc;
}

static void run_checker(grader *gr, size_t i, int slot, const char *out_path, outcome *o,
                        const pr_test_meta *meta)
{
    const prep *p = gr->p;
    char dir[PATH_MAX], path[PATH_MAX], res_path[PATH_MAX], err_path[PATH_MAX];
    int resfd = -1, errfd = -1;
    pr_error e = { 0 };
    sbx_result r;
    const char *argv[24];

    (void)fmtbuf(dir, sizeof(dir), "%s/stdio-%zu.check", gr->g->scratch, i);
    (void)pr_rm_rf(dir);
    if (mkdir(dir, 0755) != 0 || chmod(dir, 0755) != 0) {
        o->verdict = "IE";
        msg_add(o, "cannot prepare the checker directory: %s", errdesc(errno));
        return;
    }
    (void)fmtbuf(path, sizeof(path), "%s/input", dir);
    const stdio_test *t = &gr->s->tests[i];
    int rc = place_test_file(gr->s, t->input, p->input[i], path, &e);
    if (rc == 0 && p->expected[i][0]) {
        (void)fmtbuf(path, sizeof(path), "%s/expected", dir);
        rc = place_test_file(gr->s, t->expected, p->expected[i], path, &e);
    }
    if (rc == 0) {
        (void)fmtbuf(path, sizeof(path), "%s/output", dir);
        /* The candidate's output is our own file in the scratch directory: a hard link. */
        if (link(out_path, path) != 0)
            rc = pr_error_sys(&e, "%s: link", path);
    }
    if (rc < 0) {
        o->verdict = "IE";
        msg_add(o, "cannot prepare the checker files: %s", e.msg);
        goto cleanup;
    }
    resfd = scratch_file(gr->g, i, "checker-out", res_path, sizeof(res_path));
    errfd = scratch_file(gr->g, i, "checker-err", err_path, sizeof(err_path));
    if (resfd < 0 || errfd < 0) {
        o->verdict = "IE";
        msg_add(o, "cannot create the checker's output files: %s", errdesc(errno));
        goto cleanup;
    }
    tool_argv(argv, gr->s->checker.rt, NULL);
    sbx_bind binds[2] = { { p->chk_prog, "/tool", false }, { dir, "/check", false } };
    sbx_limits lim = { 20000, 40000, 1024, 16, 64, 64, 64, 0 };
    if (tool_run(&r, argv, gr->s->checker.rt == TOOL_PYTHON ? "python" : "default", binds, 2, -1,
                 resfd, errfd, slot, &lim, &e) < 0) {
        o->verdict = "IE";
        msg_add(o, "the checker could not be started: %s", e.msg);
        goto cleanup;
    }
    if (r.verdict != SBX_OK) {
        o->verdict = "IE";
        msg_add(o, "the checker broke the protocol: it ended with %s (exit code %d, signal %d)",
                sbx_verdict_name(r.verdict), r.exit_code, r.signal);
        add_stderr_tail(o, errfd);
        goto cleanup;
    }
    char text[PR_CHECKER_OUTPUT_MAX + 1];
    ssize_t n = pread(resfd, text, sizeof(text), 0);
    if (n < 0)
        n = 0;
    pr_checker_verdict v;
    if (pr_checker_parse(&v, text, (size_t)n, &e) < 0) {
        o->verdict = "IE";
        msg_add(o, "the checker broke the protocol: %s", e.msg);
        goto cleanup;
    }
    o->verdict = v.accepted ? "AC" : "WA";
    o->points = v.score * meta->points;
    msg_add(o, "%s", v.message);
cleanup:
    if (resfd >= 0)
        (void)unlink(res_path);
    if (errfd >= 0)
        (void)unlink(err_path);
    pr_close(&resfd);
    pr_close(&errfd);
    (void)pr_rm_rf(dir);
}

static void run_one(grader *gr, size_t i, int slot)
{
    pr_grading *g = gr->g;
    const stdio_test *t = &gr->s->tests[i];
    const pr_test_meta *meta = &g->challenge->tests[i];
    const prep *p = gr->p;
    outcome *o = &gr->out[i];
    char out_path[PATH_MAX] = "", err_path[PATH_MAX] = "";
    int in = -1, out = -1, errfd = -1, exp = -1;
    pr_run_plan plan;

    o->verdict = "IE";
    if (p->fail[i]) {
        msg_add(o, "the test could not be prepared: %s", p->fail[i]);
        return;
    }
    if (t->checker && p->tool_fail) {
        msg_add(o, "the checker could not be prepared: %s", p->tool_fail);
        return;
    }
    in = open_test_file(gr->s, t->input, p->input[i]);
    if (in < 0) {
        msg_add(o, "cannot open the input: %s", errdesc(errno));
        goto cleanup;
    }
    out = scratch_file(g, i, "out", out_path, sizeof(out_path));
    errfd = scratch_file(g, i, "err", err_path, sizeof(err_path));
    if (out < 0 || errfd < 0) {
        o->failed = true;
        (void)pr_error_sys(&o->err, "%s: create", out < 0 ? out_path : err_path);
        goto cleanup;
    }

    sbx_limits lim = g->challenge->limits;
    for (size_t k = 0; k < sizeof(lim) / sizeof(uint64_t); k++) {
        uint64_t ov = ((const uint64_t *)&t->over)[k];
        if (ov != UINT64_MAX)
            ((uint64_t *)&lim)[k] = ov;
    }
    pr_run_plan_init(&plan, g, &lim);
    plan.spec.stdin_fd = in;
    plan.spec.stdout_fd = out;
    plan.spec.stderr_fd = errfd;
    plan.spec.slot = slot;
    plan.spec.netns_fd = g->netns_fd;
    pr_error e = { 0 };
    if (sbx_run(&o->res, &plan.spec, &e) < 0) {
        msg_add(o, "the sandbox failed: %s", e.msg);
        goto cleanup;
    }
    /* Runtimes that ignore SIGXFSZ (Python does) see EFBIG and exit with an error: a stdout
     * file that reached the cap makes that an output-limit verdict, as a signal would. */
    struct stat st;
    uint64_t cap_kb = plan.spec.limits.fsize_kb ? plan.spec.limits.fsize_kb : SBX_DEFAULT_FSIZE_KB;
    if (o->res.verdict == SBX_RE && fstat(out, &st) == 0 && (uint64_t)st.st_size >= cap_kb * 1024)
        o->res.verdict = SBX_OLE;
    if (o->res.verdict != SBX_OK) {
        o->verdict = pr_test_verdict_from_sbx(o->res.verdict);
        describe_sbx(o, &o->res, &plan.spec.limits);
        if (o->res.verdict != SBX_IE)
            add_stderr_tail(o, errfd);
        goto cleanup;
    }
    if (t->checker) {
        run_checker(gr, i, slot, out_path, o, meta);
        goto cleanup;
    }
    exp = open_test_file(gr->s, t->expected, p->expected[i]);
    if (exp < 0) {
        msg_add(o, "cannot open the expected output: %s", errdesc(errno));
        goto cleanup;
    }
    if (lseek(out, 0, SEEK_SET) != 0) {
        msg_add(o, "cannot rewind the output: %s", errdesc(errno));
        goto cleanup;
    }
    pr_cmp_result *cr = pr_malloc(sizeof(*cr));
    if (!cr) {
        o->failed = true;
        (void)pr_error_set(&o->err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }
    if (pr_compare_fds(cr, exp, out, &t->cmp, &e) < 0) {
        msg_add(o, "comparison failed: %s", e.msg);
        pr_free(cr);
        goto cleanup;
    }
    if (cr->equal) {
        o->verdict = "AC";
        o->points = meta->points;
        msg_add(o, "output matches (%s)",
                t->cmp.mode == PR_CMP_EXACT    ? "exact"
                : t->cmp.mode == PR_CMP_TOKENS ? "tokens"
                                               : "float tolerance");
    } else {
        o->verdict = "WA";
        o->has_details = true;
        o->line = cr->line;
        o->column = cr->column;
        o->exp_excerpt = pr_strndup(cr->expected, cr->expected_len);
        o->got_excerpt = pr_strndup(cr->got, cr->got_len);
        o->exp_len = cr->expected_len;
        o->got_len = cr->got_len;
        (void)fmtbuf(o->reason, sizeof(o->reason), "%s", cr->reason);
        msg_add(o, "line %llu: expected \"", (unsigned long long)cr->line);
        (void)pr_buf_put(&o->msg, cr->expected, cr->expected_len);
        msg_add(o, "\", got \"");
        (void)pr_buf_put(&o->msg, cr->got, cr->got_len);
        msg_add(o, "\" (%s)", cr->reason);
    }
    pr_free(cr);
cleanup:
    pr_close(&in);
    pr_close(&exp);
    /* The output files can be large: drop them as soon as the test is judged. */
    if (out >= 0)
        (void)unlink(out_path);
    if (errfd >= 0)
        (void)unlink(err_path);
    pr_close(&out);
    pr_close(&errfd);
}

typedef struct worker {
    grader *gr;
    int slot;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    grader *gr = w->gr;
    for (;;) {
        size_t i = atomic_fetch_add(&gr->next, 1);
        if (i >= gr->s->ntests)
            break;
        if (gr->g->progress) {
            char d[160];
            (void)fmtbuf(d, sizeof(d), "%s", gr->g->challenge->tests[i].name);
            gr->g->progress(gr->g->payload, "test", d);
        }
        run_one(gr, i, w->slot);
    }
    return NULL;
}

static int emit(pr_grading *g, const pr_test_meta *meta, outcome *o)
{
    json_t *t = pr_grading_add_test(g, meta, o->verdict, o->points, &o->res,
                                    o->msg.ptr ? o->msg.ptr : "", o->msg.len);
    if (!t)
        return PR_ENOMEM;
    if (!o->has_details)
        return 0;
    json_t *d = json_object();
    if (!d || json_object_set_new(t, "details", d) != 0)
        return PR_ENOMEM;
    if (json_object_set_new(d, "line", json_integer((json_int_t)o->line)) != 0 ||
        (o->column && json_object_set_new(d, "column", json_integer((json_int_t)o->column))) ||
        pr_report_set_text(d, "expected", o->exp_excerpt ? o->exp_excerpt : "", o->exp_len,
                           PR_CMP_EXCERPT_MAX + 8) < 0 ||
        pr_report_set_text(d, "got", o->got_excerpt ? o->got_excerpt : "", o->got_len,
                           PR_CMP_EXCERPT_MAX + 8) < 0 ||
        json_object_set_new(d, "reason", json_string(o->reason)) != 0)
        return PR_ENOMEM;
    return 0;
}

static int stdio_grade(pr_grading *g, const void *state, pr_error *err)
{
    const stdio_state *s = state;
    prep p;
    outcome *out = NULL;
    worker *ws = NULL;
    pthread_t *th = NULL;
    size_t started = 0;
    int rc;

    if (!s || !g || !g->challenge || g->challenge->ntests != s->ntests || !g->tests)
        return pr_error_set(err, PR_EINTERNAL, "stdio: grading state does not match the pack");
    rc = prepare(&p, s, g, err);
    if (rc < 0)
        goto cleanup;
    out = pr_calloc(s->ntests, sizeof(*out));
    size_t nth = g->parallel > 0 ? (size_t)g->parallel : 1;
    if (nth > s->ntests)
        nth = s->ntests;
    ws = pr_calloc(nth, sizeof(*ws));
    th = pr_calloc(nth, sizeof(*th));
    if (!out || !ws || !th) {
        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < s->ntests; i++)
        pr_buf_init(&out[i].msg, (size_t)16 * 1024);
    grader gr = { g, s, &p, out, 0 };
    atomic_init(&gr.next, 0);
    for (size_t k = 0; k < nth; k++) {
        ws[k].gr = &gr;
        ws[k].slot = g->slot_base + (int)k;
        if (k == 0)
            continue; /* worker 0 is this thread */
        if (pthread_create(&th[k], NULL, worker_main, &ws[k]) != 0)
            break;
        started++;
    }
    (void)worker_main(&ws[0]);
    for (size_t k = 1; k <= started; k++)
        (void)pthread_join(th[k], NULL);
    for (size_t i = 0; i < s->ntests; i++) {
        if (out[i].failed) {
            rc = pr_error_set(err, out[i].err.code ? out[i].err.code : PR_EINTERNAL, "test %s: %s",
                              g->challenge->tests[i].name, out[i].err.msg);
            goto cleanup;
        }
    }
    for (size_t i = 0; i < s->ntests; i++) {
        rc = emit(g, &g->challenge->tests[i], &out[i]);
        if (rc < 0) {
            rc = pr_error_set(err, rc, "out of memory");
            goto cleanup;
        }
    }
cleanup:
    if (out) {
        for (size_t i = 0; i < s->ntests; i++) {
            pr_buf_free(&out[i].msg);
            pr_free(out[i].exp_excerpt);
            pr_free(out[i].got_excerpt);
        }
    }
    pr_free(out);
    pr_free(ws);
    pr_free(th);
    prep_free(&p, s ? s->ntests : 0);
    return rc;
}

const pr_kind pr_kind_stdio = { "stdio", stdio_parse, stdio_grade, stdio_free };
