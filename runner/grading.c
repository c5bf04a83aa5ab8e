/* Helpers every kind grader uses: one test result in the report's exact shape, and the sandbox
 * run plan of the candidate's program (runtime argv, binds, env, profile, scaled limits). */
#include "proctor/kind.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "proctor/report.h"

#define MESSAGE_MAX 2048

/* Points as an integer when whole (the usual case), else a real. */
static json_t *points_json(double v)
{
    if (v == floor(v) && fabs(v) < 9e15)
        return json_integer((json_int_t)v);
    return json_real(v);
}

json_t *pr_grading_add_test(pr_grading *g, const pr_test_meta *meta, const char *verdict,
                            double points, const sbx_result *res, const char *message,
                            size_t message_len)
{
    json_t *t = NULL;

    if (!g || !g->tests || !meta || !verdict)
        return NULL;
    double max = meta->points;
    if (!(points >= 0) || !isfinite(points))
        points = 0;
    if (points > max)
        points = max;
    t = json_object();
    if (!t)
        return NULL;
    int bad = 0;
    bad |= json_object_set_new(t, "name", json_string(meta->name ? meta->name : ""));
    bad |= json_object_set_new(t, "group", json_string(meta->group ? meta->group : "correctness"));
    bad |= json_object_set_new(t, "visibility", json_string(meta->hidden ? "hidden" : "visible"));
    bad |= json_object_set_new(t, "verdict", json_string(verdict));
    bad |= json_object_set_new(t, "points", points_json(points));
    bad |= json_object_set_new(t, "max_points", points_json(max));
    bad |= json_object_set_new(t, "cpu_ms", json_integer(res ? (json_int_t)res->cpu_ms : 0));
    bad |= json_object_set_new(t, "wall_ms", json_integer(res ? (json_int_t)res->wall_ms : 0));
    bad |=
        json_object_set_new(t, "max_rss_kb", json_integer(res ? (json_int_t)res->max_rss_kb : 0));
    if (bad)
        goto fail;
    if (pr_report_set_text(t, "message", message ? message : "", message ? message_len : 0,
                           MESSAGE_MAX) < 0)
        goto fail;
    if (json_array_append_new(g->tests, t) != 0)
        return NULL; /* json_array_append_new consumed t */
    return t;
fail:
    json_decref(t);
    return NULL;
}

void pr_run_plan_init(pr_run_plan *plan, const pr_grading *g, const sbx_limits *limits)
{
    const pr_runtime *rt = g ? g->runtime : NULL;
    size_t n;

    memset(plan, 0, sizeof(*plan));
    sbx_spec_init(&plan->spec);

    /* The built submission at /box, read-only, then the runtime's own read-only paths. */
    n = 0;
    if (g && g->workdir)
        plan->binds[n++] = (sbx_bind){ g->workdir, "/box", false };
    for (size_t i = 0; rt && rt->binds && rt->binds[i] && n < PR_ARRAY_LEN(plan->binds); i++)
        plan->binds[n++] = (sbx_bind){ rt->binds[i], NULL, false };
    plan->spec.binds = plan->binds;
    plan->spec.nbinds = n;

    n = 0;
    for (size_t i = 0; rt && rt->run_argv && rt->run_argv[i] && n + 1 < PR_ARRAY_LEN(plan->argv);
         i++)
        plan->argv[n++] = rt->run_argv[i];
    plan->argv[n] = NULL;
    plan->spec.argv = plan->argv;

    n = 0;
    plan->envp[n++] = "PATH=/usr/local/bin:/usr/bin:/bin";
    plan->envp[n++] = "HOME=/tmp";
    plan->envp[n++] = "LANG=C.UTF-8";
    for (size_t i = 0; rt && rt->env && rt->env[i] && n + 1 < PR_ARRAY_LEN(plan->envp); i++) {
        /* The runtime's value wins over a default with the same key (PATH, HOME). */
        const char *eq = strchr(rt->env[i], '=');
        size_t klen = eq ? (size_t)(eq - rt->env[i]) + 1 : strlen(rt->env[i]);
        size_t j = 0;
        while (j < n &&
               !(strlen(plan->envp[j]) >= klen && memcmp(plan->envp[j], rt->env[i], klen) == 0))
            j++;
        plan->envp[j] = rt->env[i];
        if (j == n)
            n++;
    }
    plan->envp[n] = NULL;
    plan->spec.envp = plan->envp;

    plan->spec.chdir = "/box";
    plan->spec.profile = (rt && rt->profile) ? rt->profile : "default";
    plan->spec.net = SBX_NET_NONE;
    plan->spec.netns_fd = g ? g->netns_fd : -1;

    if (limits)
        plan->spec.limits = *limits;
    else if (g && g->challenge)
        plan->spec.limits = g->challenge->limits;
    double m = (g && g->time_multiplier > 0) ? g->time_multiplier : 1.0;
    if (m != 1.0) {
        plan->spec.limits.cpu_ms = (uint64_t)ceil((double)plan->spec.limits.cpu_ms * m);
        plan->spec.limits.wall_ms = (uint64_t)ceil((double)plan->spec.limits.wall_ms * m);
    }
}

int pr_run_plan_setenv(pr_run_plan *plan, const char *key, const char *value)
{
    size_t klen = strlen(key);
    size_t n = 0;
    int slot = -1;

    if (klen == 0 || strchr(key, '='))
        return PR_EINVAL;
    while (n < PR_ARRAY_LEN(plan->envp) && plan->envp[n])
        n++;
    /* Reuse the storage of an entry this plan already set for the same key. */
    for (size_t i = 0; i < PR_ARRAY_LEN(plan->env_storage); i++) {
        if (plan->env_storage[i][0] == '\0') {
            if (slot < 0)
                slot = (int)i;
            continue;
        }
        if (strncmp(plan->env_storage[i], key, klen) == 0 && plan->env_storage[i][klen] == '=') {
            slot = (int)i;
            break;
        }
    }
    if (slot < 0)
        return PR_ELIMIT;
    char *dst = plan->env_storage[slot];
    bool reused = dst[0] != '\0';
    int w = snprintf(dst, sizeof(plan->env_storage[0]), "%s=%s", key, value ? value : "");
    if (w < 0 || (size_t)w >= sizeof(plan->env_storage[0])) {
        dst[0] = '\0';
        return PR_ELIMIT;
    }
    /* An entry from the defaults or the runtime with the same key is replaced in place. */
    for (size_t i = 0; i < n; i++) {
        if (plan->envp[i] == dst ||
            (strncmp(plan->envp[i], key, klen) == 0 && plan->envp[i][klen] == '=')) {
            plan->envp[i] = dst;
            return 0;
        }
    }
    if (reused || n + 1 >= PR_ARRAY_LEN(plan->envp)) {
        if (!reused)
            dst[0] = '\0';
        return reused ? 0 : PR_ELIMIT;
    }
    plan->envp[n] = dst;
    plan->envp[n + 1] = NULL;
    return 0;
}

const char *pr_test_verdict_from_sbx(sbx_verdict v)
{
    switch (v) {
    case SBX_OK:
        return "AC";
    case SBX_RE:
        return "RE";
    case SBX_TLE:
        return "TLE";
    case SBX_WLE:
        return "WLE";
    case SBX_MLE:
        return "MLE";
    case SBX_OLE:
        return "OLE";
    case SBX_SV:
        return "SV";
    default:
        return "IE";
    }
}
