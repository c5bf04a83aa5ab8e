/* The sql kind on PostgreSQL, against the private cluster that pg_cluster.sh starts: the shipped
 * solutions, identical shared-block counts when the same submission is graded twice, hostile SQL
 * refused by proctor's checks or by the server's privileges or stopped by statement_timeout, no
 * leftover job databases or roles, and the template's data unchanged. */
#include <libpq-fe.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "proctor/challenge.h"
#include "proctor/common.h"
#include "proctor/kind.h"
#include "sql_internal.h"
#include "sql_t.h"
#include "t.h"

static PGconn *admin_conn(const char *db)
{
    const char *const keys[] = { "host", "port", "user", "dbname", NULL };
    const char *const vals[] = { getenv("PROCTOR_PG_HOST"), getenv("PROCTOR_PG_PORT"),
                                 getenv("PROCTOR_PG_ADMIN"), db, NULL };
    PGconn *c = PQconnectdbParams(keys, vals, 0);
    if (PQstatus(c) != CONNECTION_OK)
        T_FAIL("connect %s: %s", db, PQerrorMessage(c));
    return c;
}

static char *scalar(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        T_FAIL("%s: %s", sql, PQerrorMessage(c));
    char *v = pr_strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static char *template_fingerprint(void)
{
    char tpl[64];
    (void)snprintf(tpl, sizeof(tpl), "proctor_tpl_%.24s", pack->digest);
    PGconn *c = admin_conn(tpl);
    char *v = scalar(c, "SELECT (SELECT count(*) FROM orders) || '/' || "
                        "(SELECT sum(hashtext(o::text)::bigint) FROM orders o) || '/' || "
                        "(SELECT count(*) FROM order_items) || '/' || "
                        "(SELECT sum(hashtext(i::text)::bigint) FROM order_items i) || '/' || "
                        "(SELECT count(*) FROM pg_indexes WHERE schemaname = 'public')");
    PQfinish(c);
    return v;
}

int main(void)
{
    char dir[1024], cache[1024], sub[1200];
    pr_error err = { 0 };

    if (!getenv("PROCTOR_PG_HOST"))
        T_SKIP("no PostgreSQL cluster (run through tests/sql/pg_cluster.sh)");
    T_EQ_INT(setenv("PROCTOR_SQL_ENGINE", "postgresql", 1), 0);
    (void)snprintf(cache, sizeof(cache), "%s/sql-cache-pg-%ld", PR_BINARY_DIR, (long)getpid());
    T_EQ_INT(setenv("PROCTOR_SQL_CACHE", cache, 1), 0);
    (void)snprintf(scratch, sizeof(scratch), "%s/sql-pg-test-%ld", PR_BINARY_DIR, (long)getpid());
    (void)pr_rm_rf(scratch);
    T_EQ_INT(pr_mkdir_p(scratch), 0);
    (void)snprintf(dir, sizeof(dir), "%s/challenges/orders-report", PR_SOURCE_DIR);
    if (pr_challenge_load(&pack, dir, &err) != 0)
        T_FAIL("load: %s", err.msg);

    /* What a grader that died leaves behind: a job database and role from two hours ago (swept
     * by the next grading) and one from a minute ago (another grader's, left alone). */
    char stale[64], fresh[64], sql[512];
    unsigned long now = (unsigned long)time(NULL);
    (void)snprintf(stale, sizeof(stale), "proctor_job_%08lx_00000000dead", now - 7200);
    (void)snprintf(fresh, sizeof(fresh), "proctor_job_%08lx_00000000beef", now - 60);
    PGconn *adm = admin_conn("postgres");
    const char *const names[] = { stale, fresh };
    for (size_t i = 0; i < 2; i++) {
        (void)snprintf(sql, sizeof(sql), "CREATE ROLE \"%s\"", names[i]);
        PQclear(PQexec(adm, sql));
        (void)snprintf(sql, sizeof(sql), "CREATE DATABASE \"%s\"", names[i]);
        PQclear(PQexec(adm, sql));
    }

    (void)snprintf(sub, sizeof(sub), "%s/solutions/reference", pack->dir);
    graded ref = grade(sub);

    (void)snprintf(sql, sizeof(sql),
                   "SELECT (SELECT count(*) FROM pg_database WHERE datname IN ('%s', '%s')) || '/' "
                   "|| (SELECT count(*) FROM pg_roles WHERE rolname IN ('%s', '%s'))",
                   stale, fresh, stale, fresh);
    char *left = scalar(adm, sql);
    T_EQ_STR(left, "1/1"); /* only the fresh pair */
    pr_free(left);
    (void)snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_database WHERE datname = '%s'",
                   fresh);
    left = scalar(adm, sql);
    T_EQ_STR(left, "1");
    pr_free(left);
    (void)snprintf(sql, sizeof(sql), "DROP DATABASE \"%s\"", fresh);
    PQclear(PQexec(adm, sql));
    (void)snprintf(sql, sizeof(sql), "DROP ROLE \"%s\"", fresh);
    PQclear(PQexec(adm, sql));
    PQfinish(adm);
    T_TRUE(fabs(total(&ref) - 100) < 1e-9);
    json_t *m2 = json_object_get(json_object_get(ref.metrics, "sql"), "q2");
    T_EQ_STR(json_string_value(json_object_get(m2, "engine")), "postgresql");
    T_TRUE(json_integer_value(json_object_get(m2, "shared_blocks")) > 0);
    T_TRUE(json_integer_value(json_object_get(m2, "cost")) ==
           json_integer_value(json_object_get(m2, "shared_blocks")));
    T_CONTAINS(json_string_value(json_object_get(m2, "plan")), "orders_customer_created");
    char *fp_before = template_fingerprint();

    /* Same submission twice, each on a fresh clone: identical block counts. */
    graded again = grade(sub);
    T_TRUE(json_equal(json_object_get(ref.metrics, "sql"), json_object_get(again.metrics, "sql")));
    done(&again);

    (void)snprintf(sub, sizeof(sub), "%s/solutions/no-indexes", pack->dir);
    graded noidx = grade(sub);
    expect(&noidx, "q1", "AC", NULL);
    expect(&noidx, "q2", "AC", NULL);
    expect(&noidx, "q3", "AC", NULL);
    expect(&noidx, "q4", "AC", NULL);
    expect(&noidx, "q2-cost", "WA", "none beyond");
    done(&noidx);

    (void)snprintf(sub, sizeof(sub), "%s/solutions/wrong-answer", pack->dir);
    graded wrong = grade(sub);
    expect(&wrong, "q2", "WA", NULL);
    expect(&wrong, "q3", "WA", NULL);
    expect(&wrong, "q1", "AC", NULL);
    done(&wrong);

    (void)snprintf(sub, sizeof(sub), "%s/solutions/forbidden", pack->dir);
    graded forb = grade(sub);
    expect(&forb, "q1", "RE", "only CREATE INDEX and ANALYZE");
    T_TRUE(total(&forb) == 0);
    done(&forb);

    /* Hostile queries: the checks, the server's privileges and statement_timeout. */
    (void)snprintf(sub, sizeof(sub), "%s/hostile1", scratch);
    copy_reference(sub);
    write_text(sub, "q1.sql", "SELECT count(*) FROM orders a, order_items b, customers c");
    write_text(sub, "q2.sql", "SELECT pg_read_file('/etc/passwd') AS order_id");
    write_text(sub, "q3.sql",
               "WITH d AS (DELETE FROM orders RETURNING id) SELECT count(*) AS month FROM d");
    write_text(sub, "q4.sql", "SELECT 1 AS n; DROP TABLE orders");
    graded h1 = grade(sub);
    expect(&h1, "q1", "TLE", "statement timeout");
    expect(&h1, "q2", "RE", "permission denied");
    expect(&h1, "q3", "RE", NULL);
    expect(&h1, "q4", "RE", "exactly one SELECT");
    done(&h1);

    (void)snprintf(sub, sizeof(sub), "%s/hostile2", scratch);
    copy_reference(sub);
    write_text(sub, "schema.sql",
               "CREATE INDEX fine ON orders (customer_id);\n"
               "ALTER TABLE orders ADD COLUMN total_cents bigint;\n");
    graded h2 = grade(sub);
    expect(&h2, "q1", "RE", "only CREATE INDEX and ANALYZE");
    done(&h2);
    write_text(sub, "schema.sql", "CREATE INDEX leak ON orders ((pg_read_file('/etc/passwd')));");
    graded h3 = grade(sub);
    expect(&h3, "q2", "RE", "IMMUTABLE");
    done(&h3);
    write_text(sub, "schema.sql", "CREATE INDEX cat ON pg_catalog.pg_class (relname);");
    graded h4 = grade(sub);
    expect(&h4, "q3", "RE", "not one of the challenge's tables");
    done(&h4);

    /* Nothing left behind, nothing changed. */
    char *fp_after = template_fingerprint();
    T_EQ_STR(fp_after, fp_before);
    PGconn *c = admin_conn("postgres");
    char *dbs = scalar(c, "SELECT count(*) FROM pg_database WHERE datname LIKE 'proctor_job_%'");
    char *roles = scalar(c, "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'proctor_job_%'");
    T_EQ_STR(dbs, "0");
    T_EQ_STR(roles, "0");
    PQfinish(c);
    pr_free(dbs);
    pr_free(roles);
    pr_free(fp_before);
    pr_free(fp_after);
    done(&ref);
    pr_challenge_free(pack);
    (void)pr_rm_rf(scratch);
    (void)pr_rm_rf(cache);
    return 0;
}
