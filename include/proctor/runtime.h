#ifndef PROCTOR_RUNTIME_H
#define PROCTOR_RUNTIME_H
/* Runtimes are configuration: runner/runtimes.json names, for each language, how to detect a
 * submission, how to build it and how to run it in the sandbox. */

#include <stdbool.h>
#include <stddef.h>

#include "proctor/error.h"

typedef struct pr_runtime {
    char *name;          /* "c", "python", "node", "go" */
    char **detect;       /* NULL-terminated file names whose presence selects this runtime */
    char **build_argv;   /* NULL-terminated, run in /box with the work dir writable; NULL = none */
    char **run_argv;     /* NULL-terminated, run in /box (work dir read-only) */
    char *profile;       /* seccomp profile for run_argv */
    char *build_profile; /* seccomp profile for build_argv */
    char **binds;        /* NULL-terminated extra read-only host paths the runtime needs */
    char **env;          /* NULL-terminated "K=V" added to the box environment */
    double time_multiplier; /* default per-runtime multiplier (a challenge may override) */
    unsigned long build_cpu_ms, build_wall_ms, build_mem_mb; /* build limits */
    bool available; /* the first word of run_argv exists on this host */
} pr_runtime;

typedef struct pr_runtimes {
    pr_runtime *items; /* owned */
    size_t count;
} pr_runtimes;

/** Loads the runtimes file (NULL = the built-in default path: $PROCTOR_RUNTIMES, else
 * <install or source dir>/runner/runtimes.json). Errors name the file and field. */
int pr_runtimes_load(pr_runtimes **out, const char *path, pr_error *err);
void pr_runtimes_free(pr_runtimes *rts);
/** Borrowed pointer valid while rts lives; NULL when unknown. */
const pr_runtime *pr_runtimes_find(const pr_runtimes *rts, const char *name);
/** Picks the runtime of a checked-out submission: proctor.json {"runtime": ...} if present (read
 * without following symlinks), else the first runtime whose detect file exists. */
int pr_runtimes_detect(const pr_runtime **out, const pr_runtimes *rts, const char *workdir,
                       pr_error *err);

#endif
