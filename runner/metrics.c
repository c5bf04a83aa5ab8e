/* Daemon counters and their Prometheus text exposition (GET /metrics). */
#include "daemon.h"

#include <string.h>

static const char *const verdict_names[10] = { "AC",  "WA", "TLE", "WLE", "MLE",
                                               "OLE", "RE", "SV",  "IE",  "SKIP" };
/* Upper bounds in seconds of the job duration histogram (the last bucket is +Inf). */
static const double dur_bounds[11] = { 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600 };

void pr_metrics_http(pr_metrics *m, int code)
{
    if (code >= 100 && code < 600)
        m->http_by_code[code]++;
}

static void count_verdict(pr_metrics *m, const char *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < 10; i++) {
        if (strcmp(v, verdict_names[i]) == 0) {
            m->verdicts[i]++;
            if (i == 8)
                m->sandbox_failures++;
            return;
        }
    }
}

void pr_metrics_job(pr_metrics *m, const json_t *report, double seconds)
{
    const char *status = json_string_value(json_object_get(report, "status"));
    if (status && strcmp(status, "graded") == 0)
        m->jobs_graded++;
    else
        m->jobs_error++;
    const json_t *tests = json_object_get(report, "tests");
    size_t i;
    const json_t *t;
    json_array_foreach (tests, i, t) {
        count_verdict(m, json_string_value(json_object_get(t, "verdict")));
    }
    const char *bv =
        json_string_value(json_object_get(json_object_get(report, "build"), "verdict"));
    if (bv && strcmp(bv, "IE") == 0)
        m->sandbox_failures++;
    size_t b = 0;
    while (b < 11 && seconds > dur_bounds[b])
        b++;
    m->dur_buckets[b]++;
    m->dur_sum += seconds;
    m->dur_count++;
}

int pr_metrics_render(const pr_metrics *m, size_t queued, size_t running, size_t connections,
                      pr_buf *b)
{
    int rc = 0;
    rc |=
        pr_buf_printf(b,
                      "# HELP proctor_queue_depth Jobs waiting for a worker.\n"
                      "# TYPE proctor_queue_depth gauge\nproctor_queue_depth %zu\n"
                      "# HELP proctor_jobs_running Jobs being graded.\n"
                      "# TYPE proctor_jobs_running gauge\nproctor_jobs_running %zu\n"
                      "# HELP proctor_http_connections Open HTTP connections.\n"
                      "# TYPE proctor_http_connections gauge\nproctor_http_connections %zu\n"
                      "# HELP proctor_spool_incoming_waiting Job files left in spool/incoming "
                      "while the queue is full (as of the last scan).\n"
                      "# TYPE proctor_spool_incoming_waiting gauge\n"
                      "proctor_spool_incoming_waiting %llu\n",
                      queued, running, connections, (unsigned long long)m->spool_incoming_waiting);
    rc |= pr_buf_printf(
        b,
        "# HELP proctor_jobs_total Jobs finished, by final report status.\n"
        "# TYPE proctor_jobs_total counter\n"
        "proctor_jobs_total{status=\"graded\"} %llu\n"
        "proctor_jobs_total{status=\"error\"} %llu\n"
        "# HELP proctor_job_retries_total Attempts retried after an "
        "infrastructure failure.\n"
        "# TYPE proctor_job_retries_total counter\nproctor_job_retries_total %llu\n"
        "# HELP proctor_jobs_deferred_total Job starts deferred for low disk.\n"
        "# TYPE proctor_jobs_deferred_total counter\n"
        "proctor_jobs_deferred_total %llu\n"
        "# HELP proctor_jobs_rejected_total Malformed spool job files.\n"
        "# TYPE proctor_jobs_rejected_total counter\n"
        "proctor_jobs_rejected_total %llu\n"
        "# HELP proctor_submissions_total Submissions accepted by the API.\n"
        "# TYPE proctor_submissions_total counter\n"
        "proctor_submissions_total %llu\n"
        "# HELP proctor_sandbox_failures_total Sandbox internal errors (IE).\n"
        "# TYPE proctor_sandbox_failures_total counter\n"
        "proctor_sandbox_failures_total %llu\n"
        "# HELP proctor_callbacks_total Callback deliveries by outcome.\n"
        "# TYPE proctor_callbacks_total counter\n"
        "proctor_callbacks_total{outcome=\"ok\"} %llu\n"
        "proctor_callbacks_total{outcome=\"failed\"} %llu\n",
        (unsigned long long)m->jobs_graded, (unsigned long long)m->jobs_error,
        (unsigned long long)m->jobs_retried, (unsigned long long)m->jobs_deferred,
        (unsigned long long)m->jobs_rejected, (unsigned long long)m->submissions_accepted,
        (unsigned long long)m->sandbox_failures, (unsigned long long)m->callbacks_ok,
        (unsigned long long)m->callbacks_failed);
    rc |= pr_buf_puts(b, "# HELP proctor_test_verdicts_total Test verdicts in final reports.\n"
                         "# TYPE proctor_test_verdicts_total counter\n");
    for (size_t i = 0; i < 10; i++)
        rc |= pr_buf_printf(b, "proctor_test_verdicts_total{verdict=\"%s\"} %llu\n",
                            verdict_names[i], (unsigned long long)m->verdicts[i]);
    rc |= pr_buf_puts(b, "# HELP proctor_job_duration_seconds Wall time of finished jobs.\n"
                         "# TYPE proctor_job_duration_seconds histogram\n");
    unsigned long long cum = 0;
    for (size_t i = 0; i < 11; i++) {
        cum += m->dur_buckets[i];
        rc |= pr_buf_printf(b, "proctor_job_duration_seconds_bucket{le=\"%g\"} %llu\n",
                            dur_bounds[i], cum);
    }
    cum += m->dur_buckets[11];
    rc |= pr_buf_printf(b,
                        "proctor_job_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
                        "proctor_job_duration_seconds_sum %.3f\n"
                        "proctor_job_duration_seconds_count %llu\n",
                        cum, m->dur_sum, (unsigned long long)m->dur_count);
    rc |= pr_buf_puts(b, "# HELP proctor_http_requests_total HTTP responses by status code.\n"
                         "# TYPE proctor_http_requests_total counter\n");
    for (int code = 100; code < 600; code++) {
        if (m->http_by_code[code])
            rc |= pr_buf_printf(b, "proctor_http_requests_total{code=\"%d\"} %llu\n", code,
                                (unsigned long long)m->http_by_code[code]);
    }
    return rc ? PR_ELIMIT : 0;
}
