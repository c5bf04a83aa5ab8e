/* The sql kind's building blocks without the sandbox: the SQLite statement checks (authorizer,
 * one statement, read-only), the cost formula and cost points, result comparison, and the
 * manifest parser under allocation failure. */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proctor/challenge.h"
#include "proctor/common.h"
#include "proctor/kind.h"
#include "sql_check.h"
#include "sql_internal.h"
#include "t.h"

static const char *const tables[] = { "customers", "orders", NULL };

static sqlite3 *open_mem(pr_sqlchk *chk, pr_sqlchk_mode mode)
{
    sqlite3 *db = NULL;
    T_EQ_INT(sqlite3_open(":memory:", &db), SQLITE_OK);
    T_EQ_INT(sqlite3_exec(db,
                          "CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT);"
                          "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER,"
                          " created_at TEXT);"
                          "CREATE TABLE secrets (x TEXT);"
                          "INSERT INTO customers VALUES (1, 'a@x'), (2, 'b@x');"
                          "INSERT INTO orders VALUES (1, 1, '2024-01-01'), (2, 1, '2025-01-01');",
                          NULL, NULL, NULL),
             SQLITE_OK);
    memset(chk, 0, sizeof(*chk));
    chk->mode = mode;
    chk->tables = tables;
    T_EQ_INT(pr_sqlchk_harden(db, chk), SQLITE_OK);
    return db;
}

/* Prepares (and for schema statements runs) sql; returns the prepare code and the reason. */
static int try_sql(sqlite3 *db, pr_sqlchk *chk, const char *sql, char *why, size_t whysz)
{
    sqlite3_stmt *st = NULL;
    size_t tail = 0;
    int rc = pr_sqlchk_prepare(db, chk, sql, strlen(sql), &tail, &st, why, whysz);
    if (rc == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW) {
        }
        sqlite3_finalize(st);
    }
    return rc;
}

static void refused(sqlite3 *db, pr_sqlchk *chk, const char *sql, const char *reason)
{
    char why[400];
    int rc = try_sql(db, chk, sql, why, sizeof(why));
    if (rc == SQLITE_OK)
        T_FAIL("accepted: %s", sql);
    if (!strstr(why, reason))
        T_FAIL("%s: reason \"%s\" lacks \"%s\"", sql, why, reason);
}

static void accepted(sqlite3 *db, pr_sqlchk *chk, const char *sql)
{
    char why[400];
    int rc = try_sql(db, chk, sql, why, sizeof(why));
    if (rc != SQLITE_OK)
        T_FAIL("refused (%d): %s: %s", rc, sql, why);
}

static void test_schema_mode(void)
{
    pr_sqlchk chk;
    sqlite3 *db = open_mem(&chk, PR_SQLCHK_SCHEMA);
    accepted(db, &chk, "CREATE INDEX o_c ON orders (customer_id, created_at)");
    accepted(db, &chk, "CREATE UNIQUE INDEX c_e ON customers (email)");
    accepted(db, &chk, "CREATE INDEX o_expr ON orders (substr(created_at, 1, 4)) WHERE id > 0");
    accepted(db, &chk, "ANALYZE");
    accepted(db, &chk, "ANALYZE orders"); /* the second ANALYZE replaces sqlite_stat1 rows */
    refused(db, &chk, "CREATE INDEX s ON secrets (x)", "not one of the challenge's tables");
    refused(db, &chk, "DROP TABLE orders", "DROP TABLE");
    refused(db, &chk, "DROP INDEX o_c", "DROP INDEX");
    refused(db, &chk, "DELETE FROM orders", "DELETE FROM orders");
    refused(db, &chk, "INSERT INTO orders VALUES (9, 9, 'x')", "INSERT into orders");
    refused(db, &chk, "UPDATE orders SET customer_id = 2", "UPDATE into orders");
    refused(db, &chk, "CREATE TABLE answer AS SELECT 1", "CREATE TABLE answer");
    refused(db, &chk, "CREATE VIEW v AS SELECT 1", "CREATE VIEW");
    refused(db, &chk, "CREATE TRIGGER t AFTER INSERT ON orders BEGIN SELECT 1; END",
            "CREATE TRIGGER");
    refused(db, &chk, "PRAGMA writable_schema = ON", "PRAGMA writable_schema");
    refused(db, &chk, "ATTACH '/etc/passwd' AS x", "ATTACH");
    refused(db, &chk, "SELECT 1", "only hold CREATE INDEX and ANALYZE");
    refused(db, &chk, "INSERT INTO sqlite_stat1 VALUES ('orders', NULL, '1')",
            "only hold CREATE INDEX");
    refused(db, &chk, "REINDEX", "only hold CREATE INDEX");
    refused(db, &chk, "CREATE INDEX t ON orders (load_extension('x'))", "load_extension");
    refused(db, &chk, "BEGIN", "BEGIN/COMMIT");
    refused(db, &chk, "VACUUM", "only hold CREATE INDEX");
    refused(db, &chk, "VACUUM INTO '/tmp/proctor-sql-unit-copy.db'", "");
    /* The data is intact. */
    sqlite3_set_authorizer(db, NULL, NULL);
    sqlite3_stmt *st = NULL;
    T_EQ_INT(sqlite3_prepare_v2(db, "SELECT count(*) FROM orders", -1, &st, NULL), SQLITE_OK);
    T_EQ_INT(sqlite3_step(st), SQLITE_ROW);
    T_EQ_INT(sqlite3_column_int(st, 0), 2);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_query_mode(void)
{
    pr_sqlchk chk;
    sqlite3 *db = open_mem(&chk, PR_SQLCHK_QUERY);
    accepted(db, &chk, "SELECT id, email FROM customers ORDER BY id");
    accepted(db, &chk, "  -- comment\n SELECT count(*) AS n FROM orders; -- trailing\n ;");
    accepted(db, &chk,
             "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < 5) "
             "SELECT sum(x) FROM r");
    accepted(db, &chk, "SELECT name FROM sqlite_master");
    refused(db, &chk, "DELETE FROM orders", "DELETE is not allowed");
    refused(db, &chk, "INSERT INTO orders VALUES (3, 1, 'x')", "INSERT is not allowed");
    refused(db, &chk, "UPDATE orders SET customer_id = 2", "UPDATE is not allowed");
    refused(db, &chk, "WITH x AS (SELECT 1) INSERT INTO orders SELECT 5, 1, 'y' FROM x",
            "INSERT is not allowed");
    refused(db, &chk, "SELECT 1; DELETE FROM orders", "exactly one SELECT");
    refused(db, &chk, "SELECT 1; SELECT 2", "exactly one SELECT");
    refused(db, &chk, "ATTACH '/etc/passwd' AS pw", "ATTACH");
    refused(db, &chk, "PRAGMA cache_size = 100000", "PRAGMA cache_size");
    refused(db, &chk, "SELECT load_extension('/lib/x86_64-linux-gnu/libc.so.6')", "load_extension");
    refused(db, &chk, "CREATE INDEX i ON orders (customer_id)", "not allowed in a query file");
    refused(db, &chk, "EXPLAIN SELECT 1", "read-only SELECT");
    refused(db, &chk, "BEGIN", "BEGIN/COMMIT");
    refused(db, &chk, "VACUUM INTO '/tmp/proctor-sql-unit-copy.db'", "");
    refused(db, &chk, "SELECT fts3_tokenizer('simple')", "fts3_tokenizer");
    refused(db, &chk, "   -- nothing\n", "no SQL statement");
    sqlite3_close(db);
}

static void test_cost(void)
{
    T_EQ_INT(pr_sql_cost(1000, 0), 1000);
    T_EQ_INT(pr_sql_cost(1000, 7), 1700);
    /* Full within 2x, none at 50x, log-linear between: sqrt(2*50) = 10x is halfway. */
    T_TRUE(pr_sql_cost_fraction(100, 100, 2, 50) == 1.0);
    T_TRUE(pr_sql_cost_fraction(50, 100, 2, 50) == 1.0);
    T_TRUE(pr_sql_cost_fraction(200, 100, 2, 50) == 1.0);
    T_TRUE(fabs(pr_sql_cost_fraction(1000, 100, 2, 50) - 0.5) < 1e-9);
    T_TRUE(pr_sql_cost_fraction(5000, 100, 2, 50) == 0.0);
    T_TRUE(pr_sql_cost_fraction(1e12, 100, 2, 50) == 0.0);
    double a = pr_sql_cost_fraction(300, 100, 2, 50), b = pr_sql_cost_fraction(600, 100, 2, 50);
    T_TRUE(a < 1.0 && b < a && b > 0.0);
    /* A zero reference cost counts as 1. */
    T_TRUE(pr_sql_cost_fraction(1, 0, 2, 50) == 1.0);
    T_TRUE(pr_sql_cost_fraction(100, 0, 2, 50) == 0.0);
}

static void test_rows(void)
{
    char why[300];
    json_t *a = json_loads("[[1, \"x\", 5], [2, null, 7.5]]", 0, NULL);
    json_t *same = json_loads("[[1, \"x\", 5.0], [2, null, 7.5]]", 0, NULL);
    json_t *swapped = json_loads("[[2, null, 7.5], [1, \"x\", 5]]", 0, NULL);
    json_t *text = json_loads("[[1, \"x\", \"5\"], [2, null, 7.5]]", 0, NULL);
    json_t *shorter = json_loads("[[1, \"x\", 5]]", 0, NULL);
    json_t *big1 = json_loads("[[9007199254740993]]", 0, NULL);
    json_t *big2 = json_loads("[[9007199254740992]]", 0, NULL);
    T_TRUE(pr_sql_rows_equal(a, same, true, why, sizeof(why)));
    T_TRUE(!pr_sql_rows_equal(a, swapped, true, why, sizeof(why)));
    T_CONTAINS(why, "row 1");
    T_TRUE(pr_sql_rows_equal(a, swapped, false, why, sizeof(why)));
    T_TRUE(!pr_sql_rows_equal(a, text, false, why, sizeof(why)));
    T_TRUE(!pr_sql_rows_equal(a, shorter, false, why, sizeof(why)));
    T_CONTAINS(why, "expected 2 rows, got 1");
    T_TRUE(!pr_sql_rows_equal(big1, big2, true, why, sizeof(why))); /* exact, not via double */
    json_decref(a);
    json_decref(same);
    json_decref(swapped);
    json_decref(text);
    json_decref(shorter);
    json_decref(big1);
    json_decref(big2);
}

static void test_pg_text(void)
{
    pr_error err = { 0 };
    static const char *const pt[] = { "orders", "order_items", NULL };
    const char *text = "-- a; comment\nCREATE INDEX a ON orders (customer_id);\n"
                       "CREATE INDEX \"b;x\" ON orders ((status || ';'));  /* ; */ ;\n"
                       "ANALYZE $$;$$;";
    json_t *parts = pr_sql_pg_split(text, strlen(text), 10, &err);
    T_NOT_NULL(parts);
    T_EQ_INT(json_array_size(parts), 3);
    T_CONTAINS(json_string_value(json_array_get(parts, 1)), "(status || ';')");
    json_decref(parts);
    T_NULL(pr_sql_pg_split("SELECT 'open", 12, 10, &err));
    T_CONTAINS(err.msg, "unterminated");

    T_EQ_INT(pr_sql_pg_check_schema_stmt(
                 "create unique index if not exists x on public.orders (id)", pt, &err),
             0);
    T_EQ_INT(pr_sql_pg_check_schema_stmt("/* c */ CREATE INDEX ON ONLY order_items (order_id)", pt,
                                         &err),
             0);
    T_EQ_INT(pr_sql_pg_check_schema_stmt("ANALYZE orders", pt, &err), 0);
    T_EQ_INT(pr_sql_pg_check_schema_stmt("ANALYZE", pt, &err), 0);
    T_TRUE(pr_sql_pg_check_schema_stmt("CREATE TABLE t (x int)", pt, &err) < 0);
    T_CONTAINS(err.msg, "only CREATE INDEX and ANALYZE");
    T_TRUE(pr_sql_pg_check_schema_stmt("CREATE INDEX CONCURRENTLY c ON orders (id)", pt, &err) < 0);
    T_TRUE(pr_sql_pg_check_schema_stmt("CREATE INDEX c ON pg_class (relname)", pt, &err) < 0);
    T_CONTAINS(err.msg, "not one of the challenge's tables");
    T_TRUE(pr_sql_pg_check_schema_stmt("DROP TABLE orders", pt, &err) < 0);
    T_TRUE(pr_sql_pg_check_schema_stmt("ALTER TABLE orders OWNER TO x", pt, &err) < 0);

    T_EQ_INT(pr_sql_pg_check_query("WITH x AS (SELECT 1) SELECT * FROM x;", 37, &err), 0);
    T_EQ_INT(pr_sql_pg_check_query(" (SELECT 1)", 11, &err), 0);
    T_TRUE(pr_sql_pg_check_query("SELECT 1; SELECT 2", 18, &err) < 0);
    T_CONTAINS(err.msg, "exactly one SELECT");
    T_TRUE(pr_sql_pg_check_query("COPY orders TO STDOUT", 21, &err) < 0);
    T_TRUE(pr_sql_pg_check_query("SET statement_timeout = 0", 25, &err) < 0);

    json_t *names = NULL;
    const char *q = "SELECT ':x', a::text FROM t WHERE b = :year AND c = :since || :year -- :no";
    char *out = pr_sql_pg_params(q, strlen(q), &names, &err);
    T_NOT_NULL(out);
    T_EQ_STR(out, "SELECT ':x', a::text FROM t WHERE b = $1 AND c = $2 || $1 -- :no");
    T_EQ_INT(json_array_size(names), 2);
    T_EQ_STR(json_string_value(json_array_get(names, 1)), "since");
    pr_free(out);
    json_decref(names);
    T_NULL(pr_sql_pg_params("SELECT $1", 9, &names, &err));
}

typedef struct gen_count {
    unsigned long long hash;
    long long rows[8];
    int table;
} gen_count;

static int count_table(void *payload, const char *name, const char *const *columns, size_t n,
                       pr_error *err)
{
    gen_count *g = payload;
    (void)name;
    (void)columns;
    (void)n;
    (void)err;
    g->table++;
    return 0;
}

static int count_row(void *payload, const pr_sqlval *v, size_t n, pr_error *err)
{
    gen_count *g = payload;
    (void)err;
    g->rows[g->table]++;
    for (size_t i = 0; i < n; i++) {
        if (v[i].is_text) {
            for (const char *c = v[i].s; *c; c++)
                g->hash = (g->hash ^ (unsigned char)*c) * 1099511628211ULL;
        } else {
            g->hash = (g->hash ^ (unsigned long long)v[i].i) * 1099511628211ULL;
        }
    }
    return 0;
}

/* The generator is deterministic by seed, has the documented sizes, and a different seed gives
 * different data. */
static void test_generator(void)
{
    gen_count a = { 1469598103934665603ULL, { 0 }, 0 }, b = a, c = a;
    pr_sqlgen_sink sa = { count_table, count_row, &a }, sb = { count_table, count_row, &b },
                   sc = { count_table, count_row, &c };
    pr_error err = { 0 };
    T_EQ_INT(pr_sqlgen_run("orders", 7, &sa, &err), 0);
    T_EQ_INT(pr_sqlgen_run("orders", 7, &sb, &err), 0);
    T_EQ_INT(pr_sqlgen_run("orders", 8, &sc, &err), 0);
    T_TRUE(a.hash == b.hash);
    T_TRUE(a.hash != c.hash);
    T_EQ_INT(a.table, 4);
    T_EQ_INT(a.rows[1], 20000);
    T_EQ_INT(a.rows[2], 1000);
    T_TRUE(a.rows[3] >= 200000 && a.rows[3] < 200100);
    T_TRUE(a.rows[4] > 550000 && a.rows[4] < 650000);
    T_TRUE(pr_sqlgen_run("nope", 7, &sa, &err) < 0);
}

static void test_parse_alloc_fail(void)
{
    char pack[512];
    pr_challenge *c = NULL;
    pr_error err = { 0 };
    (void)snprintf(pack, sizeof(pack), "%s/challenges/orders-report", PR_SOURCE_DIR);
    if (pr_challenge_load(&c, pack, &err) != 0)
        T_FAIL("load %s: %s", pack, err.msg);
    const pr_kind *k = c->kind;
    T_EQ_STR(k->name, "sql");
    /* Every allocation failure inside parse is reported, never a crash or a leak. */
    for (long n = 0; n < 400; n++) {
        void *state = NULL;
        pr_error e2 = { 0 };
        pr_alloc_fail_after(n);
        int rc = k->parse(&state, c->manifest, c->dir, &e2);
        pr_alloc_fail_after(-1);
        if (rc == 0) {
            T_NOT_NULL(state);
            k->free(state);
            break;
        }
        T_NULL(state);
        T_TRUE(rc < 0);
    }
    /* Bad manifests name the field. */
    json_t *bad = json_deep_copy(c->manifest);
    json_object_set_new(json_object_get(bad, "sql"), "generator",
                        json_pack("{s:s, s:i}", "name", "nope", "seed", 1));
    void *state = NULL;
    T_TRUE(k->parse(&state, bad, c->dir, &err) < 0);
    T_CONTAINS(err.msg, "sql.generator");
    json_decref(bad);
    bad = json_deep_copy(c->manifest);
    json_object_set_new(json_array_get(json_object_get(bad, "tests"), 0), "name",
                        json_string("q9"));
    T_TRUE(k->parse(&state, bad, c->dir, &err) < 0);
    T_CONTAINS(err.msg, "tests[0].name");
    json_decref(bad);
    bad = json_deep_copy(c->manifest);
    json_object_set_new(
        json_array_get(json_object_get(json_object_get(bad, "sql"), "questions"), 0), "file",
        json_string("../../etc/passwd"));
    T_TRUE(k->parse(&state, bad, c->dir, &err) < 0);
    T_CONTAINS(err.msg, "questions[0]");
    json_decref(bad);
    pr_challenge_free(c);
}

int main(void)
{
    test_schema_mode();
    test_query_mode();
    test_cost();
    test_rows();
    test_generator();
    test_pg_text();
    test_parse_alloc_fail();
    return 0;
}
