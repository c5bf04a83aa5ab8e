/* Placeholder for the http kind until its grader lands. */
#include "proctor/kind.h"

static int http_parse(void **state_out, const json_t *manifest, const char *dir, pr_error *err)
{
    (void)manifest;
    (void)dir;
    *state_out = NULL;
    return pr_error_set(err, PR_EINVAL, "kind 'http' is not built yet");
}

static int http_grade(pr_grading *g, const void *state, pr_error *err)
{
    (void)g;
    (void)state;
    return pr_error_set(err, PR_EINTERNAL, "kind 'http' is not built yet");
}

static void http_free(void *state)
{
    (void)state;
}

const pr_kind pr_kind_http = { "http", http_parse, http_grade, http_free };
