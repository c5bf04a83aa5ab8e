/* Unit tests of the daemon's reload and recovery pieces: token buckets carried across a
 * reload, the postgres config key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "t.h"

static pr_config *parse_ok(const char *text)
{
    pr_config *c = NULL;
    pr_error err = { 0 };
    int rc = pr_config_parse(&c, text, strlen(text), "/etc/proctor/proctor.json", &err);
    if (rc != 0)
        T_FAIL("config rejected: %s", err.msg);
    return c;
}

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

int main(void)
{
    json_set_alloc_funcs(pr_malloc, pr_free);
    test_rate_carry();
    test_time_parse();
    test_callback_record();
    return 0;
}
