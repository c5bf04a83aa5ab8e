/* The stdio grader end to end through the real sandbox: a Python fixture program graded on the
 * stdio-mini fixture pack gives AC (exact, tokens, float), WA with the first difference, RE
 * with the exit code and stderr tail, TLE, WLE, OLE, checker AC / partial / WA, a checker that
 * breaks the protocol (IE, never WA), a generated input with a compiled C reference, a failing
 * generator (IE for its tests only), a checker in C and a checker that does not compile (IE).
 * Skips (77) when the sandbox cannot run here. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proctor/challenge.h"
#include "proctor/common.h"
#include "proctor/kind.h"
#include "proctor/runtime.h"
#include "proctor/sandbox.h"
#include "sbx_t.h"
#include "t.h"

static json_t *find_test(json_t *tests, const char *name)
{
    size_t i;
    json_t *t;
    json_array_foreach (tests, i, t) {
        if (strcmp(json_string_value(json_object_get(t, "name")), name) == 0)
            return t;
    }
    T_FAIL("no result for test %s", name);
    return NULL;
}

static void expect(json_t *tests, const char *name, const char *verdict, double points,
                   const char *msg_part)
{
    json_t *t = find_test(tests, name);
    const char *v = json_string_value(json_object_get(t, "verdict"));
    const char *m = json_string_value(json_object_get(t, "message"));
    double p = json_number_value(json_object_get(t, "points"));
    if (!v || strcmp(v, verdict) != 0 || fabs(p - points) > 1e-9 ||
        (msg_part && !strstr(m, msg_part)))
        T_FAIL("%s: expected %s %.2f \"%s\", got %s %.2f \"%s\"", name, verdict, points,
               msg_part ? msg_part : "", v ? v : "?", p, m ? m : "?");
}

static void put(const char *dir, const char *rel, const char *text)
{
    char p[700];
    (void)snprintf(p, sizeof(p), "%s/%s", dir, rel);
    FILE *f = fopen(p, "w");
    T_NOT_NULL(f);
    fputs(text, f);
    T_EQ_INT(fclose(f), 0);
}

/* A pack whose generator fails (its tests become IE, the others still grade), with a checker
 * written in C (compiled in the sandbox) and one whose C checker does not compile. */
static void test_pack_programs(const pr_runtime *py, const char *prog, const char *scratch)
{
    char pack[] = "/tmp/pr_stdio_pack_XXXXXX", sub[700];
    pr_challenge *c = NULL;
    pr_error err = { 0 };

    T_NOT_NULL(mkdtemp(pack));
    (void)snprintf(sub, sizeof(sub), "%s/t", pack);
    T_EQ_INT(mkdir(sub, 0755), 0);
    put(pack, "t/a.in", "echo\n7\n");
    put(pack, "t/a.out", "7\n");
    put(pack, "gen.py",
        "import sys\nsys.stderr.write('generator broke on purpose')\nsys.exit(3)\n");
    put(pack, "ref.py", "import sys\nsys.stdout.write(''.join(sys.stdin.readlines()[1:]))\n");
    put(pack, "check.c",
        "#include <stdio.h>\n"
        "int main(void) {\n"
        "    FILE *e = fopen(\"/check/expected\", \"r\"), *o = fopen(\"/check/output\", \"r\");\n"
        "    long x = -1, y = -2;\n"
        "    if (!e || !o || fscanf(e, \"%ld\", &x) != 1 || fscanf(o, \"%ld\", &y) != 1) {\n"
        "        puts(\"{\\\"verdict\\\": \\\"WA\\\", \\\"message\\\": \\\"unreadable\\\"}\");\n"
        "        return 0;\n"
        "    }\n"
        "    printf(\"{\\\"verdict\\\": \\\"%s\\\", \\\"message\\\": \\\"c checker %ld\\\"}\\n\",\n"
        "           x == y ? \"AC\" : \"WA\", y);\n"
        "    return 0;\n"
        "}\n");
    put(pack, "challenge.json",
        "{\"id\": \"tmp\", \"version\": \"1\", \"title\": \"t\", \"kind\": \"stdio\","
        " \"runtimes\": [\"python\"], \"limits\": {\"cpu_ms\": 3000, \"wall_ms\": 8000},"
        " \"checker\": {\"source\": \"check.c\", \"runtime\": \"c\"},"
        " \"generate\": {\"program\": {\"source\": \"gen.py\", \"runtime\": \"python\"},"
        "   \"reference\": {\"source\": \"ref.py\", \"runtime\": \"python\"}},"
        " \"tests\": ["
        "  {\"name\": \"gen\", \"points\": 1, \"input\": {\"generate\": [\"1\"]},"
        "   \"expected\": \"reference\"},"
        "  {\"name\": \"c_checker\", \"points\": 2, \"input\": \"t/a.in\","
        "   \"expected\": \"t/a.out\", \"compare\": \"checker\"},"
        "  {\"name\": \"plain\", \"points\": 1, \"input\": \"t/a.in\", \"expected\": \"t/a.out\","
        "   \"compare\": \"tokens\"}]}");
    if (pr_challenge_load(&c, pack, &err) != 0)
        T_FAIL("load %s: %s", pack, err.msg);
    pr_grading g;
    memset(&g, 0, sizeof(g));
    g.challenge = c;
    g.runtime = py;
    g.job_id = "stdio-test-2";
    g.workdir = prog;
    g.scratch = scratch;
    g.time_multiplier = 1.0;
    g.parallel = 2;
    g.slot_base = 40;
    g.netns_fd = -1;
    g.tests = json_array();
    int rc = c->kind->grade(&g, c->kind_state, &err);
    if (rc != 0)
        T_FAIL("grade: %d %s", rc, err.msg);
    expect(g.tests, "gen", "IE", 0, "generator broke on purpose");
    expect(g.tests, "c_checker", "AC", 2, "c checker 7");
    expect(g.tests, "plain", "AC", 1, NULL);
    json_decref(g.tests);
    pr_challenge_free(c);

    /* A checker that does not compile: its tests are IE, naming the compile failure. */
    put(pack, "check.c", "int main(void) { return syntax error; }\n");
    T_EQ_INT(pr_challenge_load(&c, pack, &err), 0);
    g.challenge = c;
    g.tests = json_array();
    T_EQ_INT(c->kind->grade(&g, c->kind_state, &err), 0);
    expect(g.tests, "c_checker", "IE", 0, "compiling failed");
    expect(g.tests, "plain", "AC", 1, NULL);
    json_decref(g.tests);
    pr_challenge_free(c);

    /* Editing the generator changes its cache key: the test is generated afresh and passes. */
    put(pack, "gen.py", "import sys\nsys.stdout.write('echo\\n' + sys.argv[1] + '\\n')\n");
    T_EQ_INT(pr_challenge_load(&c, pack, &err), 0);
    g.challenge = c;
    g.tests = json_array();
    T_EQ_INT(c->kind->grade(&g, c->kind_state, &err), 0);
    expect(g.tests, "gen", "AC", 1, NULL);
    json_decref(g.tests);
    pr_challenge_free(c);
    T_EQ_INT(pr_rm_rf(pack), 0);
}

int main(void)
{
    char pack[512], prog[512], cache[] = "/tmp/pr_stdio_cache_XXXXXX",
                               scratch[] = "/tmp/pr_stdio_scratch_XXXXXX";
    pr_challenge *c = NULL;
    pr_runtimes *rts = NULL;
    pr_error err = { 0 };

    if (!sandbox_works())
        T_SKIP("the sandbox does not run here");
    (void)snprintf(pack, sizeof(pack), "%s/tests/fixtures/packs/stdio-mini", PR_SOURCE_DIR);
    (void)snprintf(prog, sizeof(prog), "%s/tests/fixtures/stdio-prog", PR_SOURCE_DIR);
    T_NOT_NULL(mkdtemp(cache));
    T_NOT_NULL(mkdtemp(scratch));
    T_EQ_INT(chmod(scratch, 0711), 0);
    T_EQ_INT(setenv("PROCTOR_CACHE_DIR", cache, 1), 0);

    if (pr_challenge_load(&c, pack, &err) != 0)
        T_FAIL("load %s: %s", pack, err.msg);
    if (pr_runtimes_load(&rts, NULL, &err) != 0)
        T_FAIL("runtimes: %s", err.msg);
    const pr_runtime *py = pr_runtimes_find(rts, "python");
    T_NOT_NULL(py);

    pr_grading g;
    memset(&g, 0, sizeof(g));
    g.challenge = c;
    g.runtime = py;
    g.job_id = "stdio-test";
    g.workdir = prog;
    g.scratch = scratch;
    g.time_multiplier = 1.0;
    g.parallel = 2;
    g.slot_base = 40;
    g.netns_fd = sbx_netns_new(&err); /* shared lo-only netns, as the pipeline does */
    if (g.netns_fd < 0)
        T_FAIL("sbx_netns_new: %s", err.msg);
    g.tests = json_array();
    g.metrics = json_object();

    int rc = c->kind->grade(&g, c->kind_state, &err);
    if (rc != 0)
        T_FAIL("grade: %d %s", rc, err.msg);
    char *dump = json_dumps(g.tests, JSON_INDENT(1));
    fprintf(stderr, "%s\n", dump);
    free(dump);

    /* One result per manifest test, in manifest order. */
    T_EQ_INT(json_array_size(g.tests), c->ntests);
    for (size_t i = 0; i < c->ntests; i++)
        T_EQ_STR(json_string_value(json_object_get(json_array_get(g.tests, i), "name")),
                 c->tests[i].name);

    expect(g.tests, "ac_exact", "AC", 1, NULL);
    expect(g.tests, "ac_tokens", "AC", 1, NULL);
    expect(g.tests, "ac_float", "AC", 1, NULL);
    expect(g.tests, "wa_exact", "WA", 0, "line 2: expected \"ALLOW\", got \"DENY\"");
    json_t *d = json_object_get(find_test(g.tests, "wa_exact"), "details");
    T_NOT_NULL(d);
    T_EQ_INT(json_integer_value(json_object_get(d, "line")), 2);
    T_EQ_STR(json_string_value(json_object_get(d, "expected")), "ALLOW");
    T_EQ_STR(json_string_value(json_object_get(d, "got")), "DENY");
    expect(g.tests, "re_exit", "RE", 0, "exit code 3");
    expect(g.tests, "re_exit", "RE", 0, "boom");
    expect(g.tests, "tle_spin", "TLE", 0, "CPU time limit");
    expect(g.tests, "wle_sleep", "WLE", 0, "wall-clock");
    expect(g.tests, "ole_flood", "OLE", 0, "output limit");
    expect(g.tests, "checker_ac", "AC", 4, "exact");
    expect(g.tests, "checker_partial", "WA", 2, "off by one");
    expect(g.tests, "checker_wa", "WA", 0, "wrong number");
    expect(g.tests, "checker_garbage", "IE", 0, "broke the protocol");
    expect(g.tests, "checker_crash", "IE", 0, "broke the protocol");
    expect(g.tests, "checker_score", "IE", 0, "score");
    expect(g.tests, "generated", "AC", 3, NULL);
    /* The generated input and its reference output are cached. */
    char p[600];
    (void)snprintf(p, sizeof(p), "%s/stdio/lock", cache);
    T_TRUE(access(p, F_OK) == 0);

    json_decref(g.tests);
    json_decref(g.metrics);
    pr_close(&g.netns_fd);

    test_pack_programs(py, prog, scratch);
    pr_challenge_free(c);
    pr_runtimes_free(rts);
    T_EQ_INT(pr_rm_rf(cache), 0);
    T_EQ_INT(pr_rm_rf(scratch), 0);
    sbx_global_cleanup();
    return 0;
}
