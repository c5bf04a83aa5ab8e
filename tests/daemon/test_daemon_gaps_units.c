/* Unit tests of the daemon's reload and recovery pieces: token buckets carried across a
 * reload, the postgres config key. */
#include <string.h>

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

int main(void)
{
    json_set_alloc_funcs(pr_malloc, pr_free);
    test_rate_carry();
    return 0;
}
