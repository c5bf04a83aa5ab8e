/* Placeholder for the stdio kind until its grader lands. */
#include "proctor/kind.h"

static int stdio_parse(void **state_out, const json_t *manifest, const char *dir, pr_error *err)
{
    (void)manifest;
    (void)dir;
    *state_out = NULL;
    return pr_error_set(err, PR_EINVAL, "kind 'stdio' is not built yet");
}

static int stdio_grade(pr_grading *g, const void *state, pr_error *err)
{
    (void)g;
    (void)state;
    return pr_error_set(err, PR_EINTERNAL, "kind 'stdio' is not built yet");
}

static void stdio_free(void *state)
{
    (void)state;
}

const pr_kind pr_kind_stdio = { "stdio", stdio_parse, stdio_grade, stdio_free };
