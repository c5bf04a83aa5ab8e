/* proctor-sql: the SQL executor that runs INSIDE the sandbox. It applies a submission's
 * schema.sql (CREATE INDEX and ANALYZE only) to a private copy of the challenge database, then
 * runs each question file once per parameter set on a fresh read-only connection with a fixed
 * page cache, and prints one JSON object with the rows, the deterministic cost counters and the
 * query plans. Links only sqlite3 and jansson (plus runner/sql_check.c).
 *
 * usage: proctor-sql run REQUEST.json     (result on stdout, exit 0 unless the request is bad)
 *
 * Request: {"db": path, "dir": submission dir, "tables": [...], "cache_pages": N,
 *           "vm_budget": N, "schema_vm_budget": N, "heap_limit_mb": N, "max_rows": N,
 *           "questions": [{"name", "file", "params": [{name: value}]}]}
 * Result:  {"schema": {"status", "message", "statements"},
 *           "questions": [{"name", "status", "message", "columns", "plan",
 *                          "runs": [{"status", "message", "rows", "row_count", "truncated",
 *                                    "vm_steps", "fullscan_steps", "sorts", "autoindex",
 *                                    "cache_misses"}]}]}
 * Statuses: ok, absent (no schema.sql), missing (no question file), refused, error,
 * budget (VM-step budget exceeded), nomem (heap limit). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sql_check.h"

#define MAX_FILE_BYTES    (64 * 1024L)
#define MAX_TEXT_BYTES    4096
#define MAX_OUTPUT_BYTES  ((size_t)8 * 1024 * 1024)
#define MAX_SCHEMA_STMTS  64
#define PROGRESS_INTERVAL 1000

typedef struct budget {
    long long calls; /* progress handler calls so far */
    long long limit; /* calls allowed (budget / PROGRESS_INTERVAL) */
} budget;

static int on_progress(void *payload)
{
    budget *b = payload;
    b->calls++;
    return b->calls > b->limit ? 1 : 0;
}

static void fail(const char *msg)
{
    fprintf(stderr, "proctor-sql: %s\n", msg);
    exit(2);
}

/* Reads a regular file (no symlinks) of at most MAX_FILE_BYTES. Returns NULL and sets *missing
 * when absent; NULL with a message in why for other problems. */
static char *read_file(const char *dir, const char *name, size_t *len, int *missing, char *why,
                       size_t whysz)
{
    char path[4096];
    struct stat st;
    char *buf = NULL;
    int fd = -1;

    *missing = 0;
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path)) {
        (void)snprintf(why, whysz, "path too long");
        return NULL;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT)
            *missing = 1;
        else if (errno == ELOOP)
            (void)snprintf(why, whysz, "%s is a symbolic link", name);
        else
            (void)snprintf(why, whysz, "cannot open %s: %s", name, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        (void)snprintf(why, whysz, "%s is not a regular file", name);
        close(fd);
        return NULL;
    }
    if (st.st_size > MAX_FILE_BYTES) {
        (void)snprintf(why, whysz, "%s is larger than %ld bytes", name, MAX_FILE_BYTES);
        close(fd);
        return NULL;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        fail("out of memory");
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    *len = got;
    return buf;
}

static void set_str(json_t *o, const char *k, const char *v)
{
    /* Callers pass constants, names from the request or text cleaned by set_msg; anything
     * else that is not valid UTF-8 becomes "?". */
    json_t *s = json_string(v);
    if (!s)
        s = json_string("?");
    if (!s || json_object_set_new(o, k, s) != 0)
        fail("out of memory");
}

static void set_msg(json_t *o, const char *k, const char *v)
{
    char clean[512];
    size_t j = 0;
    for (size_t i = 0; v[i] && j + 1 < sizeof(clean); i++) {
        unsigned char ch = (unsigned char)v[i];
        clean[j++] = (char)((ch >= 0x20 && ch < 0x7f) ? ch : '?');
    }
    clean[j] = '\0';
    set_str(o, k, clean);
}

static void set_int(json_t *o, const char *k, long long v)
{
    if (json_object_set_new(o, k, json_integer(v)) != 0)
        fail("out of memory");
}

static void hex(char *out, const unsigned char *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* One result value as JSON: numbers and text as themselves, blobs and invalid text tagged. */
static json_t *value_json(sqlite3_stmt *st, int col, size_t *bytes)
{
    switch (sqlite3_column_type(st, col)) {
    case SQLITE_INTEGER:
        *bytes += 12;
        return json_integer(sqlite3_column_int64(st, col));
    case SQLITE_FLOAT: {
        double d = sqlite3_column_double(st, col);
        *bytes += 24;
        json_t *r = json_real(d);
        if (!r) { /* infinities */
            json_t *o = json_object();
            json_object_set_new(o, "real", json_string(d > 0 ? "inf" : "-inf"));
            return o;
        }
        return r;
    }
    case SQLITE_NULL:
        *bytes += 4;
        return json_null();
    case SQLITE_TEXT: {
        const char *t = (const char *)sqlite3_column_text(st, col);
        size_t n = (size_t)sqlite3_column_bytes(st, col);
        if (n <= MAX_TEXT_BYTES) {
            json_t *s = json_stringn(t ? t : "", n);
            if (s) {
                *bytes += n + 2;
                return s;
            }
        }
        /* Invalid UTF-8 or very long: tagged hex of the first bytes, never equal to a plain
         * string. */
        size_t m = (t && n < MAX_TEXT_BYTES / 2) ? n : (t ? MAX_TEXT_BYTES / 2 : 0);
        char *h = malloc(2 * m + 1);
        if (!h)
            fail("out of memory");
        hex(h, t ? (const unsigned char *)t : (const unsigned char *)"", m);
        json_t *o = json_pack("{s:s, s:I}", "text_hex", h, "bytes", (json_int_t)n);
        free(h);
        *bytes += 2 * m + 32;
        return o;
    }
    default: {
        const unsigned char *p = sqlite3_column_blob(st, col);
        size_t n = (size_t)sqlite3_column_bytes(st, col);
        size_t m = (p && n < MAX_TEXT_BYTES / 2) ? n : (p ? MAX_TEXT_BYTES / 2 : 0);
        char *h = malloc(2 * m + 1);
        if (!h)
            fail("out of memory");
        hex(h, p ? p : (const unsigned char *)"", m);
        json_t *o = json_pack("{s:s, s:I}", "blob_hex", h, "bytes", (json_int_t)n);
        free(h);
        *bytes += 2 * m + 32;
        return o;
    }
    }
}

static int bind_params(sqlite3_stmt *st, const json_t *params, char *why, size_t whysz)
{
    int n = sqlite3_bind_parameter_count(st);
    for (int i = 1; i <= n; i++) {
        const char *name = sqlite3_bind_parameter_name(st, i);
        if (!name) {
            (void)snprintf(why, whysz,
                           "positional parameters (?) are not supported; use the "
                           "named parameters of the statement");
            return -1;
        }
        const json_t *v = json_object_get(params, name + 1);
        if (!v) {
            (void)snprintf(why, whysz, "unknown parameter %.100s", name);
            return -1;
        }
        int rc;
        if (json_is_integer(v))
            rc = sqlite3_bind_int64(st, i, json_integer_value(v));
        else if (json_is_real(v))
            rc = sqlite3_bind_double(st, i, json_real_value(v));
        else if (json_is_string(v))
            rc = sqlite3_bind_text(st, i, json_string_value(v), (int)json_string_length(v),
                                   SQLITE_TRANSIENT);
        else
            rc = sqlite3_bind_null(st, i);
        if (rc != SQLITE_OK) {
            (void)snprintf(why, whysz, "cannot bind %.100s", name);
            return -1;
        }
    }
    return 0;
}

static const char *status_of(int rc)
{
    if (rc == SQLITE_INTERRUPT)
        return "budget";
    if (rc == SQLITE_NOMEM)
        return "nomem";
    if (rc == SQLITE_AUTH || rc == SQLITE_MISUSE)
        return "refused";
    return "error";
}

static int exec_setup(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static sqlite3 *open_db(const char *path, int flags, int cache_pages, pr_sqlchk *chk, budget *b,
                        char *why, size_t whysz)
{
    sqlite3 *db = NULL;
    char pragma[128];
    int rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        (void)snprintf(why, whysz, "cannot open the database: %s",
                       db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    /* Fixed, engine-controlled settings first; the authorizer refuses PRAGMA afterwards. */
    (void)snprintf(pragma, sizeof(pragma),
                   "PRAGMA cache_size=%d; PRAGMA temp_store=MEMORY; PRAGMA mmap_size=0; "
                   "PRAGMA cache_spill=OFF;",
                   cache_pages);
    rc = exec_setup(db, pragma);
    if (rc == SQLITE_OK && (flags & SQLITE_OPEN_READONLY))
        rc = exec_setup(db, "PRAGMA query_only=ON;");
    if (rc == SQLITE_OK && !(flags & SQLITE_OPEN_READONLY))
        rc = exec_setup(db, "PRAGMA journal_mode=MEMORY;");
    if (rc == SQLITE_OK)
        rc = pr_sqlchk_harden(db, chk);
    if (rc != SQLITE_OK) {
        (void)snprintf(why, whysz, "cannot configure the database: %s", sqlite3_errmsg(db));
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_progress_handler(db, PROGRESS_INTERVAL, on_progress, b);
    return db;
}

static json_t *run_schema(const json_t *req, const char *dbpath, const char *dir, pr_sqlchk *chk)
{
    json_t *out = json_object();
    char why[512] = "";
    size_t len = 0;
    int missing = 0;
    sqlite3 *db = NULL;
    char *text = NULL;
    budget b = { 0,
                 json_integer_value(json_object_get(req, "schema_vm_budget")) / PROGRESS_INTERVAL };
    if (b.limit <= 0)
        b.limit = 500000;

    text = read_file(dir, "schema.sql", &len, &missing, why, sizeof(why));
    if (!text) {
        set_str(out, "status", missing ? "absent" : "refused");
        set_msg(out, "message", missing ? "" : why);
        return out;
    }
    chk->mode = PR_SQLCHK_SCHEMA;
    db = open_db(dbpath, SQLITE_OPEN_READWRITE, -16384, chk, &b, why, sizeof(why));
    if (!db) {
        set_str(out, "status", "error");
        set_msg(out, "message", why);
        free(text);
        return out;
    }
    /* All or nothing: the statements run in one transaction, committed only if each passed. */
    sqlite3_set_authorizer(db, NULL, NULL);
    (void)exec_setup(db, "BEGIN");
    sqlite3_set_authorizer(db, pr_sqlchk_authorizer, chk);
    size_t off = 0;
    int count = 0;
    const char *status = "ok";
    while (!pr_sqlchk_blank(text + off, len - off)) {
        sqlite3_stmt *st = NULL;
        size_t tail = 0;
        char swhy[400];
        if (count >= MAX_SCHEMA_STMTS) {
            status = "refused";
            (void)snprintf(why, sizeof(why), "schema.sql: more than %d statements",
                           MAX_SCHEMA_STMTS);
            break;
        }
        int rc = pr_sqlchk_prepare(db, chk, text + off, len - off, &tail, &st, swhy, sizeof(swhy));
        count++;
        if (rc == SQLITE_OK) {
            do {
                rc = sqlite3_step(st);
            } while (rc == SQLITE_ROW);
            if (rc == SQLITE_DONE)
                rc = SQLITE_OK;
            else
                (void)snprintf(swhy, sizeof(swhy), "%s", sqlite3_errmsg(db));
            sqlite3_finalize(st);
        }
        if (rc != SQLITE_OK) {
            status = rc == SQLITE_INTERRUPT ? "budget" : status_of(rc);
            if (rc == SQLITE_INTERRUPT)
                (void)snprintf(swhy, sizeof(swhy), "VM-step budget exceeded");
            (void)snprintf(why, sizeof(why), "schema.sql statement %d: %s", count, swhy);
            break;
        }
        off += tail;
    }
    sqlite3_set_authorizer(db, NULL, NULL);
    (void)exec_setup(db, strcmp(status, "ok") == 0 ? "COMMIT" : "ROLLBACK");
    sqlite3_close(db);
    set_str(out, "status", status);
    set_msg(out, "message", why);
    set_int(out, "statements", count);
    free(text);
    return out;
}

/* Renders EXPLAIN QUERY PLAN rows as an indented tree, one line per step. */
static void plan_text(sqlite3 *db, const char *sql, size_t len, json_t *q)
{
    char *buf = malloc(len + 32);
    sqlite3_stmt *st = NULL;
    char text[8192];
    size_t used = 0;
    int ids[64], depth[64], nids = 0;

    if (!buf)
        fail("out of memory");
    memcpy(buf, "EXPLAIN QUERY PLAN ", 19);
    memcpy(buf + 19, sql, len);
    buf[19 + len] = '\0';
    text[0] = '\0';
    if (sqlite3_prepare_v3(db, buf, (int)(len + 19), 0, &st, NULL) == SQLITE_OK && st) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            int id = sqlite3_column_int(st, 0), parent = sqlite3_column_int(st, 1);
            const char *detail = (const char *)sqlite3_column_text(st, 3);
            int d = 0;
            for (int i = 0; i < nids; i++) {
                if (ids[i] == parent)
                    d = depth[i] + 1;
            }
            if (nids < 64) {
                ids[nids] = id;
                depth[nids] = d;
                nids++;
            }
            int n = snprintf(text + used, sizeof(text) - used, "%s%*s%s", used ? "\n" : "", 2 * d,
                             "", detail ? detail : "");
            if (n < 0 || (size_t)n >= sizeof(text) - used)
                break;
            used += (size_t)n;
        }
    }
    sqlite3_finalize(st);
    free(buf);
    json_t *s = json_string(text);
    if (!s)
        s = json_string("");
    json_object_set_new(q, "plan", s);
}

static json_t *run_one(const char *dbpath, const char *sql, size_t len, const json_t *params,
                       int cache_pages, long long vm_budget, int max_rows, size_t *out_bytes,
                       pr_sqlchk *chk, json_t *q, int want_plan)
{
    json_t *run = json_object();
    json_t *rows = json_array();
    char why[512] = "";
    sqlite3_stmt *st = NULL;
    budget b = { 0, vm_budget / PROGRESS_INTERVAL };
    long long nrows = 0;
    int truncated = 0;
    int rc;

    chk->mode = PR_SQLCHK_QUERY;
    sqlite3 *db = open_db(dbpath, SQLITE_OPEN_READONLY, cache_pages, chk, &b, why, sizeof(why));
    if (!db) {
        set_str(run, "status", "error");
        set_msg(run, "message", why);
        json_decref(rows);
        return run;
    }
    rc = pr_sqlchk_prepare(db, chk, sql, len, NULL, &st, why, sizeof(why));
    if (rc == SQLITE_OK && bind_params(st, params, why, sizeof(why)) != 0)
        rc = SQLITE_RANGE;
    if (rc != SQLITE_OK) {
        set_str(run, "status", rc == SQLITE_RANGE ? "error" : status_of(rc));
        set_msg(run, "message", why);
        sqlite3_finalize(st);
        sqlite3_close(db);
        json_decref(rows);
        return run;
    }
    if (!json_object_get(q, "columns")) {
        json_t *cols = json_array();
        for (int i = 0; i < sqlite3_column_count(st); i++) {
            const char *n = sqlite3_column_name(st, i);
            json_t *s = json_string(n ? n : "");
            json_array_append_new(cols, s ? s : json_string("?"));
        }
        json_object_set_new(q, "columns", cols);
    }
    int ncol = sqlite3_column_count(st);
    int cur = 0, hi = 0;
    (void)sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_MISS, &cur, &hi, 1);
    b.calls = 0;
    for (;;) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        nrows++;
        if (nrows > max_rows || *out_bytes > MAX_OUTPUT_BYTES) {
            truncated = 1;
            continue; /* keep stepping: the cost covers the whole statement */
        }
        json_t *row = json_array();
        for (int i = 0; i < ncol; i++)
            json_array_append_new(row, value_json(st, i, out_bytes));
        json_array_append_new(rows, row);
    }
    (void)sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_MISS, &cur, &hi, 0);
    if (rc == SQLITE_DONE) {
        set_str(run, "status", "ok");
    } else {
        set_str(run, "status", status_of(rc));
        if (rc == SQLITE_INTERRUPT)
            (void)snprintf(why, sizeof(why), "VM-step budget of %lld exceeded", vm_budget);
        else if (rc == SQLITE_NOMEM)
            (void)snprintf(why, sizeof(why), "heap limit exceeded");
        else
            (void)snprintf(why, sizeof(why), "%s", sqlite3_errmsg(db));
        set_msg(run, "message", why);
    }
    set_int(run, "vm_steps", sqlite3_stmt_status(st, SQLITE_STMTSTATUS_VM_STEP, 0));
    set_int(run, "fullscan_steps", sqlite3_stmt_status(st, SQLITE_STMTSTATUS_FULLSCAN_STEP, 0));
    set_int(run, "sorts", sqlite3_stmt_status(st, SQLITE_STMTSTATUS_SORT, 0));
    set_int(run, "autoindex", sqlite3_stmt_status(st, SQLITE_STMTSTATUS_AUTOINDEX, 0));
    set_int(run, "cache_misses", cur);
    set_int(run, "row_count", nrows);
    json_object_set_new(run, "truncated", json_boolean(truncated));
    json_object_set_new(run, "rows", rows);
    sqlite3_finalize(st);
    if (want_plan)
        plan_text(db, sql, len, q);
    sqlite3_close(db);
    return run;
}

static json_t *run_question(const json_t *req, const json_t *qreq, const char *dbpath,
                            const char *dir, pr_sqlchk *chk, size_t *out_bytes)
{
    json_t *q = json_object();
    json_t *runs = json_array();
    const char *name = json_string_value(json_object_get(qreq, "name"));
    const char *file = json_string_value(json_object_get(qreq, "file"));
    const json_t *sets = json_object_get(qreq, "params");
    int cache_pages = (int)json_integer_value(json_object_get(req, "cache_pages"));
    long long vm_budget = json_integer_value(json_object_get(req, "vm_budget"));
    int max_rows = (int)json_integer_value(json_object_get(req, "max_rows"));
    char why[512] = "";
    size_t len = 0;
    int missing = 0;
    char *text;

    if (!name || !file || !json_is_array(sets))
        fail("bad question in the request");
    set_str(q, "name", name);
    text = read_file(dir, file, &len, &missing, why, sizeof(why));
    if (!text) {
        set_str(q, "status", missing ? "missing" : "refused");
        set_msg(q, "message", missing ? "the file is missing" : why);
        json_object_set_new(q, "runs", runs);
        return q;
    }
    const char *status = "ok";
    size_t i;
    const json_t *params;
    json_array_foreach (sets, i, params) {
        json_t *run = run_one(dbpath, text, len, params, cache_pages, vm_budget, max_rows,
                              out_bytes, chk, q, i == 0);
        const char *rs = json_string_value(json_object_get(run, "status"));
        json_array_append_new(runs, run);
        if (strcmp(rs, "ok") != 0) {
            status = rs;
            set_msg(q, "message", json_string_value(json_object_get(run, "message")));
            if (strcmp(rs, "refused") == 0)
                break; /* the same text is refused for every set */
        }
    }
    set_str(q, "status", status);
    if (!json_object_get(q, "message"))
        set_str(q, "message", "");
    json_object_set_new(q, "runs", runs);
    free(text);
    return q;
}

int main(int argc, char **argv)
{
    json_error_t jerr;
    if (argc != 3 || strcmp(argv[1], "run") != 0)
        fail("usage: proctor-sql run REQUEST.json");
    json_t *req = json_load_file(argv[2], JSON_REJECT_DUPLICATES, &jerr);
    if (!req)
        fail("cannot read the request");
    const char *dbpath = json_string_value(json_object_get(req, "db"));
    const char *dir = json_string_value(json_object_get(req, "dir"));
    const json_t *tables = json_object_get(req, "tables");
    const json_t *questions = json_object_get(req, "questions");
    long long heap_mb = json_integer_value(json_object_get(req, "heap_limit_mb"));
    if (!dbpath || !dir || !json_is_array(tables) || !json_is_array(questions))
        fail("bad request");

    const char *names[33];
    size_t nt = 0, i;
    const json_t *t;
    json_array_foreach (tables, i, t) {
        if (nt < 32 && json_is_string(t))
            names[nt++] = json_string_value(t);
    }
    names[nt] = NULL;
    pr_sqlchk chk;
    memset(&chk, 0, sizeof(chk));
    chk.tables = names;

    /* Deterministic limits: the heap limit makes allocation fail with SQLITE_NOMEM instead of
     * the sandbox's memory limit killing the process. */
    if (heap_mb > 0)
        (void)sqlite3_hard_heap_limit64((sqlite3_int64)heap_mb * 1024 * 1024);
    if (sqlite3_config(SQLITE_CONFIG_SINGLETHREAD) != SQLITE_OK) {
        /* Already initialised; the default threading mode is fine. */
    }

    json_t *out = json_object();
    json_t *schema = run_schema(req, dbpath, dir, &chk);
    json_object_set_new(out, "schema", schema);
    json_t *qs = json_array();
    size_t out_bytes = 0;
    const json_t *qreq;
    const char *ss = json_string_value(json_object_get(schema, "status"));
    /* A refused or failed schema.sql fails the whole submission: no query runs. */
    bool schema_ok = ss && (strcmp(ss, "ok") == 0 || strcmp(ss, "absent") == 0);
    json_array_foreach (questions, i, qreq) {
        if (schema_ok)
            json_array_append_new(qs, run_question(req, qreq, dbpath, dir, &chk, &out_bytes));
    }
    json_object_set_new(out, "questions", qs);
    if (json_dumpf(out, stdout, JSON_COMPACT) != 0)
        fail("cannot write the result");
    fputc('\n', stdout);
    json_decref(out);
    json_decref(req);
    return fflush(stdout) == 0 ? 0 : 2;
}
