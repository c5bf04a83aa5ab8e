/* The sql kind: the candidate submits indexes (schema.sql) and one SELECT per question
 * (q1.sql ... qN.sql); proctor checks the rows against the pack's reference solution and scores
 * the cost with counters that do not move when the machine is busy.
 *
 * SQLite (the embedded default): the pack's data generator builds one database per pack digest
 * (cached, see sql_db.c); each job gets a private copy; the executor proctor-sql
 * (runner/tools/proctor_sql.c) runs INSIDE the sandbox on that copy and reports rows, counters
 * and plans. Cost per run = vm_steps + 100 x cache_misses at a fixed page cache.
 *
 * PostgreSQL (when a server is configured): see sql_pg.c; cost = shared blocks hit + read.
 *
 * Manifest: "sql" holds engines, schema, generator, reference, limits and "questions"; each
 * manifest test is named after a question (correctness of its rows) or "<question>-cost" (its
 * cost points), so every manifest test gets exactly one result. */
#include "proctor/kind.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "proctor/buf.h"
#include "proctor/common.h"
#include "proctor/log.h"
#include "sql_internal.h"
#include "sql_kind.h"

#define SQL_MAX_QUESTIONS 32
#define SQL_MAX_PARAMS    16
#define SQL_MAX_TABLES    32
#define SQL_RESULT_MAX    (32u * 1024 * 1024)
#define SQL_EXECUTOR_DST  "/opt/proctor-sql"

/* snprintf for paths: a cut path is caught later when the file is not found. */
static int spath(char *out, size_t outsz, const char *fmt, ...) PR_PRINTF(3, 4);

static int spath(char *out, size_t outsz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, outsz, fmt, ap);
    va_end(ap);
    return n;
}

static void question_free(sql_question *q)
{
    pr_free(q->name);
    pr_free(q->file);
    json_decref(q->params);
}

static void sql_free(void *state)
{
    sql_state *s = state;
    if (!s)
        return;
    for (size_t i = 0; i < s->nq; i++)
        question_free(&s->q[i]);
    pr_free(s->q);
    for (size_t i = 0; i < s->ntables; i++)
        pr_free(s->tables[i]);
    pr_free(s->tables);
    pr_free(s->dir);
    pr_free(s->schema_sql);
    pr_free(s->reference_dir);
    pr_free(s->gen_name);
    pr_free(s->pg_host);
    pr_free(s->pg_admin);
    pr_free(s);
}

/* Longest pack-relative path the manifest may name (schema file, reference directory). */
#define SQL_PATH_MAX 200

static int ferr(pr_error *err, const char *field, const char *what)
{
    return pr_error_set(err, PR_EINVAL, "challenge.json: sql.%s: expected %s", field, what);
}

/* A plain file name for a question file: [A-Za-z0-9_.-], ends in .sql, no leading dot. */
static bool file_name_ok(const char *f)
{
    size_t n = f ? strlen(f) : 0;
    if (n < 5 || n > 64 || f[0] == '.' || strcmp(f + n - 4, ".sql") != 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = f[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

static bool ident_ok(const char *t)
{
    size_t n = t ? strlen(t) : 0;
    if (n == 0 || n > 63 || (t[0] >= '0' && t[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

static int get_int(long long *out, const json_t *obj, const char *key, long long def, long long lo,
                   long long hi, pr_error *err)
{
    const json_t *v = json_object_get(obj, key);
    char what[96];
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        (void)snprintf(what, sizeof(what), "an integer %lld..%lld", lo, hi);
        return ferr(err, key, what);
    }
    *out = json_integer_value(v);
    return 0;
}

static int parse_cost(double *full, double *zero, const json_t *obj, const char *field,
                      pr_error *err)
{
    if (!obj)
        return 0;
    const json_t *f = json_object_get(obj, "full_within");
    const json_t *z = json_object_get(obj, "zero_beyond");
    if (!json_is_object(obj) || (f && !json_is_number(f)) || (z && !json_is_number(z)))
        return ferr(err, field, "{\"full_within\": ratio >= 1, \"zero_beyond\": larger ratio}");
    if (f)
        *full = json_number_value(f);
    if (z)
        *zero = json_number_value(z);
    if (!(*full >= 1) || !(*zero > *full) || *zero > 1e9)
        return ferr(err, field, "full_within >= 1 and zero_beyond > full_within");
    return 0;
}

static int parse_questions(sql_state *s, const json_t *sql, pr_error *err)
{
    const json_t *arr = json_object_get(sql, "questions");
    size_t n = json_array_size(arr);
    if (!json_is_array(arr) || n == 0 || n > SQL_MAX_QUESTIONS)
        return ferr(err, "questions", "an array of 1..32 question objects");
    s->q = pr_calloc(n, sizeof(*s->q));
    if (!s->q)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_array_get(arr, i);
        sql_question *q = &s->q[i];
        char field[64];
        s->nq = i + 1;
        (void)snprintf(field, sizeof(field), "questions[%zu]", i);
        if (!json_is_object(o))
            return ferr(err, field, "an object");
        const char *name = json_string_value(json_object_get(o, "name"));
        if (!ident_ok(name))
            return ferr(err, field, "a \"name\" of [a-z0-9_] (the manifest test names use it)");
        for (size_t j = 0; j < i; j++) {
            if (strcmp(s->q[j].name, name) == 0)
                return ferr(err, field, "a unique name");
        }
        const json_t *fv = json_object_get(o, "file");
        char defname[80];
        (void)snprintf(defname, sizeof(defname), "%s.sql", name);
        const char *file = fv ? json_string_value(fv) : defname;
        if (!file_name_ok(file))
            return ferr(err, field, "a \"file\" like \"q1.sql\" (a plain file name)");
        q->name = pr_strdup(name);
        q->file = pr_strdup(file);
        if (!q->name || !q->file)
            return pr_error_set(err, PR_ENOMEM, "out of memory");
        const json_t *ord = json_object_get(o, "ordered");
        if (ord && !json_is_boolean(ord))
            return ferr(err, field, "\"ordered\": true or false");
        q->ordered = ord ? json_is_true(ord) : false;
        const json_t *params = json_object_get(o, "params");
        if (!params) {
            q->params = json_pack("[{}]");
        } else {
            size_t np = json_array_size(params);
            if (!json_is_array(params) || np == 0 || np > SQL_MAX_PARAMS)
                return ferr(err, field, "\"params\": an array of 1..16 parameter objects");
            size_t k;
            const json_t *set;
            json_array_foreach (params, k, set) {
                const char *key;
                const json_t *val;
                if (!json_is_object(set))
                    return ferr(err, field, "\"params\" entries that are objects");
                json_object_foreach ((json_t *)set, key, val) {
                    if (!ident_ok(key) || !(json_is_string(val) || json_is_integer(val) ||
                                            json_is_real(val) || json_is_null(val)))
                        return ferr(err, field,
                                    "parameter names of [a-z0-9_] with string, number or null "
                                    "values");
                }
            }
            q->params = json_deep_copy(params);
        }
        if (!q->params)
            return pr_error_set(err, PR_ENOMEM, "out of memory");
        q->full_ratio = s->full_ratio;
        q->zero_ratio = s->zero_ratio;
        int rc = parse_cost(&q->full_ratio, &q->zero_ratio, json_object_get(o, "cost"), field, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static const sql_question *find_question(const sql_state *s, const char *test, bool *is_cost)
{
    size_t n = strlen(test);
    for (size_t i = 0; i < s->nq; i++) {
        size_t qn = strlen(s->q[i].name);
        if (strcmp(test, s->q[i].name) == 0) {
            *is_cost = false;
            return &s->q[i];
        }
        if (n == qn + 5 && strncmp(test, s->q[i].name, qn) == 0 &&
            strcmp(test + qn, "-cost") == 0) {
            *is_cost = true;
            return &s->q[i];
        }
    }
    return NULL;
}

static int check_tests(const sql_state *s, const json_t *manifest, pr_error *err)
{
    const json_t *tests = json_object_get(manifest, "tests");
    size_t i;
    const json_t *t;
    json_array_foreach (tests, i, t) {
        const char *name = json_string_value(json_object_get(t, "name"));
        bool is_cost = false;
        if (!name || !find_question(s, name, &is_cost))
            return pr_error_set(err, PR_EINVAL,
                                "challenge.json: tests[%zu].name: expected a question name "
                                "(correctness) or \"<question>-cost\" (cost points)",
                                i);
    }
    return 0;
}

static int sql_parse(void **state_out, const json_t *manifest, const char *dir, pr_error *err)
{
    sql_state *s = NULL;
    char path[PATH_MAX];
    size_t len = 0;
    int rc;

    *state_out = NULL;
    const json_t *sql = json_object_get(manifest, "sql");
    if (!json_is_object(sql))
        return pr_error_set(err, PR_EINVAL,
                            "challenge.json: sql: expected an object with "
                            "schema, generator, reference and questions");
    s = pr_calloc(1, sizeof(*s));
    if (!s)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    s->dir = pr_strdup(dir);
    if (!s->dir) {
        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }

    /* Engines the pack supports; SQLite unless listed otherwise. */
    const json_t *engines = json_object_get(sql, "engines");
    if (!engines) {
        s->allow_sqlite = true;
    } else {
        size_t i;
        const json_t *e;
        if (!json_is_array(engines) || json_array_size(engines) == 0) {
            rc = ferr(err, "engines", "an array of \"sqlite\" and/or \"postgresql\"");
            goto cleanup;
        }
        json_array_foreach (engines, i, e) {
            const char *n = json_string_value(e);
            if (n && strcmp(n, "sqlite") == 0)
                s->allow_sqlite = true;
            else if (n && strcmp(n, "postgresql") == 0)
                s->allow_pg = true;
            else {
                rc = ferr(err, "engines", "only \"sqlite\" and \"postgresql\"");
                goto cleanup;
            }
        }
    }

    const char *schema = json_string_value(json_object_get(sql, "schema"));
    if (!pr_pack_path_ok(schema, SQL_PATH_MAX)) {
        rc = ferr(err, "schema", "a path inside the pack, like \"tests/schema.sql\"");
        goto cleanup;
    }
    (void)spath(path, sizeof(path), "%s/%s", dir, schema);
    rc = pr_sql_read_file(&s->schema_sql, &len, path, (size_t)256 * 1024, err);
    if (rc < 0) {
        (void)pr_error_wrap(err, "challenge.json: sql.schema");
        goto cleanup;
    }

    const json_t *tables = json_object_get(sql, "tables");
    size_t nt = json_array_size(tables);
    if (!json_is_array(tables) || nt == 0 || nt > SQL_MAX_TABLES) {
        rc = ferr(err, "tables",
                  "an array of the schema's table names (candidates may index "
                  "these)");
        goto cleanup;
    }
    s->tables = pr_calloc(nt + 1, sizeof(char *));
    if (!s->tables) {
        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < nt; i++) {
        const char *t = json_string_value(json_array_get(tables, i));
        if (!ident_ok(t)) {
            rc = ferr(err, "tables", "table names of [a-z0-9_]");
            goto cleanup;
        }
        s->tables[i] = pr_strdup(t);
        if (!s->tables[i]) {
            rc = pr_error_set(err, PR_ENOMEM, "out of memory");
            goto cleanup;
        }
        s->ntables = i + 1;
    }

    const json_t *gen = json_object_get(sql, "generator");
    const char *gname = json_string_value(json_object_get(gen, "name"));
    const json_t *seed = json_object_get(gen, "seed");
    if (!pr_sqlgen_known(gname) || !json_is_integer(seed) || json_integer_value(seed) < 0) {
        rc = ferr(err, "generator", "{\"name\": \"orders\", \"seed\": a non-negative integer}");
        goto cleanup;
    }
    s->gen_name = pr_strdup(gname);
    s->seed = (uint64_t)json_integer_value(seed);

    const char *ref = json_string_value(json_object_get(sql, "reference"));
    if (!pr_pack_path_ok(ref, SQL_PATH_MAX)) {
        rc = ferr(err, "reference", "the reference solution's directory inside the pack");
        goto cleanup;
    }
    (void)spath(path, sizeof(path), "%s/%s", dir, ref);
    s->reference_dir = pr_strdup(path);
    if (!s->gen_name || !s->reference_dir) {
        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }

    rc = get_int(&s->cache_pages, sql, "cache_pages", 500, 16, 1000000, err);
    if (rc == 0)
        rc = get_int(&s->vm_budget, sql, "vm_budget", 50000000, 1000, 2000000000000LL, err);
    if (rc == 0)
        rc = get_int(&s->schema_vm_budget, sql, "schema_vm_budget", 500000000, 1000,
                     2000000000000LL, err);
    if (rc == 0)
        rc = get_int(&s->heap_limit_mb, sql, "heap_limit_mb", 128, 8, 4096, err);
    if (rc == 0)
        rc = get_int(&s->max_rows, sql, "max_rows", 1000, 1, 100000, err);
    if (rc == 0)
        rc = get_int(&s->pg_timeout_ms, sql, "statement_timeout_ms", 5000, 10, 600000, err);
    if (rc < 0)
        goto cleanup;
    s->full_ratio = 2.0;
    s->zero_ratio = 50.0;
    rc = parse_cost(&s->full_ratio, &s->zero_ratio, json_object_get(sql, "cost"), "cost", err);
    if (rc < 0)
        goto cleanup;

    /* Optional PostgreSQL connection in the manifest (usually it comes from the environment). */
    const json_t *pg = json_object_get(sql, "postgresql");
    if (pg) {
        const char *host = json_string_value(json_object_get(pg, "host"));
        const char *admin = json_string_value(json_object_get(pg, "admin_role"));
        long long port = 5432;
        if (!json_is_object(pg) || !host || host[0] != '/' ||
            get_int(&port, pg, "port", 5432, 1, 65535, err) < 0) {
            rc = ferr(err, "postgresql",
                      "{\"host\": socket directory, \"port\", "
                      "\"admin_role\"}");
            goto cleanup;
        }
        s->pg_host = pr_strdup(host);
        s->pg_admin = pr_strdup(admin ? admin : "postgres");
        s->pg_port = (int)port;
        if (!s->pg_host || !s->pg_admin) {
            rc = pr_error_set(err, PR_ENOMEM, "out of memory");
            goto cleanup;
        }
    }

    rc = parse_questions(s, sql, err);
    if (rc == 0)
        rc = check_tests(s, manifest, err);
    if (rc < 0)
        goto cleanup;
    /* The reference must answer every question. */
    for (size_t i = 0; i < s->nq; i++) {
        struct stat st;
        (void)spath(path, sizeof(path), "%s/%s", s->reference_dir, s->q[i].file);
        if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            rc = pr_error_set(err, PR_EINVAL,
                              "challenge.json: sql.reference: expected %s in the reference "
                              "solution",
                              s->q[i].file);
            goto cleanup;
        }
    }
    *state_out = s;
    s = NULL;
cleanup:
    sql_free(s);
    return rc;
}

/* ---- Running the executor in the sandbox ---- */

int pr_sql_find_executor(char *out, size_t outsz, pr_error *err)
{
    const char *env = getenv("PROCTOR_SQL_EXECUTOR"); /* NOLINT(concurrency-mt-unsafe) */
    char self[PATH_MAX];
    if (env && env[0] == '/' && access(env, X_OK) == 0) {
        (void)snprintf(out, outsz, "%s", env);
        return 0;
    }
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        /* Next to the running binary, or up to three directories above it (test binaries live
         * in build/tests/<area>/). */
        for (int up = 0; up < 4; up++) {
            char *slash = strrchr(self, '/');
            if (!slash)
                break;
            *slash = '\0';
            int w = snprintf(out, outsz, "%s/proctor-sql", self);
            if (w > 0 && (size_t)w < outsz && access(out, X_OK) == 0)
                return 0;
        }
    }
    return pr_error_set(err, PR_ENOTFOUND,
                        "proctor-sql not found next to proctor (set PROCTOR_SQL_EXECUTOR)");
}

static json_t *request_json(const sql_state *s, const char *dir_in_box)
{
    json_t *req = json_object();
    json_t *tables = json_array();
    json_t *qs = json_array();
    if (!req || !tables || !qs)
        goto fail;
    for (size_t i = 0; i < s->ntables; i++)
        json_array_append_new(tables, json_string(s->tables[i]));
    for (size_t i = 0; i < s->nq; i++) {
        json_t *q = json_pack("{s:s, s:s, s:O}", "name", s->q[i].name, "file", s->q[i].file,
                              "params", s->q[i].params);
        if (!q || json_array_append_new(qs, q) != 0)
            goto fail;
    }
    if (json_object_set_new(req, "db", json_string("/work/db.sqlite")) != 0 ||
        json_object_set_new(req, "dir", json_string(dir_in_box)) != 0 ||
        json_object_set_new(req, "tables", tables) != 0 ||
        json_object_set_new(req, "questions", qs) != 0 ||
        json_object_set_new(req, "cache_pages", json_integer(s->cache_pages)) != 0 ||
        json_object_set_new(req, "vm_budget", json_integer(s->vm_budget)) != 0 ||
        json_object_set_new(req, "schema_vm_budget", json_integer(s->schema_vm_budget)) != 0 ||
        json_object_set_new(req, "heap_limit_mb", json_integer(s->heap_limit_mb)) != 0 ||
        json_object_set_new(req, "max_rows", json_integer(s->max_rows)) != 0) {
        tables = qs = NULL;
        goto fail;
    }
    return req;
fail:
    json_decref(req);
    json_decref(tables);
    json_decref(qs);
    return NULL;
}

/* Runs the executor over the submission in subdir (host path) with a private copy of db, in
 * the sandbox. *out receives the executor's JSON (NULL when the box did not finish normally;
 * then res tells why). Returns < 0 only for infrastructure failures. */
int pr_sql_run_sqlite(json_t **out, sbx_result *res, const sql_state *s, const pr_grading *g,
                      const char *submission, const char *db, const char *jobdir, pr_error *err)
{
    char exe[PATH_MAX], path[PATH_MAX], outpath[PATH_MAX], errpath[PATH_MAX];
    json_t *req = NULL;
    char *text = NULL;
    int ofd = -1, efd = -1;
    int rc;

    *out = NULL;
    memset(res, 0, sizeof(*res));
    rc = pr_sql_find_executor(exe, sizeof(exe), err);
    if (rc < 0)
        return rc;
    (void)pr_rm_rf(jobdir);
    if (pr_mkdir_p(jobdir) < 0)
        return pr_error_sys(err, "mkdir %s", jobdir);
    (void)spath(path, sizeof(path), "%s/db.sqlite", jobdir);
    rc = pr_sql_copy_file(db, path, err);
    if (rc < 0)
        goto cleanup;
    req = request_json(s, "/box");
    text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    if (!text) {
        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }
    (void)spath(path, sizeof(path), "%s/request.json", jobdir);
    rc = pr_sql_write_file(path, text, strlen(text), err);
    if (rc < 0)
        goto cleanup;
    /* The box runs as an unprivileged uid: the job directory and the copy must be writable by
     * it (index pages and the statement journal go into the copy). */
    (void)chmod(jobdir, 0777);
    (void)spath(path, sizeof(path), "%s/db.sqlite", jobdir);
    (void)chmod(path, 0666);

    (void)spath(outpath, sizeof(outpath), "%s/result.json", jobdir);
    (void)spath(errpath, sizeof(errpath), "%s/stderr.txt", jobdir);
    ofd = open(outpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    efd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (ofd < 0 || efd < 0) {
        rc = pr_error_sys(err, "create %s", outpath);
        goto cleanup;
    }

    sbx_bind binds[3] = {
        { exe, SQL_EXECUTOR_DST, false },
        { submission, "/box", false },
        { jobdir, "/work", true },
    };
    const char *argv[] = { SQL_EXECUTOR_DST, "run", "/work/request.json", NULL };
    sbx_spec spec;
    sbx_spec_init(&spec);
    spec.argv = argv;
    spec.binds = binds;
    spec.nbinds = PR_ARRAY_LEN(binds);
    spec.chdir = "/work";
    spec.profile = "default";
    spec.limits = g && g->challenge ? g->challenge->limits : (sbx_limits){ 0 };
    /* The copy grows by the candidate's indexes; the heap limit inside SQLite is the real
     * memory bound, the cgroup limit a backstop above it. */
    if (spec.limits.fsize_kb < (uint64_t)1024 * 1024)
        spec.limits.fsize_kb = (uint64_t)1024 * 1024;
    if (spec.limits.mem_mb < (uint64_t)s->heap_limit_mb + 128)
        spec.limits.mem_mb = (uint64_t)s->heap_limit_mb + 128;
    spec.stdout_fd = ofd;
    spec.stderr_fd = efd;
    spec.slot = g ? g->slot_base : -1;
    rc = sbx_run(res, &spec, err);
    if (rc < 0)
        goto cleanup;
    if (res->verdict == SBX_OK) {
        json_error_t jerr;
        struct stat st;
        if (stat(outpath, &st) != 0 || st.st_size > (off_t)SQL_RESULT_MAX) {
            res->verdict = SBX_OLE;
            (void)snprintf(res->message, sizeof(res->message), "executor output too large");
        } else {
            *out = json_load_file(outpath, JSON_REJECT_DUPLICATES, &jerr);
            if (!*out) {
                rc = pr_error_set(err, PR_EINTERNAL, "executor output: %s", jerr.text);
                goto cleanup;
            }
        }
    } else {
        char *etext = NULL;
        size_t elen = 0;
        if (pr_sql_read_file(&etext, &elen, errpath, 4096, NULL) == 0 && elen > 0 &&
            !res->message[0])
            (void)snprintf(res->message, sizeof(res->message), "%.200s", etext);
        pr_free(etext);
    }
cleanup:
    pr_close(&ofd);
    pr_close(&efd);
    pr_free(text);
    json_decref(req);
    return rc;
}

/* ---- Cache of the generated database and of the reference results ---- */

static int ensure_sqlite_db(char *dbpath, size_t dbsz, const sql_state *s, const char *root,
                            const char *digest, pr_error *err)
{
    struct stat st;
    char tmp[PATH_MAX];
    int rc = 0;
    (void)spath(dbpath, dbsz, "%s/%s.sqlite", root, digest);
    if (stat(dbpath, &st) == 0)
        return 0;
    int lock = pr_sql_cache_lock(root, digest, err);
    if (lock < 0)
        return lock;
    if (stat(dbpath, &st) != 0) {
        unsigned long long t0 = pr_now_ns();
        (void)spath(tmp, sizeof(tmp), "%s/%s.sqlite.tmp.%ld.%ld", root, digest, (long)getpid(),
                    (long)gettid());
        (void)unlink(tmp);
        rc = pr_sql_build_sqlite(tmp, s->schema_sql, s->gen_name, s->seed, err);
        if (rc == 0 && rename(tmp, dbpath) != 0)
            rc = pr_error_sys(err, "rename %s", tmp);
        if (rc < 0)
            (void)unlink(tmp);
        else
            pr_log(PR_LOG_INFO, "event=sql_db_built digest=%.12s ms=%llu", digest,
                   (pr_now_ns() - t0) / 1000000ULL);
    }
    pr_close(&lock);
    return rc;
}

static int ensure_reference(json_t **out, const sql_state *s, const pr_grading *g, const char *root,
                            const char *digest, const char *dbpath, pr_error *err)
{
    char path[PATH_MAX], jobdir[PATH_MAX];
    json_t *ref = NULL;
    sbx_result res;
    int rc = 0;

    *out = NULL;
    /* Counters depend on the SQLite version: a library upgrade measures the reference again. */
    (void)spath(path, sizeof(path), "%s/%s.reference-sqlite-%s.json", root, digest,
                sqlite3_libversion());
    json_error_t jerr;
    ref = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (ref) {
        *out = ref;
        return 0;
    }
    int lock = pr_sql_cache_lock(root, digest, err);
    if (lock < 0)
        return lock;
    ref = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!ref) {
        (void)spath(jobdir, sizeof(jobdir), "%s/%s.refrun.%ld.%ld", root, digest, (long)getpid(),
                    (long)gettid());
        rc = pr_sql_run_sqlite(&ref, &res, s, g, s->reference_dir, dbpath, jobdir, err);
        (void)pr_rm_rf(jobdir);
        if (rc == 0 && !ref)
            rc = pr_error_set(err, PR_EINVAL, "reference solution: executor ended with %s: %s",
                              sbx_verdict_name(res.verdict), res.message);
        if (rc == 0) {
            /* Every reference question must succeed, or the pack is broken. */
            size_t i;
            const json_t *q;
            const char *ss =
                json_string_value(json_object_get(json_object_get(ref, "schema"), "status"));
            if (!ss || (strcmp(ss, "ok") != 0 && strcmp(ss, "absent") != 0))
                rc = pr_error_set(
                    err, PR_EINVAL, "reference schema.sql: %s",
                    json_string_value(json_object_get(json_object_get(ref, "schema"), "message")));
            json_array_foreach (json_object_get(ref, "questions"), i, q) {
                const char *st = json_string_value(json_object_get(q, "status"));
                if (rc == 0 && (!st || strcmp(st, "ok") != 0))
                    rc = pr_error_set(err, PR_EINVAL, "reference %s: %s: %s",
                                      json_string_value(json_object_get(q, "name")), st,
                                      json_string_value(json_object_get(q, "message")));
            }
        }
        if (rc == 0) {
            char *text = json_dumps(ref, JSON_COMPACT);
            rc = text ? pr_sql_write_file(path, text, strlen(text), err)
                      : pr_error_set(err, PR_ENOMEM, "out of memory");
            pr_free(text);
        }
    }
    pr_close(&lock);
    if (rc < 0) {
        json_decref(ref);
        return rc;
    }
    *out = ref;
    return 0;
}

/* ---- Scoring ---- */

static long long run_sum(const json_t *q, const char *key)
{
    long long sum = 0;
    size_t i;
    const json_t *r;
    json_array_foreach (json_object_get(q, "runs"), i, r)
        sum += json_integer_value(json_object_get(r, key));
    return sum;
}

long long pr_sql_question_cost(const json_t *q, bool pg)
{
    if (pg)
        return run_sum(q, "shared_blocks");
    long long sum = 0;
    size_t i;
    const json_t *r;
    json_array_foreach (json_object_get(q, "runs"), i, r)
        sum += pr_sql_cost(json_integer_value(json_object_get(r, "vm_steps")),
                           json_integer_value(json_object_get(r, "cache_misses")));
    return sum;
}

static const json_t *find_by_name(const json_t *arr, const char *name)
{
    size_t i;
    const json_t *q;
    json_array_foreach (arr, i, q) {
        const char *n = json_string_value(json_object_get(q, "name"));
        if (n && strcmp(n, name) == 0)
            return q;
    }
    return NULL;
}

/* The correctness verdict of one question: AC, WA, RE, TLE, MLE. */
static const char *judge(const sql_question *sq, long long s_max_rows, const json_t *got,
                         const json_t *ref, char *msg, size_t msgsz)
{
    const char *st = json_string_value(json_object_get(got, "status"));
    const char *m = json_string_value(json_object_get(got, "message"));
    if (!st) {
        (void)snprintf(msg, msgsz, "no result for %s", sq->file);
        return "IE";
    }
    if (strcmp(st, "missing") == 0) {
        (void)snprintf(msg, msgsz, "%s is missing", sq->file);
        return "RE";
    }
    if (strcmp(st, "budget") == 0) {
        (void)snprintf(msg, msgsz, "%s: %s", sq->file, m ? m : "VM-step budget exceeded");
        return "TLE";
    }
    if (strcmp(st, "nomem") == 0) {
        (void)snprintf(msg, msgsz, "%s: %s", sq->file, m ? m : "heap limit exceeded");
        return "MLE";
    }
    if (strcmp(st, "ok") != 0) {
        (void)snprintf(msg, msgsz, "%s: %s", sq->file, m ? m : st);
        return "RE";
    }
    /* Columns: same count and names (case-insensitive). */
    const json_t *gc = json_object_get(got, "columns"), *rcols = json_object_get(ref, "columns");
    if (json_array_size(gc) != json_array_size(rcols)) {
        (void)snprintf(msg, msgsz, "%s: expected %zu columns, got %zu", sq->file,
                       json_array_size(rcols), json_array_size(gc));
        return "WA";
    }
    for (size_t i = 0; i < json_array_size(gc); i++) {
        const char *a = json_string_value(json_array_get(rcols, i));
        const char *b = json_string_value(json_array_get(gc, i));
        if (!a || !b || strcasecmp(a, b) != 0) {
            (void)snprintf(msg, msgsz, "%s: column %zu should be named %s, got %.60s", sq->file,
                           i + 1, a ? a : "?", b ? b : "?");
            return "WA";
        }
    }
    const json_t *gr = json_object_get(got, "runs"), *rr = json_object_get(ref, "runs");
    for (size_t i = 0; i < json_array_size(rr); i++) {
        const json_t *a = json_array_get(rr, i), *b = json_array_get(gr, i);
        char why[400];
        if (json_is_true(json_object_get(b, "truncated"))) {
            char *ps = json_dumps(json_array_get(sq->params, i), JSON_COMPACT);
            (void)snprintf(msg, msgsz, "%s with %s: returned more than %lld rows (expected %zu)",
                           sq->file, ps ? ps : "{}", s_max_rows,
                           json_array_size(json_object_get(a, "rows")));
            pr_free(ps);
            return "WA";
        }
        if (!pr_sql_rows_equal(json_object_get(a, "rows"), json_object_get(b, "rows"), sq->ordered,
                               why, sizeof(why))) {
            char *ps = json_dumps(json_array_get(sq->params, i), JSON_COMPACT);
            (void)snprintf(msg, msgsz, "%s with %s: %s", sq->file, ps ? ps : "{}", why);
            pr_free(ps);
            return "WA";
        }
    }
    (void)snprintf(msg, msgsz, "%zu parameter set%s: same rows as the reference%s",
                   json_array_size(rr), json_array_size(rr) == 1 ? "" : "s",
                   sq->ordered ? ", in order" : "");
    return "AC";
}

static json_t *counters_json(const json_t *q, bool pg)
{
    if (pg)
        return json_pack("{s:I}", "shared_blocks", (json_int_t)run_sum(q, "shared_blocks"));
    return json_pack("{s:I, s:I, s:I, s:I, s:I}", "vm_steps", (json_int_t)run_sum(q, "vm_steps"),
                     "fullscan_steps", (json_int_t)run_sum(q, "fullscan_steps"), "sorts",
                     (json_int_t)run_sum(q, "sorts"), "autoindex",
                     (json_int_t)run_sum(q, "autoindex"), "cache_misses",
                     (json_int_t)run_sum(q, "cache_misses"));
}

int pr_sql_score(pr_grading *g, const sql_state *s, const json_t *result, const json_t *ref,
                 const sbx_result *res, bool pg, pr_error *err)
{
    json_t *metrics = json_object();
    const char *schema_status =
        json_string_value(json_object_get(json_object_get(result, "schema"), "status"));
    const char *schema_msg =
        json_string_value(json_object_get(json_object_get(result, "schema"), "message"));
    bool schema_ok =
        schema_status && (strcmp(schema_status, "ok") == 0 || strcmp(schema_status, "absent") == 0);
    const char *engine = pg ? "postgresql" : "sqlite";
    char msg[1024];
    int rc = 0;

    if (!metrics)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    /* Per-question metrics first, then one result per manifest test in manifest order. */
    for (size_t i = 0; i < s->nq; i++) {
        const sql_question *sq = &s->q[i];
        const json_t *got = find_by_name(json_object_get(result, "questions"), sq->name);
        const json_t *rq = find_by_name(json_object_get(ref, "questions"), sq->name);
        json_t *m = json_object();
        if (!m)
            continue;
        (void)json_object_set_new(m, "engine", json_string(engine));
        json_t *c = counters_json(got, pg); /* zeros when the question did not run */
        if (c)
            (void)json_object_update(m, c);
        json_decref(c);
        (void)json_object_set_new(m, "cost", json_integer(got ? pr_sql_question_cost(got, pg) : 0));
        (void)json_object_set_new(m, "reference_cost",
                                  json_integer(rq ? pr_sql_question_cost(rq, pg) : 0));
        (void)json_object_set_new(m, "reference", rq ? counters_json(rq, pg) : json_null());
        const char *plan = got ? json_string_value(json_object_get(got, "plan")) : NULL;
        const char *rplan = rq ? json_string_value(json_object_get(rq, "plan")) : NULL;
        (void)pr_report_set_text_sql(m, "plan", plan ? plan : "");
        (void)pr_report_set_text_sql(m, "reference_plan", rplan ? rplan : "");
        (void)json_object_set_new(m, "params",
                                  json_integer((json_int_t)json_array_size(sq->params)));
        (void)json_object_set_new(metrics, sq->name, m);
    }
    if (!pg)
        (void)json_object_set_new(metrics, "cost_formula",
                                  json_string("vm_steps + 100 * cache_misses, summed over the "
                                              "parameter sets"));
    else
        (void)json_object_set_new(metrics, "cost_formula",
                                  json_string("shared blocks hit + read (EXPLAIN ANALYZE "
                                              "BUFFERS), summed over the parameter sets"));
    if (json_object_set_new(g->metrics, "sql", metrics) != 0)
        return pr_error_set(err, PR_ENOMEM, "out of memory");

    for (size_t t = 0; t < g->challenge->ntests; t++) {
        const pr_test_meta *meta = &g->challenge->tests[t];
        bool is_cost = false;
        const sql_question *sq = find_question(s, meta->name, &is_cost);
        const json_t *got =
            sq ? find_by_name(json_object_get(result, "questions"), sq->name) : NULL;
        const json_t *rq = sq ? find_by_name(json_object_get(ref, "questions"), sq->name) : NULL;
        const char *verdict;
        double points = 0;
        json_t *added;

        if (!sq || !rq) {
            added = pr_grading_add_test(g, meta, "IE", 0, res, "no such question", 16);
        } else if (!schema_ok) {
            (void)snprintf(msg, sizeof(msg), "schema.sql %s: %s",
                           schema_status ? schema_status : "failed", schema_msg ? schema_msg : "");
            added = pr_grading_add_test(g, meta, "RE", 0, res, msg, strlen(msg));
        } else {
            char jmsg[700];
            verdict = judge(sq, s->max_rows, got, rq, jmsg, sizeof(jmsg));
            if (!is_cost) {
                points = strcmp(verdict, "AC") == 0 ? meta->points : 0;
                added = pr_grading_add_test(g, meta, verdict, points, res, jmsg, strlen(jmsg));
            } else if (strcmp(verdict, "AC") != 0) {
                (void)snprintf(msg, sizeof(msg), "cost not scored: the answer is not correct (%s)",
                               verdict);
                added = pr_grading_add_test(g, meta, "SKIP", 0, res, msg, strlen(msg));
            } else {
                long long cand = pr_sql_question_cost(got, pg);
                long long refc = pr_sql_question_cost(rq, pg);
                double f = pr_sql_cost_fraction((double)cand, (double)refc, sq->full_ratio,
                                                sq->zero_ratio);
                points = floor(meta->points * f * 100.0 + 0.5) / 100.0;
                (void)snprintf(msg, sizeof(msg),
                               "cost %lld vs reference %lld (%.2fx): full points within %.4gx, "
                               "none beyond %.4gx",
                               cand, refc, refc > 0 ? (double)cand / (double)refc : 0.0,
                               sq->full_ratio, sq->zero_ratio);
                added = pr_grading_add_test(g, meta, points > 0 ? "AC" : "WA", points, res, msg,
                                            strlen(msg));
            }
        }
        if (!added) {
            rc = pr_error_set(err, PR_ENOMEM, "out of memory");
            break;
        }
    }
    return rc;
}

int pr_report_set_text_sql(json_t *obj, const char *key, const char *text)
{
    bool cut = false;
    char *clean = pr_text_clean(text, strlen(text), 8192, &cut);
    if (!clean)
        return PR_ENOMEM;
    int rc = json_object_set_new(obj, key, json_string(clean)) == 0 ? 0 : PR_ENOMEM;
    pr_free(clean);
    return rc;
}

/* Every test gets the same verdict (the executor did not finish). */
static int all_tests(pr_grading *g, const char *verdict, const sbx_result *res, const char *msg)
{
    for (size_t t = 0; t < g->challenge->ntests; t++) {
        if (!pr_grading_add_test(g, &g->challenge->tests[t], verdict, 0, res, msg, strlen(msg)))
            return PR_ENOMEM;
    }
    return 0;
}

/* ---- Engine choice ---- */

bool pr_sql_pg_configured(const sql_state *s, pr_sql_pgconn *conn)
{
    return pr_sql_pg_choose(s, NULL, conn);
}

bool pr_sql_pg_choose(const sql_state *s, const pr_grading *g, pr_sql_pgconn *conn)
{
    const char *engine = getenv("PROCTOR_SQL_ENGINE"); /* NOLINT(concurrency-mt-unsafe) */
    const char *host = getenv("PROCTOR_PG_HOST");      /* NOLINT(concurrency-mt-unsafe) */
    const char *port = getenv("PROCTOR_PG_PORT");      /* NOLINT(concurrency-mt-unsafe) */
    const char *admin = getenv("PROCTOR_PG_ADMIN");    /* NOLINT(concurrency-mt-unsafe) */
    memset(conn, 0, sizeof(*conn));
    if (engine && strcmp(engine, "sqlite") == 0)
        return false;
    if (!s->allow_pg)
        return false;
    if (g && g->pg_host) {
        (void)snprintf(conn->host, sizeof(conn->host), "%s", g->pg_host);
        conn->port = g->pg_port > 0 ? g->pg_port : 5432;
        (void)snprintf(conn->admin, sizeof(conn->admin), "%s",
                       g->pg_admin ? g->pg_admin : "postgres");
        return true;
    }
    if (host && host[0] == '/') {
        (void)snprintf(conn->host, sizeof(conn->host), "%s", host);
        conn->port = 5432;
        if (port) {
            char *end = NULL;
            long p = strtol(port, &end, 10);
            if (end && *end == '\0' && p > 0 && p < 65536)
                conn->port = (int)p;
        }
        (void)snprintf(conn->admin, sizeof(conn->admin), "%s", admin ? admin : "postgres");
        return true;
    }
    if (s->pg_host) {
        (void)snprintf(conn->host, sizeof(conn->host), "%s", s->pg_host);
        conn->port = s->pg_port;
        (void)snprintf(conn->admin, sizeof(conn->admin), "%s", s->pg_admin);
        return true;
    }
    return false;
}

static int grade_sqlite(pr_grading *g, const sql_state *s, pr_error *err)
{
    char root[PATH_MAX], dbpath[PATH_MAX], jobdir[PATH_MAX];
    json_t *ref = NULL, *result = NULL;
    sbx_result res;
    int rc;

    if (!s->allow_sqlite)
        return pr_error_set(err, PR_EINVAL,
                            "this pack runs on PostgreSQL only, and no "
                            "PostgreSQL server is configured");
    rc = pr_sql_cache_root(root, sizeof(root), err);
    if (rc == 0 && g->progress)
        g->progress(g->payload, "test", "sql: database");
    if (rc == 0)
        rc = ensure_sqlite_db(dbpath, sizeof(dbpath), s, root, g->challenge->digest, err);
    if (rc == 0 && g->progress)
        g->progress(g->payload, "test", "sql: reference");
    if (rc == 0)
        rc = ensure_reference(&ref, s, g, root, g->challenge->digest, dbpath, err);
    if (rc < 0)
        goto cleanup;
    if (g->progress)
        g->progress(g->payload, "test", "sql: submission");
    (void)spath(jobdir, sizeof(jobdir), "%s/sql", g->scratch);
    rc = pr_sql_run_sqlite(&result, &res, s, g, g->workdir, dbpath, jobdir, err);
    (void)pr_rm_rf(jobdir); /* the copy is large; the job keeps only the report */
    if (rc < 0)
        goto cleanup;
    if (!result) {
        char msg[400];
        (void)snprintf(msg, sizeof(msg), "the SQL executor ended with %s%s%s%s%s",
                       sbx_verdict_name(res.verdict), res.message[0] ? ": " : "", res.message,
                       res.violation[0] ? " syscall " : "", res.violation);
        rc = all_tests(g, pr_test_verdict_from_sbx(res.verdict), &res, msg);
        if (rc < 0)
            rc = pr_error_set(err, rc, "out of memory");
        goto cleanup;
    }
    rc = pr_sql_score(g, s, result, ref, &res, false, err);
cleanup:
    json_decref(ref);
    json_decref(result);
    return rc;
}

static int sql_grade(pr_grading *g, const void *state, pr_error *err)
{
    const sql_state *s = state;
    pr_sql_pgconn conn;
    if (!s || !g || !g->challenge)
        return pr_error_set(err, PR_EINTERNAL, "sql: no state");
    if (pr_sql_pg_choose(s, g, &conn))
        return pr_sql_grade_pg(g, s, &conn, err);
    return grade_sqlite(g, s, err);
}

const pr_kind pr_kind_sql = { "sql", sql_parse, sql_grade, sql_free };
