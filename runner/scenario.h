#ifndef PROCTOR_RUNNER_SCENARIO_H
#define PROCTOR_RUNNER_SCENARIO_H
/* Declarative HTTP scenarios of the http kind (format documented at the top of kinds/http.c):
 * JSON Pointer, {{var}} templates, request rendering, response checks, captures, loops and
 * parallel groups. Private to the runner. */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "proctor/buf.h"
#include "proctor/error.h"

#define PR_SCN_MAX_STEPS    200
#define PR_SCN_MAX_PARALLEL 32
#define PR_SCN_MAX_LOOP     1000

/** Evaluates an RFC 6901 JSON Pointer on root ("" is the root). A "*" token maps over every
 * element of an array (or value of an object) and yields an array of the matches. Returns a new
 * reference, or NULL when the path does not exist. */
json_t *pr_json_pointer(const json_t *root, const char *ptr);
/** True when ptr is a syntactically valid pointer ("" or starting with '/', valid ~ escapes). */
bool pr_json_pointer_valid(const char *ptr);

/** Expands {{name}}, {{url:name}} (percent-encoded), {{json:name}} (compact JSON) and
 * {{pick:name}} (a random element of an array variable, using *rng) in s, appending to out.
 * Strings are inserted raw, numbers in decimal, other values as compact JSON. An unknown
 * variable is PR_EINVAL with a message naming it. rng may be NULL (pick takes the first). */
int pr_tmpl_expand(pr_buf *out, const char *s, const json_t *vars, uint64_t *rng, pr_error *err);
/** Deep copy of v with templates expanded in every string; a string that is exactly
 * "{{name}}" becomes a copy of the variable itself (keeping its JSON type). New reference in
 * *out. */
int pr_tmpl_expand_json(json_t **out, const json_t *v, const json_t *vars, uint64_t *rng,
                        pr_error *err);

/** Validates one scenario document (already parsed); messages read "<file>: <field>: ...". */
int pr_scenario_validate(const json_t *scn, const char *file, pr_error *err);

/** Validates one request template (method, path, headers, jwt, json/body) at field. */
int pr_scenario_validate_request(const json_t *req, const char *file, const char *field,
                                 pr_error *err);

/* Everything a scenario run needs. */
typedef struct pr_scn_ctx {
    uv_loop_t *loop;
    const struct sockaddr *addr; /* the server, 127.0.0.1:port inside its netns */
    int port;
    json_t *vars;           /* object of variables; captures are added to it (borrowed) */
    const char *jwt_secret; /* the secret given to the server */
    uint64_t timeout_ms;    /* per request */
    uint64_t rng;           /* seeded */
} pr_scn_ctx;

/** Renders a request template into raw HTTP/1.1 bytes (and a curl command line, and a JSON
 * description for the report, each optional). */
int pr_scenario_render(pr_buf *raw, pr_buf *curl, json_t **desc, pr_scn_ctx *ctx, const json_t *req,
                       const char *path_override, pr_error *err);

/** Runs a scenario. Returns < 0 only on infrastructure failure. *passed tells the outcome; on a
 * failure, msg gets a one-line reason and *details (new reference, may stay NULL) the failed
 * step's request, expected, actual and curl command. */
int pr_scenario_run(pr_scn_ctx *ctx, const json_t *scn, bool *passed, pr_buf *msg, json_t **details,
                    pr_error *err);

#endif
