#ifndef PROCTOR_TESTS_SBX_T_H
#define PROCTOR_TESTS_SBX_T_H
/* For tests that grade through the real sandbox: whether it can run a trivial program here
 * (else they skip with 77). */
#include <stdbool.h>
#include <stdio.h>

#include "proctor/sandbox.h"

static inline bool sandbox_works(void)
{
    pr_error err = { 0 };
    if (sbx_global_init(&err) < 0) {
        fprintf(stderr, "sbx_global_init: %s\n", err.msg);
        return false;
    }
    static const char *const argv[] = { "/bin/true", NULL };
    sbx_spec spec;
    sbx_result res;
    sbx_spec_init(&spec);
    spec.argv = argv;
    if (sbx_run(&res, &spec, &err) < 0 || res.verdict != SBX_OK) {
        fprintf(stderr, "sandbox unavailable: %s %s\n", err.msg, res.message);
        return false;
    }
    return true;
}

#endif
