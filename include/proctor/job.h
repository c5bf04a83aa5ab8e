#ifndef PROCTOR_JOB_H
#define PROCTOR_JOB_H
/* The pipeline of one job: fetch -> build -> tests (kind grader) -> score -> report. */

#include <jansson.h>
#include <stdbool.h>

#include "proctor/error.h"
#include "proctor/git.h"
#include "proctor/runtime.h"

typedef struct pr_job_spec {
    const char *id;            /* NULL: a new random id */
    const char *repo;          /* local path, file://, https:// or ssh:// */
    const char *ref;           /* NULL: the remote HEAD */
    const char *challenge_dir; /* pack directory */
    const char *runtime;       /* NULL: detect from the submission */
    const char *candidate;     /* free text, may be NULL */
    const char *queued_at;     /* RFC 3339, NULL = now */
} pr_job_spec;

/* Process-wide settings shared by jobs; read-only while jobs run. */
typedef struct pr_env {
    const pr_runtimes *runtimes; /* borrowed */
    const char *cache_dir;       /* git mirrors; NULL = $XDG_CACHE_HOME/proctor or /var/cache */
    const char *work_root;       /* per-job directories, removed when the job ends */
    pr_git_limits git_limits;
    int parallel;   /* sandboxes one job may run at once; 0 = number of cores */
    int slot_base;  /* first sandbox slot of this job (unique uids per concurrent box) */
    bool keep_work; /* keep the job directory (debugging) */
    /* Progress on long work: stage is "fetch", "build", "test"; may be NULL. Calls never
     * overlap, but "test" calls may come from the kind's worker threads. A test that starts is
     * reported as "3/14 name". */
    void (*progress)(void *payload, const char *stage, const char *detail);
    void *payload;
    /* PostgreSQL server for the sql kind (the daemon's "postgres" config). pg_host NULL: not
     * set, then $PROCTOR_PG_HOST/PORT/ADMIN or the pack's manifest decide. */
    const char *pg_host;  /* socket directory or host name; borrowed */
    int pg_port;          /* 0 = 5432 */
    const char *pg_admin; /* role that may create databases and roles; NULL = "postgres" */
} pr_env;

/** Runs a job to its report. Always produces a report in *report_out when it returns 0: a
 * failure of any stage is a report with status "error", "error": {"stage", "message"}.
 * Returns < 0 only when not even an error report could be made (out of memory). Blocking;
 * any thread. */
int pr_job_run(json_t **report_out, const pr_job_spec *job, const pr_env *env, pr_error *err);

/** A new random job id (26 chars of [0-9a-z]) into out (>= 32 bytes). */
void pr_job_new_id(char *out, size_t outsz);
/** True when id is safe as a file name and URL segment: 1..64 of [A-Za-z0-9_-]. */
bool pr_job_id_valid(const char *id);

#endif
