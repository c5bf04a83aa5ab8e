#ifndef PROCTOR_RUNNER_SQL_INTERNAL_H
#define PROCTOR_RUNNER_SQL_INTERNAL_H
/* Private parts of the sql kind (runner/kinds/sql.c): the deterministic data generator, the
 * database cache, result comparison, cost scoring and the PostgreSQL engine. */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proctor/error.h"

/* ---- Data generator (runner/sql_gen.c) ---- */

typedef struct pr_sqlval {
    bool is_text;
    long long i;   /* when !is_text */
    const char *s; /* when is_text; valid during the row callback */
} pr_sqlval;

typedef struct pr_sqlgen_sink {
    /* A new table starts; columns are the table's column names in order. */
    int (*table)(void *payload, const char *name, const char *const *columns, size_t ncols,
                 pr_error *err);
    int (*row)(void *payload, const pr_sqlval *vals, size_t n, pr_error *err);
    void *payload;
} pr_sqlgen_sink;

/** True when name is a generator this build knows ("orders"). */
bool pr_sqlgen_known(const char *name);
/** Emits every row of generator name, seeded, through sink: identical output for identical
 * (name, seed) on every machine. The tables come in dependency order. */
int pr_sqlgen_run(const char *name, uint64_t seed, const pr_sqlgen_sink *sink, pr_error *err);

/* ---- Database cache (runner/sql_db.c) ---- */

/** The cache root: $PROCTOR_SQL_CACHE, else $XDG_CACHE_HOME/proctor/sql, else
 * $HOME/.cache/proctor/sql, else /var/cache/proctor/sql. Writes into out. */
int pr_sql_cache_root(char *out, size_t outsz, pr_error *err);

/** Takes an exclusive flock on <root>/<key>.lock (created 0600); returns the fd (O_CLOEXEC) or
 * < 0. Closing the fd releases it. Blocks while another job builds the same entry. */
int pr_sql_cache_lock(const char *root, const char *key, pr_error *err);

/** Builds a SQLite database at path (which must not exist): runs the pack's schema text, then
 * inserts every generated row in one transaction. The file is made read-only (0444). */
int pr_sql_build_sqlite(const char *path, const char *schema_sql, const char *gen, uint64_t seed,
                        pr_error *err);

/** Copies a file (regular, no symlinks) to dst (created 0644, must not exist). */
int pr_sql_copy_file(const char *src, const char *dst, pr_error *err);

/** Reads a small regular file (no symlinks) of at most max bytes into *out (pr_free). */
int pr_sql_read_file(char **out, size_t *len, const char *path, size_t max, pr_error *err);

/** Writes data to path atomically (temporary file, fsync, rename). */
int pr_sql_write_file(const char *path, const char *data, size_t len, pr_error *err);

/* ---- Result comparison and cost (runner/sql_score.c) ---- */

/** Compares two result row arrays (arrays of arrays of JSON scalars). Numbers compare by value
 * (integer 5 equals real 5.0; exact, no tolerance), text by bytes, NULL equals NULL. With
 * ordered false, both are compared as multisets. Returns true when equal; otherwise writes a
 * short explanation (first differing row) into why. */
bool pr_sql_rows_equal(const json_t *expected, const json_t *got, bool ordered, char *why,
                       size_t whysz);

/** SQLite cost of one run: vm_steps + 100 * cache_misses. */
long long pr_sql_cost(long long vm_steps, long long cache_misses);

/** Fraction (0..1) of the cost points for a candidate cost against the reference cost: 1 within
 * full_ratio x the reference, 0 at zero_ratio x or beyond, log-linear in between. A reference
 * cost of 0 is treated as 1. */
double pr_sql_cost_fraction(double cand, double ref, double full_ratio, double zero_ratio);

/* ---- PostgreSQL statement helpers (runner/sql_pgtext.c) ---- */

/** Splits PostgreSQL text into statements at top-level semicolons (strings, quoted identifiers,
 * dollar quotes and comments respected). Returns an array of strings (owned JSON), or NULL with
 * err set for unterminated quotes or more than max statements. Empty statements are dropped. */
json_t *pr_sql_pg_split(const char *sql, size_t len, size_t max, pr_error *err);

/** Upper-cased leading keywords of a statement, skipping comments: fills words with up to n
 * words of at most 31 chars. Returns how many were found. */
size_t pr_sql_pg_keywords(const char *sql, char words[][32], size_t n);

/** Rewrites :name parameters into $1..$n (outside strings, comments and :: casts). names
 * receives the parameter names in $ order (owned JSON array). Returns the new text (pr_free)
 * or NULL with err set. */
char *pr_sql_pg_params(const char *sql, size_t len, json_t **names, pr_error *err);

/** Checks a schema.sql statement for PostgreSQL: CREATE [UNIQUE] INDEX ... ON <pack table> or
 * ANALYZE [table]. Returns 0 or PR_EINVAL with the reason in err. */
int pr_sql_pg_check_schema_stmt(const char *stmt, const char *const *tables, pr_error *err);
/** Checks a query for PostgreSQL: exactly one statement starting with SELECT or WITH. */
int pr_sql_pg_check_query(const char *sql, size_t len, pr_error *err);

#endif
