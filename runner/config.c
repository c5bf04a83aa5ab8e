/* The daemon's configuration file (JSON), validated with messages that name the field, and the
 * per-token rate limiter (token bucket). */
#include "daemon.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "proctor/common.h"
#include "proctor/redisq.h"
#include "proctor/report.h"

#define CFG_MAX_BYTES (1u << 20)

void pr_config_free(pr_config *c)
{
    if (!c)
        return;
    pr_free(c->path);
    pr_free(c->listen_host);
    pr_free(c->spool);
    pr_free(c->challenges);
    pr_free(c->cache);
    pr_free(c->work);
    pr_free(c->runtimes);
    pr_free(c->callback_secret);
    pr_free(c->pg_host);
    pr_free(c->pg_admin);
    for (size_t i = 0; i < c->ntokens; i++) {
        pr_free(c->tokens[i].token);
        pr_free(c->tokens[i].name);
    }
    pr_free(c->tokens);
    for (size_t i = 0; i < c->nwatches; i++) {
        pr_free(c->watches[i].repo);
        pr_free(c->watches[i].branch);
        pr_free(c->watches[i].challenge);
        pr_free(c->watches[i].candidate);
    }
    pr_free(c->watches);
    pr_redisq_cfg_free(c->queue);
    pr_free(c);
}

bool pr_config_pack_id_valid(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > 64 || id[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = id[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.';
        if (!ok)
            return false;
    }
    return true;
}

/* Resolves a path relative to the config file's directory. */
static char *cfg_path(const char *base_file, const char *p)
{
    if (p[0] == '/' || !base_file)
        return pr_strdup(p);
    const char *slash = strrchr(base_file, '/');
    char buf[4096];
    int n;
    if (!slash)
        n = snprintf(buf, sizeof(buf), "%s", p);
    else
        n = snprintf(buf, sizeof(buf), "%.*s/%s", (int)(slash - base_file), base_file, p);
    if (n < 0 || (size_t)n >= sizeof(buf))
        return NULL;
    return pr_strdup(buf);
}

static int get_string(char **out, const json_t *root, const char *key, const char *field,
                      bool required, pr_error *err)
{
    const json_t *v = json_object_get(root, key);
    if (!v) {
        if (required)
            return pr_error_set(err, PR_EINVAL, "%s: missing (expected a string)", field);
        return 0;
    }
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 4000)
        return pr_error_set(err, PR_EINVAL, "%s: expected a non-empty string", field);
    if (strlen(json_string_value(v)) != json_string_length(v))
        return pr_error_set(err, PR_EINVAL, "%s: contains a NUL byte", field);
    pr_free(*out);
    *out = pr_strdup(json_string_value(v));
    if (!*out)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    return 0;
}

static int get_uint(uint64_t *out, const json_t *root, const char *key, const char *field,
                    uint64_t min, uint64_t max, pr_error *err)
{
    const json_t *v = json_object_get(root, key);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) < min ||
        (uint64_t)json_integer_value(v) > max)
        return pr_error_set(err, PR_EINVAL, "%s: expected an integer in %llu..%llu", field,
                            (unsigned long long)min, (unsigned long long)max);
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int check_keys(const json_t *obj, const char *const *allowed, const char *field,
                      pr_error *err)
{
    const char *key = pr_json_unknown_key(obj, allowed);
    if (key)
        return pr_error_set(err, PR_EINVAL, "%s%s%s: unknown key", field, field[0] ? "." : "", key);
    return 0;
}

static int parse_listen(pr_config *c, const json_t *root, pr_error *err)
{
    const json_t *v = json_object_get(root, "listen");
    if (!v)
        return 0;
    if (!json_is_string(v))
        return pr_error_set(err, PR_EINVAL, "listen: expected \"host:port\"");
    const char *s = json_string_value(v);
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || strlen(colon + 1) == 0 || strlen(colon + 1) > 5)
        return pr_error_set(err, PR_EINVAL, "listen: expected \"host:port\", got \"%.60s\"", s);
    char *end = NULL;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || port < 0 || port > 65535)
        return pr_error_set(err, PR_EINVAL, "listen: port must be 0..65535");
    pr_free(c->listen_host);
    c->listen_host = pr_strndup(s, (size_t)(colon - s));
    if (!c->listen_host)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    c->listen_port = (int)port;
    return 0;
}

static int parse_tokens(pr_config *c, const json_t *root, pr_error *err)
{
    static const char *const keys[] = { "token", "role", "name", "rate", NULL };
    const json_t *arr = json_object_get(root, "tokens");
    if (!arr)
        return 0;
    if (!json_is_array(arr) || json_array_size(arr) > 10000)
        return pr_error_set(err, PR_EINVAL, "tokens: expected an array of {token, role, name}");
    size_t n = json_array_size(arr);
    if (n == 0)
        return 0;
    c->tokens = pr_calloc(n, sizeof(*c->tokens));
    if (!c->tokens)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *t = json_array_get(arr, i);
        pr_cfg_token *tk = &c->tokens[i];
        char field[64];
        int rc;
        c->ntokens = i + 1;
        (void)snprintf(field, sizeof(field), "tokens[%zu]", i);
        if (!json_is_object(t))
            return pr_error_set(err, PR_EINVAL, "%s: expected an object", field);
        rc = check_keys(t, keys, field, err);
        if (rc < 0)
            return rc;
        char sub[96];
        (void)snprintf(sub, sizeof(sub), "%s.token", field);
        rc = get_string(&tk->token, t, "token", sub, true, err);
        if (rc < 0)
            return rc;
        if (strlen(tk->token) < 8)
            return pr_error_set(err, PR_EINVAL, "%s: at least 8 characters expected", sub);
        (void)snprintf(sub, sizeof(sub), "%s.name", field);
        rc = get_string(&tk->name, t, "name", sub, true, err);
        if (rc < 0)
            return rc;
        const json_t *role = json_object_get(t, "role");
        const char *r = json_string_value(role);
        if (r && strcmp(r, "submitter") == 0)
            tk->role = PR_ROLE_SUBMITTER;
        else if (r && strcmp(r, "reviewer") == 0)
            tk->role = PR_ROLE_REVIEWER;
        else if (r && strcmp(r, "candidate") == 0)
            tk->role = PR_ROLE_CANDIDATE;
        else
            return pr_error_set(err, PR_EINVAL,
                                "%s.role: expected \"submitter\", \"reviewer\" or \"candidate\"",
                                field);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(c->tokens[j].token, tk->token) == 0)
                return pr_error_set(err, PR_EINVAL, "%s.token: duplicate of tokens[%zu]", field, j);
        }
        const json_t *rate = json_object_get(t, "rate");
        if (rate) {
            static const char *const rkeys[] = { "per_minute", "burst", NULL };
            (void)snprintf(sub, sizeof(sub), "%s.rate", field);
            if (!json_is_object(rate))
                return pr_error_set(err, PR_EINVAL, "%s: expected {per_minute, burst}", sub);
            rc = check_keys(rate, rkeys, sub, err);
            if (rc < 0)
                return rc;
            const json_t *pm = json_object_get(rate, "per_minute");
            const json_t *b = json_object_get(rate, "burst");
            if (!json_is_number(pm) || json_number_value(pm) <= 0 || json_number_value(pm) > 1e6)
                return pr_error_set(err, PR_EINVAL, "%s.per_minute: expected a number > 0", sub);
            tk->per_minute = json_number_value(pm);
            tk->burst = 1;
            if (b) {
                if (!json_is_number(b) || json_number_value(b) < 1 || json_number_value(b) > 1e6)
                    return pr_error_set(err, PR_EINVAL, "%s.burst: expected a number >= 1", sub);
                tk->burst = json_number_value(b);
            }
            tk->bucket = tk->burst;
        }
    }
    return 0;
}

static int parse_watch(pr_config *c, const json_t *root, pr_error *err)
{
    static const char *const keys[] = { "repo",      "branch",     "challenge",
                                        "candidate", "interval_s", NULL };
    const json_t *arr = json_object_get(root, "watch");
    if (!arr)
        return 0;
    if (!json_is_array(arr) || json_array_size(arr) > 1000)
        return pr_error_set(err, PR_EINVAL, "watch: expected an array");
    size_t n = json_array_size(arr);
    if (n == 0)
        return 0;
    c->watches = pr_calloc(n, sizeof(*c->watches));
    if (!c->watches)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *w = json_array_get(arr, i);
        pr_cfg_watch *cw = &c->watches[i];
        char field[64], sub[96];
        int rc;
        c->nwatches = i + 1;
        (void)snprintf(field, sizeof(field), "watch[%zu]", i);
        if (!json_is_object(w))
            return pr_error_set(err, PR_EINVAL, "%s: expected an object", field);
        rc = check_keys(w, keys, field, err);
        if (rc < 0)
            return rc;
        (void)snprintf(sub, sizeof(sub), "%s.repo", field);
        rc = get_string(&cw->repo, w, "repo", sub, true, err);
        if (rc == 0) {
            (void)snprintf(sub, sizeof(sub), "%s.branch", field);
            rc = get_string(&cw->branch, w, "branch", sub, false, err);
        }
        if (rc == 0) {
            (void)snprintf(sub, sizeof(sub), "%s.challenge", field);
            rc = get_string(&cw->challenge, w, "challenge", sub, true, err);
        }
        if (rc == 0) {
            (void)snprintf(sub, sizeof(sub), "%s.candidate", field);
            rc = get_string(&cw->candidate, w, "candidate", sub, false, err);
        }
        if (rc < 0)
            return rc;
        if (!pr_config_pack_id_valid(cw->challenge))
            return pr_error_set(err, PR_EINVAL, "%s.challenge: not a valid pack id", field);
        uint64_t iv = 60;
        (void)snprintf(sub, sizeof(sub), "%s.interval_s", field);
        rc = get_uint(&iv, w, "interval_s", sub, 1, 86400, err);
        if (rc < 0)
            return rc;
        cw->interval_s = (unsigned)iv;
    }
    return 0;
}

/* "postgres": {"host", "port", "admin"}: the PostgreSQL server of the sql kind's jobs. */
static int parse_postgres(pr_config *c, const json_t *root, pr_error *err)
{
    static const char *const keys[] = { "host", "port", "admin", NULL };
    const json_t *pg = json_object_get(root, "postgres");
    if (!pg)
        return 0;
    if (!json_is_object(pg))
        return pr_error_set(err, PR_EINVAL, "postgres: expected an object {host, port, admin}");
    int rc = check_keys(pg, keys, "postgres", err);
    if (rc == 0)
        rc = get_string(&c->pg_host, pg, "host", "postgres.host", true, err);
    if (rc < 0)
        return rc;
    /* A unix socket directory (absolute path) or a host name / IP address for TCP. */
    const char *h = c->pg_host;
    bool ok = strlen(h) < 256;
    for (size_t i = 0; ok && h[0] != '/' && h[i]; i++) {
        char ch = h[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             ch == '.' || ch == '-' || ch == ':';
    }
    if (!ok || h[0] == '-')
        return pr_error_set(err, PR_EINVAL,
                            "postgres.host: expected a socket directory (absolute path) or a host "
                            "name");
    const json_t *port = json_object_get(pg, "port");
    c->pg_port = 5432;
    if (port) {
        if (!json_is_integer(port) || json_integer_value(port) < 1 ||
            json_integer_value(port) > 65535)
            return pr_error_set(err, PR_EINVAL, "postgres.port: expected an integer 1..65535");
        c->pg_port = (int)json_integer_value(port);
    }
    rc = get_string(&c->pg_admin, pg, "admin", "postgres.admin", false, err);
    if (rc < 0)
        return rc;
    if (!c->pg_admin) {
        c->pg_admin = pr_strdup("postgres");
        if (!c->pg_admin)
            return pr_error_set(err, PR_ENOMEM, "out of memory");
    }
    size_t n = strlen(c->pg_admin);
    ok = n <= 63;
    for (size_t i = 0; ok && i < n; i++) {
        char ch = c->pg_admin[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             ch == '_';
    }
    if (!ok)
        return pr_error_set(err, PR_EINVAL,
                            "postgres.admin: expected a role name (1..63 of [A-Za-z0-9_])");
    return 0;
}

int pr_config_parse(pr_config **out, const char *text, size_t len, const char *path, pr_error *err)
{
    static const char *const keys[] = {
        "listen",          "spool",   "challenges",       "workers",         "tokens",
        "watch",           "limits",  "callback_secret",  "cache",           "work",
        "runtimes",        "grace_s", "parallel_per_job", "max_attempts",    "min_free_mb",
        "scan_interval_s", "queue",   "postgres",         "cache_max_age_h", NULL,
    };
    static const char *const lkeys[] = { "repo_bytes",     "repo_files",      "queue_length",
                                         "body_bytes",     "header_bytes",    "request_timeout_s",
                                         "idle_timeout_s", "max_connections", NULL };
    json_error_t jerr;
    json_t *root = NULL;
    pr_config *c = NULL;
    int rc;
    uint64_t v;

    *out = NULL;
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        rc = pr_error_set(err, PR_EJSON, "line %d: %s", jerr.line, jerr.text);
        goto cleanup;
    }
    if (!json_is_object(root)) {
        rc = pr_error_set(err, PR_EINVAL, "expected a JSON object at the top");
        goto cleanup;
    }
    c = pr_calloc(1, sizeof(*c));
    if (!c) {
        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }
    c->path = path ? pr_strdup(path) : NULL;
    c->listen_host = pr_strdup("127.0.0.1");
    c->listen_port = 8080;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    c->workers = cores > 0 ? (int)cores : 1;
    c->parallel_per_job = 1;
    c->repo_bytes = 256ull << 20;
    c->repo_files = 20000;
    c->queue_length = 1000;
    c->body_bytes = (size_t)64 * 1024;
    c->header_bytes = 8192;
    c->request_timeout_s = 10;
    c->idle_timeout_s = 30;
    c->max_connections = 512;
    c->grace_s = 30;
    c->min_free_mb = 256;
    c->max_attempts = 3;
    c->scan_interval_s = 5;
    c->cache_max_age_h = 168;
    if (!c->listen_host) {
        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }
    rc = check_keys(root, keys, "", err);
    if (rc < 0)
        goto cleanup;
    rc = parse_listen(c, root, err);
    if (rc < 0)
        goto cleanup;
    char *tmp = NULL;
    static const struct {
        const char *key;
        bool required;
        size_t off;
    } paths[] = {
        { "spool", true, offsetof(pr_config, spool) },
        { "challenges", true, offsetof(pr_config, challenges) },
        { "cache", false, offsetof(pr_config, cache) },
        { "work", false, offsetof(pr_config, work) },
        { "runtimes", false, offsetof(pr_config, runtimes) },
    };
    for (size_t i = 0; i < PR_ARRAY_LEN(paths); i++) {
        tmp = NULL;
        rc = get_string(&tmp, root, paths[i].key, paths[i].key, paths[i].required, err);
        if (rc < 0)
            goto cleanup;
        if (!tmp)
            continue;
        char **slot = (char **)((char *)c + paths[i].off);
        *slot = cfg_path(path, tmp);
        pr_free(tmp);
        if (!*slot) {
            rc = pr_error_set(err, PR_EINVAL, "%s: path too long", paths[i].key);
            goto cleanup;
        }
    }
    rc = get_string(&c->callback_secret, root, "callback_secret", "callback_secret", false, err);
    if (rc < 0)
        goto cleanup;
    v = (uint64_t)c->workers;
    rc = get_uint(&v, root, "workers", "workers", 1, 256, err);
    if (rc < 0)
        goto cleanup;
    c->workers = (int)v;
    v = (uint64_t)c->parallel_per_job;
    rc = get_uint(&v, root, "parallel_per_job", "parallel_per_job", 1, 64, err);
    if (rc < 0)
        goto cleanup;
    c->parallel_per_job = (int)v;
    v = c->grace_s;
    rc = get_uint(&v, root, "grace_s", "grace_s", 0, 3600, err);
    if (rc < 0)
        goto cleanup;
    c->grace_s = (unsigned)v;
    v = (uint64_t)c->max_attempts;
    rc = get_uint(&v, root, "max_attempts", "max_attempts", 1, 10, err);
    if (rc < 0)
        goto cleanup;
    c->max_attempts = (int)v;
    rc = get_uint(&c->min_free_mb, root, "min_free_mb", "min_free_mb", 0, 1ull << 30, err);
    if (rc < 0)
        goto cleanup;
    v = c->scan_interval_s;
    rc = get_uint(&v, root, "scan_interval_s", "scan_interval_s", 1, 3600, err);
    if (rc < 0)
        goto cleanup;
    c->scan_interval_s = (unsigned)v;
    v = c->cache_max_age_h;
    rc = get_uint(&v, root, "cache_max_age_h", "cache_max_age_h", 0, 87600, err);
    if (rc < 0)
        goto cleanup;
    c->cache_max_age_h = (unsigned)v;

    const json_t *lim = json_object_get(root, "limits");
    if (lim) {
        if (!json_is_object(lim)) {
            rc = pr_error_set(err, PR_EINVAL, "limits: expected an object");
            goto cleanup;
        }
        rc = check_keys(lim, lkeys, "limits", err);
        if (rc == 0)
            rc = get_uint(&c->repo_bytes, lim, "repo_bytes", "limits.repo_bytes", 1024, 1ull << 40,
                          err);
        if (rc == 0)
            rc = get_uint(&c->repo_files, lim, "repo_files", "limits.repo_files", 1, 10000000, err);
        struct {
            const char *key, *field;
            size_t *dst;
            uint64_t min, max;
        } sz[] = {
            { "queue_length", "limits.queue_length", &c->queue_length, 1, 1000000 },
            { "body_bytes", "limits.body_bytes", &c->body_bytes, 256, 64u << 20 },
            { "header_bytes", "limits.header_bytes", &c->header_bytes, 512, 1u << 20 },
            { "max_connections", "limits.max_connections", &c->max_connections, 1, 100000 },
        };
        for (size_t i = 0; rc == 0 && i < PR_ARRAY_LEN(sz); i++) {
            v = *sz[i].dst;
            rc = get_uint(&v, lim, sz[i].key, sz[i].field, sz[i].min, sz[i].max, err);
            *sz[i].dst = (size_t)v;
        }
        if (rc == 0) {
            v = c->request_timeout_s;
            rc = get_uint(&v, lim, "request_timeout_s", "limits.request_timeout_s", 1, 3600, err);
            c->request_timeout_s = (unsigned)v;
        }
        if (rc == 0) {
            v = c->idle_timeout_s;
            rc = get_uint(&v, lim, "idle_timeout_s", "limits.idle_timeout_s", 1, 3600, err);
            c->idle_timeout_s = (unsigned)v;
        }
        if (rc < 0)
            goto cleanup;
    }
    rc = parse_tokens(c, root, err);
    if (rc < 0)
        goto cleanup;
    rc = parse_watch(c, root, err);
    if (rc < 0)
        goto cleanup;
    rc = pr_redisq_cfg_parse(&c->queue, json_object_get(root, "queue"), err);
    if (rc < 0)
        goto cleanup;
    rc = parse_postgres(c, root, err);
    if (rc < 0)
        goto cleanup;
    if (!c->cache || !c->work) {
        char buf[4096];
        if (!c->cache) {
            (void)snprintf(buf, sizeof(buf), "%s/cache", c->spool);
            c->cache = pr_strdup(buf);
        }
        if (!c->work) {
            (void)snprintf(buf, sizeof(buf), "%s/work", c->spool);
            c->work = pr_strdup(buf);
        }
        if (!c->cache || !c->work) {
            rc = pr_error_set(err, PR_ENOMEM, "out of memory");
            goto cleanup;
        }
    }
    *out = c;
    c = NULL;
    rc = 0;
cleanup:
    pr_config_free(c);
    json_decref(root);
    return rc;
}

int pr_config_load(pr_config **out, const char *path, pr_error *err)
{
    char *text = NULL;
    size_t len = 0;
    *out = NULL;
    int rc = pr_spool_read_file(&text, &len, path, CFG_MAX_BYTES, err);
    if (rc < 0)
        return rc;
    rc = pr_config_parse(out, text, len, path, err);
    if (rc < 0)
        (void)pr_error_wrap(err, "%s", path);
    pr_free(text);
    return rc;
}

unsigned pr_rate_take(pr_cfg_token *t, uint64_t now_ns)
{
    if (t->per_minute <= 0)
        return 0;
    if (t->last_ns == 0)
        t->last_ns = now_ns;
    double per_s = t->per_minute / 60.0;
    double dt = (double)(now_ns - t->last_ns) / 1e9;
    t->last_ns = now_ns;
    t->bucket += dt * per_s;
    if (t->bucket > t->burst)
        t->bucket = t->burst;
    if (t->bucket >= 1.0) {
        t->bucket -= 1.0;
        return 0;
    }
    double wait = (1.0 - t->bucket) / per_s;
    unsigned s = (unsigned)wait + 1;
    return s < 1 ? 1 : s;
}

void pr_rate_carry(pr_config *to, const pr_config *from)
{
    for (size_t i = 0; i < to->ntokens; i++) {
        pr_cfg_token *t = &to->tokens[i];
        for (size_t j = 0; j < from->ntokens; j++) {
            const pr_cfg_token *o = &from->tokens[j];
            /* Only a bucket that was limited and used carries over: an unlimited or untouched
             * one has no state worth keeping (the new bucket starts full). */
            if (strcmp(o->token, t->token) != 0 || o->per_minute <= 0 || o->last_ns == 0)
                continue;
            if (t->per_minute > 0) {
                t->bucket = o->bucket < t->burst ? o->bucket : t->burst;
                t->last_ns = o->last_ns;
            }
            break;
        }
    }
}
