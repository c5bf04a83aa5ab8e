/* The sql kind end to end on SQLite through the real sandbox: the orders-report pack's shipped
 * solutions (reference, no indexes, wrong answer, forbidden statement), identical counters when
 * the same submission is graded twice, hostile SQL refused or stopped by the VM-step budget, and
 * the cached database byte-for-byte unchanged afterwards. Skips (77) without a sandbox. */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proctor/challenge.h"
#include "proctor/common.h"
#include "proctor/kind.h"
#include "proctor/sandbox.h"
#include "sql_internal.h"
#include "sbx_t.h"
#include "sql_t.h"
#include "t.h"

static double points(const graded *r, const char *name)
{
    return json_number_value(json_object_get(test_of(r, name), "points"));
}

/* FNV-1a over a whole file: enough to see that not one byte changed. */
static unsigned long long file_hash(const char *path)
{
    unsigned long long h = 1469598103934665603ULL;
    unsigned char buf[65536];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    T_TRUE(fd >= 0);
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        T_TRUE(n >= 0);
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            h = (h ^ buf[i]) * 1099511628211ULL;
    }
    close(fd);
    return h;
}

int main(void)
{
    char dir[1024], cache[1024], db[1200], sub[1200];
    pr_error err = { 0 };

    if (!sandbox_works())
        T_SKIP("the sandbox does not run here");
    /* One database per pack digest, shared by every test of this build. */
    (void)snprintf(cache, sizeof(cache), "%s/sql-cache", PR_BINARY_DIR);
    T_EQ_INT(setenv("PROCTOR_SQL_CACHE", cache, 1), 0);
    (void)snprintf(scratch, sizeof(scratch), "%s/sql-test-%ld", PR_BINARY_DIR, (long)getpid());
    (void)pr_rm_rf(scratch);
    T_EQ_INT(pr_mkdir_p(scratch), 0);
    T_EQ_INT(chmod(scratch, 0755), 0);
    (void)snprintf(dir, sizeof(dir), "%s/challenges/orders-report", PR_SOURCE_DIR);
    if (pr_challenge_load(&pack, dir, &err) != 0)
        T_FAIL("load: %s", err.msg);

    /* Reference: everything right, full cost points; builds the cache on first use. */
    (void)snprintf(sub, sizeof(sub), "%s/solutions/reference", pack->dir);
    graded ref = grade(sub);
    T_TRUE(fabs(total(&ref) - 100) < 1e-9);
    expect(&ref, "q2", "AC", "3 parameter sets");
    expect(&ref, "q2-cost", "AC", "(1.00x)");
    json_t *m2 = json_object_get(json_object_get(ref.metrics, "sql"), "q2");
    T_EQ_STR(json_string_value(json_object_get(m2, "engine")), "sqlite");
    T_EQ_INT(json_integer_value(json_object_get(m2, "sorts")), 0);
    T_EQ_INT(json_integer_value(json_object_get(m2, "fullscan_steps")), 0);
    T_TRUE(json_integer_value(json_object_get(m2, "cost")) ==
           json_integer_value(json_object_get(m2, "vm_steps")) +
               100 * json_integer_value(json_object_get(m2, "cache_misses")));
    T_CONTAINS(json_string_value(json_object_get(m2, "plan")), "orders_customer_created");
    T_CONTAINS(json_string_value(json_object_get(m2, "reference_plan")), "orders_customer_created");

    (void)snprintf(db, sizeof(db), "%s/%s.sqlite", cache, pack->digest);
    unsigned long long before = file_hash(db);

    /* Same submission twice: identical counters. */
    graded again = grade(sub);
    T_TRUE(json_equal(json_object_get(ref.metrics, "sql"), json_object_get(again.metrics, "sql")));
    done(&again);

    /* Correct queries, no indexes: all rows right, the expensive questions lose cost points. */
    (void)snprintf(sub, sizeof(sub), "%s/solutions/no-indexes", pack->dir);
    graded noidx = grade(sub);
    expect(&noidx, "q1", "AC", NULL);
    expect(&noidx, "q2", "AC", NULL);
    expect(&noidx, "q3", "AC", NULL);
    expect(&noidx, "q4", "AC", NULL);
    expect(&noidx, "q2-cost", "WA", "none beyond 50x");
    T_TRUE(points(&noidx, "q3-cost") < 10 && points(&noidx, "q4-cost") < 10);
    json_t *n2 = json_object_get(json_object_get(noidx.metrics, "sql"), "q2");
    T_TRUE(json_integer_value(json_object_get(n2, "fullscan_steps")) > 0);
    T_TRUE(json_integer_value(json_object_get(n2, "autoindex")) > 0);
    T_TRUE(total(&noidx) > 60 && total(&noidx) < 85);
    done(&noidx);

    /* Wrong answers: the inner join drops the order without items; BETWEEN misses Dec 31. */
    (void)snprintf(sub, sizeof(sub), "%s/solutions/wrong-answer", pack->dir);
    graded wrong = grade(sub);
    expect(&wrong, "q1", "AC", NULL);
    expect(&wrong, "q2", "WA", "customer_id");
    expect(&wrong, "q3", "WA", "year");
    expect(&wrong, "q2-cost", "SKIP", "not correct");
    done(&wrong);

    /* A forbidden statement in schema.sql: nothing applied, every test refused. */
    (void)snprintf(sub, sizeof(sub), "%s/solutions/forbidden", pack->dir);
    graded forb = grade(sub);
    expect(&forb, "q1", "RE", "CREATE TABLE q1_answer is not allowed");
    expect(&forb, "q4-cost", "RE", "schema.sql refused");
    T_TRUE(total(&forb) == 0);
    done(&forb);

    /* Hostile query files, four per submission. */
    (void)snprintf(sub, sizeof(sub), "%s/hostile1", scratch);
    copy_reference(sub);
    write_text(sub, "q1.sql", "ATTACH DATABASE '/etc/passwd' AS pw;\n");
    write_text(sub, "q2.sql", "SELECT load_extension('/lib/x86_64-linux-gnu/libc.so.6')");
    write_text(sub, "q3.sql",
               "WITH gone AS (SELECT 1) DELETE FROM orders WHERE id IN (SELECT * FROM gone)");
    write_text(sub, "q4.sql", "PRAGMA cache_size = 1000000");
    graded h1 = grade(sub);
    expect(&h1, "q1", "RE", "ATTACH");
    expect(&h1, "q2", "RE", "load_extension");
    expect(&h1, "q3", "RE", "DELETE is not allowed");
    expect(&h1, "q4", "RE", "PRAGMA cache_size");
    expect(&h1, "q1-cost", "SKIP", NULL);
    done(&h1);

    (void)snprintf(sub, sizeof(sub), "%s/hostile2", scratch);
    copy_reference(sub);
    write_text(sub, "q1.sql", "SELECT count(*) FROM orders, order_items, customers");
    write_text(sub, "q2.sql", "SELECT 1 AS order_id; DELETE FROM orders");
    write_text(sub, "q3.sql", "UPDATE orders SET status = 'paid'");
    write_text(sub, "q4.sql",
               "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) "
               "SELECT count(*) AS n FROM r WHERE x > :since");
    graded h2 = grade(sub);
    expect(&h2, "q1", "TLE", "VM-step budget");
    expect(&h2, "q2", "RE", "exactly one SELECT");
    expect(&h2, "q3", "RE", "UPDATE is not allowed");
    expect(&h2, "q4", "TLE", "VM-step budget");
    done(&h2);

    /* schema.sql with a write after a good index: refused, rolled back. */
    (void)snprintf(sub, sizeof(sub), "%s/hostile3", scratch);
    copy_reference(sub);
    write_text(sub, "schema.sql",
               "CREATE INDEX ok_one ON orders (customer_id, created_at);\n"
               "DROP TABLE order_items;\n");
    graded h3 = grade(sub);
    expect(&h3, "q1", "RE", "DROP TABLE is not allowed");
    done(&h3);

    (void)snprintf(sub, sizeof(sub), "%s/hostile4", scratch);
    copy_reference(sub);
    write_text(sub, "schema.sql", "PRAGMA writable_schema = ON;\n");
    char link[1300];
    (void)snprintf(link, sizeof(link), "%s/q2.sql", sub);
    T_EQ_INT(unlink(link), 0);
    T_EQ_INT(symlink("/etc/passwd", link), 0);
    graded h4 = grade(sub);
    expect(&h4, "q3", "RE", "PRAGMA writable_schema");
    done(&h4);
    write_text(sub, "schema.sql", "-- no indexes\n");
    write_text(sub, "q4.sql", "SELECT id AS n FROM orders");
    /* About 600 MB of distinct strings: the SQLite heap limit stops it, deterministically. */
    write_text(sub, "q3.sql",
               "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < 3000000) "
               "SELECT count(DISTINCT printf('%.200c', x) || x) AS month FROM r "
               "WHERE :year IS NOT NULL");
    graded h5 = grade(sub);
    expect(&h5, "q3", "MLE", "heap limit");
    expect(&h5, "q1", "AC", NULL);
    expect(&h5, "q2", "RE", "symbolic link");
    expect(&h5, "q4", "WA", "returned more than 1000 rows");
    done(&h5);

    /* The cached database never changed. */
    T_TRUE(file_hash(db) == before);
    struct stat st;
    T_EQ_INT(stat(db, &st), 0);
    T_EQ_INT(st.st_mode & 0222, 0);

    done(&ref);
    pr_challenge_free(pack);
    (void)pr_rm_rf(scratch);
    return 0;
}
