/* Challenge packs: loading and validating challenge.json, and the pack digest. Every message
 * names the file, the field and what was expected ("<file>: tests[3].points: expected ..."). */
#include "proctor/challenge.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/openat2.h>

#include <openssl/evp.h>

#include "proctor/buf.h"
#include "proctor/kind.h"
#include "proctor/log.h"

#define MANIFEST_MAX_BYTES ((size_t)1024 * 1024)
#define MANIFEST_MAX_DEPTH 64
#define MANIFEST_MAX_TESTS 2000
#define MANIFEST_MAX_RTS   16
#define PACK_MAX_FILES     20000
#define PACK_MAX_DEPTH     16
#define PACK_MAX_BYTES     (512ULL * 1024 * 1024)
#define TEST_NAME_MAX      128
#define TEST_GROUP_MAX     64
#define MULTIPLIER_MAX     100.0

/* Describes a JSON value for "got ..." in messages: short, never the whole value. */
static void describe(char *out, size_t outsz, const json_t *v)
{
    if (!v) {
        (void)snprintf(out, outsz, "nothing (missing)");
        return;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        (void)snprintf(out, outsz, "an object");
        break;
    case JSON_ARRAY:
        (void)snprintf(out, outsz, "an array of %zu", json_array_size(v));
        break;
    case JSON_STRING: {
        char ex[64];
        pr_text_log_excerpt(ex, sizeof(ex), json_string_value(v),
                            json_string_length(v) > 40 ? 40 : json_string_length(v));
        (void)snprintf(out, outsz, "a string \"%s\"%s", ex,
                       json_string_length(v) > 40 ? "..." : "");
        break;
    }
    case JSON_INTEGER:
        (void)snprintf(out, outsz, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        (void)snprintf(out, outsz, "%g", json_real_value(v));
        break;
    case JSON_TRUE:
        (void)snprintf(out, outsz, "true");
        break;
    case JSON_FALSE:
        (void)snprintf(out, outsz, "false");
        break;
    default:
        (void)snprintf(out, outsz, "null");
        break;
    }
}

/* "<file>: <field>: expected <what>, got <described value>". Returns code. */
static int field_error(pr_error *err, int code, const char *file, const char *field,
                       const char *expected, const json_t *got)
{
    char g[96];
    describe(g, sizeof(g), got);
    return pr_error_set(err, code, "%s: %s: expected %s, got %s", file, field, expected, g);
}

static bool name_ok(const char *s, size_t len, size_t max, bool allow_underscore)
{
    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
              (allow_underscore && c == '_')))
            return false;
    }
    return true;
}

/* A printable one-line label: no control characters, valid UTF-8 (jansson guarantees it). */
static bool label_ok(const json_t *v, size_t max)
{
    if (!json_is_string(v))
        return false;
    size_t len = json_string_length(v);
    const char *s = json_string_value(v);
    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    }
    return true;
}

void pr_test_meta_clear(pr_test_meta *m)
{
    if (!m)
        return;
    pr_free(m->name);
    pr_free(m->group);
    memset(m, 0, sizeof(*m));
}

int pr_test_meta_parse(pr_test_meta *out, const json_t *test, const char *file, size_t index,
                       pr_error *err)
{
    char field[64];
    pr_test_meta m = { 0 };
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (!file)
        file = "challenge.json";
    if (!json_is_object(test)) {
        (void)snprintf(field, sizeof(field), "tests[%zu]", index);
        return field_error(err, PR_EINVAL, file, field, "an object", test);
    }

    const json_t *v = json_object_get(test, "name");
    if (!label_ok(v, TEST_NAME_MAX)) {
        (void)snprintf(field, sizeof(field), "tests[%zu].name", index);
        rc = field_error(err, PR_EINVAL, file, field, "a string of 1..128 printable characters", v);
        goto cleanup;
    }
    m.name = pr_strdup(json_string_value(v));
    if (!m.name) {
        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }

    v = json_object_get(test, "group");
    if (v && !label_ok(v, TEST_GROUP_MAX)) {
        (void)snprintf(field, sizeof(field), "tests[%zu].group", index);
        rc = field_error(err, PR_EINVAL, file, field,
                         "a string of 1..64 printable characters (correctness, performance, "
                         "robustness...)",
                         v);
        goto cleanup;
    }
    m.group = pr_strdup(v ? json_string_value(v) : "correctness");
    if (!m.group) {
        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }

    v = json_object_get(test, "points");
    if (!json_is_number(v) || !isfinite(json_number_value(v)) || json_number_value(v) < 0 ||
        json_number_value(v) > 1e6) {
        (void)snprintf(field, sizeof(field), "tests[%zu].points", index);
        rc = field_error(err, PR_EINVAL, file, field, "a number 0..1000000", v);
        goto cleanup;
    }
    m.points = json_number_value(v);

    v = json_object_get(test, "visibility");
    if (v) {
        const char *s = json_is_string(v) ? json_string_value(v) : "";
        if (strcmp(s, "visible") == 0) {
            m.hidden = false;
        } else if (strcmp(s, "hidden") == 0) {
            m.hidden = true;
        } else {
            (void)snprintf(field, sizeof(field), "tests[%zu].visibility", index);
            rc = field_error(err, PR_EINVAL, file, field, "\"visible\" or \"hidden\"", v);
            goto cleanup;
        }
    }
    *out = m;
    memset(&m, 0, sizeof(m));
cleanup:
    pr_test_meta_clear(&m);
    return rc;
}

typedef struct limit_field {
    const char *key;
    size_t offset;
    uint64_t max;
} limit_field;

static const limit_field limit_fields[] = {
    { "cpu_ms", offsetof(sbx_limits, cpu_ms), 600000 },
    { "wall_ms", offsetof(sbx_limits, wall_ms), 1200000 },
    { "mem_mb", offsetof(sbx_limits, mem_mb), 16384 },
    { "procs", offsetof(sbx_limits, procs), 4096 },
    { "fsize_kb", offsetof(sbx_limits, fsize_kb), 4194304 },
    { "nofile", offsetof(sbx_limits, nofile), 65536 },
    { "tmp_mb", offsetof(sbx_limits, tmp_mb), 8192 },
    { "stack_mb", offsetof(sbx_limits, stack_mb), 1024 },
};

int pr_limits_parse(sbx_limits *out, const json_t *obj, const char *file, const char *field,
                    pr_error *err)
{
    char path[128];
    const char *key;
    json_t *v;
    sbx_limits l = *out;

    if (!file)
        file = "challenge.json";
    if (!field)
        field = "limits";
    if (!json_is_object(obj))
        return field_error(err, PR_EINVAL, file, field,
                           "an object like {\"cpu_ms\": 1000, \"mem_mb\": 256}", obj);
    json_object_foreach ((json_t *)obj, key, v) {
        const limit_field *lf = NULL;
        for (size_t i = 0; i < PR_ARRAY_LEN(limit_fields); i++) {
            if (strcmp(limit_fields[i].key, key) == 0)
                lf = &limit_fields[i];
        }
        char kx[64];
        pr_text_log_excerpt(kx, sizeof(kx), key, strlen(key));
        (void)snprintf(path, sizeof(path), "%s.%s", field, kx);
        if (!lf)
            return pr_error_set(err, PR_EINVAL,
                                "%s: %s: unknown limit; expected one of cpu_ms, wall_ms, mem_mb, "
                                "procs, fsize_kb, nofile, tmp_mb, stack_mb",
                                file, path);
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            (uint64_t)json_integer_value(v) > lf->max) {
            char what[64];
            (void)snprintf(what, sizeof(what), "an integer 1..%llu", (unsigned long long)lf->max);
            return field_error(err, PR_EINVAL, file, path, what, v);
        }
        uint64_t val = (uint64_t)json_integer_value(v);
        memcpy((char *)&l + lf->offset, &val, sizeof(val));
    }
    *out = l;
    return 0;
}

double pr_challenge_multiplier(const pr_challenge *c, const char *runtime, double rt_default)
{
    if (c && c->multipliers && runtime) {
        const json_t *v = json_object_get(c->multipliers, runtime);
        if (json_is_number(v) && json_number_value(v) > 0)
            return json_number_value(v);
    }
    if (rt_default > 0 && isfinite(rt_default))
        return rt_default;
    return 1.0;
}

void pr_challenge_free(pr_challenge *c)
{
    if (!c)
        return;
    if (c->kind && c->kind->free)
        c->kind->free(c->kind_state);
    for (size_t i = 0; i < c->ntests; i++)
        pr_test_meta_clear(&c->tests[i]);
    pr_free(c->tests);
    if (c->runtimes) {
        for (size_t i = 0; c->runtimes[i]; i++)
            pr_free(c->runtimes[i]);
        pr_free(c->runtimes);
    }
    json_decref(c->multipliers);
    json_decref(c->manifest);
    pr_free(c->dir);
    pr_free(c->id);
    pr_free(c->version);
    pr_free(c->title);
    pr_free(c->kind_name);
    pr_free(c);
}

/* Maximum nesting of the raw text, counted outside strings, so that a hostile or broken
 * manifest cannot make the parser (or later walkers) recurse deeply. */
static size_t json_text_depth(const char *s, size_t len)
{
    size_t depth = 0, max = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            depth++;
            if (depth > max)
                max = depth;
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return max;
}

/* Reads a regular file opened relative to dirfd without following a symlink, up to max bytes. */
static int read_file_capped(pr_buf *out, int dirfd, const char *name, const char *label, size_t max,
                            pr_error *err)
{
    int fd = -1;
    int rc = 0;
    struct stat st;

    fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT)
            rc = pr_error_set(err, PR_ENOTFOUND, "%s: no such file", label);
        else if (errno == ELOOP)
            rc = pr_error_set(err, PR_EUNSAFE, "%s: is a symlink; refused", label);
        else
            rc = pr_error_sys(err, "%s: open", label);
        goto cleanup;
    }
    if (fstat(fd, &st) != 0) {
        rc = pr_error_sys(err, "%s: stat", label);
        goto cleanup;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = pr_error_set(err, PR_EUNSAFE, "%s: not a regular file", label);
        goto cleanup;
    }
    if ((uint64_t)st.st_size > max) {
        rc = pr_error_set(err, PR_ELIMIT, "%s: larger than %zu bytes", label, max);
        goto cleanup;
    }
    pr_buf_init(out, max);
    for (;;) {
        char chunk[16384];
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = pr_error_sys(err, "%s: read", label);
            goto cleanup;
        }
        if (n == 0)
            break;
        rc = pr_buf_put(out, chunk, (size_t)n);
        if (rc == PR_ELIMIT) {
            rc = pr_error_set(err, PR_ELIMIT, "%s: larger than %zu bytes", label, max);
            goto cleanup;
        }
        if (rc < 0) {
            rc = pr_error_set(err, rc, "out of memory");
            goto cleanup;
        }
    }
    if (!out->ptr) {
        rc = pr_buf_put(out, "", 0);
        if (rc < 0)
            rc = pr_error_set(err, rc, "out of memory");
    }
cleanup:
    if (rc < 0)
        pr_buf_free(out);
    pr_close(&fd);
    return rc;
}

/* ---- digest ---------------------------------------------------------------------------- */

typedef struct path_list {
    char **items;
    size_t n, cap;
    uint64_t bytes;
} path_list;

static void path_list_free(path_list *pl)
{
    for (size_t i = 0; i < pl->n; i++)
        pr_free(pl->items[i]);
    pr_free(pl->items);
    memset(pl, 0, sizeof(*pl));
}

static int path_list_add(path_list *pl, const char *rel)
{
    if (pl->n == pl->cap) {
        size_t cap = pl->cap ? pl->cap * 2 : 64;
        size_t bytes;
        if (__builtin_mul_overflow(cap, sizeof(char *), &bytes))
            return PR_ENOMEM;
        char **p = pr_realloc(pl->items, bytes);
        if (!p)
            return PR_ENOMEM;
        pl->items = p;
        pl->cap = cap;
    }
    pl->items[pl->n] = pr_strdup(rel);
    if (!pl->items[pl->n])
        return PR_ENOMEM;
    pl->n++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int pr_pack_open_beneath(int rootfd, const char *rel, int flags)
{
    struct open_how how;
    const char *path = rel[0] ? rel : ".";
    memset(&how, 0, sizeof(how));
    how.flags = (uint64_t)(O_RDONLY | O_NOFOLLOW | O_CLOEXEC | flags);
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    long fd = syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
    if (fd < 0 && errno == ENOSYS)
        return openat(rootfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | flags);
    return (int)fd;
}

bool pr_pack_path_ok(const char *rel, size_t max)
{
    size_t n = rel ? strlen(rel) : 0;
    if (n == 0 || n > max || rel[0] == '/')
        return false;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)rel[i] < 0x21 || (unsigned char)rel[i] > 0x7E || rel[i] == '\\')
            return false;
    }
    const char *seg = rel;
    for (;;) {
        const char *end = strchr(seg, '/');
        size_t len = end ? (size_t)(end - seg) : strlen(seg);
        if (len == 0 || (len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return false;
        if (!end)
            break;
        seg = end + 1;
    }
    return true;
}

static int path_depth(const char *rel)
{
    int d = rel[0] ? 1 : 0;
    for (const char *p = rel; *p; p++) {
        if (*p == '/')
            d++;
    }
    return d;
}

/* Collects every regular file below the pack root except solutions/, iteratively: a worklist of
 * directory paths, each opened beneath the root. Symlinks and special files are refused. */
static int pack_collect(path_list *pl, int rootfd, const char *dir, pr_error *err)
{
    path_list todo = { 0 };
    DIR *d = NULL;
    int rc = 0;
    char *cur = NULL;

    if (path_list_add(&todo, "") < 0) {
        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }
    while (todo.n > 0) {
        cur = todo.items[--todo.n];
        int depth = path_depth(cur);
        int fd = pr_pack_open_beneath(rootfd, cur, O_DIRECTORY | O_NONBLOCK);
        if (fd < 0) {
            rc = pr_error_sys(err, "%s/%s: open", dir, cur);
            goto cleanup;
        }
        d = fdopendir(fd);
        if (!d) {
            rc = pr_error_sys(err, "%s/%s: opendir", dir, cur);
            pr_close(&fd);
            goto cleanup;
        }
        for (;;) {
            errno = 0;
            /* cppcheck-suppress readdirCalled ; the stream is private to this call */
            const struct dirent *de = readdir(d); /* NOLINT(concurrency-mt-unsafe) */
            if (!de) {
                if (errno != 0) {
                    rc = pr_error_sys(err, "%s/%s: readdir", dir, cur);
                    goto cleanup;
                }
                break;
            }
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            if (depth == 0 && strcmp(de->d_name, "solutions") == 0)
                continue;
            char rel[PATH_MAX];
            int n = snprintf(rel, sizeof(rel), "%s%s%s", cur, cur[0] ? "/" : "", de->d_name);
            if (n < 0 || (size_t)n >= sizeof(rel)) {
                rc = pr_error_set(err, PR_ELIMIT, "%s: a path in the pack is too long", dir);
                goto cleanup;
            }
            struct stat st;
            if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
                rc = pr_error_sys(err, "%s/%s: stat", dir, rel);
                goto cleanup;
            }
            if (pl->n + todo.n >= PACK_MAX_FILES) {
                rc = pr_error_set(err, PR_ELIMIT, "%s: more than %d files in the pack", dir,
                                  PACK_MAX_FILES);
                goto cleanup;
            }
            if (S_ISREG(st.st_mode)) {
                pl->bytes += (uint64_t)st.st_size;
                if (pl->bytes > PACK_MAX_BYTES) {
                    rc = pr_error_set(err, PR_ELIMIT, "%s: pack larger than %llu bytes", dir,
                                      (unsigned long long)PACK_MAX_BYTES);
                    goto cleanup;
                }
                rc = path_list_add(pl, rel);
            } else if (S_ISDIR(st.st_mode)) {
                if (depth + 1 >= PACK_MAX_DEPTH) {
                    rc = pr_error_set(err, PR_ELIMIT, "%s/%s: directories nested too deep", dir,
                                      rel);
                    goto cleanup;
                }
                rc = path_list_add(&todo, rel);
            } else {
                rc =
                    pr_error_set(err, PR_EUNSAFE,
                                 "%s/%s: a symlink or special file in the pack; refused", dir, rel);
                goto cleanup;
            }
            if (rc < 0) {
                rc = pr_error_set(err, PR_ENOMEM, "out of memory");
                goto cleanup;
            }
        }
        (void)closedir(d);
        d = NULL;
        pr_free(cur);
        cur = NULL;
    }
cleanup:
    if (d)
        (void)closedir(d);
    pr_free(cur);
    path_list_free(&todo);
    return rc;
}

static int digest_update_file(EVP_MD_CTX *ctx, int rootfd, const char *dir, const char *rel,
                              pr_error *err)
{
    int fd = pr_pack_open_beneath(rootfd, rel, O_NONBLOCK);
    int rc = 0;
    struct stat st;
    unsigned char lenbuf[8];
    uint64_t total = 0;

    if (fd < 0)
        return pr_error_sys(err, "%s/%s: open", dir, rel);
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = pr_error_set(err, PR_EUNSAFE, "%s/%s: not a regular file", dir, rel);
        goto cleanup;
    }
    /* Path, NUL, 8-byte big-endian size, contents: unambiguous framing of the stream. */
    uint64_t size = (uint64_t)st.st_size;
    for (int i = 0; i < 8; i++)
        lenbuf[i] = (unsigned char)(size >> (56 - 8 * i));
    if (EVP_DigestUpdate(ctx, rel, strlen(rel) + 1) != 1 ||
        EVP_DigestUpdate(ctx, lenbuf, sizeof(lenbuf)) != 1) {
        rc = pr_error_set(err, PR_EINTERNAL, "sha256 failed");
        goto cleanup;
    }
    for (;;) {
        unsigned char chunk[65536];
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = pr_error_sys(err, "%s/%s: read", dir, rel);
            goto cleanup;
        }
        if (n == 0)
            break;
        total += (uint64_t)n;
        if (total > size) {
            rc = pr_error_set(err, PR_EINVAL, "%s/%s: changed while hashing", dir, rel);
            goto cleanup;
        }
        if (EVP_DigestUpdate(ctx, chunk, (size_t)n) != 1) {
            rc = pr_error_set(err, PR_EINTERNAL, "sha256 failed");
            goto cleanup;
        }
    }
    if (total != size)
        rc = pr_error_set(err, PR_EINVAL, "%s/%s: changed while hashing", dir, rel);
cleanup:
    pr_close(&fd);
    return rc;
}

static int pack_digest(char out[65], int rootfd, const char *dir, pr_error *err)
{
    path_list pl = { 0 };
    EVP_MD_CTX *ctx = NULL;
    int rc;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    rc = pack_collect(&pl, rootfd, dir, err);
    if (rc < 0)
        goto cleanup;
    if (pl.n > 1)
        qsort(pl.items, pl.n, sizeof(char *), cmp_str);
    ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        rc = pr_error_set(err, PR_ENOMEM, "sha256: cannot initialise");
        goto cleanup;
    }
    for (size_t i = 0; i < pl.n; i++) {
        rc = digest_update_file(ctx, rootfd, dir, pl.items[i], err);
        if (rc < 0)
            goto cleanup;
    }
    if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32) {
        rc = pr_error_set(err, PR_EINTERNAL, "sha256 failed");
        goto cleanup;
    }
    for (unsigned int i = 0; i < mdlen; i++)
        (void)snprintf(out + (size_t)i * 2, 3, "%02x", md[i]);
    rc = 0;
cleanup:
    EVP_MD_CTX_free(ctx);
    path_list_free(&pl);
    return rc;
}

/* ---- manifest ---------------------------------------------------------------------------- */

static const char *const known_keys[] = { "id",          "version", "title", "kind",
                                          "runtimes",    "limits",  "tests", "time_multipliers",
                                          "description", "readme",  NULL };

static int dup_string_field(char **out, const json_t *root, const char *key, const char *file,
                            size_t max, pr_error *err)
{
    const json_t *v = json_object_get(root, key);
    char what[64];
    (void)snprintf(what, sizeof(what), "a string of 1..%zu printable characters", max);
    if (!label_ok(v, max))
        return field_error(err, PR_EINVAL, file, key, what, v);
    *out = pr_strdup(json_string_value(v));
    return *out ? 0 : pr_error_set(err, PR_ENOMEM, "out of memory");
}

static int parse_runtimes(pr_challenge *c, const json_t *root, const char *file, pr_error *err)
{
    const json_t *arr = json_object_get(root, "runtimes");
    size_t n = json_array_size(arr);
    if (!json_is_array(arr) || n == 0 || n > MANIFEST_MAX_RTS)
        return field_error(err, PR_EINVAL, file, "runtimes",
                           "a non-empty array (at most 16) of runtime names like [\"python\"]",
                           arr);
    c->runtimes = pr_calloc(n + 1, sizeof(char *));
    if (!c->runtimes)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(arr, i);
        char field[32];
        (void)snprintf(field, sizeof(field), "runtimes[%zu]", i);
        if (!json_is_string(v) || !name_ok(json_string_value(v), json_string_length(v), 32, true))
            return field_error(err, PR_EINVAL, file, field,
                               "a runtime name like \"c\", \"python\", \"node\" or \"go\"", v);
        c->runtimes[i] = pr_strdup(json_string_value(v));
        if (!c->runtimes[i])
            return pr_error_set(err, PR_ENOMEM, "out of memory");
    }
    return 0;
}

static int parse_multipliers(pr_challenge *c, const json_t *root, const char *file, pr_error *err)
{
    json_t *obj = json_object_get(root, "time_multipliers");
    const char *key;
    json_t *v;

    if (!obj)
        return 0;
    if (!json_is_object(obj))
        return field_error(err, PR_EINVAL, file, "time_multipliers",
                           "an object like {\"python\": 3.0}", obj);
    json_object_foreach (obj, key, v) {
        char kx[48], field[80];
        pr_text_log_excerpt(kx, sizeof(kx), key, strlen(key));
        (void)snprintf(field, sizeof(field), "time_multipliers.%s", kx);
        if (!name_ok(key, strlen(key), 32, true))
            return pr_error_set(err, PR_EINVAL, "%s: %s: expected a runtime name as key", file,
                                field);
        if (!json_is_number(v) || !(json_number_value(v) > 0) ||
            json_number_value(v) > MULTIPLIER_MAX)
            return field_error(err, PR_EINVAL, file, field, "a number > 0 and <= 100", v);
    }
    c->multipliers = json_incref(obj);
    return 0;
}

static int parse_tests(pr_challenge *c, const json_t *root, const char *file, pr_error *err)
{
    const json_t *arr = json_object_get(root, "tests");
    size_t n = json_array_size(arr);
    if (!json_is_array(arr) || n == 0)
        return field_error(err, PR_EINVAL, file, "tests", "a non-empty array of test objects", arr);
    if (n > MANIFEST_MAX_TESTS)
        return pr_error_set(err, PR_ELIMIT, "%s: tests: expected at most %d tests, got %zu", file,
                            MANIFEST_MAX_TESTS, n);
    c->tests = pr_calloc(n, sizeof(*c->tests));
    if (!c->tests)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        int rc = pr_test_meta_parse(&c->tests[i], json_array_get(arr, i), file, i, err);
        if (rc < 0)
            return rc;
        c->ntests = i + 1;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(c->tests[j].name, c->tests[i].name) == 0) {
                char ex[64];
                pr_text_log_excerpt(ex, sizeof(ex), c->tests[i].name, strlen(c->tests[i].name));
                return pr_error_set(err, PR_EINVAL,
                                    "%s: tests[%zu].name: expected a unique name, got \"%s\" "
                                    "(also tests[%zu].name)",
                                    file, i, ex, j);
            }
        }
    }
    return 0;
}

static int parse_manifest(pr_challenge *c, const json_t *root, const char *file, pr_error *err)
{
    int rc;
    const char *key;
    json_t *v;

    if (!json_is_object(root))
        return field_error(err, PR_EINVAL, file, "(top level)", "an object", root);

    const json_t *id = json_object_get(root, "id");
    if (!json_is_string(id) || !name_ok(json_string_value(id), json_string_length(id), 64, false))
        return field_error(err, PR_EINVAL, file, "id",
                           "a string of 1..64 characters from [a-z0-9-]", id);
    c->id = pr_strdup(json_string_value(id));
    if (!c->id)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    rc = dup_string_field(&c->version, root, "version", file, 64, err);
    if (rc < 0)
        return rc;
    rc = dup_string_field(&c->title, root, "title", file, 200, err);
    if (rc < 0)
        return rc;

    const json_t *kind = json_object_get(root, "kind");
    c->kind = json_is_string(kind) ? pr_kind_find(json_string_value(kind)) : NULL;
    if (!c->kind) {
        char names[128] = "";
        size_t o = 0;
        const char *const *kn = pr_kind_names();
        for (size_t i = 0; kn[i]; i++) {
            int w = snprintf(names + o, sizeof(names) - o, "%s\"%s\"", i ? ", " : "", kn[i]);
            if (w < 0 || (size_t)w >= sizeof(names) - o)
                break;
            o += (size_t)w;
        }
        char what[160];
        (void)snprintf(what, sizeof(what), "one of %s", names);
        return field_error(err, PR_EINVAL, file, "kind", what, kind);
    }
    c->kind_name = pr_strdup(c->kind->name);
    if (!c->kind_name)
        return pr_error_set(err, PR_ENOMEM, "out of memory");

    rc = parse_runtimes(c, root, file, err);
    if (rc < 0)
        return rc;

    c->limits.cpu_ms = SBX_DEFAULT_CPU_MS;
    c->limits.wall_ms = SBX_DEFAULT_WALL_MS;
    c->limits.mem_mb = SBX_DEFAULT_MEM_MB;
    c->limits.procs = SBX_DEFAULT_PROCS;
    c->limits.fsize_kb = SBX_DEFAULT_FSIZE_KB;
    c->limits.nofile = SBX_DEFAULT_NOFILE;
    c->limits.tmp_mb = SBX_DEFAULT_TMP_MB;
    rc = pr_limits_parse(&c->limits, json_object_get(root, "limits"), file, "limits", err);
    if (rc < 0)
        return rc;
    rc = parse_multipliers(c, root, file, err);
    if (rc < 0)
        return rc;
    rc = parse_tests(c, root, file, err);
    if (rc < 0)
        return rc;

    json_object_foreach ((json_t *)root, key, v) {
        bool known = false;
        for (size_t i = 0; known_keys[i]; i++) {
            if (strcmp(known_keys[i], key) == 0)
                known = true;
        }
        if (!known) {
            char kx[64];
            pr_text_log_excerpt(kx, sizeof(kx), key, strlen(key));
            pr_log(PR_LOG_DEBUG, "event=manifest_key file=%s key=%s note=left_to_the_kind", file,
                   kx);
        }
    }
    return 0;
}

int pr_challenge_load(pr_challenge **out, const char *dir, pr_error *err)
{
    pr_challenge *c = NULL;
    pr_buf text = PR_BUF_INIT(MANIFEST_MAX_BYTES);
    json_t *root = NULL;
    int dfd = -1;
    int rc;
    char file[PATH_MAX];
    json_error_t jerr;

    *out = NULL;
    if (!dir || !dir[0])
        return pr_error_set(err, PR_EINVAL, "challenge directory: expected a path, got nothing");
    int n = snprintf(file, sizeof(file), "%s%schallenge.json", dir,
                     dir[strlen(dir) - 1] == '/' ? "" : "/");
    if (n < 0 || (size_t)n >= sizeof(file))
        return pr_error_set(err, PR_EINVAL, "%s: path too long", dir);

    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        if (errno == ENOENT)
            rc = pr_error_set(err, PR_ENOTFOUND, "%s: no such challenge directory", dir);
        else if (errno == ENOTDIR)
            rc = pr_error_set(err, PR_EINVAL, "%s: not a directory", dir);
        else
            rc = pr_error_sys(err, "%s: open", dir);
        goto cleanup;
    }
    rc = read_file_capped(&text, dfd, "challenge.json", file, MANIFEST_MAX_BYTES, err);
    if (rc < 0)
        goto cleanup;
    if (json_text_depth(text.ptr, text.len) > MANIFEST_MAX_DEPTH) {
        rc = pr_error_set(err, PR_ELIMIT, "%s: nested deeper than %d levels", file,
                          MANIFEST_MAX_DEPTH);
        goto cleanup;
    }
    root = json_loadb(text.ptr, text.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        rc = pr_error_set(err, PR_EJSON, "%s: line %d column %d: %s", file, jerr.line, jerr.column,
                          jerr.text);
        goto cleanup;
    }
    c = pr_calloc(1, sizeof(*c));
    if (!c) {
        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }
    char *abs = realpath(dir, NULL);
    if (!abs) {
        rc = pr_error_sys(err, "%s: realpath", dir);
        goto cleanup;
    }
    c->dir = pr_strdup(abs);
    free(abs); /* realpath allocates with malloc */
    if (!c->dir) {
        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }
    rc = parse_manifest(c, root, file, err);
    if (rc < 0)
        goto cleanup;
    rc = pack_digest(c->digest, dfd, dir, err);
    if (rc < 0)
        goto cleanup;
    c->manifest = root;
    root = NULL;
    if (c->kind->parse) {
        rc = c->kind->parse(&c->kind_state, c->manifest, c->dir, err);
        if (rc < 0) {
            /* Keep the kind's own message, but make sure it names the file. */
            if (err && !strstr(err->msg, "challenge.json"))
                (void)pr_error_wrap(err, "%s", file);
            goto cleanup;
        }
    }
    *out = c;
    c = NULL;
    rc = 0;
cleanup:
    pr_challenge_free(c);
    json_decref(root);
    pr_buf_free(&text);
    pr_close(&dfd);
    return rc;
}
