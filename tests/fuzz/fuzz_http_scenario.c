/* Fuzzes the http kind's scenario validator and template and JSON Pointer evaluation: arbitrary
 * bytes as a scenario file. Every input ends valid or with a message naming the file, never a
 * crash, leak or hang; every pointer and template in a valid scenario evaluates cleanly. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proctor/common.h"
#include "../../runner/scenario.h" /* private header of the runner */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Walks every string of v: each is tried as a pointer into the document and as a template. */
static void walk(const json_t *doc, const json_t *v, const json_t *vars, int depth)
{
    if (depth > 32)
        return;
    if (json_is_string(v)) {
        json_t *got = pr_json_pointer(doc, json_string_value(v));
        json_decref(got);
        pr_buf b = PR_BUF_INIT(1 << 16);
        uint64_t rng = 1;
        (void)pr_tmpl_expand(&b, json_string_value(v), vars, &rng, NULL);
        pr_buf_free(&b);
        json_t *x = NULL;
        (void)pr_tmpl_expand_json(&x, v, vars, &rng, NULL);
        json_decref(x);
        return;
    }
    size_t i;
    json_t *el;
    const char *key;
    if (json_is_array(v)) {
        json_array_foreach (v, i, el)
            walk(doc, el, vars, depth + 1);
    } else if (json_is_object(v)) {
        json_object_foreach ((json_t *)v, key, el)
            walk(doc, el, vars, depth + 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *scn = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (!scn)
        return 0;
    pr_error err = { 0 };
    int rc = pr_scenario_validate(scn, "fuzz.json", &err);
    if (rc < 0 && strncmp(err.msg, "fuzz.json: ", 11) != 0)
        abort(); /* every validation message names the file */
    json_t *vars =
        json_pack("{s:s, s:i, s:[s, s], s:n}", "sid", "S1", "n", 7, "ids", "a", "b", "nul");
    walk(scn, scn, vars, 0);
    json_decref(vars);
    json_decref(scn);
    return 0;
}
