/* The http kind: the candidate's server runs in the sandbox with its own loopback-only network
 * namespace; proctor checks it request by request with declarative scenarios, then measures it
 * under open-loop load.
 *
 * ## Manifest (challenge.json), kind-specific fields
 *
 *   "http": {
 *     "port": 8080,                  server listens on 127.0.0.1:$PORT (1024..65535)
 *     "start_timeout_ms": 10000,     TCP connect + GET health_path == 200 within this
 *     "health_path": "/healthz",
 *     "request_timeout_ms": 3000,    default per request (a step may set timeout_ms)
 *     "env": {"JWT_SECRET": {"random_hex": 32}, "MODE": "literal"},   extra environment;
 *                                    random values are drawn per job from /dev/urandom
 *     "load": {                      one load phase per job, run after the scenarios
 *       "setup": "tests/load/setup.json",   scenario run first; its captures feed the mix
 *       "rate_rps": 200, "connections": 8, "warmup_ms": 1000, "duration_ms": 5000,
 *       "timeout_ms": 2000, "max_error_rate": 0.01,
 *       "mix": [{"weight": 8, "method": "GET", "path": "/items/{{pick:ids}}",
 *                "jwt": {"role": "viewer"}}, ...]      request templates as in a step
 *     },
 *     "reference": {                 optional: measure a reference solution on this machine
 *       "solutions": {"python": "solutions/ref-python", "node": "solutions/ref-node"},
 *       "mode": "cached" | "same_run" | "off",
 *       "cache_dir": "/var/tmp/proctor-http-ref"       (default; $PROCTOR_HTTP_REF_CACHE wins)
 *     }
 *   }
 *
 * Every manifest test has the common fields (name, group, points, visibility) and exactly one of
 *   "scenario": "tests/visible/create.json"     a scenario file (format below), or
 *   "load": {"metric": "p95_ms", "full": 20, "zero": 200}
 *           metric: p50_ms p90_ms p95_ms p99_ms max_ms error_rate cpu_ms_per_1k rate_ratio;
 *           full/zero: the value scoring all points / no points, linear in between (either
 *           order: lower-is-better when full < zero); full_ratio/zero_ratio instead multiply
 *           the reference solution's value of the same metric (absolute full/zero, when also
 *           given, are the fallback when no reference could be measured). Latency and CPU
 *           metrics score 0 when the load's error rate exceeds max_error_rate.
 *
 * ## Scenario files ("scenario/1" of this runner; Hurl's JSON model as a guide)
 *
 *   {"name": "...", "vars": {"sku": "A-{{sid}}"}, "steps": [STEP, ...]}
 *
 *   STEP (request): {"name", "method", "path", "headers": {}, "jwt": JWT,
 *                    "json": any JSON | "body": "raw text", "timeout_ms",
 *                    "expect": {"status": 201 | [200, 201],
 *                               "headers": {"Location": {"regex": "^/items/"} | "exact value"
 *                                           | {"equal": "...", "present": true|false}},
 *                               "json": [ASSERT, ...]},
 *                    "capture": {"id": "/id", "ids+": "/items/ * /id" (no spaces; appends),
 *                                "loc": {"header": "Location"}},
 *                    "loop": {"while": "cursor", "max": 50,
 *                             "path": "/items?cursor={{url:cursor}}"},
 *                    "repeat": 25 (sequential copies; variable i = 0..24),
 *                    "parallel": 8, "expect_group": {"same_status": true, "same_body": true,
 *                                                    "status_counts": {"201": 1}}}
 *   STEP (assert):  {"name", "assert": [ASSERT with "var", ...]}
 *   ASSERT: {"path": "/json/pointer" | "var": "name" (+ optional "path"), and one or more of
 *            exists, equal, not_equal, type (string integer number boolean null array object),
 *            length, min_length, max_length, regex (POSIX ERE), unique, sorted ("asc"|"desc"),
 *            gte, lte, gt, lt, one_of, includes, includes_all, includes_in_order (a
 *            subsequence, in order), excludes}
 *   JWT:    {"role": "admin" | null, "sub": "tester", "exp_offset_s": 3600 | null (no exp),
 *            "secret": "$JWT_SECRET" (the server's) | any other literal, "alg": "HS256" |
 *            "HS384" | "HS512" | "none", "claims": {extra}, "token": "literal (malformed)",
 *            "scheme": "Bearer"}  -> header "Authorization: <scheme> <token>"
 *
 * Templates: {{name}}, {{url:name}}, {{json:name}}, {{pick:name}} in paths, header values and
 * body strings; a JSON string that is exactly "{{name}}" takes the variable's JSON type.
 * Built-in variables: run (random per job, upper-case hex), sid (unique per scenario: run-index),
 * port, i (inside repeat). JSON Pointer is
 * RFC 6901 with "*" mapping over arrays. Steps stop at the first failure; the test's details
 * then hold the request, the expected, the actual response (truncated) and a curl command.
 *
 * ## How a job runs
 *
 * grade() starts a thread of its own (setns changes only the calling thread). That thread spawns
 * the server with sbx_spawn in a NEW loopback-only network namespace (never the shared stdio one),
 * PORT and the declared env in its environment, pinned to CPU 0 when there are two or more; it
 * then enters the server's namespace (setns on sbx_proc_netns_fd) so every socket it creates
 * lives there, and waits for TCP + GET health_path == 200. A server that never answers makes
 * every test fail with the reason and the tail of its log. Scenarios run in manifest order on
 * one server (a health check before each; a server that stopped answering is restarted, at most
 * 3 times). The load phase (after its setup scenario) runs open-loop from the same thread pinned
 * to CPU 1 (http_load.c): latency from each request's scheduled send, warm-up discarded, HDR
 * histogram, server CPU from its cgroup over the measured window, peak RSS sampled every
 * 100 ms. Then the server is stopped, the reference solution measured if a load test needs it,
 * and results are appended in manifest order; metrics.http gets the DESIGN.md names plus
 * start_ms, peak_rss_kb, restarts, the load details and the reference values.
 */
#include "proctor/kind.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "proctor/buf.h"
#include "proctor/common.h"
#include "proctor/log.h"
#include "proctor/report.h"
#include "proctor/runtime.h"
#include "http_load.h"
#include "httpc.h"
#include "scenario.h"

#define HTTP_MAX_TESTS    200
#define HTTP_MAX_MIX      16
#define HTTP_MIX_VARIANTS 32
#define HTTP_MAX_ENV      8
#define HTTP_MAX_RESTARTS 3
#define HTTP_LOG_TAIL     2048
#define HTTP_FILE_MAX     (1 << 20)

typedef enum metric_id {
    M_P50,
    M_P90,
    M_P95,
    M_P99,
    M_MAX,
    M_ERROR_RATE,
    M_CPU,
    M_RATE_RATIO,
    M_COUNT
} metric_id;

static const char *const metric_names[M_COUNT] = { "p50_ms",        "p90_ms",    "p95_ms",
                                                   "p99_ms",        "max_ms",    "error_rate",
                                                   "cpu_ms_per_1k", "rate_ratio" };

typedef struct http_test {
    json_t *scenario; /* owned, or NULL for a load test */
    char *file;       /* scenario file, relative to the pack */
    metric_id metric;
    bool has_abs, has_ratio;
    double full, zero;             /* absolute thresholds */
    double full_ratio, zero_ratio; /* multiples of the reference's value */
} http_test;

typedef struct http_state {
    int port;
    uint64_t start_timeout_ms;
    uint64_t request_timeout_ms;
    char *health_path;
    size_t nenv;
    char *env_key[HTTP_MAX_ENV];
    char *env_value[HTTP_MAX_ENV]; /* NULL = random */
    unsigned env_random_hex[HTTP_MAX_ENV];
    /* load */
    bool has_load;
    json_t *load_setup; /* owned scenario, may be NULL */
    json_t *mix;        /* owned array of request templates with "weight" */
    double rate_rps;
    unsigned connections;
    uint64_t warmup_ms, duration_ms, load_timeout_ms;
    double max_error_rate;
    /* reference */
    json_t *ref_solutions; /* owned object runtime -> dir (relative), or NULL */
    char *ref_mode;        /* "cached", "same_run", "off" */
    char *ref_cache_dir;
    char *dir; /* pack directory */
    http_test *tests;
    size_t ntests;
} http_state;

/* ------------------------------------------------------------------ parse */

static int field_err(pr_error *err, const char *file, const char *field, const char *what)
{
    return pr_error_set(err, PR_EINVAL, "%s: %s: %s", file, field, what);
}

/* Loads a JSON file of the pack (relative path, no "..", at most 1 MiB). */
static int load_pack_json(json_t **out, const char *dir, const char *rel, const char *mfile,
                          const char *field, pr_error *err)
{
    char path[4096];
    int fd = -1;
    char *data = NULL;
    int rc = 0;
    *out = NULL;
    if (!rel || !*rel || rel[0] == '/' || strstr(rel, "..") || strlen(rel) > 512)
        return field_err(err, mfile, field, "expected a relative path inside the pack");
    if (snprintf(path, sizeof(path), "%s/%s", dir, rel) >= (int)sizeof(path))
        return field_err(err, mfile, field, "path too long");
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        char eb[128];
        return pr_error_set(err, PR_ENOTFOUND, "%s: %s: cannot open %s: %s", mfile, field, rel,
                            strerror_r(errno, eb, sizeof(eb)));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > HTTP_FILE_MAX) {
        rc = field_err(err, mfile, field, "expected a regular file of at most 1 MiB");
        goto cleanup;
    }
    data = pr_malloc((size_t)st.st_size + 1);
    if (!data) {
        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
        if (n <= 0) {
            rc = pr_error_sys(err, "%s: read", rel);
            goto cleanup;
        }
        got += (size_t)n;
    }
    json_error_t jerr;
    *out = json_loadb(data, got, JSON_REJECT_DUPLICATES, &jerr);
    if (!*out)
        rc = pr_error_set(err, PR_EJSON, "%s: line %d: %s", rel, jerr.line, jerr.text);
cleanup:
    pr_free(data);
    pr_close(&fd);
    return rc;
}

static void state_free(http_state *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->ntests; i++) {
        json_decref(s->tests[i].scenario);
        pr_free(s->tests[i].file);
    }
    pr_free(s->tests);
    for (size_t i = 0; i < s->nenv; i++) {
        pr_free(s->env_key[i]);
        pr_free(s->env_value[i]);
    }
    pr_free(s->health_path);
    json_decref(s->load_setup);
    json_decref(s->mix);
    json_decref(s->ref_solutions);
    pr_free(s->ref_mode);
    pr_free(s->ref_cache_dir);
    pr_free(s->dir);
    pr_free(s);
}

static int get_uint(uint64_t *out, const json_t *obj, const char *key, uint64_t def, uint64_t lo,
                    uint64_t hi, const char *file, const char *ctx, pr_error *err)
{
    const json_t *v = json_object_get(obj, key);
    char field[128];
    if (!v) {
        *out = def;
        return 0;
    }
    (void)snprintf(field, sizeof(field), "%s.%s", ctx, key);
    if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)lo ||
        json_integer_value(v) > (json_int_t)hi) {
        char what[96];
        (void)snprintf(what, sizeof(what), "expected an integer %" PRIu64 "..%" PRIu64, lo, hi);
        return field_err(err, file, field, what);
    }
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int parse_load(http_state *s, const json_t *load, const char *file, pr_error *err)
{
    static const char *const keys[] = { "setup",          "rate_rps",    "connections",
                                        "warmup_ms",      "duration_ms", "timeout_ms",
                                        "max_error_rate", "mix",         NULL };
    const char *key;
    json_t *v;
    uint64_t u = 0;
    int rc;
    if (!json_is_object(load))
        return field_err(err, file, "http.load", "expected an object");
    key = pr_json_unknown_key(load, keys);
    if (key) {
        char f[128];
        (void)snprintf(f, sizeof(f), "http.load.%s", key);
        return field_err(err, file, f, "unknown field");
    }
    const json_t *setup = json_object_get(load, "setup");
    if (setup) {
        if (!json_is_string(setup))
            return field_err(err, file, "http.load.setup", "expected a scenario file path");
        rc = load_pack_json(&s->load_setup, s->dir, json_string_value(setup), file,
                            "http.load.setup", err);
        if (rc == 0)
            rc = pr_scenario_validate(s->load_setup, json_string_value(setup), err);
        if (rc < 0)
            return rc;
    }
    const json_t *rate = json_object_get(load, "rate_rps");
    if (!json_is_number(rate) || json_number_value(rate) < 1 || json_number_value(rate) > 100000)
        return field_err(err, file, "http.load.rate_rps", "expected a number 1..100000");
    s->rate_rps = json_number_value(rate);
    rc = get_uint(&u, load, "connections", 8, 1, PR_LOAD_MAX_CONNECTIONS, file, "http.load", err);
    if (rc < 0)
        return rc;
    s->connections = (unsigned)u;
    rc = get_uint(&s->warmup_ms, load, "warmup_ms", 1000, 0, 600000, file, "http.load", err);
    if (rc == 0)
        rc = get_uint(&s->duration_ms, load, "duration_ms", 5000, 100, 600000, file, "http.load",
                      err);
    if (rc == 0)
        rc = get_uint(&s->load_timeout_ms, load, "timeout_ms", 2000, 1, 60000, file, "http.load",
                      err);
    if (rc < 0)
        return rc;
    const json_t *mer = json_object_get(load, "max_error_rate");
    s->max_error_rate = 0.01;
    if (mer) {
        if (!json_is_number(mer) || json_number_value(mer) < 0 || json_number_value(mer) > 1)
            return field_err(err, file, "http.load.max_error_rate", "expected a number 0..1");
        s->max_error_rate = json_number_value(mer);
    }
    const json_t *mix = json_object_get(load, "mix");
    if (!json_is_array(mix) || json_array_size(mix) == 0 || json_array_size(mix) > HTTP_MAX_MIX)
        return field_err(err, file, "http.load.mix", "expected an array of 1..16 requests");
    size_t i;
    json_array_foreach (mix, i, v) {
        char f[64];
        (void)snprintf(f, sizeof(f), "http.load.mix[%zu]", i);
        if (!json_is_object(v))
            return field_err(err, file, f, "expected a request object");
        const json_t *w = json_object_get(v, "weight");
        if (w && (!json_is_number(w) || json_number_value(w) <= 0))
            return field_err(err, file, f, "weight: expected a number > 0");
        rc = pr_scenario_validate_request(v, file, f, err);
        if (rc < 0)
            return rc;
    }
    s->mix = json_incref((json_t *)mix);
    s->has_load = true;
    return 0;
}

static int parse_reference(http_state *s, const json_t *ref, const char *file, pr_error *err)
{
    if (!json_is_object(ref))
        return field_err(err, file, "http.reference", "expected an object");
    const json_t *sols = json_object_get(ref, "solutions");
    if (!json_is_object(sols) || json_object_size(sols) == 0)
        return field_err(err, file, "http.reference.solutions",
                         "expected {\"<runtime>\": \"solutions/<dir>\", ...}");
    const char *key;
    json_t *v;
    json_object_foreach ((json_t *)sols, key, v) {
        const char *p = json_string_value(v);
        if (!p || p[0] == '/' || strstr(p, "..")) {
            char f[128];
            (void)snprintf(f, sizeof(f), "http.reference.solutions.%s", key);
            return field_err(err, file, f, "expected a relative directory inside the pack");
        }
    }
    s->ref_solutions = json_incref((json_t *)sols);
    const json_t *mode = json_object_get(ref, "mode");
    const char *m = mode ? json_string_value(mode) : "cached";
    if (!m || (strcmp(m, "cached") != 0 && strcmp(m, "same_run") != 0 && strcmp(m, "off") != 0))
        return field_err(err, file, "http.reference.mode", "expected cached, same_run or off");
    s->ref_mode = pr_strdup(m);
    const json_t *cd = json_object_get(ref, "cache_dir");
    if (cd && (!json_is_string(cd) || json_string_value(cd)[0] != '/'))
        return field_err(err, file, "http.reference.cache_dir", "expected an absolute path");
    s->ref_cache_dir = pr_strdup(cd ? json_string_value(cd) : "/var/tmp/proctor-http-ref");
    return s->ref_mode && s->ref_cache_dir ? 0 : pr_error_set(err, PR_ENOMEM, "out of memory");
}

static int parse_load_test(http_test *t, const json_t *lt, const char *file, const char *field,
                           pr_error *err)
{
    char f[160];
    (void)snprintf(f, sizeof(f), "%s.load", field);
    if (!json_is_object(lt))
        return field_err(err, file, f, "expected {metric, full, zero}");
    const char *m = json_string_value(json_object_get(lt, "metric"));
    t->metric = M_COUNT;
    for (int i = 0; m && i < M_COUNT; i++) {
        if (strcmp(m, metric_names[i]) == 0)
            t->metric = (metric_id)i;
    }
    if (t->metric == M_COUNT)
        return field_err(err, file, f,
                         "metric: expected p50_ms, p90_ms, p95_ms, p99_ms, max_ms, error_rate, "
                         "cpu_ms_per_1k or rate_ratio");
    const json_t *full = json_object_get(lt, "full"), *zero = json_object_get(lt, "zero");
    const json_t *fr = json_object_get(lt, "full_ratio"), *zr = json_object_get(lt, "zero_ratio");
    if ((full != NULL) != (zero != NULL) || (fr != NULL) != (zr != NULL) || (!full && !fr))
        return field_err(err, file, f, "expected full and zero, or full_ratio and zero_ratio");
    if (full) {
        if (!json_is_number(full) || !json_is_number(zero) ||
            json_number_value(full) == json_number_value(zero))
            return field_err(err, file, f, "full and zero: expected two different numbers");
        t->has_abs = true;
        t->full = json_number_value(full);
        t->zero = json_number_value(zero);
    }
    if (fr) {
        if (!json_is_number(fr) || !json_is_number(zr) || json_number_value(fr) <= 0 ||
            json_number_value(fr) == json_number_value(zr))
            return field_err(err, file, f, "full_ratio and zero_ratio: expected two numbers > 0");
        t->has_ratio = true;
        t->full_ratio = json_number_value(fr);
        t->zero_ratio = json_number_value(zr);
    }
    return 0;
}

static int http_parse(void **state_out, const json_t *manifest, const char *dir, pr_error *err)
{
    static const char file[] = "challenge.json";
    http_state *s = NULL;
    int rc = 0;
    uint64_t u = 0;
    *state_out = NULL;
    s = pr_calloc(1, sizeof(*s));
    if (!s)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    s->dir = pr_strdup(dir);
    const json_t *h = json_object_get(manifest, "http");
    if (!json_is_object(h)) {
        rc = field_err(err, file, "http", "expected an object (port, start_timeout_ms, ...)");
        goto cleanup;
    }
    static const char *const keys[] = { "port",        "start_timeout_ms",
                                        "health_path", "request_timeout_ms",
                                        "env",         "load",
                                        "reference",   NULL };
    const char *key;
    json_t *v;
    key = pr_json_unknown_key(h, keys);
    if (key) {
        char f[128];
        (void)snprintf(f, sizeof(f), "http.%s", key);
        rc = field_err(err, file, f, "unknown field");
        goto cleanup;
    }
    rc = get_uint(&u, h, "port", 8080, 1024, 65535, file, "http", err);
    if (rc < 0)
        goto cleanup;
    s->port = (int)u;
    rc = get_uint(&s->start_timeout_ms, h, "start_timeout_ms", 10000, 100, 120000, file, "http",
                  err);
    if (rc == 0)
        rc = get_uint(&s->request_timeout_ms, h, "request_timeout_ms", 3000, 1, 60000, file, "http",
                      err);
    if (rc < 0)
        goto cleanup;
    const json_t *hp = json_object_get(h, "health_path");
    if (hp && (!json_is_string(hp) || json_string_value(hp)[0] != '/' ||
               strpbrk(json_string_value(hp), " \r\n"))) {
        rc = field_err(err, file, "http.health_path", "expected a path starting with '/'");
        goto cleanup;
    }
    s->health_path = pr_strdup(hp ? json_string_value(hp) : "/healthz");
    const json_t *env = json_object_get(h, "env");
    if (env && (!json_is_object(env) || json_object_size(env) > HTTP_MAX_ENV)) {
        rc = field_err(err, file, "http.env", "expected an object of at most 8 variables");
        goto cleanup;
    }
    json_object_foreach ((json_t *)env, key, v) {
        char f[128];
        (void)snprintf(f, sizeof(f), "http.env.%s", key);
        bool name_ok = *key && strlen(key) < 64 && strcmp(key, "PORT") != 0;
        for (const char *p = key; *p; p++)
            name_ok = name_ok &&
                      (p[0] == '_' || (p[0] >= 'A' && p[0] <= 'Z') || (p[0] >= '0' && p[0] <= '9'));
        if (!name_ok) {
            rc = field_err(err, file, f, "expected an upper-case variable name other than PORT");
            goto cleanup;
        }
        size_t i = s->nenv++;
        s->env_key[i] = pr_strdup(key);
        if (json_is_string(v) && json_string_length(v) < 200 &&
            !strpbrk(json_string_value(v), "\r\n")) {
            s->env_value[i] = pr_strdup(json_string_value(v));
        } else if (json_is_object(v) && json_is_integer(json_object_get(v, "random_hex")) &&
                   json_integer_value(json_object_get(v, "random_hex")) >= 8 &&
                   json_integer_value(json_object_get(v, "random_hex")) <= 128) {
            s->env_random_hex[i] = (unsigned)json_integer_value(json_object_get(v, "random_hex"));
        } else {
            rc = field_err(err, file, f,
                           "expected a string (< 200 bytes) or {\"random_hex\": 8..128}");
            goto cleanup;
        }
    }
    if (json_object_get(h, "load")) {
        rc = parse_load(s, json_object_get(h, "load"), file, err);
        if (rc < 0)
            goto cleanup;
    }
    if (json_object_get(h, "reference")) {
        rc = parse_reference(s, json_object_get(h, "reference"), file, err);
        if (rc < 0)
            goto cleanup;
    }
    const json_t *tests = json_object_get(manifest, "tests");
    if (!json_is_array(tests) || json_array_size(tests) == 0 ||
        json_array_size(tests) > HTTP_MAX_TESTS) {
        rc = field_err(err, file, "tests", "expected an array of 1..200 tests");
        goto cleanup;
    }
    s->tests = pr_calloc(json_array_size(tests), sizeof(http_test));
    if (!s->tests) {
        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }
    size_t i;
    json_array_foreach (tests, i, v) {
        char f[64];
        (void)snprintf(f, sizeof(f), "tests[%zu]", i);
        http_test *t = &s->tests[s->ntests++];
        const json_t *scn = json_object_get(v, "scenario");
        const json_t *lt = json_object_get(v, "load");
        if ((scn != NULL) == (lt != NULL)) {
            rc = field_err(err, file, f, "expected exactly one of \"scenario\" or \"load\"");
            goto cleanup;
        }
        if (scn) {
            char ff[96];
            (void)snprintf(ff, sizeof(ff), "%s.scenario", f);
            if (!json_is_string(scn)) {
                rc = field_err(err, file, ff, "expected a scenario file path");
                goto cleanup;
            }
            t->file = pr_strdup(json_string_value(scn));
            rc = load_pack_json(&t->scenario, dir, json_string_value(scn), file, ff, err);
            if (rc == 0)
                rc = pr_scenario_validate(t->scenario, json_string_value(scn), err);
            if (rc < 0)
                goto cleanup;
        } else {
            if (!s->has_load) {
                rc = field_err(err, file, f, "a load test needs \"http.load\"");
                goto cleanup;
            }
            rc = parse_load_test(t, lt, file, f, err);
            if (rc < 0)
                goto cleanup;
            if (t->has_ratio && !s->ref_solutions) {
                rc = field_err(err, file, f, "full_ratio needs \"http.reference\"");
                goto cleanup;
            }
        }
    }
    *state_out = s;
    s = NULL;
cleanup:
    state_free(s);
    return rc;
}

/* ------------------------------------------------------------------ server lifecycle */

typedef struct load_summary {
    bool ran;
    char error[256];     /* why the load could not run, or "" */
    pr_load_result *res; /* owned */
    double error_rate;
    double cpu_ms_per_1k;
    double values[M_COUNT];
    uint64_t peak_rss_kb;
} load_summary;

typedef struct server {
    sbx_proc *p;
    char log_path[4096];
    uint64_t start_ms;
    uint64_t spawned_ns;
    bool up;
    bool restart_due; /* an instance ended (or stopped answering): the next start is a restart */
    int restarts;
    char ended[256]; /* how an earlier instance ended, for messages */
    uint64_t peak_rss_kb;
} server;

typedef struct test_out {
    const char *verdict;
    double points;
    sbx_result res;
    pr_buf msg;
    json_t *details;
} test_out;

typedef struct job {
    pr_grading *g;
    const http_state *s;
    pr_run_plan plan;
    char env_store[HTTP_MAX_ENV + 1][300];
    char secret[300];
    char run_id[17];
    int server_cpu, client_cpu;
    uv_loop_t loop;
    struct sockaddr_in addr;
    server srv;
    json_t *base_vars;
    int rc;
    pr_error err;
} job;

static void random_hex(char *out, size_t nhex)
{
    unsigned char b[64];
    size_t nb = (nhex + 1) / 2;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, b, nb) != (ssize_t)nb) {
        /* No urandom: fall back to the clock; still unique per job, only less secret. */
        uint64_t x = pr_now_ns();
        for (size_t i = 0; i < nb; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            b[i] = (unsigned char)(x >> 56);
        }
    }
    pr_close(&fd);
    for (size_t i = 0; i < nhex; i++)
        out[i] = "0123456789abcdef"[(b[i / 2] >> ((i % 2) ? 0 : 4)) & 15];
    out[nhex] = '\0';
}

static void log_tail(const char *path, pr_buf *out)
{
    char tail[HTTP_LOG_TAIL];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return;
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from = size > HTTP_LOG_TAIL ? size - HTTP_LOG_TAIL : 0;
    ssize_t n = pread(fd, tail, sizeof(tail), from);
    pr_close(&fd);
    if (n <= 0) {
        (void)pr_buf_puts(out, " (the server wrote nothing)");
        return;
    }
    char *clean = pr_text_clean(tail, (size_t)n, HTTP_LOG_TAIL, NULL);
    if (clean) {
        (void)pr_buf_printf(out, "; server log%s:\n%s", from > 0 ? " (tail)" : "", clean);
        pr_free(clean);
    }
}

static bool health_ok(job *j, uint64_t timeout_ms)
{
    pr_httpc_conn *c = NULL;
    char req[512];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n",
                     j->s->health_path, j->s->port);
    if (pr_httpc_conn_new(&c, &j->loop, (struct sockaddr *)&j->addr, 4096, false) < 0)
        return false;
    pr_httpc_resp *r = pr_httpc_conn_do(c, req, (size_t)n, timeout_ms);
    bool ok = r->err == 0 && r->status == 200;
    pr_httpc_conn_free(c);
    (void)uv_run(&j->loop, UV_RUN_NOWAIT);
    return ok;
}

static void server_stop(job *j, sbx_result *out)
{
    sbx_result res;
    pr_error err = { 0 };
    if (out)
        memset(out, 0, sizeof(*out));
    if (!j->srv.p)
        return;
    uint64_t rss = sbx_proc_rss_kb(j->srv.p);
    if (rss > j->srv.peak_rss_kb)
        j->srv.peak_rss_kb = rss;
    sbx_proc_kill(j->srv.p);
    memset(&res, 0, sizeof(res));
    (void)sbx_proc_wait(j->srv.p, &res, &err);
    if (res.max_rss_kb > j->srv.peak_rss_kb)
        j->srv.peak_rss_kb = res.max_rss_kb;
    sbx_proc_free(j->srv.p);
    j->srv.p = NULL;
    j->srv.up = false;
    if (out)
        *out = res;
}

/* Starts the server (plan already filled) and waits until it answers its health check.
 * Returns < 0 only on infrastructure failure; a server that does not come up leaves up false
 * with a reason in why. */
static int server_start(job *j, pr_buf *why, pr_error *err)
{
    int fd = -1;
    int rc = 0;
    fd = open(j->srv.log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return pr_error_sys(err, "http: cannot open the server log");
    j->plan.spec.stdout_fd = fd;
    j->plan.spec.stderr_fd = fd;
    j->srv.spawned_ns = pr_now_ns();
    rc = sbx_spawn(&j->srv.p, &j->plan.spec, err);
    pr_close(&fd);
    if (rc < 0)
        return rc;
    int nsfd = sbx_proc_netns_fd(j->srv.p);
    if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) != 0) {
        rc = pr_error_sys(err, "http: cannot enter the server's network namespace");
        server_stop(j, NULL);
        return rc;
    }
    uint64_t deadline = j->srv.spawned_ns + j->s->start_timeout_ms * 1000000ULL;
    bool died = false;
    while (pr_now_ns() < deadline) {
        /* A server that exits (or is stopped at a limit) is not waited for. */
        if (sbx_proc_ended(j->srv.p)) {
            died = true;
            break;
        }
        uint64_t left_ms = (deadline - pr_now_ns()) / 1000000ULL + 1;
        if (health_ok(j, left_ms < 1000 ? left_ms : 1000)) {
            j->srv.up = true;
            j->srv.start_ms = (pr_now_ns() - j->srv.spawned_ns) / 1000000ULL;
            return 0;
        }
        struct timespec ts = { 0, 20 * 1000000L };
        (void)nanosleep(&ts, NULL);
    }
    sbx_result res;
    server_stop(j, &res);
    pr_buf_clear(why);
    if (died)
        (void)pr_buf_printf(why,
                            "the server exited after %" PRIu64 " ms, before it answered GET %s "
                            "with 200 on 127.0.0.1:%d (it ended with %s%s%s%s%s)",
                            (uint64_t)((pr_now_ns() - j->srv.spawned_ns) / 1000000ULL),
                            j->s->health_path, j->s->port, sbx_verdict_name(res.verdict),
                            res.violation[0] ? ", syscall " : "", res.violation,
                            res.message[0] ? ": " : "", res.message);
    else
        (void)pr_buf_printf(why,
                            "the server did not answer GET %s with 200 on 127.0.0.1:%d within "
                            "%" PRIu64 " ms (it ended with %s%s%s)",
                            j->s->health_path, j->s->port, j->s->start_timeout_ms,
                            sbx_verdict_name(res.verdict), res.violation[0] ? ", syscall " : "",
                            res.violation);
    log_tail(j->srv.log_path, why);
    return 0;
}

/* ------------------------------------------------------------------ load phase */

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct load_watch {
    job *j;
    uint64_t cpu_start_us, cpu_end_us;
} load_watch;

static void watch_window(void *payload, bool start)
{
    load_watch *w = payload;
    uint64_t cpu = sbx_proc_cpu_us(w->j->srv.p);
    if (start)
        w->cpu_start_us = cpu;
    else
        w->cpu_end_us = cpu;
}

static void watch_tick(void *payload)
{
    load_watch *w = payload;
    uint64_t rss = sbx_proc_rss_kb(w->j->srv.p);
    if (rss > w->j->srv.peak_rss_kb)
        w->j->srv.peak_rss_kb = rss;
}

static void free_entries(pr_load_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < e[i].nvariants; k++)
            pr_free(e[i].variants[k]);
        pr_free(e[i].variants);
        pr_free(e[i].variant_lens);
    }
}

/* Runs the setup scenario and the load against the running server (this thread is in its
 * netns). Candidate failures land in sum->error; < 0 is infrastructure. */
static int run_load(job *j, load_summary *sum, const json_t *vars, pr_error *err)
{
    const http_state *s = j->s;
    pr_load_entry entries[HTTP_MAX_MIX];
    size_t nentries = 0;
    json_t *lvars = json_deep_copy(vars);
    pr_buf raw = PR_BUF_INIT(1 << 20), msg = PR_BUF_INIT(8192);
    int rc = 0;
    memset(entries, 0, sizeof(entries));
    pr_scn_ctx ctx = { &j->loop,  (struct sockaddr *)&j->addr, s->port, lvars,
                       j->secret, s->request_timeout_ms,       0x5eed };
    (void)json_object_set_new(lvars, "sid", json_sprintf("%s-L", j->run_id));
    if (s->load_setup) {
        bool passed = false;
        json_t *details = NULL;
        rc = pr_scenario_run(&ctx, s->load_setup, &passed, &msg, &details, err);
        json_decref(details);
        if (rc < 0)
            goto cleanup;
        if (!passed) {
            (void)snprintf(sum->error, sizeof(sum->error), "load setup failed: %.200s",
                           msg.ptr ? msg.ptr : "");
            goto cleanup;
        }
    }
    size_t i;
    const json_t *m;
    json_array_foreach (s->mix, i, m) {
        pr_load_entry *e = &entries[nentries++];
        const json_t *w = json_object_get(m, "weight");
        e->weight = w ? json_number_value(w) : 1.0;
        e->variants = pr_calloc(HTTP_MIX_VARIANTS, sizeof(char *));
        e->variant_lens = pr_calloc(HTTP_MIX_VARIANTS, sizeof(size_t));
        if (!e->variants || !e->variant_lens) {
            rc = pr_error_set(err, PR_ENOMEM, "out of memory");
            goto cleanup;
        }
        for (size_t k = 0; k < HTTP_MIX_VARIANTS; k++) {
            pr_error rerr = { 0 };
            if (pr_scenario_render(&raw, NULL, NULL, &ctx, m, NULL, &rerr) < 0) {
                (void)snprintf(sum->error, sizeof(sum->error), "load mix[%zu]: %.200s", i,
                               rerr.msg);
                goto cleanup;
            }
            e->variant_lens[k] = raw.len;
            e->variants[k] = pr_buf_detach(&raw);
            e->nvariants++;
            if (!e->variants[k]) {
                rc = pr_error_set(err, PR_ENOMEM, "out of memory");
                goto cleanup;
            }
        }
    }
    sum->res = pr_calloc(1, sizeof(*sum->res));
    if (!sum->res) {
        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }
    load_watch watch = { j, 0, 0 };
    pr_load_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.addr = (struct sockaddr *)&j->addr;
    cfg.entries = entries;
    cfg.nentries = nentries;
    cfg.rate_rps = s->rate_rps;
    cfg.connections = s->connections;
    cfg.warmup_ms = s->warmup_ms;
    cfg.duration_ms = s->duration_ms;
    cfg.timeout_ms = s->load_timeout_ms;
    cfg.seed = 0x10ad;
    cfg.cpu = j->client_cpu;
    cfg.window = watch_window;
    cfg.tick = watch_tick;
    cfg.payload = &watch;
    /* One load phase at a time in this process: two jobs' generators and servers on the same
     * CPUs would measure each other (research/challenges.md 3.4, isolation). */
    (void)pthread_mutex_lock(&load_lock);
    rc = pr_load_run(sum->res, &cfg, err);
    (void)pthread_mutex_unlock(&load_lock);
    if (rc < 0)
        goto cleanup;
    sum->ran = true;
    const pr_load_result *r = sum->res;
    uint64_t errors = r->err_status + r->err_timeout + r->err_conn + r->err_other + r->dropped;
    sum->error_rate = r->scheduled ? (double)errors / (double)r->scheduled : 1.0;
    uint64_t cpu_us =
        watch.cpu_end_us > watch.cpu_start_us ? watch.cpu_end_us - watch.cpu_start_us : 0;
    sum->cpu_ms_per_1k =
        r->completed ? (double)cpu_us / 1000.0 / ((double)r->completed / 1000.0) : 0;
    sum->values[M_P50] = (double)pr_hist_percentile(&r->latency, 50) / 1e6;
    sum->values[M_P90] = (double)pr_hist_percentile(&r->latency, 90) / 1e6;
    sum->values[M_P95] = (double)pr_hist_percentile(&r->latency, 95) / 1e6;
    sum->values[M_P99] = (double)pr_hist_percentile(&r->latency, 99) / 1e6;
    sum->values[M_MAX] = (double)r->latency.max / 1e6;
    sum->values[M_ERROR_RATE] = sum->error_rate;
    sum->values[M_CPU] = sum->cpu_ms_per_1k;
    sum->values[M_RATE_RATIO] = r->achieved_rps / s->rate_rps;
    sum->peak_rss_kb = j->srv.peak_rss_kb;
cleanup:
    free_entries(entries, nentries);
    json_decref(lvars);
    pr_buf_free(&raw);
    pr_buf_free(&msg);
    return rc;
}

static json_t *ms3(double v)
{
    return json_real(round(v * 1000.0) / 1000.0);
}

static json_t *hist_ms(const pr_hist *h)
{
    return json_pack(
        "{s:o, s:o, s:o, s:o, s:o, s:o}", "p50", ms3((double)pr_hist_percentile(h, 50) / 1e6),
        "p90", ms3((double)pr_hist_percentile(h, 90) / 1e6), "p95",
        ms3((double)pr_hist_percentile(h, 95) / 1e6), "p99",
        ms3((double)pr_hist_percentile(h, 99) / 1e6), "p999",
        ms3((double)pr_hist_percentile(h, 99.9) / 1e6), "max", ms3((double)h->max / 1e6));
}

/* metrics.http from a load summary (DESIGN.md names first, then the details). */
static json_t *load_metrics(const job *j, const load_summary *sum)
{
    const pr_load_result *r = sum->res;
    const http_state *s = j->s;
    json_t *lat = hist_ms(&r->latency);
    (void)json_object_del(lat, "p999");
    json_t *m = json_pack("{s:o, s:I, s:o, s:o, s:o}", "latency_ms", lat, "requests",
                          (json_int_t)r->completed, "rate_rps", ms3(r->achieved_rps), "error_rate",
                          json_real(sum->error_rate), "cpu_ms_per_1k", ms3(sum->cpu_ms_per_1k));
    json_t *load = json_pack(
        "{s:o, s:i, s:I, s:I, s:s, s:o, s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I, s:I}, "
        "s:{s:I, s:I, s:I, s:I, s:I}, s:I, s:I, s:I, s:o, s:i, s:i}",
        "target_rps", json_real(s->rate_rps), "connections", (int)s->connections, "warmup_ms",
        (json_int_t)s->warmup_ms, "duration_ms", (json_int_t)s->duration_ms, "measured_from",
        "scheduled_send", "service_time_ms", hist_ms(&r->service), "scheduled",
        (json_int_t)r->scheduled, "completed", (json_int_t)r->completed, "ok", (json_int_t)r->ok,
        "errors", "status", (json_int_t)r->err_status, "timeout", (json_int_t)r->err_timeout,
        "connect", (json_int_t)r->err_conn, "other", (json_int_t)r->err_other, "dropped",
        (json_int_t)r->dropped, "status_classes", "1xx", (json_int_t)r->status_class[1], "2xx",
        (json_int_t)r->status_class[2], "3xx", (json_int_t)r->status_class[3], "4xx",
        (json_int_t)r->status_class[4], "5xx", (json_int_t)r->status_class[5], "backlogged",
        (json_int_t)r->backlogged, "connects", (json_int_t)r->connects, "warmup_sent",
        (json_int_t)r->warmup_sent, "window_s", ms3(r->window_s), "server_cpu", j->server_cpu,
        "client_cpu", j->client_cpu);
    if (load && r->first_error[0])
        (void)json_object_set_new(load, "first_error", json_string(r->first_error));
    if (m && load)
        (void)json_object_set_new(m, "load", load);
    else
        json_decref(load);
    return m;
}

/* ------------------------------------------------------------------ one server's session */

static int job_prepare(job *j, pr_grading *g, const http_state *s, pr_error *err)
{
    char port[16];
    j->g = g;
    j->s = s;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    /* The server and the load generator on different CPUs when there are two. */
    j->server_cpu = ncpu >= 2 ? 0 : -1;
    j->client_cpu = ncpu >= 2 ? 1 : -1;
    if (uv_ip4_addr("127.0.0.1", s->port, &j->addr) != 0)
        return pr_error_set(err, PR_EINTERNAL, "http: bad address");
    pr_run_plan_init(&j->plan, g, NULL);
    (void)snprintf(port, sizeof(port), "%d", s->port);
    int rc = pr_run_plan_setenv(&j->plan, "PORT", port);
    for (size_t i = 0; rc == 0 && i < s->nenv; i++) {
        const char *val = s->env_value[i];
        char rnd[129];
        if (!val) {
            random_hex(rnd, s->env_random_hex[i]);
            val = rnd;
        }
        if (strcmp(s->env_key[i], "JWT_SECRET") == 0)
            (void)snprintf(j->secret, sizeof(j->secret), "%s", val);
        rc = pr_run_plan_setenv(&j->plan, s->env_key[i], val);
    }
    if (rc < 0)
        return pr_error_set(err, PR_ELIMIT, "http: too many environment variables for the box");
    j->plan.spec.net = SBX_NET_LOOPBACK;
    j->plan.spec.netns_fd = -1; /* a new namespace per server, never the shared stdio one */
    j->plan.spec.cpu = j->server_cpu;
    j->plan.spec.slot = g->slot_base;
    (void)snprintf(j->srv.log_path, sizeof(j->srv.log_path), "%s/http-server-%s.log",
                   g->scratch ? g->scratch : "/tmp", j->run_id);
    if (uv_loop_init(&j->loop) != 0)
        return pr_error_set(err, PR_ESYS, "http: uv_loop_init failed");
    j->base_vars = json_pack("{s:s, s:i}", "run", j->run_id, "port", s->port);
    return j->base_vars ? 0 : pr_error_set(err, PR_ENOMEM, "out of memory");
}

static void walk_close(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void job_close(job *j)
{
    server_stop(j, NULL);
    uv_walk(&j->loop, walk_close, NULL);
    (void)uv_run(&j->loop, UV_RUN_DEFAULT);
    (void)uv_loop_close(&j->loop);
    json_decref(j->base_vars);
    j->base_vars = NULL;
}

/* Makes sure a healthy server is running: checks it, restarts it when it stopped answering
 * (at most HTTP_MAX_RESTARTS times). why explains a server that is not up. */
/* Stops the current instance and records how it ended (a limit the event loop enforced while it
 * served, a crash, a forbidden call) for the messages of this test and the next ones. */
static void note_server_end(job *j, const char *how)
{
    sbx_result res;
    server_stop(j, &res);
    const char *detail = res.violation[0] ? res.violation : res.message;
    (void)snprintf(j->srv.ended, sizeof(j->srv.ended), "%s: %s%s%s%.120s%s", how,
                   sbx_verdict_name(res.verdict), detail[0] ? " (" : "",
                   res.violation[0] ? "syscall " : "", detail, detail[0] ? ")" : "");
    j->srv.restart_due = true;
}

static int ensure_server(job *j, pr_buf *why, pr_error *err)
{
    if (j->srv.up && !sbx_proc_ended(j->srv.p) && health_ok(j, 2000))
        return 0;
    if (j->srv.p)
        note_server_end(j, "the server stopped answering its health check and was restarted");
    if (j->srv.restart_due) {
        j->srv.restart_due = false;
        if (j->srv.restarts >= HTTP_MAX_RESTARTS) {
            pr_buf_clear(why);
            (void)pr_buf_printf(why,
                                "the server stopped answering and was restarted %d times "
                                "already",
                                j->srv.restarts);
            log_tail(j->srv.log_path, why);
            return 0;
        }
        j->srv.restarts++;
    } else if (why->len > 0) {
        return 0; /* it never came up; the reason is already in why */
    }
    return server_start(j, why, err);
}

/* Runs the load phase on a healthy server. */
static int session_load(job *j, load_summary *sum, pr_error *err)
{
    pr_buf why = PR_BUF_INIT(8192);
    int rc = ensure_server(j, &why, err);
    if (rc == 0 && !j->srv.up)
        (void)snprintf(sum->error, sizeof(sum->error), "%.250s", why.ptr ? why.ptr : "no server");
    if (rc == 0 && j->srv.up)
        rc = run_load(j, sum, j->base_vars, err);
    pr_buf_free(&why);
    return rc;
}

/* ------------------------------------------------------------------ reference */

static int reference_values(job *cand, double *values, json_t **info, pr_error *err)
{
    const http_state *s = cand->s;
    pr_grading *g = cand->g;
    pr_runtimes *rts = NULL;
    job *j = NULL;
    load_summary sum;
    char cache_path[4096] = "";
    int rc = 0;
    memset(&sum, 0, sizeof(sum));
    *info = NULL;
    const char *rt_name = g->runtime ? g->runtime->name : NULL;
    const json_t *dir = rt_name ? json_object_get(s->ref_solutions, rt_name) : NULL;
    if (!dir) {
        /* No reference in the candidate's language: the first one listed. */
        const char *key;
        json_t *v;
        json_object_foreach (s->ref_solutions, key, v) {
            rt_name = key;
            dir = v;
            break;
        }
    }
    const char *cache_root = getenv("PROCTOR_HTTP_REF_CACHE");
    if (!cache_root || !*cache_root)
        cache_root = s->ref_cache_dir;
    if (strcmp(s->ref_mode, "cached") == 0 && g->challenge) {
        (void)snprintf(cache_path, sizeof(cache_path), "%s/%s-%s.json", cache_root,
                       g->challenge->digest, rt_name);
        json_error_t jerr;
        json_t *cached = json_load_file(cache_path, 0, &jerr);
        const json_t *cv = json_object_get(cached, "values");
        if (json_is_object(cv)) {
            for (int i = 0; i < M_COUNT; i++)
                values[i] = json_number_value(json_object_get(cv, metric_names[i]));
            *info = json_pack("{s:s, s:s, s:s, s:O}", "solution", json_string_value(dir), "runtime",
                              rt_name, "source", "cache", "values", cv);
            json_decref(cached);
            return 0;
        }
        json_decref(cached);
    }
    rc = pr_runtimes_load(&rts, NULL, err);
    if (rc < 0)
        goto cleanup;
    const pr_runtime *rt = pr_runtimes_find(rts, rt_name);
    if (!rt) {
        rc = pr_error_set(err, PR_ENOTFOUND, "http: reference runtime '%s' is unknown", rt_name);
        goto cleanup;
    }
    char refdir[4096];
    (void)snprintf(refdir, sizeof(refdir), "%s/%s", s->dir, json_string_value(dir));
    pr_grading g2 = *g;
    g2.workdir = refdir;
    g2.runtime = rt;
    g2.time_multiplier = pr_challenge_multiplier(g->challenge, rt->name, rt->time_multiplier);
    j = pr_calloc(1, sizeof(*j));
    if (!j) {
        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }
    (void)snprintf(j->run_id, sizeof(j->run_id), "REF%.13s", cand->run_id);
    rc = job_prepare(j, &g2, s, err);
    if (rc < 0)
        goto cleanup;
    rc = session_load(j, &sum, err);
    job_close(j);
    if (rc < 0)
        goto cleanup;
    if (!sum.ran) {
        rc = pr_error_set(err, PR_EINTERNAL, "http: the reference solution %s failed: %.150s",
                          json_string_value(dir), sum.error);
        goto cleanup;
    }
    json_t *vals = json_object();
    for (int i = 0; i < M_COUNT; i++) {
        values[i] = sum.values[i];
        (void)json_object_set_new(vals, metric_names[i], json_real(sum.values[i]));
    }
    *info = json_pack("{s:s, s:s, s:s, s:O}", "solution", json_string_value(dir), "runtime",
                      rt_name, "source", "measured", "values", vals);
    if (cache_path[0]) {
        /* Write the cache atomically; a failure only costs a re-measurement next time. */
        char tmp[4200];
        (void)snprintf(tmp, sizeof(tmp), "%s.%d.tmp", cache_path, (int)getpid());
        json_t *doc = json_pack("{s:s, s:s, s:s, s:O, s:I}", "digest", g->challenge->digest,
                                "runtime", rt_name, "solution", json_string_value(dir), "values",
                                vals, "measured_at", (json_int_t)time(NULL));
        if (pr_mkdir_p(cache_root) == 0 && doc && json_dump_file(doc, tmp, JSON_COMPACT) == 0)
            (void)rename(tmp, cache_path);
        (void)unlink(tmp);
        json_decref(doc);
    }
    json_decref(vals);
cleanup:
    if (j && j->base_vars)
        job_close(j);
    pr_free(j);
    pr_free(sum.res);
    pr_runtimes_free(rts);
    return rc;
}

/* ------------------------------------------------------------------ grading */

/* Linear score between full (1) and zero (0), in either direction. */
static double linear(double v, double full, double zero)
{
    double f = (v - zero) / (full - zero);
    if (!(f > 0))
        return 0;
    return f > 1 ? 1 : f;
}

static void score_load_test(const http_test *t, const load_summary *sum, const double *ref,
                            double max_error_rate, test_out *o)
{
    double v = sum->values[t->metric];
    double full = t->full, zero = t->zero;
    bool by_ref = false;
    o->verdict = "WA";
    o->points = 0;
    if (!sum->ran) {
        (void)pr_buf_printf(&o->msg, "no load measurement: %s", sum->error);
        return;
    }
    if (t->has_ratio && ref && ref[t->metric] > 0) {
        full = ref[t->metric] * t->full_ratio;
        zero = ref[t->metric] * t->zero_ratio;
        by_ref = true;
    } else if (!t->has_abs) {
        o->verdict = "IE";
        (void)pr_buf_puts(&o->msg, "no reference measurement and no absolute thresholds");
        return;
    }
    if (t->metric != M_ERROR_RATE && t->metric != M_RATE_RATIO &&
        sum->error_rate > max_error_rate) {
        (void)pr_buf_printf(&o->msg, "%s %.3f not scored: error rate %.2f%% is above %.2f%% (%s)",
                            metric_names[t->metric], v, sum->error_rate * 100, max_error_rate * 100,
                            sum->res->first_error);
        return;
    }
    double frac = linear(v, full, zero);
    o->points = frac; /* multiplied by max points by the caller */
    o->verdict = frac >= 0.999 ? "AC" : "WA";
    (void)pr_buf_printf(&o->msg, "%s %.3f: %.0f%% of the points (full at %.3f, none at %.3f%s)",
                        metric_names[t->metric], v, frac * 100, full, zero,
                        by_ref ? ", scaled from the reference solution" : "");
}

typedef struct worker_args {
    pr_grading *g;
    const http_state *s;
    test_out *outs;
    json_t *metrics;
    int rc;
    pr_error err;
} worker_args;

static void sbx_zero(sbx_result *r)
{
    memset(r, 0, sizeof(*r));
}

static int grade_all(worker_args *a)
{
    pr_grading *g = a->g;
    const http_state *s = a->s;
    pr_error *err = &a->err;
    job *j = NULL;
    load_summary sum;
    pr_buf why = PR_BUF_INIT(8192);
    json_t *ref_info = NULL;
    int rc;
    bool need_load = false, need_ref = false;
    memset(&sum, 0, sizeof(sum));

    j = pr_calloc(1, sizeof(*j));
    if (!j)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    random_hex(j->run_id, 12);
    /* Upper case, so packs can build identifiers such as SKUs ([A-Z0-9-]) from it. */
    for (char *p = j->run_id; *p; p++) {
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    }
    rc = job_prepare(j, g, s, err);
    if (rc < 0)
        goto cleanup;
    rc = server_start(j, &why, err);
    if (rc < 0)
        goto cleanup;
    uint64_t first_start_ms = j->srv.start_ms;
    bool first_up = j->srv.up;
    for (size_t i = 0; i < s->ntests; i++) {
        const http_test *t = &s->tests[i];
        test_out *o = &a->outs[i];
        sbx_zero(&o->res);
        if (!t->scenario) {
            need_load = true;
            need_ref = need_ref || t->has_ratio;
            continue;
        }
        if (g->progress)
            g->progress(g->payload, "test", g->challenge->tests[i].name);
        rc = ensure_server(j, &why, err);
        if (rc < 0)
            goto cleanup;
        if (!j->srv.up) {
            o->verdict = "WA";
            (void)pr_buf_printf(&o->msg, "%s", why.ptr ? why.ptr : "the server is not running");
            continue;
        }
        json_t *vars = json_deep_copy(j->base_vars);
        (void)json_object_set_new(vars, "sid", json_sprintf("%s-%zu", j->run_id, i));
        pr_scn_ctx ctx = { &j->loop,  (struct sockaddr *)&j->addr, s->port,   vars,
                           j->secret, s->request_timeout_ms,       0x5eed + i };
        uint64_t cpu0 = sbx_proc_cpu_us(j->srv.p), t0 = pr_now_ns();
        bool passed = false;
        rc = pr_scenario_run(&ctx, t->scenario, &passed, &o->msg, &o->details, err);
        json_decref(vars);
        if (rc < 0)
            goto cleanup;
        o->res.cpu_ms = (sbx_proc_cpu_us(j->srv.p) - cpu0) / 1000;
        o->res.wall_ms = (pr_now_ns() - t0) / 1000000ULL;
        o->res.max_rss_kb = sbx_proc_rss_kb(j->srv.p);
        if (o->res.max_rss_kb > j->srv.peak_rss_kb)
            j->srv.peak_rss_kb = o->res.max_rss_kb;
        o->verdict = passed ? "AC" : "WA";
        o->points = passed ? 1 : 0;
        if (!passed && (sbx_proc_ended(j->srv.p) || !health_ok(j, 1000))) {
            /* Gone or not answering: if its box ended (a limit the event loop enforced while it
             * served, a crash, a forbidden call) say how. The loop notices an end within
             * milliseconds of the connection closing. */
            for (int k = 0; k < 50 && !sbx_proc_ended(j->srv.p); k++) {
                struct timespec ts = { 0, 10 * 1000000L };
                (void)nanosleep(&ts, NULL);
            }
            note_server_end(j, sbx_proc_ended(j->srv.p)
                                   ? "the server ended during this test"
                                   : "the server stopped answering during this test and was "
                                     "stopped");
            (void)pr_buf_printf(&o->msg, " (%s; it is restarted for the next one)", j->srv.ended);
        } else if (!passed && j->srv.ended[0])
            (void)pr_buf_printf(&o->msg, " (note: %s)", j->srv.ended);
    }
    if (need_load) {
        if (g->progress) {
            char d[160];
            (void)snprintf(d, sizeof(d), "load phase: %.0f req/s for %.1f s after %.1f s warm-up",
                           s->rate_rps, (double)s->duration_ms / 1000.0,
                           (double)s->warmup_ms / 1000.0);
            g->progress(g->payload, "test", d);
        }
        rc = session_load(j, &sum, err);
        if (rc < 0)
            goto cleanup;
    }
    sbx_result final;
    sbx_zero(&final);
    server_stop(j, &final);

    double ref[M_COUNT];
    bool have_ref = false;
    if (need_ref && sum.ran && strcmp(s->ref_mode, "off") != 0) {
        pr_error rerr = { 0 };
        if (g->progress)
            g->progress(g->payload, "test", "reference solution (measured once per pack digest)");
        if (reference_values(j, ref, &ref_info, &rerr) == 0) {
            have_ref = true;
        } else {
            pr_log(PR_LOG_WARN, "job=%s event=http_reference_failed msg=\"%s\"",
                   g->job_id ? g->job_id : "-", rerr.msg);
            ref_info = json_pack("{s:s}", "error", rerr.msg);
        }
    }
    for (size_t i = 0; i < s->ntests; i++) {
        const http_test *t = &s->tests[i];
        if (t->scenario)
            continue;
        score_load_test(t, &sum, have_ref ? ref : NULL, s->max_error_rate, &a->outs[i]);
        a->outs[i].res.cpu_ms =
            sum.ran ? (uint64_t)(sum.cpu_ms_per_1k * (double)sum.res->completed / 1000.0) : 0;
        a->outs[i].res.wall_ms = s->warmup_ms + s->duration_ms;
        a->outs[i].res.max_rss_kb = j->srv.peak_rss_kb;
    }

    json_t *m = sum.ran ? load_metrics(j, &sum) : json_object();
    if (m) {
        (void)json_object_set_new(m, "start_ms", json_integer((json_int_t)first_start_ms));
        (void)json_object_set_new(m, "server_up", json_boolean(first_up));
        (void)json_object_set_new(m, "peak_rss_kb", json_integer((json_int_t)j->srv.peak_rss_kb));
        (void)json_object_set_new(m, "restarts", json_integer(j->srv.restarts));
        if (!sum.ran && sum.error[0])
            (void)json_object_set_new(m, "load_error", json_string(sum.error));
        if (final.verdict != SBX_OK && final.violation[0])
            (void)json_object_set_new(m, "server_violation", json_string(final.violation));
        if (ref_info) {
            (void)json_object_set_new(m, "reference", ref_info);
            ref_info = NULL;
        }
        a->metrics = m;
    }
    rc = 0;
cleanup:
    if (j) {
        if (j->base_vars)
            job_close(j);
        pr_free(j);
    }
    json_decref(ref_info);
    pr_free(sum.res);
    pr_buf_free(&why);
    return rc;
}

static void *worker_main(void *arg)
{
    worker_args *a = arg;
    a->rc = grade_all(a);
    return NULL;
}

static int http_grade(pr_grading *g, const void *state, pr_error *err)
{
    const http_state *s = state;
    worker_args a;
    pthread_t th;
    int rc;
    memset(&a, 0, sizeof(a));
    a.g = g;
    a.s = s;
    a.outs = pr_calloc(s->ntests, sizeof(test_out));
    if (!a.outs)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    for (size_t i = 0; i < s->ntests; i++) {
        pr_buf_init(&a.outs[i].msg, 16384);
        a.outs[i].verdict = "IE";
    }
    /* A thread of our own enters the server's network namespace (setns changes only the
     * calling thread), so the caller's thread never leaves the host namespace. */
    rc = pthread_create(&th, NULL, worker_main, &a);
    if (rc != 0) {
        char eb[128];
        rc = pr_error_set(err, PR_ESYS, "http: pthread_create: %s", strerror_r(rc, eb, sizeof(eb)));
        goto cleanup;
    }
    (void)pthread_join(th, NULL);
    if (a.rc < 0) {
        rc = a.rc;
        if (err)
            *err = a.err;
        goto cleanup;
    }
    for (size_t i = 0; i < s->ntests; i++) {
        test_out *o = &a.outs[i];
        const pr_test_meta *meta = &g->challenge->tests[i];
        json_t *t = pr_grading_add_test(g, meta, o->verdict, o->points * meta->points, &o->res,
                                        o->msg.ptr ? o->msg.ptr : "", o->msg.len);
        if (!t) {
            rc = pr_error_set(err, PR_ENOMEM, "out of memory");
            goto cleanup;
        }
        if (o->details)
            (void)json_object_set(t, "details", o->details);
    }
    if (a.metrics && g->metrics)
        (void)json_object_set(g->metrics, "http", a.metrics);
    rc = 0;
cleanup:
    for (size_t i = 0; i < s->ntests; i++) {
        pr_buf_free(&a.outs[i].msg);
        json_decref(a.outs[i].details);
    }
    pr_free(a.outs);
    json_decref(a.metrics);
    return rc;
}

static void http_free(void *state)
{
    state_free(state);
}

const pr_kind pr_kind_http = { "http", http_parse, http_grade, http_free };
