/* Fuzzes the report path: arbitrary candidate bytes as test messages and build log go through
 * pr_grading_add_test / pr_report_set_text, the report is dumped, parsed back (which fails on
 * invalid UTF-8), compared and validated. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proctor/common.h"
#include "proctor/kind.h"
#include "proctor/report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *skeleton(void)
{
    return json_pack(
        "{s:s, s:{s:s, s:n, s:n, s:n}, s:{s:s, s:n, s:n, s:n, s:n, s:n}, s:{s:n, s:n, s:n, s:n},"
        " s:s, s:n, s:{s:i, s:i, s:f}, s:{s:s, s:i, s:i, s:s}, s:[], s:{},"
        " s:{s:i, s:i, s:i, s:i}, s:{s:s, s:s, s:{}}}",
        "schema", PR_REPORT_SCHEMA, "job", "id", "fuzz", "queued_at", "started_at", "finished_at",
        "submission", "repo", "x", "ref", "commit", "author", "committed_at", "runtime",
        "challenge", "id", "version", "kind", "digest", "status", "graded", "error", "score",
        "earned", 0, "max", 0, "percent", 0.0, "build", "verdict", "OK", "cpu_ms", 0, "wall_ms", 0,
        "log", "", "tests", "metrics", "timings", "fetch_ms", 0, "build_ms", 0, "tests_ms", 0,
        "total_ms", 0, "environment", "proctor", "0", "kernel", "k", "isolation");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *r = skeleton();
    if (!r)
        abort();
    pr_grading g;
    memset(&g, 0, sizeof(g));
    g.tests = json_object_get(r, "tests");
    size_t half = size / 2;
    pr_test_meta m;
    memset(&m, 0, sizeof(m));
    m.name = (char *)"t";
    m.group = (char *)"correctness";
    m.points = 3;
    double pts = size ? (double)(data[0] % 5) : 0;
    if (!pr_grading_add_test(&g, &m, "WA", pts, NULL, (const char *)data, half))
        abort();
    if (pr_report_set_text(json_object_get(r, "build"), "log", (const char *)data + half,
                           size - half, 512) != 0)
        abort();
    if (pr_report_score(r) != 0)
        abort();
    pr_error err = { 0 };
    if (pr_report_validate(r, &err) != 0)
        abort();
    char *text = json_dumps(r, JSON_COMPACT);
    if (!text)
        abort();
    json_error_t jerr;
    json_t *back = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!back || !json_equal(back, r))
        abort();
    json_t *red = pr_report_redact(back);
    if (!red || pr_report_validate(red, &err) != 0)
        abort();
    json_decref(red);
    json_decref(back);
    free(text);
    json_decref(r);
    return 0;
}
