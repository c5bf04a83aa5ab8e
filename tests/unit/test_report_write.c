/* Reports: candidate text cleaning and truncation, atomic writing, schema validation and the
 * candidate-facing redaction. */
#include "proctor/report.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proctor/common.h"
#include "t.h"

/* A complete, valid report like pr_job_run makes. */
static json_t *sample_report(void)
{
    json_error_t jerr;
    json_t *r = json_loads(
        "{\"schema\": \"proctor.report/1\","
        " \"job\": {\"id\": \"abc\", \"queued_at\": \"2026-11-25T12:00:00Z\","
        "  \"started_at\": \"2026-11-25T12:00:00Z\", \"finished_at\": \"2026-11-25T12:00:05Z\"},"
        " \"submission\": {\"repo\": \"file:///r\", \"ref\": \"refs/heads/main\","
        "  \"commit\": \"0123456789012345678901234567890123456789\", \"author\": \"A <a@b>\","
        "  \"committed_at\": \"2026-11-25T11:00:00Z\", \"runtime\": \"python\"},"
        " \"challenge\": {\"id\": \"echo\", \"version\": \"1\", \"kind\": \"stdio\","
        "  \"digest\": \"00\"},"
        " \"status\": \"graded\", \"error\": null,"
        " \"score\": {\"earned\": 5, \"max\": 10, \"percent\": 50.0},"
        " \"build\": {\"verdict\": \"OK\", \"cpu_ms\": 1, \"wall_ms\": 2, \"log\": \"\"},"
        " \"tests\": [{\"name\": \"a\", \"group\": \"correctness\", \"visibility\": \"visible\","
        "   \"verdict\": \"AC\", \"points\": 5, \"max_points\": 5, \"cpu_ms\": 1, \"wall_ms\": 1,"
        "   \"max_rss_kb\": 100, \"message\": \"\"},"
        "  {\"name\": \"b\", \"group\": \"correctness\", \"visibility\": \"hidden\","
        "   \"verdict\": \"WA\", \"points\": 0, \"max_points\": 5, \"cpu_ms\": 1, \"wall_ms\": 1,"
        "   \"max_rss_kb\": 100, \"message\": \"expected 42 got 41\","
        "   \"details\": {\"input\": \"secret input\", \"expected\": \"42\"}}],"
        " \"metrics\": {}, \"timings\": {\"fetch_ms\": 1, \"build_ms\": 1, \"tests_ms\": 1,"
        "  \"total_ms\": 3},"
        " \"environment\": {\"proctor\": \"0.1.0\", \"kernel\": \"Linux\", \"isolation\": {}}}",
        JSON_REJECT_DUPLICATES, &jerr);
    T_NOT_NULL(r);
    return r;
}

static void test_set_text(void)
{
    json_t *o = json_object();
    /* Invalid UTF-8 and NUL become U+FFFD; the result is valid UTF-8 jansson accepts. */
    static const char bad[] = "ok \xff\xfe x\0y \xc3\x28";
    T_EQ_INT(pr_report_set_text(o, "message", bad, sizeof(bad) - 1, 2048), 0);
    const char *s = json_string_value(json_object_get(o, "message"));
    T_NOT_NULL(s);
    T_CONTAINS(s, "ok \xEF\xBF\xBD");
    T_CONTAINS(s, "x\xEF\xBF\xBDy");
    T_NULL(json_object_get(o, "message_truncated"));

    /* A long text is cut at the cap, with the flag and the full byte count. */
    size_t n = 10000;
    char *big = malloc(n);
    T_NOT_NULL(big);
    memset(big, 'z', n);
    big[2047] = '\xe2'; /* a multibyte character straddling the cut must not be split */
    big[2048] = '\x82';
    big[2049] = '\xac';
    T_EQ_INT(pr_report_set_text(o, "message", big, n, 2048), 0);
    s = json_string_value(json_object_get(o, "message"));
    T_EQ_INT(strlen(s), 2047);
    T_TRUE(json_is_true(json_object_get(o, "message_truncated")));
    T_EQ_INT(json_integer_value(json_object_get(o, "message_bytes")), 10000);
    /* Setting a short text again clears the flags. */
    T_EQ_INT(pr_report_set_text(o, "message", "short", 5, 2048), 0);
    T_NULL(json_object_get(o, "message_truncated"));
    T_NULL(json_object_get(o, "message_bytes"));
    free(big);
    json_decref(o);
}

static void test_write_atomic(void)
{
    char dir[] = "/tmp/pr-test-report-XXXXXX";
    T_NOT_NULL(mkdtemp(dir));
    char path[128];
    (void)snprintf(path, sizeof(path), "%s/r.json", dir);
    json_t *r = sample_report();
    pr_error err = { 0 };
    T_EQ_INT(pr_report_write(path, r, &err), 0);
    /* Overwrite: the old file is replaced in one rename, no temporary is left behind. */
    T_EQ_INT(json_object_set_new(r, "status", json_string("graded")), 0);
    T_EQ_INT(pr_report_write(path, r, &err), 0);
    DIR *d = opendir(dir);
    T_NOT_NULL(d);
    int files = 0;
    const struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] != '.') {
            T_EQ_STR(de->d_name, "r.json");
            files++;
        }
    }
    (void)closedir(d);
    T_EQ_INT(files, 1);
    json_error_t jerr;
    json_t *back = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    T_NOT_NULL(back);
    T_TRUE(json_equal(back, r));
    T_EQ_INT(pr_report_validate(back, &err), 0);
    json_decref(back);

    /* A directory that does not exist: an error naming the path, nothing written. */
    T_TRUE(pr_report_write("/nonexistent-dir/r.json", r, &err) < 0);
    T_CONTAINS(err.msg, "/nonexistent-dir/r.json");
    json_decref(r);
    T_EQ_INT(pr_rm_rf(dir), 0);
}

static void expect_invalid(json_t *r, const char *want)
{
    pr_error err = { 0 };
    T_TRUE(pr_report_validate(r, &err) < 0);
    T_CONTAINS(err.msg, want);
    json_decref(r);
}

static void test_validate(void)
{
    pr_error err = { 0 };
    json_t *r = sample_report();
    T_EQ_INT(pr_report_validate(r, &err), 0);
    json_decref(r);

    r = sample_report();
    (void)json_object_set_new(r, "schema", json_string("proctor.report/2"));
    expect_invalid(r, "schema");
    r = sample_report();
    (void)json_object_set_new(json_array_get(json_object_get(r, "tests"), 1), "verdict",
                              json_string("PASS"));
    expect_invalid(r, "tests[1].verdict");
    r = sample_report();
    (void)json_object_set_new(json_array_get(json_object_get(r, "tests"), 0), "points",
                              json_integer(6));
    expect_invalid(r, "tests[0].points");
    r = sample_report();
    (void)json_object_del(json_object_get(r, "timings"), "total_ms");
    expect_invalid(r, "timings.total_ms");
    r = sample_report();
    (void)json_object_set_new(r, "status", json_string("error"));
    expect_invalid(r, "error");
    r = sample_report();
    (void)json_object_set_new(r, "status", json_string("error"));
    (void)json_object_set_new(r, "error",
                              json_pack("{s:s, s:s}", "stage", "fetch", "message", "x"));
    T_EQ_INT(pr_report_validate(r, &err), 0);
    json_decref(r);
    r = sample_report();
    (void)json_object_set_new(json_object_get(r, "submission"), "commit", json_string("abc"));
    expect_invalid(r, "submission.commit");
    r = sample_report();
    (void)json_object_set_new(json_object_get(r, "build"), "verdict", json_string("AC"));
    expect_invalid(r, "build.verdict");
    expect_invalid(json_array(), "expected an object");
}

static void test_redact(void)
{
    json_t *r = sample_report();
    json_t *red = pr_report_redact(r);
    T_NOT_NULL(red);
    const json_t *hidden = json_array_get(json_object_get(red, "tests"), 1);
    T_NULL(json_object_get(hidden, "message"));
    T_NULL(json_object_get(hidden, "details"));
    T_NULL(json_object_get(hidden, "cpu_ms"));
    T_EQ_STR(json_string_value(json_object_get(hidden, "verdict")), "WA");
    T_EQ_INT(json_integer_value(json_object_get(hidden, "max_points")), 5);
    const json_t *visible = json_array_get(json_object_get(red, "tests"), 0);
    T_NOT_NULL(json_object_get(visible, "message"));
    /* The original is untouched, and the redacted copy still validates. */
    T_NOT_NULL(json_object_get(json_array_get(json_object_get(r, "tests"), 1), "details"));
    pr_error err = { 0 };
    T_EQ_INT(pr_report_validate(red, &err), 0);
    char *text = json_dumps(red, 0);
    T_TRUE(strstr(text, "secret input") == NULL);
    free(text);
    json_decref(red);
    json_decref(r);
}

/* Allocation failures while writing, validating and redacting: clean errors, no leaks. */
static void test_alloc_fail(void)
{
    char dir[] = "/tmp/pr-test-report-XXXXXX";
    T_NOT_NULL(mkdtemp(dir));
    char path[128];
    (void)snprintf(path, sizeof(path), "%s/r.json", dir);
    json_t *r = sample_report();
    int n;
    for (n = 0; n < 10000; n++) {
        pr_error err = { 0 };
        pr_alloc_fail_after(n);
        int rc = pr_report_write(path, r, &err);
        json_t *red = pr_report_redact(r);
        json_t *t = json_object();
        int st = t ? pr_report_set_text(t, "m", "abc\xff", 4, 2) : PR_ENOMEM;
        pr_alloc_fail_after(-1);
        json_decref(t);
        json_decref(red);
        if (rc == 0 && red && st == 0)
            break;
    }
    T_TRUE(n > 0 && n < 10000);
    json_decref(r);
    T_EQ_INT(pr_rm_rf(dir), 0);
}

int main(void)
{
    json_set_alloc_funcs(pr_malloc, pr_free);
    test_set_text();
    test_write_atomic();
    test_validate();
    test_redact();
    test_alloc_fail();
    return 0;
}
