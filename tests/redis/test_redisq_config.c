/* Unit tests of the "queue" configuration key (the shared Redis queue): defaults, address
 * forms, messages that name the field, and an allocation-failure loop. */
#include <string.h>

#include "daemon.h"
#include "proctor/redisq.h"
#include "config_t.h"
#include "t.h"

#define BASE "{\"spool\": \"/s\", \"challenges\": \"/c\""

static void test_defaults(void)
{
    pr_config *c = parse_ok(BASE "}");
    T_NULL(c->queue); /* no "queue": the spool alone */
    pr_config_free(c);

    c = parse_ok(BASE ", \"queue\": {\"redis\": \"127.0.0.1:6379\"}}");
    T_TRUE(c->queue != NULL);
    T_EQ_STR(c->queue->host, "127.0.0.1");
    T_EQ_INT(c->queue->port, 6379);
    T_NULL(c->queue->unix_path);
    T_EQ_STR(c->queue->stream, "proctor:jobs");
    T_EQ_STR(c->queue->group, "proctor");
    T_NULL(c->queue->consumer); /* hostname-pid, chosen at start */
    T_EQ_INT(c->queue->claim_idle_s, 300);
    pr_config_free(c);

    c = parse_ok(BASE ", \"queue\": {\"redis\": \"unix:/run/redis/redis.sock\", \"stream\": "
                      "\"grading:jobs\", \"group\": \"g\", \"consumer\": \"box-1\", "
                      "\"claim_idle_s\": 60}}");
    T_NULL(c->queue->host);
    T_EQ_STR(c->queue->unix_path, "/run/redis/redis.sock");
    T_EQ_STR(c->queue->stream, "grading:jobs");
    T_EQ_STR(c->queue->group, "g");
    T_EQ_STR(c->queue->consumer, "box-1");
    T_EQ_INT(c->queue->claim_idle_s, 60);
    T_NULL(c->queue->password);
    pr_config_free(c);

    c = parse_ok(BASE ", \"queue\": {\"redis\": \"127.0.0.1:6379\", \"username\": \"grader\", "
                      "\"password\": \"s3cret pass\"}}");
    T_EQ_STR(c->queue->username, "grader");
    T_EQ_STR(c->queue->password, "s3cret pass");
    pr_config_free(c);

    c = parse_ok(BASE ", \"queue\": {\"redis\": \"[::1]:7000\"}}");
    T_EQ_STR(c->queue->host, "::1");
    T_EQ_INT(c->queue->port, 7000);
    pr_config_free(c);

    c = parse_ok(BASE ", \"queue\": {\"redis\": \"localhost:6379\"}}");
    T_EQ_STR(c->queue->host, "127.0.0.1");
    pr_config_free(c);
}

static void test_messages(void)
{
    parse_bad(BASE ", \"queue\": true}", "queue: expected an object");
    parse_bad(BASE ", \"queue\": {}}", "queue.redis: missing");
    parse_bad(BASE ", \"queue\": {\"redis\": 6379}}", "queue.redis: expected");
    parse_bad(BASE ", \"queue\": {\"redis\": \"127.0.0.1\"}}", "queue.redis: expected");
    parse_bad(BASE ", \"queue\": {\"redis\": \"127.0.0.1:0\"}}", "queue.redis: port");
    parse_bad(BASE ", \"queue\": {\"redis\": \"127.0.0.1:99999\"}}", "queue.redis: port");
    parse_bad(BASE ", \"queue\": {\"redis\": \"127.0.0.1:63x\"}}", "queue.redis: port");
    parse_bad(BASE ", \"queue\": {\"redis\": \"redis.example.com:6379\"}}",
              "queue.redis: \"redis.example.com\" is not an IP address");
    parse_bad(BASE ", \"queue\": {\"redis\": \"unix:relative.sock\"}}",
              "queue.redis: a unix socket needs an absolute path");
    parse_bad(BASE ", \"queue\": {\"redis\": \"127.0.0.1:6379\", \"stream\": \"\"}}",
              "queue.stream: expected");
    parse_bad(BASE ", \"queue\": {\"redis\": \"127.0.0.1:6379\", \"group\": \"a b\"}}",
              "queue.group: expected");
    parse_bad(BASE ", \"queue\": {\"redis\": \"127.0.0.1:6379\", \"consumer\": 5}}",
              "queue.consumer: expected");
    parse_bad(BASE ", \"queue\": {\"redis\": \"127.0.0.1:6379\", \"claim_idle_s\": 0}}",
              "queue.claim_idle_s: expected an integer in 1..86400");
    parse_bad(BASE ", \"queue\": {\"redis\": \"127.0.0.1:6379\", \"claim_idle_s\": \"5\"}}",
              "queue.claim_idle_s");
    parse_bad(BASE ", \"queue\": {\"redis\": \"127.0.0.1:6379\", \"passwd\": \"x\"}}",
              "queue.passwd: unknown key");
    parse_bad(BASE ", \"queue\": {\"redis\": \"127.0.0.1:6379\", \"password\": \"\"}}",
              "queue.password: expected a non-empty string");
    parse_bad(BASE ", \"queue\": {\"redis\": \"127.0.0.1:6379\", \"username\": \"u\"}}",
              "queue.username: needs queue.password");
}

static void test_alloc_fail(void)
{
    static const char text[] = BASE ", \"queue\": {\"redis\": \"unix:/r.sock\", \"stream\": \"s\", "
                                    "\"group\": \"g\", \"consumer\": \"c\"}}";
    for (long n = 0; n < 300; n++) {
        pr_config *c = NULL;
        pr_error err = { 0 };
        pr_alloc_fail_after(n);
        int rc = pr_config_parse(&c, text, sizeof(text) - 1, NULL, &err);
        pr_alloc_fail_after(-1);
        if (rc == 0) {
            T_TRUE(c != NULL && c->queue != NULL);
            T_EQ_STR(c->queue->consumer, "c");
            pr_config_free(c);
            return;
        }
        T_NULL(c);
    }
    T_FAIL("config never parsed");
}

/* The example file of the README's "Several machines" stays valid. */
static void test_example_file(void)
{
    pr_config *c = NULL;
    pr_error err = { 0 };
    int rc = pr_config_load(&c, PR_SOURCE_DIR "/proctor.redis.example.json", &err);
    if (rc != 0)
        T_FAIL("proctor.redis.example.json: %s", err.msg);
    T_TRUE(c->queue != NULL);
    T_EQ_STR(c->queue->consumer, "grader-1");
    pr_config_free(c);
}

int main(void)
{
    test_example_file();
    test_defaults();
    test_messages();
    test_alloc_fail();
    return 0;
}
