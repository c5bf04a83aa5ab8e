/* pr_job_run on the failure paths that need no sandbox: an unknown challenge and a missing
 * repository still give complete, valid reports with the failing stage; credentials in the URL
 * never reach the report; several jobs at once on threads; allocation failures on the way. */
#include "proctor/job.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "proctor/common.h"
#include "proctor/git.h"
#include "proctor/report.h"
#include "proctor/runtime.h"
#include "t.h"

static pr_runtimes *rts;
static char pack[512];

static void env_init(pr_env *env)
{
    memset(env, 0, sizeof(*env));
    env->runtimes = rts;
    env->cache_dir = "/tmp/pr-test-job-cache";
    env->work_root = "/tmp";
}

static json_t *run(const char *challenge, const char *repo, const char *ref)
{
    pr_job_spec spec;
    pr_env env;
    pr_error err = { 0 };
    json_t *r = NULL;
    memset(&spec, 0, sizeof(spec));
    spec.challenge_dir = challenge;
    spec.repo = repo;
    spec.ref = ref;
    spec.candidate = "ann";
    env_init(&env);
    T_EQ_INT(pr_job_run(&r, &spec, &env, &err), 0);
    T_NOT_NULL(r);
    T_EQ_INT(pr_report_validate(r, &err), 0);
    return r;
}

static const char *stage_of(const json_t *r)
{
    return json_string_value(json_object_get(json_object_get(r, "error"), "stage"));
}

static const char *message_of(const json_t *r)
{
    return json_string_value(json_object_get(json_object_get(r, "error"), "message"));
}

static void test_unknown_challenge(void)
{
    json_t *r = run("/nonexistent/pack", "/nonexistent/repo", NULL);
    T_EQ_STR(json_string_value(json_object_get(r, "status")), "error");
    T_EQ_STR(stage_of(r), "challenge");
    T_CONTAINS(message_of(r), "/nonexistent/pack");
    T_EQ_INT(json_array_size(json_object_get(r, "tests")), 0);
    T_EQ_STR(json_string_value(json_object_get(json_object_get(r, "job"), "candidate")), "ann");
    T_EQ_INT(strlen(json_string_value(json_object_get(json_object_get(r, "job"), "id"))), 26);
    json_decref(r);
}

static void test_missing_repo(void)
{
    json_t *r = run(pack, "/nonexistent/repo", "main");
    T_EQ_STR(stage_of(r), "fetch");
    T_CONTAINS(message_of(r), "/nonexistent/repo");
    const json_t *tests = json_object_get(r, "tests");
    T_EQ_INT(json_array_size(tests), 3);
    for (size_t i = 0; i < 3; i++)
        T_EQ_STR(json_string_value(json_object_get(json_array_get(tests, i), "verdict")), "SKIP");
    const json_t *score = json_object_get(r, "score");
    T_EQ_INT(json_integer_value(json_object_get(score, "max")), 10);
    T_EQ_INT(json_integer_value(json_object_get(score, "earned")), 0);
    T_EQ_STR(json_string_value(json_object_get(json_object_get(r, "challenge"), "id")), "echo");
    T_EQ_STR(json_string_value(json_object_get(json_object_get(r, "submission"), "ref")), "main");
    json_decref(r);
}

static void test_credentials(void)
{
    json_t *r = run(pack, "https://alice:s3cret@127.0.0.1:9/repo.git", NULL);
    T_EQ_STR(stage_of(r), "fetch");
    char *text = json_dumps(r, 0);
    T_NOT_NULL(text);
    T_TRUE(strstr(text, "s3cret") == NULL);
    T_TRUE(strstr(text, "alice") == NULL);
    pr_free(text);
    T_EQ_STR(json_string_value(json_object_get(json_object_get(r, "submission"), "repo")),
             "https://127.0.0.1:9/repo.git");
    json_decref(r);
}

/* Bytes that are not UTF-8 in the caller's strings end up cleaned in the report. */
static void test_non_utf8_arguments(void)
{
    pr_job_spec spec;
    pr_env env;
    pr_error err = { 0 };
    json_t *r = NULL;
    memset(&spec, 0, sizeof(spec));
    spec.challenge_dir = pack;
    spec.repo = "/nonexistent/\xff\xfe-repo";
    spec.ref = "main\xc3";
    spec.candidate = "B\xe9"
                     "a";
    env_init(&env);
    T_EQ_INT(pr_job_run(&r, &spec, &env, &err), 0);
    T_EQ_INT(pr_report_validate(r, &err), 0);
    T_EQ_STR(stage_of(r), "fetch");
    const char *repo = json_string_value(json_object_get(json_object_get(r, "submission"), "repo"));
    T_CONTAINS(repo, "\xEF\xBF\xBD");
    T_CONTAINS(repo, "-repo");
    char *text = json_dumps(r, 0);
    T_NOT_NULL(text);
    json_error_t jerr;
    json_t *back = json_loads(text, 0, &jerr);
    T_NOT_NULL(back);
    json_decref(back);
    pr_free(text);
    json_decref(r);
}

static void *worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 5; i++) {
        json_t *r = run(pack, "/nonexistent/repo", NULL);
        T_EQ_STR(stage_of(r), "fetch");
        json_decref(r);
    }
    return NULL;
}

static void test_threads(void)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        T_EQ_INT(pthread_create(&t[i], NULL, worker, NULL), 0);
    for (int i = 0; i < 4; i++)
        T_EQ_INT(pthread_join(t[i], NULL), 0);
}

static void test_alloc_fail(void)
{
    pr_job_spec spec;
    pr_env env;
    memset(&spec, 0, sizeof(spec));
    spec.challenge_dir = pack;
    spec.repo = "/nonexistent/repo";
    env_init(&env);
    int n;
    for (n = 0; n < 20000; n++) {
        json_t *r = NULL;
        pr_error err = { 0 };
        pr_alloc_fail_after(n);
        int rc = pr_job_run(&r, &spec, &env, &err);
        pr_alloc_fail_after(-1);
        if (rc < 0) {
            T_NULL(r);
            continue;
        }
        /* A report made despite a failure is still complete. */
        T_EQ_INT(pr_report_validate(r, &err), 0);
        const char *stage = stage_of(r);
        bool done = stage && strcmp(stage, "fetch") == 0 &&
                    strstr(message_of(r), "/nonexistent/repo") != NULL;
        json_decref(r);
        if (done)
            break;
    }
    fprintf(stderr, "alloc-fail loop: %d steps\n", n);
    T_TRUE(n > 20 && n < 20000);
}

int main(void)
{
    pr_error err = { 0 };
    json_set_alloc_funcs(pr_malloc, pr_free);
    T_EQ_INT(pr_git_global_init(&err), 0);
    T_EQ_INT(pr_runtimes_load(&rts, NULL, &err), 0);
    (void)snprintf(pack, sizeof(pack), "%s/tests/fixtures/packs/echo", PR_SOURCE_DIR);
    test_unknown_challenge();
    test_missing_repo();
    test_credentials();
    test_non_utf8_arguments();
    test_threads();
    test_alloc_fail();
    pr_runtimes_free(rts);
    (void)pr_rm_rf("/tmp/pr-test-job-cache");
    pr_git_global_cleanup();
    return 0;
}
