#ifndef PROCTOR_RUNNER_SQL_KIND_H
#define PROCTOR_RUNNER_SQL_KIND_H
/* State of the sql kind shared by runner/kinds/sql.c (SQLite, scoring) and runner/sql_pg.c
 * (PostgreSQL). Private to the runner. */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "proctor/kind.h"

typedef struct sql_question {
    char *name;        /* "q1" */
    char *file;        /* "q1.sql" */
    bool ordered;      /* row order matters */
    json_t *params;    /* owned; array of parameter objects, run once per set */
    double full_ratio; /* full cost points within this multiple of the reference */
    double zero_ratio; /* no cost points at or beyond this multiple */
} sql_question;

typedef struct sql_state {
    char *dir;           /* pack directory */
    char *schema_sql;    /* the pack's CREATE TABLE text (owned) */
    char *reference_dir; /* absolute path of the reference solution */
    char **tables;       /* NULL-terminated table names candidates may index */
    size_t ntables;
    char *gen_name;
    uint64_t seed;
    bool allow_sqlite, allow_pg;
    long long cache_pages;      /* PRAGMA cache_size for the measured runs (pages) */
    long long vm_budget;        /* VM steps per run before TLE */
    long long schema_vm_budget; /* VM steps for the whole schema.sql */
    long long heap_limit_mb;    /* sqlite3_hard_heap_limit64 */
    long long max_rows;         /* rows kept per run */
    long long pg_timeout_ms;    /* PostgreSQL statement_timeout */
    double full_ratio, zero_ratio;
    sql_question *q;
    size_t nq;
    char *pg_host, *pg_admin; /* from the manifest, optional */
    int pg_port;
} sql_state;

typedef struct pr_sql_pgconn {
    char host[256]; /* unix socket directory */
    int port;
    char admin[64]; /* role that may create databases and roles */
} pr_sql_pgconn;

/** PostgreSQL chosen and configured: PROCTOR_PG_HOST (socket dir), PROCTOR_PG_PORT,
 * PROCTOR_PG_ADMIN, or the manifest's sql.postgresql; PROCTOR_SQL_ENGINE=sqlite forces SQLite. */
bool pr_sql_pg_configured(const sql_state *s, pr_sql_pgconn *conn);
/** Same, with the job's server first: g->pg_host (the daemon's "postgres" config) wins over
 * the environment, which wins over the manifest. g may be NULL. */
bool pr_sql_pg_choose(const sql_state *s, const pr_grading *g, pr_sql_pgconn *conn);
/** Grades g's submission on PostgreSQL (runner/sql_pg.c). */
int pr_sql_grade_pg(pr_grading *g, const sql_state *s, const pr_sql_pgconn *conn, pr_error *err);
/** Scores an engine result against the reference result: fills g->tests and g->metrics. */
int pr_sql_score(pr_grading *g, const sql_state *s, const json_t *result, const json_t *ref,
                 const sbx_result *res, bool pg, pr_error *err);
/** Sum of the per-run cost of one question result. */
long long pr_sql_question_cost(const json_t *q, bool pg);
/** Sets obj[key] to text cleaned to UTF-8 and cut at 8 KiB. */
int pr_report_set_text_sql(json_t *obj, const char *key, const char *text);
/** Finds the proctor-sql executor: $PROCTOR_SQL_EXECUTOR, else next to (or up to three
 * directories above) the running binary. */
int pr_sql_find_executor(char *out, size_t outsz, pr_error *err);
/** Runs the executor in the sandbox over submission with a private copy of db in jobdir. */
int pr_sql_run_sqlite(json_t **out, sbx_result *res, const sql_state *s, const pr_grading *g,
                      const char *submission, const char *db, const char *jobdir, pr_error *err);

#endif
