#ifndef PROCTOR_REPORT_H
#define PROCTOR_REPORT_H
/* The report (schema proctor.report/1) and the sandbox result object, as JSON. */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "proctor/error.h"
#include "proctor/sandbox.h"

#define PR_REPORT_SCHEMA "proctor.report/1"

/** The sandbox result object of DESIGN.md ("verdict", "exit_code", "signal", "cpu_ms", ...). */
json_t *pr_sbx_result_json(const sbx_result *r);
/** The "isolation" object. */
json_t *pr_isolation_json(const sbx_isolation *iso);

/** Sets obj[key] to candidate text cleaned to valid UTF-8 and cut at max bytes; when cut, also
 * sets key_truncated: true and key_bytes: len (the full byte count). Returns 0 or PR_ENOMEM. */
int pr_report_set_text(json_t *obj, const char *key, const char *data, size_t len, size_t max);

/** Writes the report atomically: temporary file in the same directory, fsync, rename, fsync of
 * the directory. Pretty-printed with sorted-stable key order. */
int pr_report_write(const char *path, const json_t *report, pr_error *err);

/** Checks a report against proctor.report/1: every required key with the right type, verdicts
 * from the fixed set. Used by tests and by `proctor report`. */
int pr_report_validate(const json_t *report, pr_error *err);

/** A complete report with every section present and empty, status "error" and error null, for
 * the pipeline to fill in stage by stage (or to carry an error at once). repo must already be
 * free of credentials; repo, ref, candidate and queued_at are caller text, cleaned to UTF-8 and
 * capped. queued_at NULL or "" = now (also started_at). NULL on OOM. Any thread. */
json_t *pr_report_skeleton(const char *id, const char *queued_at, const char *repo, const char *ref,
                           const char *candidate);

/** Sets report.score from report.tests: earned = sum of points (each capped at its max_points),
 * max = sum of max_points, percent = earned / max * 100 rounded to one decimal (0 when max is 0).
 * 0 or PR_ENOMEM. Any thread. */
int pr_report_score(json_t *report);

/** A copy for the candidate role: hidden tests keep name, group, visibility, verdict, points
 * and max_points; message, details and any input or expected output are removed. New ref. */
json_t *pr_report_redact(const json_t *report);

/** The first key of obj that is not in allowed (NULL-terminated), or NULL when every key is
 * known (or obj is not an object). For "unknown key" messages that name the field. */
const char *pr_json_unknown_key(const json_t *obj, const char *const *allowed);

#endif
