/* JSON Pointer, {{var}} templates and scenario validation messages of the http kind. */
#include "t.h"

#include "proctor/common.h"
#include "scenario.h"

static json_t *J(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    if (!v)
        T_FAIL("bad JSON in test: %s: %s", text, e.text);
    return v;
}

static void expect_ptr(const json_t *doc, const char *ptr, const char *want)
{
    json_t *got = pr_json_pointer(doc, ptr);
    if (!want) {
        if (got)
            T_FAIL("pointer %s: expected absent", ptr);
        return;
    }
    T_TRUE(got != NULL);
    char *s = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
    T_EQ_STR(s, want);
    free(s);
    json_decref(got);
}

static void test_pointer(void)
{
    /* RFC 6901 section 5 examples. */
    json_t *doc = J("{\"foo\": [\"bar\", \"baz\"], \"\": 0, \"a/b\": 1, \"c%d\": 2, \"e^f\": 3,"
                    " \"g|h\": 4, \"i\\\\j\": 5, \"k\\\"l\": 6, \" \": 7, \"m~n\": 8}");
    expect_ptr(doc, "/foo", "[\"bar\",\"baz\"]");
    expect_ptr(doc, "/foo/0", "\"bar\"");
    expect_ptr(doc, "/", "0");
    expect_ptr(doc, "/a~1b", "1");
    expect_ptr(doc, "/c%d", "2");
    expect_ptr(doc, "/e^f", "3");
    expect_ptr(doc, "/g|h", "4");
    expect_ptr(doc, "/i\\j", "5");
    expect_ptr(doc, "/k\"l", "6");
    expect_ptr(doc, "/ ", "7");
    expect_ptr(doc, "/m~0n", "8");
    expect_ptr(doc, "/foo/2", NULL);
    expect_ptr(doc, "/foo/01", NULL);
    expect_ptr(doc, "/foo/-", NULL);
    expect_ptr(doc, "/nope", NULL);
    T_TRUE(!pr_json_pointer_valid("foo"));
    T_TRUE(!pr_json_pointer_valid("/a~2"));
    T_NULL(pr_json_pointer(doc, "foo"));
    json_decref(doc);
    /* The wildcard extension. */
    doc = J("{\"items\": [{\"id\": \"a\"}, {\"id\": \"b\"}, {\"x\": 1}]}");
    expect_ptr(doc, "/items/*/id", "[\"a\",\"b\"]");
    expect_ptr(doc, "", "{\"items\":[{\"id\":\"a\"},{\"id\":\"b\"},{\"x\":1}]}");
    json_decref(doc);
}

static void test_templates(void)
{
    json_t *vars = J("{\"id\": \"it 1/2\", \"n\": 42, \"obj\": {\"a\": [1]}, \"ids\": [\"x\"],"
                     " \"nul\": null}");
    pr_buf b = PR_BUF_INIT(4096);
    pr_error err = { 0 };
    T_EQ_INT(pr_tmpl_expand(&b, "/items/{{id}}?n={{ n }}&c={{url:id}}", vars, NULL, &err), 0);
    T_EQ_STR(b.ptr, "/items/it 1/2?n=42&c=it%201%2F2");
    pr_buf_clear(&b);
    T_EQ_INT(pr_tmpl_expand(&b, "{{json:id}} {{obj}} {{pick:ids}} {{nul}}", vars, NULL, &err), 0);
    T_EQ_STR(b.ptr, "\"it 1/2\" {\"a\":[1]} x null");
    pr_buf_clear(&b);
    T_EQ_INT(pr_tmpl_expand(&b, "a {{missing}}", vars, NULL, &err), PR_EINVAL);
    T_CONTAINS(err.msg, "unknown variable 'missing'");
    T_EQ_INT(pr_tmpl_expand(&b, "a {{id", vars, NULL, &err), PR_EINVAL);
    T_CONTAINS(err.msg, "unterminated");
    T_EQ_INT(pr_tmpl_expand(&b, "{{pick:n}}", vars, NULL, &err), PR_EINVAL);
    pr_buf_free(&b);

    /* Whole-string templates keep the variable's JSON type. */
    json_t *in = J("{\"q\": \"{{n}}\", \"s\": \"n={{n}}\", \"o\": \"{{obj}}\", \"l\": [\"{{id}}\"],"
                   " \"k\": true}");
    json_t *out = NULL;
    T_EQ_INT(pr_tmpl_expand_json(&out, in, vars, NULL, &err), 0);
    char *s = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
    T_EQ_STR(s, "{\"k\":true,\"l\":[\"it 1/2\"],\"o\":{\"a\":[1]},\"q\":42,\"s\":\"n=42\"}");
    free(s);
    json_decref(out);
    json_decref(in);
    json_decref(vars);
}

static void expect_invalid(const char *text, const char *msg_part)
{
    json_t *scn = J(text);
    pr_error err = { 0 };
    int rc = pr_scenario_validate(scn, "tests/x.json", &err);
    if (rc != PR_EINVAL)
        T_FAIL("scenario accepted: %s", text);
    T_CONTAINS(err.msg, "tests/x.json: ");
    T_CONTAINS(err.msg, msg_part);
    json_decref(scn);
}

static void test_validation(void)
{
    pr_error err = { 0 };
    json_t *ok = J("{\"name\": \"s\", \"steps\": ["
                   "{\"method\": \"GET\", \"path\": \"/items?limit=2\", \"jwt\": {\"role\": "
                   "\"viewer\"}, \"expect\": {\"status\": [200], \"headers\": {\"Content-Type\": "
                   "{\"regex\": \"^application/json\"}}, \"json\": [{\"path\": \"/items\", "
                   "\"length\": 2, \"type\": \"array\"}]}, \"capture\": {\"c\": \"/next_cursor\","
                   " \"ids+\": \"/items/*/id\"}, \"loop\": {\"while\": \"c\", \"max\": 10, "
                   "\"path\": \"/items?cursor={{url:c}}\"}},"
                   "{\"assert\": [{\"var\": \"ids\", \"unique\": true}]}]}");
    T_EQ_INT(pr_scenario_validate(ok, "tests/x.json", &err), 0);
    json_decref(ok);
    expect_invalid("{\"steps\": []}", "steps: expected an array of 1..200 steps");
    expect_invalid("{\"steps\": [{\"path\": \"/x\"}]}", "steps[0].method");
    expect_invalid("{\"steps\": [{\"method\": \"GET\", \"path\": \"x\"}]}", "steps[0].path");
    expect_invalid("{\"steps\": [{\"method\": \"GET\", \"path\": \"/\", \"expcet\": {}}]}",
                   "steps[0].expcet: unknown field");
    expect_invalid("{\"steps\": [{\"method\": \"GET\", \"path\": \"/\"}, {\"method\": \"GET\", "
                   "\"path\": \"/\", \"expect\": {\"json\": [{\"path\": \"/a\", \"eqaul\": 1}]}}]}",
                   "steps[1].expect.json[0].eqaul: unknown assertion");
    expect_invalid("{\"steps\": [{\"method\": \"GET\", \"path\": \"/\", \"expect\": {\"headers\": "
                   "{\"X\": {\"regex\": \"(\"}}}}]}",
                   "steps[0].expect.headers.X: bad regular expression");
    expect_invalid("{\"steps\": [{\"method\": \"GET\", \"path\": \"/\", \"jwt\": {\"alg\": "
                   "\"RS256\"}}]}",
                   "steps[0].jwt: alg");
    expect_invalid("{\"steps\": [{\"method\": \"GET\", \"path\": \"/\", \"parallel\": 100}]}",
                   "steps[0].parallel: expected an integer 2..32");
    expect_invalid("{\"steps\": [{\"assert\": [{\"path\": \"/a\", \"exists\": true}]}]}",
                   "steps[0].assert[0]: expected \"var\"");
    expect_invalid("{\"steps\": [{\"method\": \"GET\", \"path\": \"/\", \"capture\": {\"x\": "
                   "\"nope\"}}]}",
                   "steps[0].capture.x");
}

int main(void)
{
    test_pointer();
    test_templates();
    test_validation();
    return 0;
}
