/* Scenario steps against a real HTTP server on loopback: every assertion kind passing, each one
 * failing with a message that names the path and shows the actual value, captures, repeat,
 * parallel groups, and the curl command of a failed step. */
#include "t.h"

#include "proctor/common.h"
#include "hostile.h"
#include "scenario.h"

static uv_loop_t loop;
static struct sockaddr_in addr;
static int port;

static json_t *J(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    if (!v)
        T_FAIL("bad JSON in test: %s (%s)", e.text, text);
    return v;
}

/* Runs a one-step scenario whose step has expect.json = [assertion]; returns pass/fail and
 * leaves the message in msg. */
static bool run(const char *scenario_text, pr_buf *msg, json_t **details)
{
    json_t *scn = J(scenario_text);
    pr_error err = { 0 };
    if (pr_scenario_validate(scn, "t.json", &err) < 0)
        T_FAIL("invalid test scenario: %s", err.msg);
    json_t *vars = json_pack("{s:s, s:i}", "sid", "S1", "port", port);
    pr_scn_ctx ctx = { &loop, (struct sockaddr *)&addr, port, vars, "secret", 2000, 1 };
    bool passed = false;
    pr_buf_clear(msg);
    if (pr_scenario_run(&ctx, scn, &passed, msg, details, &err) != 0)
        T_FAIL("scenario run failed: %s", err.msg);
    json_decref(scn);
    json_decref(vars);
    return passed;
}

static void one_assert(const char *assertion, bool want_pass, const char *msg_part)
{
    char text[2048];
    (void)snprintf(text, sizeof(text),
                   "{\"steps\": [{\"method\": \"GET\", \"path\": \"/x\", \"expect\": {\"status\": "
                   "201, \"json\": [%s]}}]}",
                   assertion);
    pr_buf msg = PR_BUF_INIT(1 << 16);
    json_t *details = NULL;
    bool passed = run(text, &msg, &details);
    if (passed != want_pass)
        T_FAIL("%s: expected %s, message: %s", assertion, want_pass ? "pass" : "failure",
               msg.ptr ? msg.ptr : "");
    if (msg_part)
        T_CONTAINS(msg.ptr, msg_part);
    json_decref(details);
    pr_buf_free(&msg);
}

int main(void)
{
    port = hs_start(HS_JSON);
    uv_ip4_addr("127.0.0.1", port, &addr);
    T_EQ_INT(uv_loop_init(&loop), 0);

    /* Every operation, passing. */
    one_assert("{\"path\": \"/name\", \"equal\": \"Widget 7\", \"type\": \"string\", \"regex\": "
               "\"^Widget [0-9]+$\", \"length\": 8, \"min_length\": 1, \"max_length\": 8}",
               true, NULL);
    one_assert("{\"path\": \"/price\", \"equal\": 12.5, \"type\": \"number\", \"gt\": 12, \"lt\": "
               "13, \"gte\": 12.5, \"lte\": 12.5, \"one_of\": [1, 12.5]}",
               true, NULL);
    one_assert("{\"path\": \"/items/*/id\", \"unique\": true, \"sorted\": \"asc\", \"includes\": "
               "\"b\", \"excludes\": \"z\", \"includes_all\": [\"c\", \"a\"], "
               "\"includes_in_order\": [\"a\", \"c\"], \"length\": 3}",
               true, NULL);
    one_assert("{\"path\": \"/items/*/n\", \"sorted\": \"asc\", \"not_equal\": [3, 2, 1]}", true,
               NULL);
    one_assert("{\"path\": \"/next\", \"exists\": true, \"type\": \"null\"}", true, NULL);
    one_assert("{\"path\": \"/missing\", \"exists\": false}", true, NULL);
    one_assert("{\"path\": \"/items/1\", \"equal\": {\"n\": 2, \"id\": \"b\"}}", true, NULL);

    /* Each failing, with the path and the actual value in the message. */
    one_assert("{\"path\": \"/name\", \"equal\": \"Gadget\"}", false,
               "body /name: equal \"Gadget\": got \"Widget 7\"");
    one_assert("{\"path\": \"/name\", \"type\": \"integer\"}", false, "type \"integer\"");
    one_assert("{\"path\": \"/items\", \"length\": 2}", false, "length 3");
    one_assert("{\"path\": \"/items/*/n\", \"sorted\": \"desc\"}", false,
               "out of order at index 1");
    one_assert("{\"path\": \"/items/*/id\", \"includes_in_order\": [\"c\", \"a\"]}", false,
               "missing or out of order");
    one_assert("{\"path\": \"/name\", \"regex\": \"^[0-9]+$\"}", false, "got \"Widget 7\"");
    one_assert("{\"path\": \"/nope\", \"exists\": true}", false, "body /nope: exists true: absent");
    one_assert("{\"path\": \"/price\", \"lt\": 10}", false, "lt 10: got 12.5");

    /* Status, headers, captures, repeat and a parallel group; then a failing header check with
     * the request, the actual response and a curl line in the details. */
    pr_buf msg = PR_BUF_INIT(1 << 16);
    json_t *details = NULL;
    T_TRUE(run("{\"steps\": ["
               "{\"method\": \"POST\", \"path\": \"/things\", \"json\": {\"n\": 1}, \"repeat\": 3,"
               " \"capture\": {\"ids+\": \"/items/0/id\", \"loc\": {\"header\": \"Location\"}},"
               " \"expect\": {\"status\": [200, 201], \"headers\": {\"Location\": "
               "\"/things/{{ids/0}}\"}}},"
               "{\"assert\": [{\"var\": \"ids\", \"length\": 3}, {\"var\": \"loc\", \"equal\": "
               "\"/things/a\"}]},"
               "{\"method\": \"GET\", \"path\": \"/p\", \"parallel\": 4, \"expect\": {\"status\": "
               "201}, \"expect_group\": {\"same_status\": true, \"same_body\": true, "
               "\"status_counts\": {\"201\": 4}}}]}",
               &msg, &details) == false);
    /* "{{ids/0}}" is not a variable name: the failure says so instead of sending garbage. */
    T_CONTAINS(msg.ptr, "unknown variable 'ids/0'");
    json_decref(details);
    details = NULL;
    T_TRUE(run("{\"steps\": ["
               "{\"method\": \"POST\", \"path\": \"/things\", \"json\": {\"n\": 1}, \"repeat\": 3,"
               " \"capture\": {\"ids+\": \"/items/0/id\", \"loc\": {\"header\": \"Location\"}},"
               " \"expect\": {\"status\": [200, 201], \"headers\": {\"Location\": "
               "{\"regex\": \"^/things/[a-z]+$\", \"present\": true}, \"X-Nope\": {\"present\": "
               "false}}}},"
               "{\"assert\": [{\"var\": \"ids\", \"length\": 3}, {\"var\": \"loc\", \"equal\": "
               "\"/things/a\"}]},"
               "{\"method\": \"GET\", \"path\": \"/p\", \"parallel\": 4, \"expect\": {\"status\": "
               "201}, \"expect_group\": {\"same_status\": true, \"same_body\": true, "
               "\"status_counts\": {\"201\": 4}}}]}",
               &msg, &details));
    T_NULL(details);
    T_TRUE(!run("{\"steps\": [{\"name\": \"make\", \"method\": \"PUT\", \"path\": \"/t?q={{sid}}\","
                " \"jwt\": {\"role\": \"admin\"}, \"body\": \"it's raw\", \"expect\": {\"headers\":"
                " {\"Content-Type\": \"text/plain\"}}}]}",
                &msg, &details));
    T_CONTAINS(msg.ptr, "step 1 (make): header Content-Type: expected \"text/plain\", got "
                        "\"application/json\"");
    T_TRUE(details != NULL);
    T_EQ_STR(json_string_value(json_object_get(json_object_get(details, "request"), "path")),
             "/t?q=S1");
    T_EQ_INT(json_integer_value(json_object_get(json_object_get(details, "actual"), "status")),
             201);
    const char *curl = json_string_value(json_object_get(details, "curl"));
    T_CONTAINS(curl, "curl -sS -i -X PUT \"http://127.0.0.1:${PORT:-8080}\"'/t?q=S1'");
    T_CONTAINS(curl, "-H 'Authorization: Bearer ey");
    T_CONTAINS(curl, "--data-raw 'it'\\''s raw'");
    json_decref(details);
    pr_buf_free(&msg);

    (void)uv_run(&loop, UV_RUN_DEFAULT);
    T_EQ_INT(uv_loop_close(&loop), 0);
    return 0;
}
