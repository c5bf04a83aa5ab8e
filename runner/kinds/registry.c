/* The one table of challenge kinds. No switch on the kind anywhere else (STYLE.md 12). */
#include "proctor/kind.h"

#include <string.h>

extern const pr_kind pr_kind_stdio;
extern const pr_kind pr_kind_http;
extern const pr_kind pr_kind_sql;

static const pr_kind *const kinds[] = { &pr_kind_stdio, &pr_kind_http, &pr_kind_sql };
static const char *const names[] = { "stdio", "http", "sql", NULL };

const pr_kind *pr_kind_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strcmp(kinds[i]->name, name) == 0)
            return kinds[i];
    }
    return NULL;
}

const char *const *pr_kind_names(void)
{
    return names;
}
