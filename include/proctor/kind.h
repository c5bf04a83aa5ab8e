#ifndef PROCTOR_KIND_H
#define PROCTOR_KIND_H
/* One grader per challenge kind behind one registry (runner/kinds/registry.c). */

#include <jansson.h>

#include "proctor/challenge.h"
#include "proctor/error.h"
#include "proctor/runtime.h"
#include "proctor/sandbox.h"

typedef struct pr_grading {
    const pr_challenge *challenge; /* borrowed */
    const pr_runtime *runtime;     /* borrowed; the submission's runtime */
    const char *job_id;
    const char *workdir;    /* host path of the built submission; bound at /box read-only */
    const char *scratch;    /* host directory private to this job, for per-test files */
    double time_multiplier; /* applied to cpu_ms and wall_ms of the run plan */
    int parallel;           /* sandboxes this job may run at once (>= 1) */
    int slot_base;          /* first worker slot of this job; slots slot_base..+parallel-1 */
    int netns_fd;           /* a shared loopback netns for stdio runs, or -1 */
    json_t *tests;          /* array: grade() appends one result per manifest test, in order */
    json_t *metrics;        /* object: grade() sets its own key ("http", "sql") */
    void (*progress)(void *payload, const char *stage, const char *detail); /* may be NULL */
    void *payload;
    const char *pg_host;  /* PostgreSQL server from pr_env (NULL = not set); borrowed */
    int pg_port;          /* 0 = 5432 */
    const char *pg_admin; /* NULL = "postgres" */
} pr_grading;

typedef struct pr_kind {
    const char *name; /* matches "kind" in challenge.json */
    /* Validates and copies what it needs from the manifest (dir is the pack's path).
     * Messages name the file and field. */
    int (*parse)(void **state_out, const json_t *manifest, const char *dir, pr_error *err);
    /* Grades the built submission: appends exactly one result to g->tests per manifest test,
     * in manifest order. A negative return means infrastructure failure, never the
     * candidate's fault. */
    int (*grade)(pr_grading *g, const void *state, pr_error *err);
    void (*free)(void *state); /* NULL-safe */
} pr_kind;

/** The registry lookup; NULL for an unknown kind. */
const pr_kind *pr_kind_find(const char *name);
/** NULL-terminated list of every registered kind name (static). */
const char *const *pr_kind_names(void);

/** Appends a result object with exactly the report's test fields (name, group, visibility,
 * verdict, points, max_points, cpu_ms, wall_ms, max_rss_kb, message) to g->tests; res may be
 * NULL (zeros). message is candidate text: it is cleaned to UTF-8 and truncated at 2 KiB with
 * "message_truncated"/"message_bytes" added when cut. Returns the borrowed object so a kind
 * can add a "details" object (expected vs got, request, plan...), or NULL on OOM. */
json_t *pr_grading_add_test(pr_grading *g, const pr_test_meta *meta, const char *verdict,
                            double points, const sbx_result *res, const char *message,
                            size_t message_len);

/* Storage for a sandbox run of the candidate's program. */
typedef struct pr_run_plan {
    sbx_spec spec;
    sbx_bind binds[16];
    const char *argv[32];
    const char *envp[32];
    char env_storage[8][256];
} pr_run_plan;

/** Fills plan to run the submission: the runtime's run_argv with /box as working directory
 * (the work dir bound read-only there), the runtime's binds, env and profile, and limits (the
 * challenge's when NULL) with cpu_ms and wall_ms scaled by g->time_multiplier. The caller then
 * sets the spec's fds, slot and network, and may add env entries with pr_run_plan_setenv. */
void pr_run_plan_init(pr_run_plan *plan, const pr_grading *g, const sbx_limits *limits);
/** Adds "key=value" to the plan's environment; PR_ELIMIT when full. */
int pr_run_plan_setenv(pr_run_plan *plan, const char *key, const char *value);

/** Maps a sandbox verdict to a test verdict (OK -> AC unless the kind decides otherwise). */
const char *pr_test_verdict_from_sbx(sbx_verdict v);

#endif
