#ifndef PROCTOR_RUNNER_SQL_CHECK_H
#define PROCTOR_RUNNER_SQL_CHECK_H
/* Statement checks for candidate SQL on SQLite: an authorizer (sqlite3_set_authorizer) that lets
 * the schema phase create indexes and run ANALYZE and nothing else, and the query phase read and
 * nothing else. Shared by proctor (unit tests) and the proctor-sql executor, which links only
 * sqlite3 and jansson: this file uses no other proctor module. */

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum pr_sqlchk_mode {
    PR_SQLCHK_SCHEMA = 1, /* schema.sql: CREATE INDEX on the pack's tables, ANALYZE */
    PR_SQLCHK_QUERY = 2   /* q*.sql: one read-only SELECT */
} pr_sqlchk_mode;

/* Authorizer state for one connection; reset by pr_sqlchk_begin before each prepare. */
typedef struct pr_sqlchk {
    pr_sqlchk_mode mode;
    const char *const *tables; /* NULL-terminated tables candidates may index (borrowed) */
    bool saw_primary;          /* the statement is a CREATE INDEX or ANALYZE (schema mode) */
    bool denied;               /* something was refused */
    char why[200];             /* the first refusal, one line */
} pr_sqlchk;

/** The authorizer callback; pass a pr_sqlchk as its payload. */
int pr_sqlchk_authorizer(void *payload, int action, const char *a3, const char *a4, const char *db,
                         const char *trigger);
/** Clears the per-statement flags before preparing a statement. */
void pr_sqlchk_begin(pr_sqlchk *c);
/** Hardens a connection: no extension loading, defensive mode, untrusted schema, no triggers or
 * views, no ATTACH, caps on SQL length, string length, expression depth and compound selects,
 * and installs the authorizer with c. Returns an SQLite result code. */
int pr_sqlchk_harden(sqlite3 *db, pr_sqlchk *c);

/** Prepares exactly one statement from sql (len bytes) under the checks of c's mode. On success
 * *out is the statement. On refusal returns SQLITE_AUTH (or SQLITE_MISUSE for a second statement
 * or an empty file) with why filled; other SQLite errors return their code with the message.
 * For schema mode, *tail_off receives the offset where the next statement starts (the caller
 * loops); in query mode any second statement is refused. */
int pr_sqlchk_prepare(sqlite3 *db, pr_sqlchk *c, const char *sql, size_t len, size_t *tail_off,
                      sqlite3_stmt **out, char *why, size_t whysz);

/** True when text holds only whitespace and SQL comments. */
bool pr_sqlchk_blank(const char *sql, size_t len);

#endif
