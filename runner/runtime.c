/* Runtimes are configuration (runner/runtimes.json): detection files, build and run commands,
 * seccomp profiles, extra binds, environment and build limits per language. */
#include "proctor/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "proctor/buf.h"

#define RUNTIMES_MAX_BYTES ((size_t)256 * 1024)
#define RUNTIMES_MAX_COUNT 32
#define RUNTIME_LIST_MAX   31
#define RUNTIME_STR_MAX    1024
#define PROCTOR_JSON_MAX   ((size_t)16 * 1024)

static void strv_free(char **v)
{
    if (!v)
        return;
    for (size_t i = 0; v[i]; i++)
        pr_free(v[i]);
    pr_free(v);
}

static void runtime_clear(pr_runtime *rt)
{
    pr_free(rt->name);
    strv_free(rt->detect);
    strv_free(rt->build_argv);
    strv_free(rt->run_argv);
    pr_free(rt->profile);
    pr_free(rt->build_profile);
    strv_free(rt->binds);
    strv_free(rt->env);
    memset(rt, 0, sizeof(*rt));
}

void pr_runtimes_free(pr_runtimes *rts)
{
    if (!rts)
        return;
    for (size_t i = 0; rts->items && i < rts->count; i++)
        runtime_clear(&rts->items[i]);
    pr_free(rts->items);
    pr_free(rts);
}

/* Reads a regular file (not through a symlink when nofollow) of at most max bytes. */
static int slurp(pr_buf *out, int dirfd, const char *path, bool nofollow, size_t max, pr_error *err)
{
    int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (nofollow ? O_NOFOLLOW : 0));
    int rc = 0;
    struct stat st;

    pr_buf_init(out, max);
    if (fd < 0) {
        if (errno == ENOENT)
            return pr_error_set(err, PR_ENOTFOUND, "%s: no such file", path);
        if (errno == ELOOP && nofollow)
            return pr_error_set(err, PR_EUNSAFE, "%s: is a symlink; refused", path);
        return pr_error_sys(err, "%s: open", path);
    }
    if (fstat(fd, &st) != 0) {
        rc = pr_error_sys(err, "%s: stat", path);
        goto cleanup;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = pr_error_set(err, PR_EUNSAFE, "%s: not a regular file", path);
        goto cleanup;
    }
    for (;;) {
        char chunk[8192];
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = pr_error_sys(err, "%s: read", path);
            goto cleanup;
        }
        if (n == 0)
            break;
        rc = pr_buf_put(out, chunk, (size_t)n);
        if (rc < 0) {
            rc = rc == PR_ELIMIT
                     ? pr_error_set(err, PR_ELIMIT, "%s: larger than %zu bytes", path, max)
                     : pr_error_set(err, rc, "out of memory");
            goto cleanup;
        }
    }
cleanup:
    if (rc < 0)
        pr_buf_free(out);
    pr_close(&fd);
    return rc;
}

/* A NULL-terminated copy of an array of strings; a missing key gives NULL when optional. */
static int strv_parse(char ***out, const json_t *obj, const char *key, bool required,
                      const char *file, size_t idx, pr_error *err)
{
    const json_t *arr = json_object_get(obj, key);
    char **v = NULL;

    *out = NULL;
    if (!arr && !required)
        return 0;
    size_t n = json_array_size(arr);
    if (!json_is_array(arr) || n > RUNTIME_LIST_MAX || (required && n == 0))
        return pr_error_set(err, PR_EINVAL,
                            "%s: runtimes[%zu].%s: expected %s array of at most %d strings", file,
                            idx, key, required ? "a non-empty" : "an", RUNTIME_LIST_MAX);
    v = pr_calloc(n + 1, sizeof(char *));
    if (!v)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *s = json_array_get(arr, i);
        if (!json_is_string(s) || json_string_length(s) == 0 ||
            json_string_length(s) > RUNTIME_STR_MAX ||
            strlen(json_string_value(s)) != json_string_length(s)) {
            strv_free(v);
            return pr_error_set(err, PR_EINVAL,
                                "%s: runtimes[%zu].%s[%zu]: expected a non-empty string", file, idx,
                                key, i);
        }
        v[i] = pr_strdup(json_string_value(s));
        if (!v[i]) {
            strv_free(v);
            return pr_error_set(err, PR_ENOMEM, "out of memory");
        }
    }
    *out = v;
    return 0;
}

static int str_parse(char **out, const json_t *obj, const char *key, const char *dflt,
                     const char *file, size_t idx, pr_error *err)
{
    const json_t *v = json_object_get(obj, key);
    if (!v && dflt) {
        *out = pr_strdup(dflt);
    } else {
        if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 64)
            return pr_error_set(err, PR_EINVAL, "%s: runtimes[%zu].%s: expected a short string",
                                file, idx, key);
        *out = pr_strdup(json_string_value(v));
    }
    return *out ? 0 : pr_error_set(err, PR_ENOMEM, "out of memory");
}

static int ulong_parse(unsigned long *out, const json_t *obj, const char *key, unsigned long dflt,
                       unsigned long max, const char *file, size_t idx, pr_error *err)
{
    const json_t *v = json_object_get(obj, key);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 1 ||
        (unsigned long long)json_integer_value(v) > max)
        return pr_error_set(err, PR_EINVAL,
                            "%s: runtimes[%zu].build_limits.%s: expected an integer 1..%lu", file,
                            idx, key, max);
    *out = (unsigned long)json_integer_value(v);
    return 0;
}

static bool host_path_exists(const char *p)
{
    struct stat st;
    return p && p[0] == '/' && stat(p, &st) == 0;
}

static int runtime_parse(pr_runtime *rt, const json_t *o, const char *file, size_t idx,
                         pr_error *err)
{
    int rc;
    if (!json_is_object(o))
        return pr_error_set(err, PR_EINVAL, "%s: runtimes[%zu]: expected an object", file, idx);
    rc = str_parse(&rt->name, o, "name", NULL, file, idx, err);
    if (rc < 0)
        return rc;
    rc = strv_parse(&rt->detect, o, "detect", false, file, idx, err);
    if (rc == 0)
        rc = strv_parse(&rt->build_argv, o, "build", false, file, idx, err);
    if (rc == 0)
        rc = strv_parse(&rt->run_argv, o, "run", true, file, idx, err);
    if (rc == 0)
        rc = str_parse(&rt->profile, o, "profile", "default", file, idx, err);
    if (rc == 0)
        rc = str_parse(&rt->build_profile, o, "build_profile", "build", file, idx, err);
    if (rc == 0)
        rc = strv_parse(&rt->binds, o, "binds", false, file, idx, err);
    if (rc == 0)
        rc = strv_parse(&rt->env, o, "env", false, file, idx, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; rt->binds && rt->binds[i]; i++) {
        if (rt->binds[i][0] != '/')
            return pr_error_set(err, PR_EINVAL,
                                "%s: runtimes[%zu].binds[%zu]: expected an "
                                "absolute host path",
                                file, idx, i);
    }
    for (size_t i = 0; rt->env && rt->env[i]; i++) {
        const char *eq = strchr(rt->env[i], '=');
        if (!eq || eq == rt->env[i] || strlen(rt->env[i]) >= 256)
            return pr_error_set(err, PR_EINVAL,
                                "%s: runtimes[%zu].env[%zu]: expected \"KEY=VALUE\"", file, idx, i);
    }

    const json_t *m = json_object_get(o, "time_multiplier");
    rt->time_multiplier = 1.0;
    if (m) {
        if (!json_is_number(m) || !(json_number_value(m) > 0) || json_number_value(m) > 100)
            return pr_error_set(err, PR_EINVAL,
                                "%s: runtimes[%zu].time_multiplier: expected a number > 0", file,
                                idx);
        rt->time_multiplier = json_number_value(m);
    }
    const json_t *bl = json_object_get(o, "build_limits");
    if (bl && !json_is_object(bl))
        return pr_error_set(err, PR_EINVAL, "%s: runtimes[%zu].build_limits: expected an object",
                            file, idx);
    rc = ulong_parse(&rt->build_cpu_ms, bl, "cpu_ms", 60000, 600000, file, idx, err);
    if (rc == 0)
        rc = ulong_parse(&rt->build_wall_ms, bl, "wall_ms", 120000, 1200000, file, idx, err);
    if (rc == 0)
        rc = ulong_parse(&rt->build_mem_mb, bl, "mem_mb", 1024, 16384, file, idx, err);
    if (rc < 0)
        return rc;

    /* Available when any "requires" path exists, else when run_argv[0] is a host path that
     * exists (a path under /box is the built program, which says nothing). */
    const json_t *req = json_object_get(o, "requires");
    if (req) {
        if (!json_is_array(req))
            return pr_error_set(err, PR_EINVAL, "%s: runtimes[%zu].requires: expected an array",
                                file, idx);
        size_t i;
        const json_t *p;
        json_array_foreach (req, i, p) {
            if (host_path_exists(json_string_value(p)))
                rt->available = true;
        }
    } else if (strncmp(rt->run_argv[0], "/box/", 5) != 0) {
        rt->available = host_path_exists(rt->run_argv[0]);
    } else {
        rt->available = true;
    }
    return 0;
}

/* The default path: $PROCTOR_RUNTIMES, the source tree, else next to the binary. */
static int default_path(char *out, size_t outsz)
{
    /* Read once on the calling thread; the CLI and the daemon load runtimes from main. */
    const char *env = getenv("PROCTOR_RUNTIMES"); /* NOLINT(concurrency-mt-unsafe) */
    if (env && env[0]) {
        (void)snprintf(out, outsz, "%s", env);
        return 0;
    }
#ifdef PR_SOURCE_DIR
    (void)snprintf(out, outsz, "%s/runner/runtimes.json", PR_SOURCE_DIR);
    if (access(out, R_OK) == 0)
        return 0;
#endif
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            int w = snprintf(out, outsz, "%s/runtimes.json", exe);
            if (w > 0 && (size_t)w < outsz && access(out, R_OK) == 0)
                return 0;
            w = snprintf(out, outsz, "%s/../share/proctor/runtimes.json", exe);
            if (w > 0 && (size_t)w < outsz && access(out, R_OK) == 0)
                return 0;
        }
    }
    (void)snprintf(out, outsz, "/usr/share/proctor/runtimes.json");
    return 0;
}

int pr_runtimes_load(pr_runtimes **out, const char *path, pr_error *err)
{
    char file[PATH_MAX];
    pr_buf text = PR_BUF_INIT(RUNTIMES_MAX_BYTES);
    json_t *root = NULL;
    pr_runtimes *rts = NULL;
    json_error_t jerr;
    int rc;

    *out = NULL;
    if (path)
        (void)snprintf(file, sizeof(file), "%s", path);
    else
        (void)default_path(file, sizeof(file));
    rc = slurp(&text, AT_FDCWD, file, false, RUNTIMES_MAX_BYTES, err);
    if (rc < 0)
        goto cleanup;
    root = json_loadb(text.ptr ? text.ptr : "", text.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        rc = pr_error_set(err, PR_EJSON, "%s: line %d column %d: %s", file, jerr.line, jerr.column,
                          jerr.text);
        goto cleanup;
    }
    const json_t *arr = json_object_get(root, "runtimes");
    size_t n = json_array_size(arr);
    if (!json_is_array(arr) || n == 0 || n > RUNTIMES_MAX_COUNT) {
        rc = pr_error_set(err, PR_EINVAL, "%s: runtimes: expected a non-empty array of objects",
                          file);
        goto cleanup;
    }
    rts = pr_calloc(1, sizeof(*rts));
    if (rts)
        rts->items = pr_calloc(n, sizeof(pr_runtime));
    if (!rts || !rts->items) {
        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        rts->count = i + 1;
        rc = runtime_parse(&rts->items[i], json_array_get(arr, i), file, i, err);
        if (rc < 0)
            goto cleanup;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(rts->items[j].name, rts->items[i].name) == 0) {
                rc = pr_error_set(err, PR_EINVAL, "%s: runtimes[%zu].name: \"%s\" appears twice",
                                  file, i, rts->items[i].name);
                goto cleanup;
            }
        }
    }
    *out = rts;
    rts = NULL;
    rc = 0;
cleanup:
    pr_runtimes_free(rts);
    json_decref(root);
    pr_buf_free(&text);
    return rc;
}

const pr_runtime *pr_runtimes_find(const pr_runtimes *rts, const char *name)
{
    if (!rts || !name)
        return NULL;
    for (size_t i = 0; i < rts->count; i++) {
        if (strcmp(rts->items[i].name, name) == 0)
            return &rts->items[i];
    }
    return NULL;
}

static void runtime_names(char *out, size_t outsz, const pr_runtimes *rts)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < rts->count && o < outsz; i++) {
        int w = snprintf(out + o, outsz - o, "%s%s", i ? ", " : "", rts->items[i].name);
        if (w < 0 || (size_t)w >= outsz - o)
            break;
        o += (size_t)w;
    }
}

int pr_runtimes_detect(const pr_runtime **out, const pr_runtimes *rts, const char *workdir,
                       pr_error *err)
{
    int dfd = -1;
    pr_buf text = PR_BUF_INIT(PROCTOR_JSON_MAX);
    json_t *root = NULL;
    int rc;
    char names[160];

    *out = NULL;
    if (!rts || !workdir)
        return pr_error_set(err, PR_EINVAL, "runtime detection: no runtimes or no work dir");
    runtime_names(names, sizeof(names), rts);
    dfd = open(workdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return pr_error_sys(err, "%s: open", workdir);

    rc = slurp(&text, dfd, "proctor.json", true, PROCTOR_JSON_MAX, err);
    if (rc == 0) {
        json_error_t jerr;
        root = json_loadb(text.ptr ? text.ptr : "", text.len, JSON_REJECT_DUPLICATES, &jerr);
        if (!root) {
            rc = pr_error_set(err, PR_EJSON, "proctor.json: line %d column %d: %s", jerr.line,
                              jerr.column, jerr.text);
            goto cleanup;
        }
        const json_t *v = json_object_get(root, "runtime");
        if (!json_is_string(v)) {
            rc = pr_error_set(err, PR_EINVAL,
                              "proctor.json: runtime: expected a string (one of %s)", names);
            goto cleanup;
        }
        *out = pr_runtimes_find(rts, json_string_value(v));
        if (!*out) {
            char ex[80];
            pr_text_log_excerpt(ex, sizeof(ex), json_string_value(v), json_string_length(v));
            rc = pr_error_set(err, PR_ENOTFOUND,
                              "proctor.json: runtime: expected one of %s, got \"%s\"", names, ex);
        }
        goto cleanup;
    }
    if (rc != PR_ENOTFOUND) {
        if (err)
            (void)pr_error_wrap(err, "submission");
        goto cleanup;
    }
    /* No proctor.json: the first runtime (file order) whose detect file is present. */
    for (size_t i = 0; i < rts->count; i++) {
        for (size_t j = 0; rts->items[i].detect && rts->items[i].detect[j]; j++) {
            struct stat st;
            if (fstatat(dfd, rts->items[i].detect[j], &st, AT_SYMLINK_NOFOLLOW) == 0) {
                *out = &rts->items[i];
                rc = 0;
                goto cleanup;
            }
        }
    }
    rc = pr_error_set(err, PR_ENOTFOUND,
                      "cannot tell the runtime: no proctor.json and none of the detect files "
                      "(main.c, Makefile, main.py, package.json, main.js, go.mod); runtimes: %s",
                      names);
cleanup:
    json_decref(root);
    pr_buf_free(&text);
    pr_close(&dfd);
    return rc;
}
