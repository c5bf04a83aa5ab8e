/* Statement checks for candidate SQL on SQLite (see sql_check.h). The authorizer is the
 * enforcement: it sees every table, column, function and action the compiled statement will
 * touch, so a write hidden in a CTE, an ATTACH in a string built at run time or a PRAGMA behind
 * a comment is refused before anything runs. Text is never pattern-matched for safety. */
#include "sql_check.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Functions a candidate never needs and that reach outside the database or the clock. */
static const char *const denied_functions[] = {
    "load_extension", "readfile", "writefile", "edit", "fts3_tokenizer", "sqlite_offset", NULL
};

#define S(x) ((x) ? (x) : "?")

/* Records the first refusal as pre + name + post (+ name2 + post2). */
static int deny5(pr_sqlchk *c, const char *pre, const char *name, const char *post,
                 const char *name2, const char *post2)
{
    if (!c->denied) {
        c->denied = true;
        (void)snprintf(c->why, sizeof(c->why), "%s%s%s%s%s", pre, name, post, name2, post2);
    }
    return SQLITE_DENY;
}

static int deny(pr_sqlchk *c, const char *pre, const char *name, const char *post)
{
    return deny5(c, pre, name, post, "", "");
}

static bool is_pack_table(const pr_sqlchk *c, const char *name)
{
    if (!name || !c->tables)
        return false;
    for (size_t i = 0; c->tables[i]; i++) {
        if (strcasecmp(c->tables[i], name) == 0)
            return true;
    }
    return false;
}

static bool is_main(const char *db)
{
    return db && strcmp(db, "main") == 0;
}

static const char *action_name(int action)
{
    switch (action) {
    case SQLITE_CREATE_TABLE:
    case SQLITE_CREATE_TEMP_TABLE:
        return "CREATE TABLE";
    case SQLITE_CREATE_VIEW:
    case SQLITE_CREATE_TEMP_VIEW:
        return "CREATE VIEW";
    case SQLITE_CREATE_TRIGGER:
    case SQLITE_CREATE_TEMP_TRIGGER:
        return "CREATE TRIGGER";
    case SQLITE_CREATE_TEMP_INDEX:
        return "CREATE TEMP INDEX";
    case SQLITE_DELETE:
        return "DELETE";
    case SQLITE_DROP_INDEX:
    case SQLITE_DROP_TEMP_INDEX:
        return "DROP INDEX";
    case SQLITE_DROP_TABLE:
    case SQLITE_DROP_TEMP_TABLE:
        return "DROP TABLE";
    case SQLITE_DROP_VIEW:
    case SQLITE_DROP_TEMP_VIEW:
        return "DROP VIEW";
    case SQLITE_DROP_TRIGGER:
    case SQLITE_DROP_TEMP_TRIGGER:
        return "DROP TRIGGER";
    case SQLITE_INSERT:
        return "INSERT";
    case SQLITE_UPDATE:
        return "UPDATE";
    case SQLITE_PRAGMA:
        return "PRAGMA";
    case SQLITE_TRANSACTION:
        return "BEGIN/COMMIT";
    case SQLITE_SAVEPOINT:
        return "SAVEPOINT";
    case SQLITE_ATTACH:
        return "ATTACH";
    case SQLITE_DETACH:
        return "DETACH";
    case SQLITE_ALTER_TABLE:
        return "ALTER TABLE";
    case SQLITE_REINDEX:
        return "REINDEX";
    case SQLITE_ANALYZE:
        return "ANALYZE";
    case SQLITE_CREATE_VTABLE:
        return "CREATE VIRTUAL TABLE";
    case SQLITE_DROP_VTABLE:
        return "DROP VIRTUAL TABLE";
    case SQLITE_CREATE_INDEX:
        return "CREATE INDEX";
    default:
        return "this statement";
    }
}

int pr_sqlchk_authorizer(void *payload, int action, const char *a3, const char *a4, const char *db,
                         const char *trigger)
{
    pr_sqlchk *c = payload;
    (void)trigger;

    /* Shared by both phases: reading columns and calling harmless functions. */
    if (action == SQLITE_READ)
        return SQLITE_OK;
    if (action == SQLITE_SELECT)
        return SQLITE_OK;
    if (action == SQLITE_FUNCTION) {
        for (size_t i = 0; denied_functions[i]; i++) {
            if (a4 && strcasecmp(a4, denied_functions[i]) == 0)
                return deny(c, "function ", S(a4), "() is not allowed");
        }
        return SQLITE_OK;
    }
    if (c->mode == PR_SQLCHK_QUERY) {
        if (action == SQLITE_RECURSIVE)
            return SQLITE_OK; /* WITH RECURSIVE is a read; the VM-step budget bounds it */
        if (action == SQLITE_PRAGMA)
            return deny(c, "PRAGMA ", S(a3), " is not allowed in a query file");
        if (action == SQLITE_ATTACH)
            return deny(c, "ATTACH is not allowed (", S(a3), ")");
        return deny(c, "", action_name(action), " is not allowed in a query file: only one SELECT");
    }

    /* Schema phase. CREATE INDEX compiles to: INSERT into sqlite_master, CREATE_INDEX, READs
     * of the indexed columns, another INSERT into sqlite_master and a REINDEX of the new index.
     * The first ANALYZE also creates sqlite_stat1 and updates sqlite_master. */
    switch (action) {
    case SQLITE_CREATE_INDEX:
        if (!is_main(db))
            return deny(c, "CREATE INDEX ", S(a3),
                        ": only indexes in the main database are allowed");
        if (!is_pack_table(c, a4))
            return deny5(c, "CREATE INDEX ", S(a3), " on ", S(a4),
                         ": not one of the challenge's tables");
        c->saw_primary = true;
        return SQLITE_OK;
    case SQLITE_ANALYZE:
        if (!is_main(db))
            return deny(c, "ANALYZE ", S(a3), ": only the main database");
        c->saw_primary = true;
        return SQLITE_OK;
    case SQLITE_DELETE:
        /* ANALYZE replaces the old statistics; DROP deletes catalogue rows, but its own
         * action code (DROP_TABLE, DROP_INDEX...) is refused below, and a bare DELETE on the
         * catalogue never sets saw_primary (and defensive mode blocks it anyway). */
        if (is_main(db) && a3 &&
            (strcmp(a3, "sqlite_stat1") == 0 || strcmp(a3, "sqlite_master") == 0 ||
             strcmp(a3, "sqlite_schema") == 0))
            return SQLITE_OK;
        return deny(c, "DELETE FROM ", S(a3), " is not allowed");
    case SQLITE_REINDEX:
        /* Part of CREATE INDEX; a bare REINDEX statement never sets saw_primary. */
        return SQLITE_OK;
    case SQLITE_INSERT:
    case SQLITE_UPDATE:
        if (is_main(db) && a3 &&
            (strcmp(a3, "sqlite_master") == 0 || strcmp(a3, "sqlite_schema") == 0 ||
             strcmp(a3, "sqlite_stat1") == 0))
            return SQLITE_OK; /* the catalogue rows of a new index or statistics */
        return deny5(c, "", action == SQLITE_INSERT ? "INSERT" : "UPDATE", " into ", S(a3),
                     " is not allowed: schema.sql may only CREATE INDEX or ANALYZE");
    case SQLITE_CREATE_TABLE:
        if (is_main(db) && a3 && strcmp(a3, "sqlite_stat1") == 0)
            return SQLITE_OK; /* made by the first ANALYZE */
        return deny(c, "CREATE TABLE ", S(a3),
                    " is not allowed: schema.sql may only CREATE INDEX or ANALYZE");
    case SQLITE_PRAGMA:
        return deny(c, "PRAGMA ", S(a3), " is not allowed in schema.sql");
    case SQLITE_ATTACH:
        return deny(c, "ATTACH is not allowed (", S(a3), ")");
    default:
        return deny(c, "", action_name(action),
                    " is not allowed in schema.sql: only CREATE INDEX and ANALYZE");
    }
}

void pr_sqlchk_begin(pr_sqlchk *c)
{
    c->saw_primary = false;
    c->denied = false;
    c->why[0] = '\0';
}

int pr_sqlchk_harden(sqlite3 *db, pr_sqlchk *c)
{
    int rc;
    rc = sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, (int *)NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, (int *)NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_VIEW, 0, (int *)NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_db_config(db, SQLITE_DBCONFIG_WRITABLE_SCHEMA, 0, (int *)NULL);
    if (rc != SQLITE_OK)
        return rc;
    (void)sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
    (void)sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, 64 * 1024);
    (void)sqlite3_limit(db, SQLITE_LIMIT_LENGTH, 1000 * 1000);
    (void)sqlite3_limit(db, SQLITE_LIMIT_EXPR_DEPTH, 200);
    (void)sqlite3_limit(db, SQLITE_LIMIT_COMPOUND_SELECT, 64);
    (void)sqlite3_limit(db, SQLITE_LIMIT_VDBE_OP, 100000);
    (void)sqlite3_limit(db, SQLITE_LIMIT_FUNCTION_ARG, 32);
    (void)sqlite3_limit(db, SQLITE_LIMIT_WORKER_THREADS, 0);
    (void)sqlite3_limit(db, SQLITE_LIMIT_VARIABLE_NUMBER, 32);
    return sqlite3_set_authorizer(db, pr_sqlchk_authorizer, c);
}

/* Skips whitespace and comments; returns the offset of the first other byte (len if none). */
static size_t skip_blank(const char *s, size_t len, size_t i)
{
    while (i < len) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v' ||
            ch == ';') {
            i++; /* blanks, and empty statements, which are harmless */
        } else if (ch == '-' && i + 1 < len && s[i + 1] == '-') {
            while (i < len && s[i] != '\n')
                i++;
        } else if (ch == '/' && i + 1 < len && s[i + 1] == '*') {
            i += 2;
            while (i + 1 < len && !(s[i] == '*' && s[i + 1] == '/'))
                i++;
            i = i + 1 < len ? i + 2 : len;
        } else {
            break;
        }
    }
    return i;
}

bool pr_sqlchk_blank(const char *sql, size_t len)
{
    return skip_blank(sql, len, 0) >= len;
}

int pr_sqlchk_prepare(sqlite3 *db, pr_sqlchk *c, const char *sql, size_t len, size_t *tail_off,
                      sqlite3_stmt **out, char *why, size_t whysz)
{
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    int rc;

    *out = NULL;
    if (why && whysz)
        why[0] = '\0';
    if (len > (size_t)64 * 1024 || len > (size_t)0x7fffffff) {
        (void)snprintf(why, whysz, "statement text is longer than 64 KiB");
        return SQLITE_TOOBIG;
    }
    pr_sqlchk_begin(c);
    rc = sqlite3_prepare_v3(db, sql, (int)len, 0, &st, &tail);
    if (rc != SQLITE_OK) {
        if (c->denied)
            (void)snprintf(why, whysz, "refused: %s", c->why);
        else
            (void)snprintf(why, whysz, "%s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return c->denied ? SQLITE_AUTH : rc;
    }
    if (!st) {
        (void)snprintf(why, whysz, "no SQL statement");
        return SQLITE_MISUSE;
    }
    size_t off = tail ? (size_t)(tail - sql) : len;
    if (c->mode == PR_SQLCHK_QUERY) {
        if (!pr_sqlchk_blank(sql + off, len - off)) {
            (void)snprintf(why, whysz,
                           "refused: a query file must hold exactly one SELECT statement");
            sqlite3_finalize(st);
            return SQLITE_MISUSE;
        }
        if (!sqlite3_stmt_readonly(st) || sqlite3_stmt_isexplain(st)) {
            (void)snprintf(why, whysz, "refused: a query file must hold one read-only SELECT");
            sqlite3_finalize(st);
            return SQLITE_AUTH;
        }
        if (sqlite3_column_count(st) == 0) {
            (void)snprintf(why, whysz, "refused: the statement returns no columns");
            sqlite3_finalize(st);
            return SQLITE_AUTH;
        }
    } else if (!c->saw_primary) {
        (void)snprintf(why, whysz,
                       "refused: schema.sql may only hold CREATE INDEX and ANALYZE "
                       "statements");
        sqlite3_finalize(st);
        return SQLITE_AUTH;
    }
    if (tail_off)
        *tail_off = off;
    *out = st;
    return SQLITE_OK;
}
