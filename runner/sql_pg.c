/* PostgreSQL engine of the sql kind.
 *
 * Per pack digest, a template database is built once with the pack's schema and the same
 * generated rows as SQLite (loaded with COPY), then VACUUM (FREEZE) and ANALYZE with a
 * statistics target large enough that every row is read, so statistics (and plans) are the same
 * on every build.
 *
 * Per job: a throwaway database cloned from the template and a throwaway login role that is no
 * superuser, creates no databases or roles and belongs to no predefined role (so no
 * pg_read_server_files or pg_execute_server_program). Index creation in PostgreSQL needs table
 * ownership, so the design is:
 *   1. schema phase: the job role owns the pack's tables (in this database only); proctor splits
 *      schema.sql and accepts only CREATE [UNIQUE] INDEX ... ON <pack table> and ANALYZE, each
 *      sent alone through the extended protocol (which refuses a second statement), all in one
 *      transaction with statement_timeout;
 *   2. ownership goes back to the admin role; the job role keeps SELECT on the tables and
 *      nothing else (no CREATE on any schema, no write privilege), so whatever the query files
 *      hold (a data-modifying CTE, set_config, pg_read_file) the server refuses it;
 *   3. query phase: each question, once per parameter set, runs first for its rows (which also
 *      warms the cache) and then under EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON); the cost is the
 *      top plan node's shared blocks hit + read, which does not depend on timing;
 *   4. the database and the role are dropped, whatever happened.
 * Job names carry their creation time (proctor_job_<unix time hex>_<random hex>), so a database
 * and role left by a crashed grader are swept by the next grading on the same server once they
 * are older than PG_SWEEP_AGE_S (no statement runs that long: statement_timeout).
 * The result has the same shape as the SQLite executor's, so scoring is shared (sql.c). */
#include "sql_kind.h"

#include <errno.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "proctor/buf.h"
#include "proctor/common.h"
#include "proctor/log.h"
#include "sql_internal.h"

#define PG_STATS_TARGET "10000"
/* A job database or role older than this was left by a grader that died. */
#define PG_SWEEP_AGE_S 3600

/* Server notices (ANALYZE skipping catalogue tables...) are not for proctor's stderr. */
static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static PGconn *pg_connect(const pr_sql_pgconn *c, const char *user, const char *db, pr_error *err)
{
    char port[16];
    (void)snprintf(port, sizeof(port), "%d", c->port);
    const char *const keys[] = {
        "host", "port", "user", "dbname", "application_name", "connect_timeout", NULL
    };
    const char *const vals[] = { c->host, port, user, db, "proctor-sql", "10", NULL };
    PGconn *conn = PQconnectdbParams(keys, vals, 0);
    if (!conn || PQstatus(conn) != CONNECTION_OK) {
        (void)pr_error_set(err, PR_EINVAL, "PostgreSQL %s@%s:%d/%s: %s", user, c->host, c->port, db,
                           conn ? PQerrorMessage(conn) : "out of memory");
        PQfinish(conn);
        return NULL;
    }
    (void)PQsetNoticeProcessor(conn, quiet, NULL);
    return conn;
}

/* Runs trusted SQL (proctor's own statements); PR_EINVAL with the server message on error. */
static int pg_exec(PGconn *conn, const char *sql, pr_error *err)
{
    PGresult *r = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        char ex[120];
        pr_text_log_excerpt(ex, sizeof(ex), sql, strlen(sql));
        rc = pr_error_set(err, PR_EINVAL, "PostgreSQL: %s: %s", ex, PQerrorMessage(conn));
    }
    PQclear(r);
    return rc;
}

static int pg_execf(PGconn *conn, pr_error *err, const char *fmt, ...) PR_PRINTF(3, 4);

static int pg_execf(PGconn *conn, pr_error *err, const char *fmt, ...)
{
    pr_buf b = PR_BUF_INIT((size_t)64 * 1024);
    va_list ap;
    va_start(ap, fmt);
    int rc = pr_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (rc < 0)
        return pr_error_set(err, rc, "statement too long");
    rc = pg_exec(conn, b.ptr, err);
    pr_buf_free(&b);
    return rc;
}

static bool db_exists(PGconn *admin, const char *name)
{
    const char *params[1] = { name };
    PGresult *r = PQexecParams(admin, "SELECT 1 FROM pg_database WHERE datname = $1", 1, NULL,
                               params, NULL, NULL, 0);
    bool yes = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    PQclear(r);
    return yes;
}

/* ---- Template build (COPY sink) ---- */

typedef struct copy_sink {
    PGconn *conn;
    bool open;
    pr_buf line;
} copy_sink;

static int copy_end(copy_sink *s, pr_error *err)
{
    if (!s->open)
        return 0;
    s->open = false;
    if (PQputCopyEnd(s->conn, NULL) != 1)
        return pr_error_set(err, PR_EINVAL, "COPY end: %s", PQerrorMessage(s->conn));
    PGresult *r = PQgetResult(s->conn);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK
                 ? 0
                 : pr_error_set(err, PR_EINVAL, "COPY: %s", PQerrorMessage(s->conn));
    PQclear(r);
    while ((r = PQgetResult(s->conn)))
        PQclear(r);
    return rc;
}

static int copy_table(void *payload, const char *name, const char *const *columns, size_t ncols,
                      pr_error *err)
{
    copy_sink *s = payload;
    int rc = copy_end(s, err);
    if (rc < 0)
        return rc;
    pr_buf sql = PR_BUF_INIT(4096);
    rc = pr_buf_printf(&sql, "COPY \"%s\" (", name);
    for (size_t i = 0; i < ncols && rc == 0; i++)
        rc = pr_buf_printf(&sql, "%s\"%s\"", i ? ", " : "", columns[i]);
    if (rc == 0)
        rc = pr_buf_puts(&sql, ") FROM STDIN");
    if (rc < 0) {
        pr_buf_free(&sql);
        return pr_error_set(err, rc, "COPY statement too long");
    }
    PGresult *r = PQexec(s->conn, sql.ptr);
    if (PQresultStatus(r) != PGRES_COPY_IN)
        rc = pr_error_set(err, PR_EINVAL, "COPY %s: %s", name, PQerrorMessage(s->conn));
    else
        s->open = true;
    PQclear(r);
    pr_buf_free(&sql);
    return rc;
}

static int copy_row(void *payload, const pr_sqlval *vals, size_t n, pr_error *err)
{
    copy_sink *s = payload;
    int rc = 0;
    pr_buf_clear(&s->line);
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (i)
            rc = pr_buf_put(&s->line, "\t", 1);
        if (rc < 0)
            break;
        if (!vals[i].is_text) {
            rc = pr_buf_printf(&s->line, "%lld", vals[i].i);
            continue;
        }
        /* COPY text format: escape backslash, tab, newline and carriage return. */
        for (const char *c = vals[i].s; *c && rc == 0; c++) {
            if (*c == '\\')
                rc = pr_buf_put(&s->line, "\\\\", 2);
            else if (*c == '\t')
                rc = pr_buf_put(&s->line, "\\t", 2);
            else if (*c == '\n')
                rc = pr_buf_put(&s->line, "\\n", 2);
            else if (*c == '\r')
                rc = pr_buf_put(&s->line, "\\r", 2);
            else
                rc = pr_buf_put(&s->line, c, 1);
        }
    }
    if (rc == 0)
        rc = pr_buf_put(&s->line, "\n", 1);
    if (rc < 0)
        return pr_error_set(err, rc, "generated row too long");
    if (PQputCopyData(s->conn, s->line.ptr, (int)s->line.len) != 1)
        return pr_error_set(err, PR_EINVAL, "COPY data: %s", PQerrorMessage(s->conn));
    return 0;
}

static void template_name(char *out, size_t n, const char *digest)
{
    (void)snprintf(out, n, "proctor_tpl_%.24s", digest);
}

static int build_template(PGconn *admin, const pr_sql_pgconn *c, const sql_state *s,
                          const char *tpl, pr_error *err)
{
    char tmp[128];
    PGconn *conn = NULL;
    copy_sink sink = { NULL, false, PR_BUF_INIT((size_t)64 * 1024) };
    int rc;
    unsigned long long t0 = pr_now_ns();

    (void)snprintf(tmp, sizeof(tmp), "%.40s_b%ld", tpl, (long)getpid());
    (void)pg_execf(admin, NULL, "DROP DATABASE IF EXISTS \"%s\"", tmp);
    rc = pg_execf(admin, err,
                  "CREATE DATABASE \"%s\" TEMPLATE template0 ENCODING 'UTF8' "
                  "LC_COLLATE 'C' LC_CTYPE 'C'",
                  tmp);
    if (rc < 0)
        goto cleanup;
    conn = pg_connect(c, c->admin, tmp, err);
    if (!conn) {
        rc = PR_EINVAL;
        goto cleanup;
    }
    rc = pg_exec(conn, "REVOKE ALL ON SCHEMA public FROM PUBLIC", err);
    if (rc == 0)
        rc = pg_exec(conn, s->schema_sql, err);
    if (rc == 0)
        rc = pg_exec(conn, "BEGIN", err);
    if (rc < 0)
        goto cleanup;
    /* The generator's rows satisfy the pack's foreign keys by construction (the SQLite build
     * checks them); skipping the per-row FK triggers makes the load several times faster. Only
     * a superuser may do this; otherwise the triggers simply run. */
    (void)pg_exec(conn, "SAVEPOINT fk", NULL);
    if (pg_exec(conn, "SET LOCAL session_replication_role = replica", NULL) < 0)
        (void)pg_exec(conn, "ROLLBACK TO SAVEPOINT fk", NULL);
    sink.conn = conn;
    pr_sqlgen_sink gs = { copy_table, copy_row, &sink };
    rc = pr_sqlgen_run(s->gen_name, s->seed, &gs, err);
    if (rc == 0)
        rc = copy_end(&sink, err);
    if (rc == 0)
        rc = pg_exec(conn, "COMMIT", err);
    /* Statistics from every row, so that ANALYZE gives the same result on every build and in
     * every job; frozen tuples and a fresh visibility map make index-only scans stable. */
    if (rc == 0)
        rc = pg_exec(conn, "SET default_statistics_target = " PG_STATS_TARGET, err);
    if (rc == 0)
        rc = pg_exec(conn, "VACUUM (FREEZE, ANALYZE)", err);
    if (rc < 0)
        goto cleanup;
    PQfinish(conn);
    conn = NULL;
    rc = pg_execf(admin, err, "ALTER DATABASE \"%s\" RENAME TO \"%s\"", tmp, tpl);
    if (rc == 0)
        rc = pg_execf(admin, err, "ALTER DATABASE \"%s\" WITH IS_TEMPLATE true", tpl);
    if (rc == 0)
        pr_log(PR_LOG_INFO, "event=sql_pg_template_built name=%s ms=%llu", tpl,
               (pr_now_ns() - t0) / 1000000ULL);
cleanup:
    pr_buf_free(&sink.line);
    PQfinish(conn);
    if (rc < 0)
        (void)pg_execf(admin, NULL, "DROP DATABASE IF EXISTS \"%s\"", tmp);
    return rc;
}

/* Serialises template builds across processes with an advisory lock on the admin session. */
static int ensure_template(PGconn *admin, const pr_sql_pgconn *c, const sql_state *s,
                           const char *tpl, pr_error *err)
{
    if (db_exists(admin, tpl))
        return 0;
    int rc = pg_exec(admin, "SELECT pg_advisory_lock(7411)", err);
    if (rc < 0)
        return rc;
    if (!db_exists(admin, tpl))
        rc = build_template(admin, c, s, tpl, err);
    (void)pg_exec(admin, "SELECT pg_advisory_unlock(7411)", NULL);
    return rc;
}

/* ---- One run of a submission ---- */

typedef struct pg_job {
    const pr_sql_pgconn *c;
    const sql_state *s;
    PGconn *admin;
    char db[64];
    char role[64];
    bool db_made, role_made;
} pg_job;

static int set_owner(pg_job *j, PGconn *conn, const char *owner, pr_error *err)
{
    /* CREATE on the schema is needed to place an index in it; it is held only while the
     * checked schema statements run. */
    bool to_job = strcmp(owner, j->role) == 0;
    int rc0 = pg_execf(conn, err, "%s CREATE ON SCHEMA public %s \"%s\"",
                       to_job ? "GRANT" : "REVOKE", to_job ? "TO" : "FROM", j->role);
    if (rc0 < 0)
        return rc0;
    for (size_t i = 0; i < j->s->ntables; i++) {
        int rc = pg_execf(conn, err, "ALTER TABLE public.\"%s\" OWNER TO \"%s\"", j->s->tables[i],
                          owner);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int job_setup(pg_job *j, const char *tpl, pr_error *err)
{
    unsigned char rnd[6];
    char hex[13];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        return pr_error_sys(err, "getrandom");
    for (size_t i = 0; i < sizeof(rnd); i++)
        (void)snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    unsigned long now = (unsigned long)time(NULL) & 0xffffffffUL;
    (void)snprintf(j->db, sizeof(j->db), "proctor_job_%08lx_%s", now, hex);
    (void)snprintf(j->role, sizeof(j->role), "%s", j->db);
    int rc = pg_execf(j->admin, err,
                      "CREATE ROLE \"%s\" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT "
                      "NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 4",
                      j->role);
    if (rc < 0)
        return rc;
    j->role_made = true;
    /* A non-superuser admin (CREATEDB, CREATEROLE) must be a member of the job role to hand it
     * the tables and take them back; a superuser is one anyway. */
    (void)pg_execf(j->admin, NULL, "GRANT \"%s\" TO CURRENT_USER", j->role);
    /* Session defaults of the job role: bounded statements, no parallel workers (their
     * buffer counts vary), no JIT, bounded temporary files. */
    rc = pg_execf(j->admin, err,
                  "ALTER ROLE \"%s\" SET statement_timeout = %lld; "
                  "ALTER ROLE \"%s\" SET max_parallel_workers_per_gather = 0; "
                  "ALTER ROLE \"%s\" SET jit = off; "
                  "ALTER ROLE \"%s\" SET default_statistics_target = " PG_STATS_TARGET,
                  j->role, j->s->pg_timeout_ms, j->role, j->role, j->role);
    /* temp_file_limit may only be set by a superuser; without it statement_timeout still
     * bounds what a query can spill. */
    if (rc == 0)
        (void)pg_execf(j->admin, NULL, "ALTER ROLE \"%s\" SET temp_file_limit = '256MB'", j->role);
    if (rc < 0)
        return rc;
    rc = pg_execf(j->admin, err, "CREATE DATABASE \"%s\" TEMPLATE \"%s\" STRATEGY FILE_COPY", j->db,
                  tpl);
    if (rc < 0)
        return rc;
    j->db_made = true;
    rc = pg_execf(j->admin, err,
                  "REVOKE ALL ON DATABASE \"%s\" FROM PUBLIC; GRANT CONNECT ON DATABASE \"%s\" "
                  "TO \"%s\"",
                  j->db, j->db, j->role);
    if (rc < 0)
        return rc;
    /* Inside the job database: the schema may be used, the tables read; nothing else. */
    PGconn *conn = pg_connect(j->c, j->c->admin, j->db, err);
    if (!conn)
        return PR_EINVAL;
    rc = pg_execf(conn, err, "GRANT USAGE ON SCHEMA public TO \"%s\"", j->role);
    for (size_t i = 0; rc == 0 && i < j->s->ntables; i++)
        rc = pg_execf(conn, err, "GRANT SELECT ON public.\"%s\" TO \"%s\"", j->s->tables[i],
                      j->role);
    PQfinish(conn);
    return rc;
}

/* Drops job databases and roles left by graders that died (named with their creation time,
 * older than PG_SWEEP_AGE_S). Best effort: a failure only leaves them for the next sweep. */
static void pg_sweep(PGconn *admin)
{
    static const char *const q[] = {
        "SELECT datname FROM pg_database WHERE datname ~ '^proctor_job_[0-9a-f]{8}_[0-9a-f]{12}$'",
        "SELECT rolname FROM pg_roles WHERE rolname ~ '^proctor_job_[0-9a-f]{8}_[0-9a-f]{12}$'",
    };
    unsigned long now = (unsigned long)time(NULL) & 0xffffffffUL;
    int swept = 0;
    for (size_t k = 0; k < sizeof(q) / sizeof(q[0]); k++) {
        PGresult *r = PQexec(admin, q[k]);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            PQclear(r);
            continue;
        }
        for (int i = 0; i < PQntuples(r); i++) {
            const char *name = PQgetvalue(r, i, 0);
            unsigned long t = strtoul(name + strlen("proctor_job_"), NULL, 16);
            if (t > now || now - t < PG_SWEEP_AGE_S)
                continue;
            if (k == 0)
                (void)pg_execf(admin, NULL, "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", name);
            else
                (void)pg_execf(admin, NULL, "DROP ROLE IF EXISTS \"%s\"", name);
            swept++;
        }
        PQclear(r);
    }
    if (swept)
        pr_log(PR_LOG_INFO, "sql: swept %d database(s) and role(s) left by earlier graders", swept);
}

static void job_teardown(pg_job *j)
{
    if (j->db_made)
        (void)pg_execf(j->admin, NULL, "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", j->db);
    if (j->role_made)
        (void)pg_execf(j->admin, NULL, "DROP ROLE IF EXISTS \"%s\"", j->role);
}

static json_t *status_obj(const char *status, const char *msg)
{
    return json_pack("{s:s, s:s}", "status", status, "message", msg ? msg : "");
}

/* SQLSTATE to the executor's statuses. */
static const char *pg_status(const PGresult *r)
{
    const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (!code)
        return "error";
    if (strcmp(code, "57014") == 0)
        return "budget"; /* statement_timeout */
    if (strcmp(code, "53200") == 0 || strcmp(code, "53400") == 0)
        return "nomem"; /* out of memory, temp_file_limit */
    if (strcmp(code, "42501") == 0 || strcmp(code, "25006") == 0)
        return "refused"; /* insufficient privilege, read-only transaction */
    return "error";
}

static void one_line(char *out, size_t n, const char *msg)
{
    size_t j = 0;
    for (size_t i = 0; msg && msg[i] && j + 1 < n; i++)
        out[j++] = (char)((msg[i] == '\n' || msg[i] == '\r') ? ' ' : msg[i]);
    while (j > 0 && out[j - 1] == ' ')
        j--;
    out[j] = '\0';
}

static json_t *schema_phase(pg_job *j, const char *workdir, pr_error *err, int *fatal)
{
    char path[PATH_MAX], msg[600];
    char *text = NULL;
    size_t len = 0;
    json_t *stmts = NULL, *out = NULL;
    PGconn *conn = NULL;
    pr_error e2 = { 0 };

    *fatal = 0;
    (void)snprintf(path, sizeof(path), "%s/schema.sql", workdir);
    int rc = pr_sql_read_file(&text, &len, path, (size_t)64 * 1024, &e2);
    if (rc == PR_ENOTFOUND)
        return status_obj("absent", "");
    if (rc < 0)
        return status_obj("refused", e2.msg);
    stmts = pr_sql_pg_split(text, len, 64, &e2);
    if (!stmts) {
        out = status_obj("refused", e2.msg);
        goto cleanup;
    }
    for (size_t i = 0; i < json_array_size(stmts); i++) {
        const char *const *tables = (const char *const *)j->s->tables;
        if (pr_sql_pg_check_schema_stmt(json_string_value(json_array_get(stmts, i)), tables, &e2) <
            0) {
            (void)snprintf(msg, sizeof(msg), "schema.sql statement %zu: refused: %s", i + 1,
                           e2.msg);
            out = status_obj("refused", msg);
            goto cleanup;
        }
    }
    if (json_array_size(stmts) == 0) {
        out = status_obj("ok", "");
        goto cleanup;
    }
    /* The job role owns the tables only while its checked statements run. */
    PGconn *dbadmin = pg_connect(j->c, j->c->admin, j->db, err);
    if (!dbadmin) {
        *fatal = 1;
        goto cleanup;
    }
    rc = set_owner(j, dbadmin, j->role, err);
    if (rc < 0) {
        PQfinish(dbadmin);
        *fatal = 1;
        goto cleanup;
    }
    conn = pg_connect(j->c, j->role, j->db, err);
    if (!conn) {
        (void)set_owner(j, dbadmin, j->c->admin, NULL);
        PQfinish(dbadmin);
        *fatal = 1;
        goto cleanup;
    }
    (void)pg_exec(conn, "BEGIN", NULL);
    const char *status = "ok";
    msg[0] = '\0';
    for (size_t i = 0; i < json_array_size(stmts); i++) {
        const char *sql = json_string_value(json_array_get(stmts, i));
        /* Extended protocol: exactly one statement per call. */
        PGresult *r = PQexecParams(conn, sql, 0, NULL, NULL, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            char line[400];
            one_line(line, sizeof(line), PQresultErrorMessage(r));
            status = pg_status(r);
            (void)snprintf(msg, sizeof(msg), "schema.sql statement %zu: %s", i + 1, line);
            PQclear(r);
            break;
        }
        PQclear(r);
    }
    (void)pg_exec(conn, strcmp(status, "ok") == 0 ? "COMMIT" : "ROLLBACK", NULL);
    PQfinish(conn);
    conn = NULL;
    rc = set_owner(j, dbadmin, j->c->admin, err);
    for (size_t i = 0; rc == 0 && i < j->s->ntables; i++)
        rc = pg_execf(dbadmin, err, "GRANT SELECT ON public.\"%s\" TO \"%s\"", j->s->tables[i],
                      j->role);
    PQfinish(dbadmin);
    if (rc < 0) {
        *fatal = 1;
        goto cleanup;
    }
    out = status_obj(status, msg);
    if (out)
        (void)json_object_set_new(out, "statements",
                                  json_integer((json_int_t)json_array_size(stmts)));
cleanup:
    PQfinish(conn);
    json_decref(stmts);
    pr_free(text);
    if (!out && !*fatal)
        out = status_obj("error", "out of memory");
    return out;
}

/* A cell as JSON by column type: integers and exact numerics as numbers, text as text. */
static json_t *cell_json(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return json_null();
    const char *v = PQgetvalue(r, row, col);
    Oid t = PQftype(r, col);
    char *end = NULL;
    bool integral = t == 20 || t == 21 || t == 23;    /* int8, int2, int4 */
    bool numeric = t == 1700 || t == 700 || t == 701; /* numeric, float4, float8 */
    if (t == 1700 && !strchr(v, '.') && !strchr(v, 'e') && !strchr(v, 'N'))
        integral = true; /* a numeric without a fraction, like sum(bigint) */
    if (integral) {
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (errno == 0 && end && *end == '\0')
            return json_integer(x);
    }
    if (numeric) {
        double d = strtod(v, &end);
        json_t *j = (end && *end == '\0') ? json_real(d) : NULL;
        if (j)
            return j;
    }
    json_t *s = json_string(v);
    return s ? s : json_pack("{s:s}", "text_hex", "invalid");
}

/* Runs one parameter set: rows (single-row mode, capped) then EXPLAIN ANALYZE for the cost. */
static json_t *run_one(PGconn *conn, const sql_state *s, const char *sql, const json_t *names,
                       const json_t *params, json_t *q, bool want_plan)
{
    json_t *run = json_object();
    json_t *rows = json_array();
    const char *vals[32];
    char nbuf[32][32];
    size_t np = json_array_size(names);
    long long nrows = 0;
    bool truncated = false;
    const char *status = "ok";
    char msg[600] = "";
    pr_buf ex = PR_BUF_INIT((size_t)128 * 1024);

    if (!run || !rows || np > 32)
        goto fail;
    for (size_t i = 0; i < np; i++) {
        const char *name = json_string_value(json_array_get(names, i));
        const json_t *v = json_object_get(params, name);
        if (!v) {
            (void)snprintf(msg, sizeof(msg), "unknown parameter :%.60s", name);
            status = "error";
            goto done;
        }
        if (json_is_string(v))
            vals[i] = json_string_value(v);
        else if (json_is_integer(v))
            (void)snprintf(nbuf[i], sizeof(nbuf[i]), "%lld", (long long)json_integer_value(v)),
                vals[i] = nbuf[i];
        else if (json_is_real(v))
            (void)snprintf(nbuf[i], sizeof(nbuf[i]), "%.17g", json_real_value(v)),
                vals[i] = nbuf[i];
        else
            vals[i] = NULL;
    }
    if (!PQsendQueryParams(conn, sql, (int)np, NULL, vals, NULL, NULL, 0) ||
        !PQsetSingleRowMode(conn)) {
        one_line(msg, sizeof(msg), PQerrorMessage(conn));
        status = "error";
        goto done;
    }
    PGresult *r;
    bool cancelled = false;
    while ((r = PQgetResult(conn))) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_SINGLE_TUPLE) {
            if (!json_object_get(q, "columns")) {
                json_t *cols = json_array();
                for (int c = 0; c < PQnfields(r); c++)
                    (void)json_array_append_new(cols, json_string(PQfname(r, c)));
                (void)json_object_set_new(q, "columns", cols);
            }
            nrows++;
            if (nrows > s->max_rows) {
                truncated = true;
                if (!cancelled) {
                    /* Enough rows: stop the statement; the cost comes from EXPLAIN below. */
                    PGcancel *cn = PQgetCancel(conn);
                    char eb[128];
                    if (cn)
                        (void)PQcancel(cn, eb, sizeof(eb));
                    PQfreeCancel(cn);
                    cancelled = true;
                }
            } else {
                json_t *row = json_array();
                for (int c = 0; c < PQnfields(r); c++)
                    (void)json_array_append_new(row, cell_json(r, 0, c));
                (void)json_array_append_new(rows, row);
            }
        } else if (st == PGRES_TUPLES_OK) {
            if (!json_object_get(q, "columns")) {
                json_t *cols = json_array();
                for (int c = 0; c < PQnfields(r); c++)
                    (void)json_array_append_new(cols, json_string(PQfname(r, c)));
                (void)json_object_set_new(q, "columns", cols);
            }
        } else if (!(cancelled && truncated)) {
            char line[500];
            one_line(line, sizeof(line), PQresultErrorMessage(r));
            status = pg_status(r);
            (void)snprintf(msg, sizeof(msg), "%s", line);
        }
        PQclear(r);
    }
    if (strcmp(status, "ok") != 0)
        goto done;
    if (truncated) {
        /* Far too many rows: the answer is wrong anyway and EXPLAIN ANALYZE would run it all
         * again; report without a cost. */
        goto done;
    }
    if (pr_buf_puts(&ex, "EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, FORMAT JSON) ") < 0 ||
        pr_buf_puts(&ex, sql) < 0)
        goto fail;
    r = PQexecParams(conn, ex.ptr, (int)np, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1) {
        char line[500];
        one_line(line, sizeof(line), PQresultErrorMessage(r));
        status = pg_status(r);
        (void)snprintf(msg, sizeof(msg), "%s", line);
        PQclear(r);
        goto done;
    }
    json_t *plan = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
    PQclear(r);
    const json_t *top = json_object_get(json_array_get(plan, 0), "Plan");
    long long hit = json_integer_value(json_object_get(top, "Shared Hit Blocks"));
    long long rd = json_integer_value(json_object_get(top, "Shared Read Blocks"));
    json_decref(plan);
    (void)json_object_set_new(run, "shared_blocks", json_integer(hit + rd));
    (void)json_object_set_new(run, "shared_hit", json_integer(hit));
    (void)json_object_set_new(run, "shared_read", json_integer(rd));
    if (want_plan) {
        pr_buf_clear(&ex);
        if (pr_buf_puts(&ex, "EXPLAIN (COSTS OFF) ") == 0 && pr_buf_puts(&ex, sql) == 0) {
            r = PQexecParams(conn, ex.ptr, (int)np, NULL, vals, NULL, NULL, 0);
            pr_buf text = PR_BUF_INIT(8192);
            for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++) {
                if (pr_buf_printf(&text, "%s%s", i ? "\n" : "", PQgetvalue(r, i, 0)) < 0)
                    break;
            }
            PQclear(r);
            (void)pr_report_set_text_sql(q, "plan", text.ptr ? text.ptr : "");
            pr_buf_free(&text);
        }
    }
done:
    (void)json_object_set_new(run, "status", json_string(status));
    (void)json_object_set_new(run, "message", json_string(msg));
    (void)json_object_set_new(run, "row_count", json_integer(nrows));
    (void)json_object_set_new(run, "truncated", json_boolean(truncated));
    (void)json_object_set_new(run, "rows", rows);
    pr_buf_free(&ex);
    return run;
fail:
    pr_buf_free(&ex);
    json_decref(rows);
    json_decref(run);
    return NULL;
}

static json_t *query_phase(pg_job *j, const char *workdir, pr_error *err)
{
    json_t *qs = json_array();
    PGconn *conn = pg_connect(j->c, j->role, j->db, err);
    if (!conn || !qs) {
        json_decref(qs);
        PQfinish(conn);
        return NULL;
    }
    (void)pg_exec(conn, "SET default_transaction_read_only = on", NULL);
    for (size_t i = 0; i < j->s->nq; i++) {
        const sql_question *sq = &j->s->q[i];
        json_t *q = json_pack("{s:s}", "name", sq->name);
        json_t *runs = json_array();
        char path[PATH_MAX];
        char *text = NULL, *sql = NULL;
        size_t len = 0;
        json_t *names = NULL;
        pr_error e2 = { 0 };
        const char *status = "ok";
        char msg[600] = "";

        if (!q || !runs) {
            json_decref(q);
            json_decref(runs);
            continue;
        }
        (void)snprintf(path, sizeof(path), "%s/%s", workdir, sq->file);
        int rc = pr_sql_read_file(&text, &len, path, (size_t)64 * 1024, &e2);
        if (rc == PR_ENOTFOUND) {
            status = "missing";
            (void)snprintf(msg, sizeof(msg), "the file is missing");
        } else if (rc < 0) {
            status = "refused";
            (void)snprintf(msg, sizeof(msg), "%s", e2.msg);
        } else if (pr_sql_pg_check_query(text, len, &e2) < 0) {
            status = "refused";
            (void)snprintf(msg, sizeof(msg), "refused: %s", e2.msg);
        } else {
            /* Drop a trailing semicolon: EXPLAIN is prefixed to the text. */
            json_t *parts = pr_sql_pg_split(text, len, 1, NULL);
            const char *one = json_string_value(json_array_get(parts, 0));
            sql = one ? pr_sql_pg_params(one, strlen(one), &names, &e2) : NULL;
            json_decref(parts);
            if (!sql) {
                status = "error";
                (void)snprintf(msg, sizeof(msg), "%s", e2.msg);
            }
        }
        for (size_t k = 0; sql && k < json_array_size(sq->params); k++) {
            json_t *run = run_one(conn, j->s, sql, names, json_array_get(sq->params, k), q, k == 0);
            if (!run)
                continue;
            const char *rs = json_string_value(json_object_get(run, "status"));
            if (rs && strcmp(rs, "ok") != 0) {
                status = rs;
                (void)snprintf(msg, sizeof(msg), "%s",
                               json_string_value(json_object_get(run, "message")));
            }
            (void)json_array_append_new(runs, run);
            if (PQstatus(conn) != CONNECTION_OK)
                break;
        }
        (void)json_object_set_new(q, "status", json_string(status));
        (void)json_object_set_new(q, "message", json_string(msg));
        (void)json_object_set_new(q, "runs", runs);
        (void)json_array_append_new(qs, q);
        pr_free(text);
        pr_free(sql);
        json_decref(names);
    }
    PQfinish(conn);
    return qs;
}

/* Grades one submission directory on a fresh database; *out has the executor's shape. */
static int pg_run(json_t **out, const pr_sql_pgconn *c, const sql_state *s, PGconn *admin,
                  const char *tpl, const char *workdir, pr_error *err)
{
    pg_job j = { c, s, admin, "", "", false, false };
    json_t *result = NULL;
    int fatal = 0;
    int rc = job_setup(&j, tpl, err);
    *out = NULL;
    if (rc < 0)
        goto cleanup;
    json_t *schema = schema_phase(&j, workdir, err, &fatal);
    if (fatal || !schema) {
        json_decref(schema);
        rc = fatal ? PR_EINVAL : pr_error_set(err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }
    result = json_object();
    (void)json_object_set_new(result, "schema", schema);
    const char *ss = json_string_value(json_object_get(schema, "status"));
    json_t *qs;
    if (strcmp(ss, "ok") == 0 || strcmp(ss, "absent") == 0) {
        qs = query_phase(&j, workdir, err);
        if (!qs) {
            rc = PR_EINVAL;
            goto cleanup;
        }
    } else {
        qs = json_array();
    }
    (void)json_object_set_new(result, "questions", qs);
    *out = result;
    result = NULL;
cleanup:
    json_decref(result);
    job_teardown(&j);
    return rc;
}

static int ensure_reference_pg(json_t **out, const pr_sql_pgconn *c, const sql_state *s,
                               PGconn *admin, const char *tpl, const char *digest, pr_error *err)
{
    char root[PATH_MAX], path[PATH_MAX + 128];
    json_error_t jerr;
    int rc = pr_sql_cache_root(root, sizeof(root), err);
    if (rc < 0)
        return rc;
    /* Block counts depend on the server version: an upgrade measures the reference again. */
    (void)snprintf(path, sizeof(path), "%s/%.64s.reference-pg%d.json", root, digest,
                   PQserverVersion(admin));
    *out = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (*out)
        return 0;
    json_t *ref = NULL;
    rc = pg_run(&ref, c, s, admin, tpl, s->reference_dir, err);
    if (rc < 0)
        return rc;
    const json_t *schema = json_object_get(ref, "schema");
    const char *ss = json_string_value(json_object_get(schema, "status"));
    if (!ss || (strcmp(ss, "ok") != 0 && strcmp(ss, "absent") != 0) ||
        json_array_size(json_object_get(ref, "questions")) != s->nq) {
        rc = pr_error_set(err, PR_EINVAL, "reference schema.sql on PostgreSQL: %s",
                          json_string_value(json_object_get(schema, "message")));
        json_decref(ref);
        return rc;
    }
    size_t i;
    const json_t *q;
    json_array_foreach (json_object_get(ref, "questions"), i, q) {
        const char *st = json_string_value(json_object_get(q, "status"));
        if (!st || strcmp(st, "ok") != 0) {
            rc = pr_error_set(err, PR_EINVAL, "reference %s on PostgreSQL: %s",
                              json_string_value(json_object_get(q, "name")),
                              json_string_value(json_object_get(q, "message")));
            json_decref(ref);
            return rc;
        }
    }
    char *text = json_dumps(ref, JSON_COMPACT);
    if (text)
        (void)pr_sql_write_file(path, text, strlen(text), NULL);
    pr_free(text);
    *out = ref;
    return 0;
}

int pr_sql_grade_pg(pr_grading *g, const sql_state *s, const pr_sql_pgconn *c, pr_error *err)
{
    char tpl[64];
    json_t *ref = NULL, *result = NULL;
    sbx_result res;
    int rc;

    memset(&res, 0, sizeof(res));
    res.verdict = SBX_OK;
    PGconn *admin = pg_connect(c, c->admin, "postgres", err);
    if (!admin)
        return PR_EINVAL;
    pg_sweep(admin);
    template_name(tpl, sizeof(tpl), g->challenge->digest);
    if (g->progress)
        g->progress(g->payload, "test", "sql: postgresql template");
    rc = ensure_template(admin, c, s, tpl, err);
    if (rc == 0 && g->progress)
        g->progress(g->payload, "test", "sql: postgresql reference");
    if (rc == 0)
        rc = ensure_reference_pg(&ref, c, s, admin, tpl, g->challenge->digest, err);
    if (rc < 0)
        goto cleanup;
    if (g->progress)
        g->progress(g->payload, "test", "sql: postgresql submission");
    unsigned long long t0 = pr_now_ns();
    rc = pg_run(&result, c, s, admin, tpl, g->workdir, err);
    res.wall_ms = (pr_now_ns() - t0) / 1000000ULL;
    if (rc < 0)
        goto cleanup;
    rc = pr_sql_score(g, s, result, ref, &res, true, err);
cleanup:
    json_decref(ref);
    json_decref(result);
    PQfinish(admin);
    return rc;
}
