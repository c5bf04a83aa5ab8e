/* The http kind's manifest parser: the shipped pack parses, every allocation failure is a clean
 * error (no crash, no leak under ASan), and bad manifests name the file and the field. */
#include "t.h"

#include "proctor/common.h"
#include "proctor/kind.h"

static json_t *manifest(void)
{
    json_error_t e;
    json_t *m = json_load_file(PR_SOURCE_DIR "/challenges/inventory-api/challenge.json", 0, &e);
    if (!m)
        T_FAIL("cannot load the pack: %s", e.text);
    return m;
}

static void expect_bad(json_t *m, const char *part)
{
    const pr_kind *k = pr_kind_find("http");
    void *st = NULL;
    pr_error err = { 0 };
    int rc = k->parse(&st, m, PR_SOURCE_DIR "/challenges/inventory-api", &err);
    if (rc >= 0)
        T_FAIL("manifest accepted, expected an error with '%s'", part);
    T_NULL(st);
    T_CONTAINS(err.msg, part);
    json_decref(m);
}

int main(void)
{
    const pr_kind *k = pr_kind_find("http");
    T_TRUE(k != NULL);
    const char *dir = PR_SOURCE_DIR "/challenges/inventory-api";
    json_t *m = manifest();
    void *st = NULL;
    pr_error err = { 0 };
    T_EQ_INT(k->parse(&st, m, dir, &err), 0);
    T_TRUE(st != NULL);
    k->free(st);

    /* Allocation failure at every step: always an error, never a crash or a leak. */
    int ok_at = -1;
    for (long n = 0; n < 100000; n++) {
        st = NULL;
        pr_alloc_fail_after(n);
        int rc = k->parse(&st, m, dir, &err);
        pr_alloc_fail_after(-1);
        if (rc == 0) {
            ok_at = (int)n;
            k->free(st);
            break;
        }
        T_NULL(st);
    }
    T_TRUE(ok_at > 0);
    json_decref(m);

    m = manifest();
    json_object_set_new(json_object_get(m, "http"), "prot", json_integer(1));
    expect_bad(m, "challenge.json: http.prot: unknown field");

    m = manifest();
    json_object_set_new(json_object_get(m, "http"), "port", json_integer(80));
    expect_bad(m, "challenge.json: http.port: expected an integer 1024..65535");

    m = manifest();
    json_t *t = json_array_get(json_object_get(m, "tests"), 20);
    json_object_set_new(json_object_get(t, "load"), "metric", json_string("p42_ms"));
    expect_bad(m, "challenge.json: tests[20].load: metric");

    m = manifest();
    t = json_array_get(json_object_get(m, "tests"), 0);
    json_object_set_new(t, "scenario", json_string("../../etc/passwd"));
    expect_bad(m, "tests[0].scenario: expected a relative path inside the pack");

    m = manifest();
    t = json_array_get(json_object_get(m, "tests"), 1);
    json_object_set_new(t, "scenario", json_string("tests/nope.json"));
    expect_bad(m, "tests[1].scenario: cannot open tests/nope.json");

    m = manifest();
    json_object_del(json_object_get(m, "http"), "load");
    expect_bad(m, "a load test needs \"http.load\"");

    m = manifest();
    json_t *mix = json_object_get(json_object_get(json_object_get(m, "http"), "load"), "mix");
    json_object_set_new(json_array_get(mix, 0), "path", json_string("items"));
    expect_bad(m, "challenge.json: http.load.mix[0].path: expected a path starting with '/'");
    return 0;
}
