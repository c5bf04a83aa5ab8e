#ifndef PROCTOR_TESTS_SQL_T_H
#define PROCTOR_TESTS_SQL_T_H
/* Helpers of the sql kind's end-to-end tests (SQLite and PostgreSQL): grade a submission
 * directory with the loaded pack, look up a test's result, build hostile submissions from the
 * reference solution. Each test sets pack and scratch before grading. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proctor/challenge.h"
#include "proctor/common.h"
#include "proctor/kind.h"
#include "sql_internal.h"
#include "t.h"

static pr_challenge *pack;
static char scratch[512];

typedef struct graded {
    json_t *tests;
    json_t *metrics;
} graded;

/* Grades workdir; every test of the pack must have a result, in the pack's order. */
static inline graded grade(const char *workdir)
{
    pr_error err = { 0 };
    pr_grading g;
    memset(&g, 0, sizeof(g));
    g.challenge = pack;
    g.job_id = "sql-test";
    g.workdir = workdir;
    g.scratch = scratch;
    g.time_multiplier = 1.0;
    g.parallel = 1;
    g.slot_base = -1;
    g.netns_fd = -1;
    g.tests = json_array();
    g.metrics = json_object();
    int rc = pack->kind->grade(&g, pack->kind_state, &err);
    if (rc != 0)
        T_FAIL("grade %s: %d %s", workdir, rc, err.msg);
    T_EQ_INT(json_array_size(g.tests), pack->ntests);
    for (size_t i = 0; i < pack->ntests; i++)
        T_EQ_STR(json_string_value(json_object_get(json_array_get(g.tests, i), "name")),
                 pack->tests[i].name);
    return (graded){ g.tests, g.metrics };
}

static inline void done(graded *r)
{
    json_decref(r->tests);
    json_decref(r->metrics);
}

static inline json_t *test_of(const graded *r, const char *name)
{
    size_t i;
    json_t *t;
    json_array_foreach (r->tests, i, t) {
        if (strcmp(json_string_value(json_object_get(t, "name")), name) == 0)
            return t;
    }
    T_FAIL("no result for %s", name);
    return NULL;
}

static inline void expect(const graded *r, const char *name, const char *verdict,
                          const char *msg_part)
{
    json_t *t = test_of(r, name);
    const char *v = json_string_value(json_object_get(t, "verdict"));
    const char *m = json_string_value(json_object_get(t, "message"));
    if (!v || strcmp(v, verdict) != 0 || (msg_part && (!m || !strstr(m, msg_part))))
        T_FAIL("%s: expected %s \"%s\", got %s \"%s\"", name, verdict, msg_part ? msg_part : "",
               v ? v : "?", m ? m : "?");
}

static inline double total(const graded *r)
{
    double sum = 0;
    size_t i;
    json_t *t;
    json_array_foreach (r->tests, i, t)
        sum += json_number_value(json_object_get(t, "points"));
    return sum;
}

static inline void write_text(const char *dir, const char *name, const char *text)
{
    char path[1024];
    (void)snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "we");
    T_NOT_NULL(f);
    T_TRUE(fputs(text, f) >= 0);
    T_EQ_INT(fclose(f), 0);
}

/* A submission directory (readable by the box) holding the reference's query files. */
static inline void copy_reference(const char *dir)
{
    static const char *const files[] = { "q1.sql", "q2.sql", "q3.sql", "q4.sql" };
    T_EQ_INT(pr_mkdir_p(dir), 0);
    T_EQ_INT(chmod(dir, 0755), 0);
    for (size_t i = 0; i < 4; i++) {
        char src[1100], dst[1100];
        pr_error err = { 0 };
        (void)snprintf(src, sizeof(src), "%s/solutions/reference/%s", pack->dir, files[i]);
        (void)snprintf(dst, sizeof(dst), "%s/%s", dir, files[i]);
        (void)unlink(dst);
        if (pr_sql_copy_file(src, dst, &err) != 0)
            T_FAIL("copy %s: %s", src, err.msg);
    }
}

#endif
