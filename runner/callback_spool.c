/* Callbacks that survive a crash: each pending callback has a record in spool/callbacks/<id>.json
 * ({id, event, url, attempts}), written atomically before the job moves to done/ and so before
 * the first attempt; runner/callback.c keeps the attempt count in it and removes it once the
 * callback is delivered or given up. At start every record left is sent again (the body is
 * rebuilt from the stored report), so a callback is delivered at least once: receivers
 * deduplicate on the id and event carried in the body. Loop thread only. */
#include "daemon.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proctor/common.h"

#define REPORT_READ_MAX (32u << 20)

static const char cb_event[] = "job.finished";

static bool exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

int pr_daemon_callback_record(pr_daemon *d, const pr_spool_job *job)
{
    char path[4096];
    pr_error err = { 0 };
    int rc = pr_daemon_spool_path(d, path, sizeof(path), "callbacks", job->id);
    if (rc == 0)
        rc = pr_callback_record_write(path, job->id, cb_event, job->callback_url, 0, &err);
    if (rc < 0)
        pr_dlog("error", "callback.record_write_failed",
                json_pack("{s:s,s:s}", "job", job->id, "message", err.msg));
    return rc;
}

void pr_daemon_callback_send(pr_daemon *d, const char *id, const char *url, const json_t *report,
                             bool persisted, int attempts_done)
{
    char path[4096];
    pr_error err = { 0 };
    json_t *body = json_pack("{s:s,s:s,s:O}", "event", cb_event, "id", id, "report", report);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (persisted && pr_daemon_spool_path(d, path, sizeof(path), "callbacks", id) < 0)
        persisted = false;
    if (!text ||
        pr_callback_post_record(d->callbacks, url, d->cfg->callback_secret, id, text, strlen(text),
                                persisted ? path : NULL, attempts_done, &err) < 0) {
        pr_dlog("warn", "callback.failed",
                json_pack("{s:s,s:s,s:b}", "job", id, "message", text ? err.msg : "out of memory",
                          "given_up", 1));
        /* Never queued: a record would be sent again at every start. */
        if (persisted)
            (void)unlink(path);
    }
    pr_free(text);
}

int pr_daemon_callback_recover(pr_daemon *d, const char *id)
{
    char jp[4096], cp[4096];
    pr_spool_job job;
    pr_error err = { 0 };
    if (pr_daemon_spool_path(d, jp, sizeof(jp), "running", id) < 0 ||
        pr_daemon_spool_path(d, cp, sizeof(cp), "callbacks", id) < 0)
        return PR_EINVAL;
    if (exists(cp))
        return 0; /* recorded before the crash: keeps its attempt count */
    int rc = pr_spool_job_load(&job, jp, &err);
    if (rc < 0)
        return rc;
    if (job.callback_url)
        rc = pr_daemon_callback_record(d, &job);
    pr_spool_job_clear(&job);
    return rc;
}

/* Sends one record again; false when it is to be dropped. */
static bool resend_one(pr_daemon *d, const char *name, const char *path)
{
    char id[65], rp[4096], jp[4096];
    char *url = NULL, *text = NULL;
    size_t len = 0;
    int attempts = 0;
    pr_error err = { 0 };
    if (pr_callback_record_load(path, id, &url, &attempts, &err) < 0) {
        pr_dlog("warn", "callback.record_invalid",
                json_pack("{s:s,s:s}", "file", name, "message", err.msg));
        return false;
    }
    /* The record's name is its id: anything else was not written by the daemon. */
    size_t n = strlen(name) - 5;
    if (strlen(id) != n || strncmp(name, id, n) != 0) {
        pr_dlog("warn", "callback.record_invalid",
                json_pack("{s:s,s:s}", "file", name, "message", "id does not match the name"));
        pr_free(url);
        return false;
    }
    (void)pr_daemon_spool_path(d, rp, sizeof(rp), "reports", id);
    int rc = pr_spool_read_file(&text, &len, rp, REPORT_READ_MAX, &err);
    if (rc == PR_ENOTFOUND) {
        pr_free(url);
        /* The job runs again (its report was never written): it records its callback anew
         * when it finishes. */
        (void)pr_daemon_spool_path(d, jp, sizeof(jp), "running", id);
        if (exists(jp))
            return true;
        pr_dlog("warn", "callback.orphaned", json_pack("{s:s}", "job", id));
        return false;
    }
    json_error_t jerr;
    json_t *report = rc == 0 ? json_loadb(text, len, 0, &jerr) : NULL;
    pr_free(text);
    if (!report) {
        pr_dlog("error", "callback.report_unreadable",
                json_pack("{s:s,s:s}", "job", id, "message", rc < 0 ? err.msg : jerr.text));
        pr_free(url);
        return true; /* kept: a later start may read it */
    }
    pr_dlog("info", "callback.resend",
            json_pack("{s:s,s:i}", "job", id, "attempts_before", attempts));
    pr_daemon_callback_send(d, id, url, report, true, attempts);
    json_decref(report);
    pr_free(url);
    return true;
}

void pr_daemon_callbacks_resend(pr_daemon *d)
{
    char dirp[4096], path[4400];
    (void)snprintf(dirp, sizeof(dirp), "%s/callbacks", d->cfg->spool);
    DIR *dir = opendir(dirp);
    if (!dir)
        return;
    size_t count = 0;
    while (count < 100000) {
        /* cppcheck-suppress readdirCalled ; the stream is private to this call */
        const struct dirent *de = readdir(dir); /* NOLINT(concurrency-mt-unsafe) */
        if (!de)
            break;
        size_t n = strlen(de->d_name);
        if (de->d_name[0] == '.' || n <= 5 || strcmp(de->d_name + n - 5, ".json") != 0 ||
            strstr(de->d_name, ".tmp-"))
            continue;
        (void)snprintf(path, sizeof(path), "%s/%s", dirp, de->d_name);
        if (!resend_one(d, de->d_name, path))
            (void)unlink(path);
        count++;
    }
    (void)closedir(dir);
}
