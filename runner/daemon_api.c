/* The daemon's HTTP API (DESIGN.md "Daemon"): routes, bearer-token roles, per-token rate
 * limits, candidate isolation and redaction. Runs on the loop thread. */
#include "daemon.h"

#include <http_parser.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "proctor/boxwatch.h"
#include "proctor/common.h"
#include "proctor/redisq.h"
#include "proctor/report.h"

#define REPORT_READ_MAX (32u << 20)
#define JOB_READ_MAX    (64u * 1024u)

static const char auth_challenge[] = "WWW-Authenticate: Bearer realm=\"proctor\"\r\n";
static const char auth_invalid[] =
    "WWW-Authenticate: Bearer realm=\"proctor\", error=\"invalid_token\"\r\n";

/* Finds the token of an "Authorization: Bearer X" header; constant time per configured token. */
static pr_cfg_token *authenticate(pr_daemon *d, const char *hdr, bool *present)
{
    *present = hdr != NULL;
    if (!hdr)
        return NULL;
    if (strncasecmp(hdr, "Bearer ", 7) != 0)
        return NULL;
    const char *tok = hdr + 7;
    while (*tok == ' ')
        tok++;
    size_t n = strlen(tok);
    while (n > 0 && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
        n--;
    pr_cfg_token *found = NULL;
    for (size_t i = 0; i < d->cfg->ntokens; i++) {
        pr_cfg_token *t = &d->cfg->tokens[i];
        size_t tl = strlen(t->token);
        if (tl == n && CRYPTO_memcmp(t->token, tok, n) == 0)
            found = t;
    }
    return found;
}

/* Reads spool job metadata for an id from done/, running/ or incoming/. */
static int find_job(pr_daemon *d, const char *id, pr_spool_job *job, const char **state)
{
    static const char *const subs[] = { "done", "running", "incoming" };
    char p[4096];
    for (size_t i = 0; i < PR_ARRAY_LEN(subs); i++) {
        (void)pr_daemon_spool_path(d, p, sizeof(p), subs[i], id);
        pr_error err = { 0 };
        int rc = pr_spool_job_load(job, p, &err);
        if (rc == 0) {
            *state = subs[i];
            return 0;
        }
        if (rc != PR_ENOTFOUND)
            return rc;
    }
    return PR_ENOTFOUND;
}

static void handle_submit(pr_daemon *d, pr_http_conn *c, const pr_http_req *req, pr_cfg_token *tok)
{
    json_error_t jerr;
    pr_spool_job job;
    pr_error err = { 0 };
    memset(&job, 0, sizeof(job));
    if (!req->body || req->body_len == 0) {
        pr_http_respond_error(c, 400, NULL, "request body: expected a JSON object");
        return;
    }
    json_t *root = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        char msg[256];
        (void)snprintf(msg, sizeof(msg), "malformed JSON: line %d column %d: %s", jerr.line,
                       jerr.column, jerr.text);
        pr_http_respond_error(c, 400, NULL, msg);
        return;
    }
    static const char *const server_only[] = { "id", "queued_at", "attempts", "source", "errors" };
    for (size_t i = 0; i < PR_ARRAY_LEN(server_only); i++) {
        if (json_is_object(root) && json_object_get(root, server_only[i])) {
            char msg[128];
            (void)snprintf(msg, sizeof(msg), "%s: set by the server, not allowed here",
                           server_only[i]);
            pr_http_respond_error(c, 400, NULL, msg);
            json_decref(root);
            return;
        }
    }
    int rc = pr_spool_job_parse(&job, root, &err);
    json_decref(root);
    if (rc < 0) {
        pr_http_respond_error(c, 400, NULL, err.msg);
        return;
    }
    if (!json_object_get(d->challenges, job.challenge)) {
        char msg[160];
        (void)snprintf(msg, sizeof(msg), "challenge: unknown pack \"%s\"", job.challenge);
        pr_http_respond_error(c, 404, NULL, msg);
        pr_spool_job_clear(&job);
        return;
    }
    unsigned wait = pr_rate_take(tok, pr_now_ns());
    if (wait > 0) {
        char hdr[64];
        (void)snprintf(hdr, sizeof(hdr), "Retry-After: %u\r\n", wait);
        pr_http_respond_error(c, 429, hdr, "too many submissions for this token");
        pr_spool_job_clear(&job);
        return;
    }
    job.source = pr_strdup("api");
    rc = pr_daemon_submit(d, &job, &err);
    if (rc == PR_ELIMIT) {
        pr_http_respond_error(c, 503, "Retry-After: 5\r\n", err.msg);
    } else if (rc < 0) {
        pr_dlog("error", "submit.failed", json_pack("{s:s}", "message", err.msg));
        pr_http_respond_error(c, 500, NULL, "could not queue the job");
    } else {
        d->metrics.submissions_accepted++;
        char hdr[128];
        (void)snprintf(hdr, sizeof(hdr), "Location: /v1/submissions/%s\r\n", job.id);
        json_t *o = json_pack("{s:s,s:s}", "id", job.id, "status", "queued");
        if (o)
            pr_http_respond_json(c, 202, hdr, o);
        else
            pr_http_respond_error(c, 500, NULL, "out of memory");
        json_decref(o);
    }
    pr_spool_job_clear(&job);
}

static void respond_with_report(pr_http_conn *c, const char *id, const pr_spool_job *job,
                                const char *report, size_t len)
{
    json_t *head =
        json_pack("{s:s,s:s,s:s?,s:s,s:i}", "id", id, "status", "done", "candidate", job->candidate,
                  "challenge", job->challenge, "attempts", job->attempts);
    char *text = head ? json_dumps(head, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(head);
    pr_buf b = PR_BUF_INIT((size_t)REPORT_READ_MAX + 4096);
    size_t hl = text ? strlen(text) : 0;
    while (len > 0 && (report[len - 1] == '\n' || report[len - 1] == ' '))
        len--;
    if (!text || hl < 2 || pr_buf_put(&b, text, hl - 1) < 0 ||
        pr_buf_puts(&b, ",\"report\":") < 0 || pr_buf_put(&b, report, len) < 0 ||
        pr_buf_puts(&b, "}\n") < 0) {
        pr_http_respond_error(c, 500, NULL, "out of memory");
    } else {
        pr_http_respond(c, 200, "application/json", NULL, b.ptr, b.len);
    }
    pr_buf_free(&b);
    pr_free(text);
}

static void handle_get(pr_daemon *d, pr_http_conn *c, const char *id, bool html, pr_cfg_token *tok)
{
    pr_spool_job job;
    const char *state = NULL;
    memset(&job, 0, sizeof(job));
    int rc = find_job(d, id, &job, &state);
    if (rc == PR_ENOTFOUND && d->redisq && !html) {
        /* Not seen here: another daemon of the shared queue may have it. */
        pr_redisq_http_get(d->redisq, c, id, (int)tok->role, tok->name);
        return;
    }
    if (rc == PR_ENOTFOUND) {
        pr_http_respond_error(c, 404, NULL, "no such submission");
        return;
    }
    if (rc < 0) {
        pr_http_respond_error(c, 500, NULL, "could not read the job");
        return;
    }
    /* A candidate sees only its own submissions; others do not exist for it. */
    if (tok->role == PR_ROLE_CANDIDATE &&
        (!job.candidate || strcmp(job.candidate, tok->name) != 0)) {
        pr_spool_job_clear(&job);
        pr_http_respond_error(c, 404, NULL, "no such submission");
        return;
    }
    if (html) {
        pr_spool_job_clear(&job);
        pr_http_respond_error(c, 501, NULL,
                              "HTML reports are not built yet (they come with the reviewer-facing "
                              "reports); GET /v1/submissions/{id} returns the JSON report");
        return;
    }
    char rp[4096];
    (void)pr_daemon_spool_path(d, rp, sizeof(rp), "reports", id);
    char *text = NULL;
    size_t len = 0;
    pr_error err = { 0 };
    json_t *resp = NULL;
    rc = pr_spool_read_file(&text, &len, rp, REPORT_READ_MAX, &err);
    if (rc == 0 && tok->role != PR_ROLE_CANDIDATE) {
        /* The full report is the stored file itself (written by us, atomically): it is spliced
         * into the response without being parsed again. */
        respond_with_report(c, id, &job, text, len);
        pr_free(text);
        pr_spool_job_clear(&job);
        return;
    }
    if (rc == 0) {
        json_error_t jerr;
        json_t *report = json_loadb(text, len, 0, &jerr);
        pr_free(text);
        if (!report) {
            pr_http_respond_error(c, 500, NULL, "the stored report is unreadable");
            pr_spool_job_clear(&job);
            return;
        }
        if (tok->role == PR_ROLE_CANDIDATE) {
            json_t *red = pr_daemon_redact(report);
            json_decref(report);
            report = red;
        }
        resp = json_pack("{s:s,s:s,s:s?,s:s,s:i,s:o?}", "id", id, "status", "done", "candidate",
                         job.candidate, "challenge", job.challenge, "attempts", job.attempts,
                         "report", report);
    } else if (rc == PR_ENOTFOUND) {
        const char *stage = pr_daemon_job_stage(d, id);
        resp = json_pack("{s:s,s:s,s:s?,s:s,s:s,s:i,s:s?}", "id", id, "status",
                         stage ? "running" : "queued", "candidate", job.candidate, "challenge",
                         job.challenge, "queued_at", job.queued_at, "attempts", job.attempts,
                         "stage", stage);
    } else {
        pr_http_respond_error(c, 500, NULL, "could not read the report");
        pr_spool_job_clear(&job);
        return;
    }
    (void)state;
    pr_spool_job_clear(&job);
    if (!resp) {
        pr_http_respond_error(c, 500, NULL, "out of memory");
        return;
    }
    pr_http_respond_json(c, 200, NULL, resp);
    json_decref(resp);
}

static void handle_challenges(pr_daemon *d, pr_http_conn *c)
{
    json_t *arr = json_array();
    const char *key;
    json_t *v;
    json_object_foreach (d->challenges, key, v) {
        (void)json_array_append(arr, v);
    }
    json_t *o = json_pack("{s:o}", "challenges", arr);
    if (!o) {
        pr_http_respond_error(c, 500, NULL, "out of memory");
        return;
    }
    pr_http_respond_json(c, 200, NULL, o);
    json_decref(o);
}

static void handle_metrics(pr_daemon *d, pr_http_conn *c)
{
    pr_buf b = PR_BUF_INIT(1u << 20);
    if (pr_metrics_render(&d->metrics, d->q_len, d->nrunning, pr_httpd_connections(d->httpd), &b) <
            0 ||
        !b.ptr || (d->redisq && pr_redisq_metrics(d->redisq, &b) < 0) ||
        pr_boxwatch_metrics(d->boxwatch, &b) < 0) {
        pr_buf_free(&b);
        pr_http_respond_error(c, 500, NULL, "metrics too large");
        return;
    }
    pr_http_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, b.ptr, b.len);
    pr_buf_free(&b);
}

static bool method_is(const pr_http_req *req, int m, pr_http_conn *c, const char *allow)
{
    if (req->method == m || (m == HTTP_GET && req->method == HTTP_HEAD))
        return true;
    char hdr[64];
    (void)snprintf(hdr, sizeof(hdr), "Allow: %s\r\n", allow);
    pr_http_respond_error(c, 405, hdr, "method not allowed");
    return false;
}

void pr_daemon_http(pr_http_conn *c, const pr_http_req *req, void *payload)
{
    pr_daemon *d = payload;
    const char *path = req->path;
    static const char sub_prefix[] = "/v1/submissions/";

    if (strcmp(path, "/healthz") == 0) {
        if (!method_is(req, HTTP_GET, c, "GET"))
            return;
        char body[200];
        int n = snprintf(body, sizeof(body),
                         "{\"status\":\"ok\",\"queued\":%zu,\"running\":%zu,\"workers\":%d,"
                         "\"incoming_waiting\":%llu}\n",
                         d->q_len, d->nrunning, d->cfg->workers,
                         (unsigned long long)d->metrics.spool_incoming_waiting);
        pr_http_respond(c, 200, "application/json", NULL, body, (size_t)n);
        return;
    }
    if (strcmp(path, "/metrics") == 0) {
        if (method_is(req, HTTP_GET, c, "GET"))
            handle_metrics(d, c);
        return;
    }
    bool is_sub = strcmp(path, "/v1/submissions") == 0;
    bool is_one = strncmp(path, sub_prefix, sizeof(sub_prefix) - 1) == 0;
    bool is_ch = strcmp(path, "/v1/challenges") == 0;
    if (!is_sub && !is_one && !is_ch) {
        pr_http_respond_error(c, 404, NULL, "no such endpoint");
        return;
    }
    bool present = false;
    pr_cfg_token *tok = authenticate(d, req->authorization, &present);
    if (!tok) {
        pr_http_respond_error(c, 401, present ? auth_invalid : auth_challenge,
                              present ? "invalid bearer token" : "missing bearer token");
        return;
    }
    if (is_ch) {
        if (method_is(req, HTTP_GET, c, "GET"))
            handle_challenges(d, c);
        return;
    }
    if (is_sub) {
        if (!method_is(req, HTTP_POST, c, "POST"))
            return;
        if (tok->role != PR_ROLE_SUBMITTER) {
            pr_http_respond_error(c, 403, NULL, "this token may not submit (role submitter)");
            return;
        }
        handle_submit(d, c, req, tok);
        return;
    }
    /* /v1/submissions/{id} or /v1/submissions/{id}/report.html */
    char id[80];
    const char *rest = path + sizeof(sub_prefix) - 1;
    size_t idlen = strcspn(rest, "/");
    bool html = false;
    if (rest[idlen] == '/') {
        if (strcmp(rest + idlen, "/report.html") != 0) {
            pr_http_respond_error(c, 404, NULL, "no such endpoint");
            return;
        }
        html = true;
    }
    if (idlen == 0 || idlen >= sizeof(id)) {
        pr_http_respond_error(c, 404, NULL, "no such submission");
        return;
    }
    memcpy(id, rest, idlen);
    id[idlen] = '\0';
    if (!pr_daemon_id_valid(id)) {
        pr_http_respond_error(c, 404, NULL, "no such submission");
        return;
    }
    if (!method_is(req, HTTP_GET, c, "GET"))
        return;
    handle_get(d, c, id, html, tok);
}
