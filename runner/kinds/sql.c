/* Placeholder for the sql kind until its grader lands. */
#include "proctor/kind.h"

static int sql_parse(void **state_out, const json_t *manifest, const char *dir, pr_error *err)
{
    (void)manifest;
    (void)dir;
    *state_out = NULL;
    return pr_error_set(err, PR_EINVAL, "kind 'sql' is not built yet");
}

static int sql_grade(pr_grading *g, const void *state, pr_error *err)
{
    (void)g;
    (void)state;
    return pr_error_set(err, PR_EINTERNAL, "kind 'sql' is not built yet");
}

static void sql_free(void *state)
{
    (void)state;
}

const pr_kind pr_kind_sql = { "sql", sql_parse, sql_grade, sql_free };
