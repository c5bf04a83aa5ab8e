#ifndef PROCTOR_CHALLENGE_H
#define PROCTOR_CHALLENGE_H
/* Challenge packs: challenges/<id>/challenge.json, validated with messages that name the file,
 * the field and what was expected. */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "proctor/error.h"
#include "proctor/sandbox.h"

struct pr_kind;

typedef struct pr_test_meta {
    char *name;    /* unique within the challenge */
    char *group;   /* "correctness", "performance", "robustness" or another word */
    bool hidden;   /* visibility: "hidden" */
    double points; /* max points of this test */
} pr_test_meta;

typedef struct pr_challenge {
    char *dir; /* absolute path of the pack */
    char *id, *version, *title;
    char *kind_name;     /* "stdio", "http", "sql" */
    char **runtimes;     /* NULL-terminated allowed runtime names */
    sbx_limits limits;   /* defaults for every test (manifest "limits") */
    json_t *multipliers; /* owned; {"python": 3.0, ...} time multipliers per runtime, or NULL */
    pr_test_meta *tests; /* owned; the manifest's "tests", in order */
    size_t ntests;
    char digest[65];            /* sha256 hex over the pack's files (sorted paths and contents) */
    json_t *manifest;           /* owned; the parsed challenge.json */
    const struct pr_kind *kind; /* from the registry */
    void *kind_state;           /* owned via kind->free */
} pr_challenge;

/** Loads and validates dir/challenge.json (at most 1 MiB, 64 levels deep, duplicate keys
 * rejected), computes the digest over every file of the pack but solutions/ (symlinks and
 * special files refused), and lets the kind parse its part. Errors (PR_EINVAL, PR_EJSON,
 * PR_ENOTFOUND, PR_ELIMIT, PR_EUNSAFE) read "<file>: <field>: expected <what>, got <what>".
 * The caller owns *out (pr_challenge_free). Any thread. */
int pr_challenge_load(pr_challenge **out, const char *dir, pr_error *err);
void pr_challenge_free(pr_challenge *c);

/** Validates the common fields of one entry of manifest "tests" (name, group, points,
 * visibility). file and index are used only for messages. out's strings are owned by the
 * caller (pr_test_meta_clear). */
int pr_test_meta_parse(pr_test_meta *out, const json_t *test, const char *file, size_t index,
                       pr_error *err);
void pr_test_meta_clear(pr_test_meta *m);

/** Parses a "limits" object (cpu_ms, wall_ms, mem_mb, procs, fsize_kb, nofile, tmp_mb) over
 * the values already in out. Unknown keys are errors naming the field. */
int pr_limits_parse(sbx_limits *out, const json_t *obj, const char *file, const char *field,
                    pr_error *err);

/** True when rel is a path that stays inside a pack: relative, 1..max bytes, printable ASCII
 * without '\\', and no empty, "." or ".." segment. */
bool pr_pack_path_ok(const char *rel, size_t max);
/** Opens rel beneath rootfd without following any symlink on the way (openat2 with
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), falling back to an O_NOFOLLOW open of the last
 * component on kernels without openat2 (callers check the path with pr_pack_path_ok first).
 * flags are added to O_RDONLY | O_NOFOLLOW | O_CLOEXEC; "" opens rootfd's directory itself.
 * Returns the fd or -1 with errno set (ELOOP for a symlink, EXDEV for an escape). */
int pr_pack_open_beneath(int rootfd, const char *rel, int flags);

/** The time multiplier for a runtime: manifest "time_multipliers"[name], else the runtime's
 * default, else 1.0. */
double pr_challenge_multiplier(const pr_challenge *c, const char *runtime, double rt_default);

#endif
