/* The report (schema proctor.report/1): candidate text cleaning, atomic writing, validation and
 * the candidate-facing redaction. The sandbox result rendering lives in runner/sbxjson.c. */
#include "proctor/report.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "proctor/buf.h"

#define REPORT_MAX_BYTES ((size_t)64 * 1024 * 1024)

/* Returns the first negative code from a chain of checks. */
#define TRY(x)         \
    do {               \
        rc = (x);      \
        if (rc < 0)    \
            return rc; \
    } while (0)

int pr_report_set_text(json_t *obj, const char *key, const char *data, size_t len, size_t max)
{
    bool cut = false;
    char *clean = NULL;
    char kb[128];
    int rc = PR_ENOMEM;

    if (!obj || !key)
        return PR_EINVAL;
    clean = pr_text_clean(data ? data : "", data ? len : 0, max, &cut);
    if (!clean)
        goto cleanup;
    if (json_object_set_new(obj, key, json_stringn(clean, strlen(clean))) != 0)
        goto cleanup;
    int w = snprintf(kb, sizeof(kb), "%s_truncated", key);
    if (w < 0 || (size_t)w >= sizeof(kb)) {
        rc = PR_EINVAL;
        goto cleanup;
    }
    if (cut) {
        if (json_object_set_new(obj, kb, json_true()) != 0)
            goto cleanup;
        (void)snprintf(kb, sizeof(kb), "%s_bytes", key);
        if (json_object_set_new(obj, kb, json_integer((json_int_t)len)) != 0)
            goto cleanup;
    } else {
        (void)json_object_del(obj, kb);
        (void)snprintf(kb, sizeof(kb), "%s_bytes", key);
        (void)json_object_del(obj, kb);
    }
    rc = 0;
cleanup:
    pr_free(clean);
    return rc;
}

static int dump_cb(const char *buffer, size_t size, void *data)
{
    return pr_buf_put(data, buffer, size) < 0 ? -1 : 0;
}

int pr_report_write(const char *path, const json_t *report, pr_error *err)
{
    pr_buf text = PR_BUF_INIT(REPORT_MAX_BYTES);
    char tmp[PATH_MAX];
    char dir[PATH_MAX];
    int fd = -1, dfd = -1;
    int rc = 0;
    bool tmp_made = false;

    if (!path || !report)
        return pr_error_set(err, PR_EINVAL, "report: no path or no report");
    if (json_dump_callback(report, dump_cb, &text, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0 ||
        pr_buf_put(&text, "\n", 1) < 0) {
        rc = pr_error_set(err, PR_ENOMEM,
                          "report: cannot serialise (out of memory or over %zu bytes)",
                          REPORT_MAX_BYTES);
        goto cleanup;
    }

    int n = snprintf(dir, sizeof(dir), "%s", path);
    if (n < 0 || (size_t)n >= sizeof(dir)) {
        rc = pr_error_set(err, PR_EINVAL, "%s: path too long", path);
        goto cleanup;
    }
    char *slash = strrchr(dir, '/');
    if (!slash)
        (void)snprintf(dir, sizeof(dir), ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    n = snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        rc = pr_error_set(err, PR_EINVAL, "%s: path too long", path);
        goto cleanup;
    }
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        rc = pr_error_sys(err, "%s: cannot create a temporary file", path);
        goto cleanup;
    }
    tmp_made = true;
    if (fchmod(fd, 0644) != 0 || pr_write_all(fd, text.ptr, text.len) != 0 || fsync(fd) != 0) {
        rc = pr_error_sys(err, "%s: write", tmp);
        goto cleanup;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = pr_error_sys(err, "%s: close", tmp);
        goto cleanup;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = pr_error_sys(err, "%s: rename", path);
        goto cleanup;
    }
    tmp_made = false;
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        rc = pr_error_sys(err, "%s: fsync of the directory", dir);
        goto cleanup;
    }
cleanup:
    pr_close(&fd);
    pr_close(&dfd);
    if (tmp_made)
        (void)unlink(tmp);
    pr_buf_free(&text);
    return rc;
}

/* ---- validation ------------------------------------------------------------------------- */

static const char *const test_verdicts[] = { "AC", "WA", "TLE", "WLE",  "MLE", "OLE",
                                             "RE", "SV", "IE",  "SKIP", NULL };
static const char *const build_verdicts[] = { "OK",  "RE", "TLE", "WLE",  "MLE",
                                              "OLE", "SV", "IE",  "SKIP", NULL };
static const char *const stages[] = { "fetch", "challenge", "runtime", "build",
                                      "tests", "report",    NULL };

static bool in_set(const char *s, const char *const *set)
{
    for (size_t i = 0; s && set[i]; i++) {
        if (strcmp(s, set[i]) == 0)
            return true;
    }
    return false;
}

static int need(const json_t *obj, const char *obj_name, const char *key, json_type type,
                bool nullable, const json_t **out, pr_error *err)
{
    const json_t *v = json_object_get(obj, key);
    if (out)
        *out = v;
    if (v && json_is_null(v) && nullable)
        return 0;
    bool ok = v && (json_typeof(v) == type ||
                    (type == JSON_REAL && (json_is_integer(v) || json_is_real(v))) ||
                    (type == JSON_TRUE && json_is_boolean(v)));
    if (!ok) {
        const char *tn = type == JSON_OBJECT    ? "an object"
                         : type == JSON_ARRAY   ? "an array"
                         : type == JSON_STRING  ? "a string"
                         : type == JSON_INTEGER ? "an integer"
                         : type == JSON_REAL    ? "a number"
                                                : "a boolean";
        return pr_error_set(err, PR_EJSON, "report: %s%s%s: expected %s%s", obj_name,
                            obj_name[0] ? "." : "", key, tn, nullable ? " or null" : "");
    }
    return 0;
}

static int nonneg_int(const json_t *obj, const char *obj_name, const char *key, pr_error *err)
{
    const json_t *v;
    int rc = need(obj, obj_name, key, JSON_INTEGER, false, &v, err);
    if (rc < 0)
        return rc;
    if (json_integer_value(v) < 0)
        return pr_error_set(err, PR_EJSON, "report: %s.%s: expected >= 0", obj_name, key);
    return 0;
}

static int validate_test(const json_t *t, size_t i, pr_error *err)
{
    char nm[32];
    const json_t *v, *pts, *maxp;
    int rc;

    (void)snprintf(nm, sizeof(nm), "tests[%zu]", i);
    if (!json_is_object(t))
        return pr_error_set(err, PR_EJSON, "report: %s: expected an object", nm);
    TRY(need(t, nm, "name", JSON_STRING, false, NULL, err));
    TRY(need(t, nm, "group", JSON_STRING, false, NULL, err));
    TRY(need(t, nm, "visibility", JSON_STRING, false, &v, err));
    if (strcmp(json_string_value(v), "visible") != 0 && strcmp(json_string_value(v), "hidden") != 0)
        return pr_error_set(err, PR_EJSON, "report: %s.visibility: expected visible or hidden", nm);
    rc = need(t, nm, "verdict", JSON_STRING, false, &v, err);
    if (rc < 0)
        return rc;
    if (!in_set(json_string_value(v), test_verdicts))
        return pr_error_set(err, PR_EJSON, "report: %s.verdict: not one of the fixed verdicts", nm);
    TRY(need(t, nm, "points", JSON_REAL, false, &pts, err));
    TRY(need(t, nm, "max_points", JSON_REAL, false, &maxp, err));
    double p = json_number_value(pts), m = json_number_value(maxp);
    if (!(p >= 0) || !(m >= 0) || p > m + 1e-9)
        return pr_error_set(err, PR_EJSON, "report: %s.points: expected 0 <= points <= max_points",
                            nm);
    /* A hidden test redacted for the candidate keeps only name, group, visibility, verdict and
     * points; everything else is checked when present. */
    bool hidden = strcmp(json_string_value(json_object_get(t, "visibility")), "hidden") == 0;
    static const char *const nums[] = { "cpu_ms", "wall_ms", "max_rss_kb" };
    for (size_t k = 0; k < PR_ARRAY_LEN(nums); k++) {
        if (!hidden || json_object_get(t, nums[k]))
            TRY(nonneg_int(t, nm, nums[k], err));
    }
    /* A redacted hidden test carries no message. */
    v = json_object_get(t, "message");
    if (v && !json_is_string(v))
        return pr_error_set(err, PR_EJSON, "report: %s.message: expected a string", nm);
    return 0;
}

static int validate_sections(const json_t *r, pr_error *err)
{
    const json_t *o, *v;
    int rc;

    TRY(need(r, "", "job", JSON_OBJECT, false, &o, err));
    TRY(need(o, "job", "id", JSON_STRING, false, NULL, err));
    TRY(need(o, "job", "queued_at", JSON_STRING, true, NULL, err));
    TRY(need(o, "job", "started_at", JSON_STRING, true, NULL, err));
    TRY(need(o, "job", "finished_at", JSON_STRING, true, NULL, err));

    TRY(need(r, "", "submission", JSON_OBJECT, false, &o, err));
    static const char *const sub_keys[] = { "repo",   "ref",          "commit",
                                            "author", "committed_at", "runtime" };
    for (size_t i = 0; i < PR_ARRAY_LEN(sub_keys); i++) {
        TRY(need(o, "submission", sub_keys[i], JSON_STRING, true, NULL, err));
    }
    v = json_object_get(o, "commit");
    if (json_is_string(v) && json_string_length(v) != 40)
        return pr_error_set(err, PR_EJSON, "report: submission.commit: expected 40 hex digits");

    TRY(need(r, "", "challenge", JSON_OBJECT, false, &o, err));
    static const char *const ch_keys[] = { "id", "version", "kind", "digest" };
    for (size_t i = 0; i < PR_ARRAY_LEN(ch_keys); i++) {
        TRY(need(o, "challenge", ch_keys[i], JSON_STRING, true, NULL, err));
    }

    TRY(need(r, "", "score", JSON_OBJECT, false, &o, err));
    const json_t *earned, *max, *pct;
    TRY(need(o, "score", "earned", JSON_REAL, false, &earned, err));
    TRY(need(o, "score", "max", JSON_REAL, false, &max, err));
    TRY(need(o, "score", "percent", JSON_REAL, false, &pct, err));
    if (!(json_number_value(earned) >= 0) ||
        json_number_value(earned) > json_number_value(max) + 1e-6 ||
        !(json_number_value(pct) >= 0) || json_number_value(pct) > 100.0)
        return pr_error_set(err, PR_EJSON,
                            "report: score: expected 0 <= earned <= max and percent 0..100");

    TRY(need(r, "", "build", JSON_OBJECT, false, &o, err));
    TRY(need(o, "build", "verdict", JSON_STRING, false, &v, err));
    if (!in_set(json_string_value(v), build_verdicts))
        return pr_error_set(err, PR_EJSON, "report: build.verdict: not one of the fixed verdicts");
    TRY(nonneg_int(o, "build", "cpu_ms", err));
    TRY(nonneg_int(o, "build", "wall_ms", err));
    TRY(need(o, "build", "log", JSON_STRING, false, NULL, err));

    TRY(need(r, "", "tests", JSON_ARRAY, false, &o, err));
    for (size_t i = 0; i < json_array_size(o); i++) {
        TRY(validate_test(json_array_get(o, i), i, err));
    }
    TRY(need(r, "", "metrics", JSON_OBJECT, false, NULL, err));
    TRY(need(r, "", "timings", JSON_OBJECT, false, &o, err));
    static const char *const tk[] = { "fetch_ms", "build_ms", "tests_ms", "total_ms" };
    for (size_t i = 0; i < PR_ARRAY_LEN(tk); i++) {
        TRY(nonneg_int(o, "timings", tk[i], err));
    }
    TRY(need(r, "", "environment", JSON_OBJECT, false, &o, err));
    TRY(need(o, "environment", "proctor", JSON_STRING, false, NULL, err));
    TRY(need(o, "environment", "kernel", JSON_STRING, false, NULL, err));
    TRY(need(o, "environment", "isolation", JSON_OBJECT, false, NULL, err));
    return 0;
}

int pr_report_validate(const json_t *report, pr_error *err)
{
    const json_t *v;
    int rc;

    if (!json_is_object(report))
        return pr_error_set(err, PR_EJSON, "report: expected an object");
    TRY(need(report, "", "schema", JSON_STRING, false, &v, err));
    if (strcmp(json_string_value(v), PR_REPORT_SCHEMA) != 0)
        return pr_error_set(err, PR_EJSON, "report: schema: expected \"%s\"", PR_REPORT_SCHEMA);
    TRY(need(report, "", "status", JSON_STRING, false, &v, err));
    bool is_error = strcmp(json_string_value(v), "error") == 0;
    if (!is_error && strcmp(json_string_value(v), "graded") != 0)
        return pr_error_set(err, PR_EJSON, "report: status: expected \"graded\" or \"error\"");
    TRY(need(report, "", "error", JSON_OBJECT, !is_error, &v, err));
    if (is_error) {
        const json_t *st;
        TRY(need(v, "error", "stage", JSON_STRING, false, &st, err));
        TRY(need(v, "error", "message", JSON_STRING, false, NULL, err));
        if (!in_set(json_string_value(st), stages))
            return pr_error_set(err, PR_EJSON,
                                "report: error.stage: expected fetch, challenge, runtime, build, "
                                "tests or report");
    } else if (!json_is_null(v)) {
        return pr_error_set(err, PR_EJSON, "report: error: expected null when status is graded");
    }
    return validate_sections(report, err);
}

int pr_report_score(json_t *report)
{
    json_t *tests = json_object_get(report, "tests");
    double earned = 0, max = 0;
    size_t i;
    json_t *t;
    json_array_foreach (tests, i, t) {
        double p = json_number_value(json_object_get(t, "points"));
        double m = json_number_value(json_object_get(t, "max_points"));
        if (m > 0)
            max += m;
        if (p > 0)
            earned += p > m ? m : p;
    }
    double pct = max > 0 ? round(earned * 1000.0 / max) / 10.0 : 0.0;
    json_t *score = json_pack(
        "{s:o, s:o, s:f}", "earned",
        earned == floor(earned) ? json_integer((json_int_t)earned) : json_real(earned), "max",
        max == floor(max) ? json_integer((json_int_t)max) : json_real(max), "percent", pct);
    if (!score)
        return PR_ENOMEM;
    return json_object_set_new(report, "score", score) == 0 ? 0 : PR_ENOMEM;
}

/* ---- redaction ------------------------------------------------------------------------- */

json_t *pr_report_redact(const json_t *report)
{
    static const char *const keep[] = { "name",   "group",      "visibility", "verdict",
                                        "points", "max_points", NULL };
    json_t *copy = json_deep_copy(report);
    if (!copy)
        return NULL;
    json_t *tests = json_object_get(copy, "tests");
    size_t i;
    json_t *t;
    json_array_foreach (tests, i, t) {
        const char *vis = json_string_value(json_object_get(t, "visibility"));
        if (!json_is_object(t) || (vis && strcmp(vis, "visible") == 0))
            continue;
        /* Hidden (or unlabelled, to fail closed): drop every key outside the allowlist. */
        void *iter = json_object_iter(t);
        while (iter) {
            const char *key = json_object_iter_key(iter);
            void *next = json_object_iter_next(t, iter);
            if (!in_set(key, keep))
                (void)json_object_del(t, key);
            iter = next;
        }
    }
    return copy;
}

json_t *pr_report_skeleton(const char *id, const char *queued_at, const char *repo, const char *ref,
                           const char *candidate)
{
    char now[32], kernel[200];
    struct utsname u;

    pr_time_rfc3339(now, sizeof(now), (long long)time(NULL));
    if (uname(&u) == 0)
        (void)snprintf(kernel, sizeof(kernel), "%s %s %s", u.sysname, u.release, u.machine);
    else
        (void)snprintf(kernel, sizeof(kernel), "unknown");
    json_t *r = json_pack(
        "{s:s, s:{s:s, s:s, s:s, s:n}, s:{s:s, s:n, s:n, s:n, s:n, s:n}, s:{s:n, s:n, s:n, s:n},"
        " s:s, s:n, s:{s:i, s:i, s:f}, s:{s:s, s:i, s:i, s:s}, s:[], s:{},"
        " s:{s:i, s:i, s:i, s:i}, s:{s:s, s:s, s:{}}}",
        "schema", PR_REPORT_SCHEMA, "job", "id", id ? id : "", "queued_at", now, "started_at", now,
        "finished_at", "submission", "repo", "", "ref", "commit", "author", "committed_at",
        "runtime", "challenge", "id", "version", "kind", "digest", "status", "error", "error",
        "score", "earned", 0, "max", 0, "percent", 0.0, "build", "verdict", "SKIP", "cpu_ms", 0,
        "wall_ms", 0, "log", "", "tests", "metrics", "timings", "fetch_ms", 0, "build_ms", 0,
        "tests_ms", 0, "total_ms", 0, "environment", "proctor", PROCTOR_VERSION, "kernel", kernel,
        "isolation");
    if (!r)
        return NULL;
    /* Caller-supplied text may be anything: it goes in cleaned and capped, never as a reason
     * to fail the report. */
    json_t *job = json_object_get(r, "job");
    json_t *sub = json_object_get(r, "submission");
    int rc = 0;
    if (repo)
        rc = pr_report_set_text(sub, "repo", repo, strlen(repo), 1024);
    if (rc == 0 && ref)
        rc = pr_report_set_text(sub, "ref", ref, strlen(ref), 256);
    if (rc == 0 && candidate)
        rc = pr_report_set_text(job, "candidate", candidate, strlen(candidate), 256);
    if (rc == 0 && queued_at && queued_at[0])
        rc = pr_report_set_text(job, "queued_at", queued_at, strlen(queued_at), 64);
    if (rc < 0) {
        json_decref(r);
        return NULL;
    }
    return r;
}

const char *pr_json_unknown_key(const json_t *obj, const char *const *allowed)
{
    const char *key;
    const json_t *v;
    json_object_foreach ((json_t *)obj, key, v) {
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = strcmp(allowed[i], key) == 0;
        if (!ok)
            return key;
    }
    return NULL;
}
