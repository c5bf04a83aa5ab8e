/* Unit tests of the daemon's pieces: config validation (messages name the field), the token
 * bucket, spool job validation, HMAC-SHA256 and callback URLs. */
#include <string.h>

#include "daemon.h"
#include "proctor/report.h"
#include "config_t.h"
#include "t.h"

static void test_config(void)
{
    pr_config *c = parse_ok("{\"spool\": \"spool\", \"challenges\": \"/srv/packs\"}");
    T_EQ_STR(c->listen_host, "127.0.0.1");
    T_EQ_INT(c->listen_port, 8080);
    T_EQ_STR(c->spool, "/etc/proctor/spool");
    T_EQ_STR(c->challenges, "/srv/packs");
    T_EQ_STR(c->cache, "/etc/proctor/spool/cache");
    T_EQ_INT(c->grace_s, 30);
    T_EQ_INT(c->cache_max_age_h, 168);
    T_TRUE(c->workers >= 1);
    pr_config_free(c);

    c = parse_ok("{\"listen\": \"0.0.0.0:9000\", \"spool\": \"/s\", \"challenges\": \"/c\","
                 "\"workers\": 3, \"tokens\": [{\"token\": \"abcdefgh12\", \"role\": \"candidate\","
                 "\"name\": \"alice\", \"rate\": {\"per_minute\": 60, \"burst\": 2}}],"
                 "\"watch\": [{\"repo\": \"/r.git\", \"branch\": \"main\", \"challenge\": \"echo\","
                 "\"interval_s\": 5}], \"limits\": {\"body_bytes\": 1024, \"queue_length\": 7}}");
    T_EQ_STR(c->listen_host, "0.0.0.0");
    T_EQ_INT(c->listen_port, 9000);
    T_EQ_INT(c->workers, 3);
    T_EQ_INT(c->ntokens, 1);
    T_EQ_INT(c->tokens[0].role, PR_ROLE_CANDIDATE);
    T_EQ_INT(c->nwatches, 1);
    T_EQ_INT(c->watches[0].interval_s, 5);
    T_EQ_INT(c->body_bytes, 1024);
    T_EQ_INT(c->queue_length, 7);

    /* Token bucket: burst 2, then one per second at 60/min. */
    uint64_t t0 = 1000000000ull;
    T_EQ_INT(pr_rate_take(&c->tokens[0], t0), 0);
    T_EQ_INT(pr_rate_take(&c->tokens[0], t0), 0);
    T_TRUE(pr_rate_take(&c->tokens[0], t0) >= 1);
    T_EQ_INT(pr_rate_take(&c->tokens[0], t0 + 1100000000ull), 0);
    T_TRUE(pr_rate_take(&c->tokens[0], t0 + 1200000000ull) >= 1);
    pr_config_free(c);

    parse_bad("{\"spool\": \"/s\"}", "challenges: missing");
    parse_bad("{\"spool\": \"/s\", \"challenges\": \"/c\", \"bogus\": 1}", "bogus: unknown key");
    parse_bad("{\"spool\": \"/s\", \"challenges\": \"/c\", \"listen\": \"nope\"}", "listen");
    parse_bad("{\"spool\": \"/s\", \"challenges\": \"/c\", \"workers\": 0}", "workers");
    parse_bad("{\"spool\": \"/s\", \"challenges\": \"/c\", \"tokens\": [{\"token\": "
              "\"abcdefgh12\", \"role\": \"admin\", \"name\": \"x\"}]}",
              "tokens[0].role");
    parse_bad("{\"spool\": \"/s\", \"challenges\": \"/c\", \"tokens\": [{\"token\": "
              "\"short\", \"role\": \"reviewer\", \"name\": \"x\"}]}",
              "tokens[0].token");
    parse_bad("{\"spool\": \"/s\", \"challenges\": \"/c\", \"watch\": [{\"repo\": \"/r\", "
              "\"challenge\": \"../x\"}]}",
              "watch[0].challenge");
    parse_bad("{\"spool\": \"/s\", \"challenges\": \"/c\", \"limits\": {\"body_bytes\": 1}}",
              "limits.body_bytes");
    parse_bad("{\"spool\": \"/s\", \"challenges\": \"/c\", \"limits\": {\"nope\": 1}}",
              "limits.nope");
    parse_bad("{\"spool\": \"/s\", \"challenges\": \"/c\", \"cache_max_age_h\": -1}",
              "cache_max_age_h");
    parse_bad("{\"spool\": 1, \"challenges\": \"/c\"}", "spool");
    parse_bad("[1]", "object");
    parse_bad("{\"spool\": \"/s\",", "line");
}

/* The shipped example documents every key: it must load. */
static void test_example_config(void)
{
    pr_config *c = NULL;
    pr_error err = { 0 };
    int rc = pr_config_load(&c, PR_SOURCE_DIR "/proctor.example.json", &err);
    if (rc != 0)
        T_FAIL("proctor.example.json: %s", err.msg);
    T_EQ_INT(c->ntokens, 3);
    T_EQ_INT(c->nwatches, 1);
    T_EQ_INT(c->workers, 2);
    T_EQ_INT(c->body_bytes, 65536);
    pr_config_free(c);
}

static void test_config_alloc_fail(void)
{
    static const char text[] =
        "{\"spool\": \"/s\", \"challenges\": \"/c\", \"tokens\": [{\"token\": \"abcdefgh12\", "
        "\"role\": \"reviewer\", \"name\": \"r\"}], \"watch\": [{\"repo\": \"/r\", "
        "\"challenge\": \"e\"}]}";
    for (long n = 0; n < 200; n++) {
        pr_config *c = NULL;
        pr_error err = { 0 };
        pr_alloc_fail_after(n);
        int rc = pr_config_parse(&c, text, sizeof(text) - 1, NULL, &err);
        pr_alloc_fail_after(-1);
        if (rc == 0) {
            T_TRUE(c != NULL);
            pr_config_free(c);
            return;
        }
        T_NULL(c);
    }
    T_FAIL("config never parsed");
}

static void test_job_parse(void)
{
    json_t *o = json_pack("{s:s,s:s,s:s}", "repo", "/tmp/r", "challenge", "echo", "candidate", "a");
    pr_spool_job j;
    pr_error err = { 0 };
    T_EQ_INT(pr_spool_job_parse(&j, o, &err), 0);
    T_EQ_STR(j.repo, "/tmp/r");
    T_EQ_INT(j.id[0], 0);
    pr_spool_job_clear(&j);
    json_decref(o);

    static const struct {
        const char *json, *needle;
    } bad[] = {
        { "{\"challenge\": \"echo\"}", "repo" },
        { "{\"repo\": \"/r\"}", "challenge" },
        { "{\"repo\": \"/r\", \"challenge\": \"../../x\"}", "challenge" },
        { "{\"repo\": \"/r\", \"challenge\": \"e\", \"id\": \"../x\"}", "id" },
        { "{\"repo\": \"/r\", \"challenge\": \"e\", \"callback_url\": \"ftp://x\"}",
          "callback_url" },
        { "{\"repo\": \"/r\", \"challenge\": \"e\", \"ref\": \"--upload-pack=x\"}", "ref" },
        { "{\"repo\": \"-c\", \"challenge\": \"e\"}", "repo" },
        { "{\"repo\": \"/r\", \"challenge\": \"e\", \"extra\": 1}", "extra" },
        { "{\"repo\": \"/r\\n\", \"challenge\": \"e\"}", "control" },
    };
    for (size_t i = 0; i < PR_ARRAY_LEN(bad); i++) {
        json_t *b = json_loads(bad[i].json, 0, NULL);
        T_TRUE(b != NULL);
        memset(&err, 0, sizeof(err));
        T_TRUE(pr_spool_job_parse(&j, b, &err) < 0);
        T_CONTAINS(err.msg, bad[i].needle);
        json_decref(b);
    }
}

static void test_hmac_and_urls(void)
{
    char hex[65];
    /* RFC 4231 test case 2. */
    T_EQ_INT(pr_hmac_sha256_hex(hex, "Jefe", "what do ya want for nothing?", 28), 0);
    T_EQ_STR(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

    char host[256], path[1024];
    int port = 0;
    T_EQ_INT(pr_callback_url_parse("http://127.0.0.1:9000/hook?a=1", host, sizeof(host), &port,
                                   path, sizeof(path)),
             0);
    T_EQ_STR(host, "127.0.0.1");
    T_EQ_INT(port, 9000);
    T_EQ_STR(path, "/hook?a=1");
    T_EQ_INT(
        pr_callback_url_parse("http://localhost", host, sizeof(host), &port, path, sizeof(path)),
        0);
    T_EQ_INT(port, 80);
    T_EQ_STR(path, "/");
    T_TRUE(pr_callback_url_parse("https://x/", host, sizeof(host), &port, path, sizeof(path)) < 0);
    T_TRUE(pr_callback_url_parse("http://x:0/", host, sizeof(host), &port, path, sizeof(path)) < 0);
    T_TRUE(pr_callback_url_parse("http://a b/", host, sizeof(host), &port, path, sizeof(path)) < 0);
    T_TRUE(pr_callback_url_parse("http://x/a\r\nInjected: 1", host, sizeof(host), &port, path,
                                 sizeof(path)) < 0);
}

static void test_error_report_valid(void)
{
    pr_spool_job j;
    memset(&j, 0, sizeof(j));
    (void)snprintf(j.id, sizeof(j.id), "abc");
    j.repo = "/srv/r.git";
    j.challenge = "nope";
    j.candidate = "alice";
    json_t *r = pr_daemon_error_report(&j, "challenge", "unknown challenge", 12);
    T_TRUE(r != NULL);
    pr_error err = { 0 };
    if (pr_report_validate(r, &err) != 0)
        T_FAIL("error report invalid: %s", err.msg);
    T_EQ_STR(json_string_value(json_object_get(r, "status")), "error");
    json_decref(r);
}

static void test_ids(void)
{
    char id[32];
    pr_daemon_new_id(id, sizeof(id));
    T_EQ_INT(strlen(id), 26);
    T_TRUE(pr_daemon_id_valid(id));
    T_TRUE(!pr_daemon_id_valid(".."));
    T_TRUE(!pr_daemon_id_valid("a/b"));
    T_TRUE(!pr_daemon_id_valid(""));
    T_TRUE(pr_config_pack_id_valid("rate-limiter"));
    T_TRUE(!pr_config_pack_id_valid(".hidden"));
    T_TRUE(!pr_config_pack_id_valid("a/b"));
}

static void test_failure_policy(void)
{
    static const struct {
        const char *stage;
        bool infra;
    } cases[] = { { "fetch", false }, { "challenge", false }, { "runtime", false },
                  { "build", true },  { "tests", true },      { "internal", true } };
    for (size_t i = 0; i < PR_ARRAY_LEN(cases); i++) {
        json_t *r = json_pack("{s:s,s:{s:s,s:s}}", "status", "error", "error", "stage",
                              cases[i].stage, "message", "m");
        char msg[300];
        T_EQ_INT(pr_daemon_infra_failure(r, msg, sizeof(msg)) > 0, cases[i].infra);
        json_decref(r);
    }
    char msg[300];
    json_t *r = json_pack("{s:s,s:n}", "status", "error", "error");
    T_EQ_INT(pr_daemon_infra_failure(r, msg, sizeof(msg)), 1);
    json_decref(r);
    r = json_pack("{s:s,s:{s:s},s:[{s:s,s:s},{s:s,s:s,s:s}]}", "status", "graded", "build",
                  "verdict", "OK", "tests", "name", "a", "verdict", "WA", "name", "b", "verdict",
                  "IE", "message", "no box");
    T_EQ_INT(pr_daemon_infra_failure(r, msg, sizeof(msg)), 2);
    T_CONTAINS(msg, "b: no box");
    json_decref(r);
    r = json_pack("{s:s,s:{s:s},s:[{s:s,s:s}]}", "status", "graded", "build", "verdict", "OK",
                  "tests", "name", "a", "verdict", "RE");
    T_EQ_INT(pr_daemon_infra_failure(r, msg, sizeof(msg)), 0);
    json_decref(r);
}

int main(void)
{
    json_set_alloc_funcs(pr_malloc, pr_free);
    test_config();
    test_example_config();
    test_config_alloc_fail();
    test_job_parse();
    test_hmac_and_urls();
    test_ids();
    test_error_report_valid();
    test_failure_policy();
    return 0;
}
