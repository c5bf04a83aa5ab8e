/* Test results in the report's shape (pr_grading_add_test), scoring, SKIP results, verdict
 * mapping and the run plan handed to the sandbox. */
#include "proctor/kind.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "proctor/report.h"
#include "t.h"

static pr_test_meta meta(const char *name, double points, bool hidden)
{
    pr_test_meta m;
    memset(&m, 0, sizeof(m));
    m.name = (char *)name;
    m.group = (char *)"correctness";
    m.points = points;
    m.hidden = hidden;
    return m;
}

static void test_add_and_score(void)
{
    pr_grading g;
    memset(&g, 0, sizeof(g));
    g.tests = json_array();
    pr_test_meta a = meta("a", 5, false), b = meta("b", 2.5, true), c = meta("c", 3, false);
    sbx_result res;
    memset(&res, 0, sizeof(res));
    res.cpu_ms = 12;
    res.wall_ms = 15;
    res.max_rss_kb = 2048;

    json_t *t = pr_grading_add_test(&g, &a, "AC", 5, &res, "ok", 2);
    T_NOT_NULL(t);
    T_EQ_STR(json_string_value(json_object_get(t, "name")), "a");
    T_EQ_STR(json_string_value(json_object_get(t, "visibility")), "visible");
    T_EQ_INT(json_integer_value(json_object_get(t, "points")), 5);
    T_EQ_INT(json_integer_value(json_object_get(t, "max_points")), 5);
    T_EQ_INT(json_integer_value(json_object_get(t, "cpu_ms")), 12);
    T_EQ_INT(json_integer_value(json_object_get(t, "max_rss_kb")), 2048);
    T_EQ_INT(json_object_size(t), 10);

    /* Points above the maximum are capped; fractional points stay reals. */
    t = pr_grading_add_test(&g, &b, "AC", 99, NULL, NULL, 0);
    T_TRUE(json_real_value(json_object_get(t, "points")) == 2.5);
    T_EQ_STR(json_string_value(json_object_get(t, "visibility")), "hidden");
    T_EQ_STR(json_string_value(json_object_get(t, "message")), "");

    /* A flood of non-UTF-8 output in the message is cleaned and cut at 2 KiB. */
    char flood[8192];
    memset(flood, '\xff', sizeof(flood));
    t = pr_grading_add_test(&g, &c, "WA", -4, &res, flood, sizeof(flood));
    T_EQ_INT(json_integer_value(json_object_get(t, "points")), 0);
    T_TRUE(json_is_true(json_object_get(t, "message_truncated")));
    T_EQ_INT(json_integer_value(json_object_get(t, "message_bytes")), 8192);
    T_TRUE(json_string_length(json_object_get(t, "message")) <= 2048);

    json_t *report = json_object();
    T_EQ_INT(json_object_set_new(report, "tests", g.tests), 0);
    T_EQ_INT(pr_report_score(report), 0);
    const json_t *s = json_object_get(report, "score");
    T_TRUE(json_number_value(json_object_get(s, "earned")) == 7.5);
    T_TRUE(json_number_value(json_object_get(s, "max")) == 10.5);
    /* 7.5 / 10.5 = 71.428...% -> one decimal. */
    T_TRUE(fabs(json_number_value(json_object_get(s, "percent")) - 71.4) < 1e-9);
    json_decref(report);
}

static void test_skip_scores_zero(void)
{
    pr_grading g;
    memset(&g, 0, sizeof(g));
    g.tests = json_array();
    pr_test_meta a = meta("a", 5, false), b = meta("b", 5, true);
    T_NOT_NULL(pr_grading_add_test(&g, &a, "SKIP", 0, NULL, "not run: the build failed", 25));
    T_NOT_NULL(pr_grading_add_test(&g, &b, "SKIP", 0, NULL, "not run: the build failed", 25));
    json_t *report = json_object();
    T_EQ_INT(json_object_set_new(report, "tests", g.tests), 0);
    T_EQ_INT(pr_report_score(report), 0);
    const json_t *s = json_object_get(report, "score");
    T_EQ_INT(json_integer_value(json_object_get(s, "earned")), 0);
    T_EQ_INT(json_integer_value(json_object_get(s, "max")), 10);
    T_TRUE(json_real_value(json_object_get(s, "percent")) == 0.0);
    json_decref(report);

    /* No tests at all: 0 of 0 is 0 percent, not a division by zero. */
    report = json_pack("{s:[]}", "tests");
    T_EQ_INT(pr_report_score(report), 0);
    T_TRUE(json_real_value(json_object_get(json_object_get(report, "score"), "percent")) == 0.0);
    json_decref(report);
}

static void test_verdicts(void)
{
    T_EQ_STR(pr_test_verdict_from_sbx(SBX_OK), "AC");
    T_EQ_STR(pr_test_verdict_from_sbx(SBX_RE), "RE");
    T_EQ_STR(pr_test_verdict_from_sbx(SBX_TLE), "TLE");
    T_EQ_STR(pr_test_verdict_from_sbx(SBX_WLE), "WLE");
    T_EQ_STR(pr_test_verdict_from_sbx(SBX_MLE), "MLE");
    T_EQ_STR(pr_test_verdict_from_sbx(SBX_OLE), "OLE");
    T_EQ_STR(pr_test_verdict_from_sbx(SBX_SV), "SV");
    T_EQ_STR(pr_test_verdict_from_sbx(SBX_IE), "IE");
    T_EQ_STR(pr_test_verdict_from_sbx((sbx_verdict)99), "IE");
}

static void test_run_plan(void)
{
    char *run[] = { (char *)"/usr/bin/python3", (char *)"/box/main.py", NULL };
    char *binds[] = { (char *)"/opt/py", NULL };
    char *env[] = { (char *)"PYTHONDONTWRITEBYTECODE=1", (char *)"HOME=/home/x", NULL };
    pr_runtime rt;
    memset(&rt, 0, sizeof(rt));
    rt.name = (char *)"python";
    rt.run_argv = run;
    rt.binds = binds;
    rt.env = env;
    rt.profile = (char *)"python";
    pr_challenge ch;
    memset(&ch, 0, sizeof(ch));
    ch.limits.cpu_ms = 1000;
    ch.limits.wall_ms = 3000;
    ch.limits.mem_mb = 64;
    pr_grading g;
    memset(&g, 0, sizeof(g));
    g.challenge = &ch;
    g.runtime = &rt;
    g.workdir = "/tmp/job/src";
    g.time_multiplier = 2.5;
    g.netns_fd = 7;

    pr_run_plan plan;
    pr_run_plan_init(&plan, &g, NULL);
    T_EQ_STR(plan.spec.argv[0], "/usr/bin/python3");
    T_EQ_STR(plan.spec.argv[1], "/box/main.py");
    T_NULL(plan.spec.argv[2]);
    T_EQ_INT(plan.spec.nbinds, 2);
    T_EQ_STR(plan.spec.binds[0].src, "/tmp/job/src");
    T_EQ_STR(plan.spec.binds[0].dst, "/box");
    T_TRUE(!plan.spec.binds[0].writable);
    T_EQ_STR(plan.spec.binds[1].src, "/opt/py");
    T_TRUE(!plan.spec.binds[1].writable);
    T_EQ_STR(plan.spec.chdir, "/box");
    T_EQ_STR(plan.spec.profile, "python");
    T_EQ_INT(plan.spec.net, SBX_NET_NONE);
    T_EQ_INT(plan.spec.netns_fd, 7);
    T_EQ_INT(plan.spec.limits.cpu_ms, 2500);
    T_EQ_INT(plan.spec.limits.wall_ms, 7500);
    T_EQ_INT(plan.spec.limits.mem_mb, 64);
    T_EQ_STR(plan.spec.envp[0], "PATH=/usr/local/bin:/usr/bin:/bin");
    T_EQ_STR(plan.spec.envp[1], "HOME=/home/x"); /* the runtime's value replaces the default */
    T_EQ_STR(plan.spec.envp[2], "LANG=C.UTF-8");
    T_EQ_STR(plan.spec.envp[3], "PYTHONDONTWRITEBYTECODE=1");
    T_NULL(plan.spec.envp[4]);

    T_EQ_INT(pr_run_plan_setenv(&plan, "PORT", "8080"), 0);
    T_EQ_STR(plan.spec.envp[4], "PORT=8080");
    T_EQ_INT(pr_run_plan_setenv(&plan, "PORT", "9090"), 0);
    T_EQ_STR(plan.spec.envp[4], "PORT=9090");
    T_NULL(plan.spec.envp[5]);
    T_EQ_INT(pr_run_plan_setenv(&plan, "LANG", "C"), 0);
    T_EQ_STR(plan.spec.envp[2], "LANG=C");
    T_NULL(plan.spec.envp[5]);
    T_EQ_INT(pr_run_plan_setenv(&plan, "A=B", "x"), PR_EINVAL);
    char key[8];
    int i = 0;
    int rc = 0;
    for (; i < 20 && rc == 0; i++) {
        (void)snprintf(key, sizeof(key), "K%d", i);
        rc = pr_run_plan_setenv(&plan, key, "v");
    }
    T_EQ_INT(rc, PR_ELIMIT);

    /* Explicit limits win over the challenge's; a multiplier of 1 leaves them alone. */
    sbx_limits l;
    memset(&l, 0, sizeof(l));
    l.cpu_ms = 100;
    l.wall_ms = 200;
    g.time_multiplier = 1.0;
    pr_run_plan_init(&plan, &g, &l);
    T_EQ_INT(plan.spec.limits.cpu_ms, 100);
    T_EQ_INT(plan.spec.limits.wall_ms, 200);
    T_EQ_INT(plan.spec.limits.mem_mb, 0);
}

int main(void)
{
    test_add_and_score();
    test_skip_scores_zero();
    test_verdicts();
    test_run_plan();
    return 0;
}
