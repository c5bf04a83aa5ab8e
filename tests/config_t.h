#ifndef PROCTOR_TESTS_CONFIG_T_H
#define PROCTOR_TESTS_CONFIG_T_H
/* Helpers of the daemon configuration unit tests: parse a config text that must be accepted,
 * or refused with a message containing a needle (messages name the field). */
#include <string.h>

#include "daemon.h"
#include "t.h"

static inline pr_config *parse_ok(const char *text)
{
    pr_config *c = NULL;
    pr_error err = { 0 };
    int rc = pr_config_parse(&c, text, strlen(text), "/etc/proctor/proctor.json", &err);
    if (rc != 0)
        T_FAIL("config rejected: %s", err.msg);
    return c;
}

static inline void parse_bad(const char *text, const char *needle)
{
    pr_config *c = NULL;
    pr_error err = { 0 };
    int rc = pr_config_parse(&c, text, strlen(text), "x.json", &err);
    T_TRUE(rc < 0);
    T_NULL(c);
    T_CONTAINS(err.msg, needle);
}

#endif
