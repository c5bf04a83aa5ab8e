/* The stdio kind's manifest parser: a good manifest, bad compare specs, paths that escape the
 * pack (naming the file and the field), symlinks, missing files, generated inputs, checker
 * requirements, per-test limits, an alloc-fail-Nth loop; and the two shipped packs load. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proctor/challenge.h"
#include "proctor/common.h"
#include "proctor/kind.h"
#include "t.h"

static char pack[64];

static void put(const char *rel, const char *text)
{
    char p[256];
    (void)snprintf(p, sizeof(p), "%s/%s", pack, rel);
    FILE *f = fopen(p, "w");
    T_NOT_NULL(f);
    fputs(text, f);
    T_EQ_INT(fclose(f), 0);
}

static int parse(const char *json, pr_error *err)
{
    const pr_kind *k = pr_kind_find("stdio");
    json_error_t jerr;
    json_t *m = json_loads(json, 0, &jerr);
    void *state = NULL;
    if (!m)
        T_FAIL("bad test JSON: %s: %s", jerr.text, json);
    memset(err, 0, sizeof(*err));
    int rc = k->parse(&state, m, pack, err);
    if (rc == 0)
        T_NOT_NULL(state);
    else
        T_NULL(state);
    k->free(state);
    json_decref(m);
    return rc;
}

#define TAIL1(extra)                                                                         \
    "\"tests\": [{\"name\": \"a\", \"points\": 1, \"input\": \"tests/a.in\", \"expected\": " \
    "\"tests/a.out\"" extra "}]}"
#define TEST1(extra) "{" TAIL1(extra)

static void expect_error(const char *json, const char *field, const char *what)
{
    pr_error err;
    int rc = parse(json, &err);
    if (rc != PR_EINVAL)
        T_FAIL("expected PR_EINVAL for %s, got %d (%s)", json, rc, err.msg);
    T_CONTAINS(err.msg, "challenge.json");
    T_CONTAINS(err.msg, pack);
    T_CONTAINS(err.msg, field);
    T_CONTAINS(err.msg, what);
}

static void test_good(void)
{
    pr_error err;
    T_EQ_INT(parse(TEST1(""), &err), 0);
    T_EQ_INT(parse(TEST1(", \"compare\": \"exact\""), &err), 0);
    T_EQ_INT(parse(TEST1(", \"compare\": \"tokens\""), &err), 0);
    T_EQ_INT(parse(TEST1(", \"compare\": {\"float\": {\"abs\": 1e-6, \"rel\": 1e-9}}"), &err), 0);
    T_EQ_INT(parse(TEST1(", \"limits\": {\"cpu_ms\": 500}"), &err), 0);
    T_EQ_INT(parse("{\"checker\": {\"source\": \"check.py\", \"runtime\": \"python\"},"
                   "\"generate\": {\"program\": {\"source\": \"gen.py\", \"runtime\": \"python\"},"
                   "  \"reference\": {\"source\": \"ref.c\", \"runtime\": \"c\"}},"
                   "\"tests\": [{\"name\": \"a\", \"points\": 1, \"input\": \"tests/a.in\","
                   "  \"compare\": \"checker\"},"
                   " {\"name\": \"b\", \"points\": 1, \"input\": {\"generate\": [\"x\", \"1\"]},"
                   "  \"expected\": \"reference\"}]}",
                   &err),
             0);
}

static void test_bad(void)
{
    expect_error(TEST1(", \"compare\": \"fuzzy\""), "tests[0].compare", "\"exact\"");
    expect_error(TEST1(", \"compare\": 3"), "tests[0].compare", "\"tokens\"");
    expect_error(TEST1(", \"compare\": {\"float\": {\"abs\": -1}}"), "tests[0].compare.float.abs",
                 ">= 0");
    expect_error(TEST1(", \"compare\": {\"float\": {\"tol\": 1}}"), "tests[0].compare.float.tol",
                 "\"abs\"");
    expect_error(TEST1(", \"compare\": {\"float\": {}}"), "tests[0].compare", "tolerance");
    expect_error(TEST1(", \"compare\": \"checker\""), "tests[0].compare", "top-level \"checker\"");
    expect_error(TEST1(", \"inptu\": \"x\""), "tests[0].inptu", "no such field");
    expect_error(TEST1(", \"limits\": {\"cpu\": 1}"), "tests[0].limits", "cpu");
    expect_error("{\"tests\": [{\"name\": \"a\", \"points\": 1, \"input\": \"../etc/passwd\", "
                 "\"expected\": \"tests/a.out\"}]}",
                 "tests[0].input", "inside the pack");
    expect_error("{\"tests\": [{\"name\": \"a\", \"points\": 1, \"input\": \"tests/../../x\", "
                 "\"expected\": \"tests/a.out\"}]}",
                 "tests[0].input", "inside the pack");
    expect_error("{\"tests\": [{\"name\": \"a\", \"points\": 1, \"input\": \"/etc/passwd\", "
                 "\"expected\": \"tests/a.out\"}]}",
                 "tests[0].input", "inside the pack");
    expect_error("{\"tests\": [{\"name\": \"a\", \"points\": 1, \"input\": \"tests/a.in\", "
                 "\"expected\": \"tests/link.out\"}]}",
                 "tests[0].expected", "symlink");
    expect_error("{\"tests\": [{\"name\": \"a\", \"points\": 1, \"input\": \"tests/dirlink/a.in\", "
                 "\"expected\": \"tests/a.out\"}]}",
                 "tests[0].input", "symlink");
    expect_error("{\"tests\": [{\"name\": \"a\", \"points\": 1, \"input\": \"tests/none.in\", "
                 "\"expected\": \"tests/a.out\"}]}",
                 "tests[0].input", "no such file");
    expect_error("{\"tests\": [{\"name\": \"a\", \"points\": 1, \"input\": \"tests\", "
                 "\"expected\": \"tests/a.out\"}]}",
                 "tests[0].input", "not a regular file");
    expect_error("{\"tests\": [{\"name\": \"a\", \"points\": 1, \"input\": \"tests/a.in\"}]}",
                 "tests[0].expected", "reference");
    expect_error("{\"tests\": [{\"name\": \"a\", \"points\": 1, \"input\": {\"generate\": [\"1\"]},"
                 " \"expected\": \"tests/a.out\"}]}",
                 "tests[0].input", "top-level \"generate\"");
    expect_error("{\"generate\": {\"program\": {\"source\": \"gen.py\", \"runtime\": \"python\"}},"
                 "\"tests\": [{\"name\": \"a\", \"points\": 1, \"input\": {\"generate\": [1]},"
                 " \"expected\": \"tests/a.out\"}]}",
                 "tests[0].input.generate[0]", "string");
    expect_error("{\"generate\": {\"program\": {\"source\": \"gen.py\", \"runtime\": \"python\"}},"
                 "\"tests\": [{\"name\": \"a\", \"points\": 1, \"input\": {\"generate\": []},"
                 " \"expected\": \"reference\"}]}",
                 "tests[0].expected", "\"reference\" needs");
    expect_error("{\"checker\": {\"source\": \"check.py\", \"runtime\": \"ruby\"}," TAIL1(""),
                 "checker.runtime", "\"python\"");
    expect_error("{\"checker\": {\"source\": \"../check.py\", \"runtime\": \"c\"}," TAIL1(""),
                 "checker.source", "inside the pack");
    expect_error("{\"generate\": {\"prog\": {}}," TAIL1(""), "generate", "program");
    expect_error("{\"tests\": []}", "tests", "non-empty");
    expect_error("{\"tests\": [{\"name\": \"a\", \"points\": 1, \"input\": \"tests/a.in\", "
                 "\"expected\": \"tests/a.out\"}, 7]}",
                 "tests[1]", "an object");
}

static void test_alloc_fail(void)
{
    static const char json[] =
        "{\"checker\": {\"source\": \"check.py\", \"runtime\": \"python\"},"
        "\"generate\": {\"program\": {\"source\": \"gen.py\", \"runtime\": \"python\"},"
        "  \"reference\": {\"source\": \"ref.c\", \"runtime\": \"c\"}},"
        "\"tests\": [{\"name\": \"a\", \"points\": 1, \"input\": \"tests/a.in\","
        "  \"compare\": \"checker\", \"limits\": {\"cpu_ms\": 10}},"
        " {\"name\": \"b\", \"points\": 1, \"input\": {\"generate\": [\"x\", \"1\", \"2\"]},"
        "  \"expected\": \"reference\", \"compare\": {\"float\": {\"abs\": 1}}},"
        " {\"name\": \"c\", \"points\": 1, \"input\": \"tests/a.in\", \"expected\": "
        "\"tests/a.out\"}]}";
    const pr_kind *k = pr_kind_find("stdio");
    json_t *m = json_loads(json, 0, NULL);
    T_NOT_NULL(m);
    int ok = 0;
    for (long n = 0; n < 500; n++) {
        void *state = NULL;
        pr_error err = { 0 };
        pr_alloc_fail_after(n);
        int rc = k->parse(&state, m, pack, &err);
        pr_alloc_fail_after(-1);
        if (rc == 0) {
            T_NOT_NULL(state);
            k->free(state);
            ok = 1;
            break;
        }
        T_EQ_INT(rc, PR_ENOMEM);
        T_NULL(state);
    }
    T_TRUE(ok);
    json_decref(m);
}

static void test_shipped_packs(void)
{
    static const char *const packs[] = { "rate-limiter", "access-log" };
    for (size_t i = 0; i < 2; i++) {
        char dir[512];
        pr_challenge *c = NULL;
        pr_error err = { 0 };
        (void)snprintf(dir, sizeof(dir), "%s/challenges/%s", PR_SOURCE_DIR, packs[i]);
        int rc = pr_challenge_load(&c, dir, &err);
        if (rc != 0)
            T_FAIL("%s: %s", dir, err.msg);
        T_EQ_STR(c->kind_name, "stdio");
        T_TRUE(c->ntests >= 12);
        double sum = 0;
        for (size_t t = 0; t < c->ntests; t++)
            sum += c->tests[t].points;
        T_TRUE(sum == 100);
        pr_challenge_free(c);
    }
}

int main(void)
{
    char path[256];
    (void)snprintf(pack, sizeof(pack), "/tmp/pr_stdio_parse_XXXXXX");
    T_NOT_NULL(mkdtemp(pack));
    (void)snprintf(path, sizeof(path), "%s/tests", pack);
    T_EQ_INT(mkdir(path, 0755), 0);
    put("tests/a.in", "1\n");
    put("tests/a.out", "1\n");
    put("check.py", "print('{\"verdict\": \"AC\"}')\n");
    put("gen.py", "print(1)\n");
    put("ref.c", "int main(void){return 0;}\n");
    (void)snprintf(path, sizeof(path), "%s/tests/link.out", pack);
    T_EQ_INT(symlink("/etc/passwd", path), 0);
    (void)snprintf(path, sizeof(path), "%s/tests/dirlink", pack);
    T_EQ_INT(symlink(".", path), 0);

    test_good();
    test_bad();
    test_alloc_fail();
    test_shipped_packs();

    T_EQ_INT(pr_rm_rf(pack), 0);
    return 0;
}
