/* Unit tests of the daemon's reload and recovery pieces: token buckets carried across a
 * reload, the postgres config key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "sql_kind.h"
#include "config_t.h"
#include "t.h"

/* A reload keeps the bucket of every token whose string is unchanged, clamped to the new
 * burst; new tokens start full. */
static void test_rate_carry(void)
{
    pr_config *old =
        parse_ok("{\"spool\": \"/s\", \"challenges\": \"/c\", \"tokens\": ["
                 "{\"token\": \"keep-token-1\", \"role\": \"submitter\", \"name\": \"a\","
                 " \"rate\": {\"per_minute\": 6, \"burst\": 5}},"
                 "{\"token\": \"shrink-token\", \"role\": \"submitter\", \"name\": \"b\","
                 " \"rate\": {\"per_minute\": 6, \"burst\": 5}},"
                 "{\"token\": \"gone-token-1\", \"role\": \"submitter\", \"name\": \"c\","
                 " \"rate\": {\"per_minute\": 6, \"burst\": 5}}]}");
    uint64_t t0 = 5000000000ull;
    /* keep-token-1: bucket exhausted. shrink-token: 4 of 5 left. */
    for (int i = 0; i < 5; i++)
        T_EQ_INT(pr_rate_take(&old->tokens[0], t0), 0);
    T_TRUE(pr_rate_take(&old->tokens[0], t0) >= 1);
    T_EQ_INT(pr_rate_take(&old->tokens[1], t0), 0);
    T_EQ_INT(pr_rate_take(&old->tokens[2], t0), 0);

    pr_config *nc =
        parse_ok("{\"spool\": \"/s\", \"challenges\": \"/c\", \"tokens\": ["
                 "{\"token\": \"fresh-token1\", \"role\": \"submitter\", \"name\": \"d\","
                 " \"rate\": {\"per_minute\": 6, \"burst\": 2}},"
                 "{\"token\": \"shrink-token\", \"role\": \"submitter\", \"name\": \"b\","
                 " \"rate\": {\"per_minute\": 6, \"burst\": 2}},"
                 "{\"token\": \"keep-token-1\", \"role\": \"submitter\", \"name\": \"a2\","
                 " \"rate\": {\"per_minute\": 60, \"burst\": 5}}]}");
    pr_rate_carry(nc, old);
    /* The exhausted token is still exhausted (order in the file changed, name too). */
    T_TRUE(pr_rate_take(&nc->tokens[2], t0) >= 1);
    /* Its new rate (60/min) applies from the last refill: one second later, one more. */
    T_EQ_INT(pr_rate_take(&nc->tokens[2], t0 + 1100000000ull), 0);
    T_TRUE(pr_rate_take(&nc->tokens[2], t0 + 1100000000ull) >= 1);
    /* 4 left, clamped to the new burst of 2. */
    T_EQ_INT(pr_rate_take(&nc->tokens[1], t0), 0);
    T_EQ_INT(pr_rate_take(&nc->tokens[1], t0), 0);
    T_TRUE(pr_rate_take(&nc->tokens[1], t0) >= 1);
    /* A new token starts full. */
    T_EQ_INT(pr_rate_take(&nc->tokens[0], t0), 0);
    T_EQ_INT(pr_rate_take(&nc->tokens[0], t0), 0);
    T_TRUE(pr_rate_take(&nc->tokens[0], t0) >= 1);
    pr_config_free(nc);

    /* A token that becomes unlimited is unlimited; one that becomes limited starts full. */
    nc = parse_ok("{\"spool\": \"/s\", \"challenges\": \"/c\", \"tokens\": ["
                  "{\"token\": \"keep-token-1\", \"role\": \"submitter\", \"name\": \"a\"}]}");
    pr_rate_carry(nc, old);
    for (int i = 0; i < 10; i++)
        T_EQ_INT(pr_rate_take(&nc->tokens[0], t0), 0);
    pr_config *again =
        parse_ok("{\"spool\": \"/s\", \"challenges\": \"/c\", \"tokens\": ["
                 "{\"token\": \"keep-token-1\", \"role\": \"submitter\", \"name\": \"a\","
                 " \"rate\": {\"per_minute\": 6, \"burst\": 1}}]}");
    pr_rate_carry(again, nc);
    T_EQ_INT(pr_rate_take(&again->tokens[0], t0), 0);
    T_TRUE(pr_rate_take(&again->tokens[0], t0) >= 1);
    pr_config_free(again);
    pr_config_free(nc);
    pr_config_free(old);
}

/* Submission times of job files (the requeue order at start). */
static void test_time_parse(void)
{
    int64_t t = 0;
    T_EQ_INT(pr_spool_time_parse(&t, "1970-01-01T00:00:00Z"), 0);
    T_EQ_INT(t, 0);
    T_EQ_INT(pr_spool_time_parse(&t, "2026-11-25T15:01:55Z"), 0);
    T_EQ_INT(t, 1795618915LL * 1000000000LL);
    T_EQ_INT(pr_spool_time_parse(&t, "2026-11-25T15:01:55.25Z"), 0);
    T_EQ_INT(t, 1795618915LL * 1000000000LL + 250000000LL);
    T_EQ_INT(pr_spool_time_parse(&t, "2026-11-25T16:31:55+01:30"), 0);
    T_EQ_INT(t, 1795618915LL * 1000000000LL);
    T_EQ_INT(pr_spool_time_parse(&t, "2026-11-25T14:01:55-01:00"), 0);
    T_EQ_INT(t, 1795618915LL * 1000000000LL);
    static const char *const bad[] = { "",
                                       "2026-11-25",
                                       "2026-11-25T15:01:55",
                                       "2026-13-25T15:01:55Z",
                                       "2026-11-25T15:01:55Zjunk",
                                       "2026-11-25T15:01:55.Z",
                                       "2026-11-25T15:01:55+0100",
                                       "20x6-11-25T15:01:55Z",
                                       "1969-12-31T23:59:59Z" };
    for (size_t i = 0; i < PR_ARRAY_LEN(bad); i++)
        T_EQ_INT(pr_spool_time_parse(&t, bad[i]), PR_EINVAL);
    T_EQ_INT(pr_spool_time_parse(&t, NULL), PR_EINVAL);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");
    T_TRUE(f != NULL);
    T_TRUE(fputs(text, f) >= 0);
    T_EQ_INT(fclose(f), 0);
}

/* Records of pending callbacks: what the daemon writes loads back; anything else is refused. */
static void test_callback_record(void)
{
    char dir[] = "/tmp/proctor-cbrec-XXXXXX";
    T_TRUE(mkdtemp(dir) != NULL);
    char path[256];
    (void)snprintf(path, sizeof(path), "%s/job1.json", dir);
    pr_error err = { 0 };
    T_EQ_INT(
        pr_callback_record_write(path, "job1", "job.finished", "http://127.0.0.1:9/h", 3, &err), 0);
    char id[65];
    char *url = NULL;
    int attempts = -1;
    T_EQ_INT(pr_callback_record_load(path, id, &url, &attempts, &err), 0);
    T_EQ_STR(id, "job1");
    T_EQ_STR(url, "http://127.0.0.1:9/h");
    T_EQ_INT(attempts, 3);
    pr_free(url);
    /* Attempts are clamped (a restart always makes at least one more). */
    write_text(path, "{\"id\":\"job1\",\"event\":\"job.finished\",\"url\":\"http://h/\","
                     "\"attempts\":99}");
    T_EQ_INT(pr_callback_record_load(path, id, &url, &attempts, &err), 0);
    T_EQ_INT(attempts, 5);
    pr_free(url);
    static const char *const bad[] = {
        "{not json",
        "{\"id\":\"../x\",\"event\":\"job.finished\",\"url\":\"http://h/\",\"attempts\":0}",
        "{\"id\":\"job1\",\"event\":\"other\",\"url\":\"http://h/\",\"attempts\":0}",
        "{\"id\":\"job1\",\"event\":\"job.finished\",\"url\":\"file:///etc\",\"attempts\":0}",
        "{\"id\":\"job1\",\"event\":\"job.finished\",\"url\":\"http://h/\"}",
        "[]",
    };
    for (size_t i = 0; i < PR_ARRAY_LEN(bad); i++) {
        write_text(path, bad[i]);
        url = NULL;
        T_TRUE(pr_callback_record_load(path, id, &url, &attempts, &err) < 0);
        T_NULL(url);
    }
    (void)unlink(path);
    (void)rmdir(dir);
}

/* The "postgres" key: defaults, and messages that name the field. */
static void test_config_postgres(void)
{
    pr_config *c = parse_ok("{\"spool\": \"/s\", \"challenges\": \"/c\"}");
    T_NULL(c->pg_host);
    pr_config_free(c);
    c = parse_ok("{\"spool\": \"/s\", \"challenges\": \"/c\", \"postgres\": "
                 "{\"host\": \"/run/postgresql\"}}");
    T_EQ_STR(c->pg_host, "/run/postgresql");
    T_EQ_INT(c->pg_port, 5432);
    T_EQ_STR(c->pg_admin, "postgres");
    pr_config_free(c);
    c = parse_ok("{\"spool\": \"/s\", \"challenges\": \"/c\", \"postgres\": "
                 "{\"host\": \"db-1.internal\", \"port\": 6543, \"admin\": \"proctor_admin\"}}");
    T_EQ_STR(c->pg_host, "db-1.internal");
    T_EQ_INT(c->pg_port, 6543);
    T_EQ_STR(c->pg_admin, "proctor_admin");
    pr_config_free(c);
    static const struct {
        const char *pg, *needle;
    } bad[] = {
        { "5432", "postgres: expected an object" },
        { "{}", "postgres.host: missing" },
        { "{\"host\": 5}", "postgres.host" },
        { "{\"host\": \"relative/dir\"}", "postgres.host: expected a socket directory" },
        { "{\"host\": \"-oops\"}", "postgres.host" },
        { "{\"host\": \"h\", \"port\": 0}", "postgres.port: expected an integer 1..65535" },
        { "{\"host\": \"h\", \"port\": 65536}", "postgres.port: expected an integer 1..65535" },
        { "{\"host\": \"h\", \"port\": \"5432\"}", "postgres.port: expected an integer 1..65535" },
        { "{\"host\": \"h\", \"admin\": \"a b\"}", "postgres.admin: expected a role name" },
        { "{\"host\": \"h\", \"admin\": \"\"}", "postgres.admin" },
        { "{\"host\": \"h\", \"user\": \"x\"}", "postgres.user: unknown key" },
    };
    for (size_t i = 0; i < PR_ARRAY_LEN(bad); i++) {
        char text[512];
        (void)snprintf(text, sizeof(text),
                       "{\"spool\": \"/s\", \"challenges\": \"/c\", \"postgres\": %s}", bad[i].pg);
        parse_bad(text, bad[i].needle);
    }
}

/* Which PostgreSQL server a sql job uses: the daemon's config (through the job), else the
 * environment, else the manifest; PROCTOR_SQL_ENGINE=sqlite forces SQLite. */
static void test_pg_choice(void)
{
    sql_state s;
    pr_grading g;
    pr_sql_pgconn conn;
    memset(&s, 0, sizeof(s));
    memset(&g, 0, sizeof(g));
    s.allow_pg = true;
    s.pg_host = "/manifest-dir";
    s.pg_port = 5000;
    s.pg_admin = "man";
    (void)unsetenv("PROCTOR_SQL_ENGINE");
    (void)unsetenv("PROCTOR_PG_HOST");
    (void)unsetenv("PROCTOR_PG_PORT");
    (void)unsetenv("PROCTOR_PG_ADMIN");
    T_TRUE(pr_sql_pg_choose(&s, &g, &conn));
    T_EQ_STR(conn.host, "/manifest-dir");
    T_EQ_INT(conn.port, 5000);
    (void)setenv("PROCTOR_PG_HOST", "/env-dir", 1);
    (void)setenv("PROCTOR_PG_PORT", "5001", 1);
    T_TRUE(pr_sql_pg_choose(&s, &g, &conn));
    T_EQ_STR(conn.host, "/env-dir");
    T_EQ_INT(conn.port, 5001);
    T_EQ_STR(conn.admin, "postgres");
    g.pg_host = "/config-dir";
    g.pg_port = 5002;
    g.pg_admin = "cfg_admin";
    T_TRUE(pr_sql_pg_choose(&s, &g, &conn));
    T_EQ_STR(conn.host, "/config-dir");
    T_EQ_INT(conn.port, 5002);
    T_EQ_STR(conn.admin, "cfg_admin");
    T_TRUE(pr_sql_pg_choose(&s, NULL, &conn));
    T_EQ_STR(conn.host, "/env-dir");
    (void)setenv("PROCTOR_SQL_ENGINE", "sqlite", 1);
    T_TRUE(!pr_sql_pg_choose(&s, &g, &conn));
    (void)unsetenv("PROCTOR_SQL_ENGINE");
    s.allow_pg = false;
    T_TRUE(!pr_sql_pg_choose(&s, &g, &conn));
    (void)unsetenv("PROCTOR_PG_HOST");
    (void)unsetenv("PROCTOR_PG_PORT");
}

int main(void)
{
    json_set_alloc_funcs(pr_malloc, pr_free);
    test_rate_carry();
    test_time_parse();
    test_callback_record();
    test_config_postgres();
    test_pg_choice();
    return 0;
}
