/* git watch: polls each watched repository's branch with pr_git_ls_remote on the threadpool;
 * each new commit becomes a job once. The last commit seen per (repo, branch) is remembered in
 * <spool>/watch-state.json (written atomically), and the job id is derived from (repo, branch,
 * commit), so a crash between queueing the job and saving the state never makes a duplicate. */
#include "daemon.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "proctor/common.h"
#include "proctor/git.h"

typedef struct watch_item {
    struct pr_watcher *w;
    const pr_cfg_watch *cfg; /* borrowed from the daemon's config */
    char key[2400];
    uv_timer_t timer;
    uv_work_t work;
    bool busy;
    int rc;
    pr_error err;
    char sha[41];
} watch_item;

struct pr_watcher {
    uv_loop_t *loop;
    pr_daemon *d;
    watch_item *items;
    size_t n;
    json_t *state; /* owned; {key: sha} */
    char state_path[4096];
    bool closing;
    int open_handles;
    int busy;
};

static void maybe_free(pr_watcher *w)
{
    if (w->closing && w->open_handles == 0 && w->busy == 0) {
        json_decref(w->state);
        pr_free(w->items);
        pr_free(w);
    }
}

static void job_id_for(char out[65], const char *key, const char *sha)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char buf[2500];
    int n = snprintf(buf, sizeof(buf), "%s\n%s", key, sha);
    static const char hex[] = "0123456789abcdef";
    if (n < 0 || EVP_Digest(buf, (size_t)n, md, &mdlen, EVP_sha256(), NULL) != 1) {
        (void)snprintf(out, 65, "w-%.40s", sha);
        return;
    }
    out[0] = 'w';
    out[1] = '-';
    for (size_t i = 0; i < 12; i++) {
        out[2 + 2 * i] = hex[md[i] >> 4];
        out[3 + 2 * i] = hex[md[i] & 15];
    }
    out[26] = '\0';
}

static bool job_known(pr_daemon *d, const char *id)
{
    static const char *const subs[] = { "incoming", "running", "done", "reports" };
    char p[4096];
    struct stat st;
    for (size_t i = 0; i < PR_ARRAY_LEN(subs); i++) {
        (void)pr_daemon_spool_path(d, p, sizeof(p), subs[i], id);
        if (lstat(p, &st) == 0)
            return true;
    }
    return false;
}

static void work_cb(uv_work_t *req)
{
    watch_item *it = req->data;
    memset(&it->err, 0, sizeof(it->err));
    it->rc = pr_git_ls_remote(it->sha, it->cfg->repo, it->cfg->branch, &it->err);
}

static void after_cb(uv_work_t *req, int status)
{
    watch_item *it = req->data;
    pr_watcher *w = it->w;
    it->busy = false;
    w->busy--;
    if (w->closing || status < 0) {
        maybe_free(w);
        return;
    }
    if (it->rc < 0) {
        pr_dlog("warn", "watch.poll_failed",
                json_pack("{s:s,s:s?,s:s}", "repo", it->cfg->repo, "branch", it->cfg->branch,
                          "message", it->err.msg));
        return;
    }
    const char *seen = json_string_value(json_object_get(w->state, it->key));
    if (seen && strcmp(seen, it->sha) == 0)
        return;
    char id[65];
    job_id_for(id, it->key, it->sha);
    if (!job_known(w->d, id)) {
        pr_spool_job job;
        pr_error err = { 0 };
        memset(&job, 0, sizeof(job));
        (void)snprintf(job.id, sizeof(job.id), "%s", id);
        job.repo = pr_strdup(it->cfg->repo);
        job.ref = pr_strdup(it->sha);
        job.challenge = pr_strdup(it->cfg->challenge);
        job.candidate = it->cfg->candidate ? pr_strdup(it->cfg->candidate) : NULL;
        job.source = pr_strdup("watch");
        int rc = (!job.repo || !job.ref || !job.challenge || !job.source)
                     ? PR_ENOMEM
                     : pr_daemon_submit(w->d, &job, &err);
        pr_spool_job_clear(&job);
        if (rc < 0) {
            /* Queue full or disk trouble: the state is not advanced, the next poll retries. */
            pr_dlog("warn", "watch.submit_failed",
                    json_pack("{s:s,s:s}", "repo", it->cfg->repo, "message", err.msg));
            return;
        }
        pr_dlog("info", "watch.new_commit",
                json_pack("{s:s,s:s?,s:s,s:s}", "repo", it->cfg->repo, "branch", it->cfg->branch,
                          "commit", it->sha, "job", id));
    }
    (void)json_object_set_new(w->state, it->key, json_string(it->sha));
    pr_error err = { 0 };
    if (pr_spool_write_json(w->state_path, w->state, &err) < 0)
        pr_dlog("error", "watch.state_write_failed", json_pack("{s:s}", "message", err.msg));
}

static void on_timer(uv_timer_t *t)
{
    watch_item *it = t->data;
    if (it->busy || it->w->closing)
        return;
    it->work.data = it;
    if (uv_queue_work(it->w->loop, &it->work, work_cb, after_cb) == 0) {
        it->busy = true;
        it->w->busy++;
    }
}

int pr_watcher_new(pr_watcher **out, uv_loop_t *loop, pr_daemon *d, const pr_config *cfg,
                   pr_error *err)
{
    pr_watcher *w = pr_calloc(1, sizeof(*w));
    *out = NULL;
    if (!w)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    w->items = pr_calloc(cfg->nwatches, sizeof(*w->items));
    if (!w->items) {
        pr_free(w);
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    }
    w->loop = loop;
    w->d = d;
    (void)snprintf(w->state_path, sizeof(w->state_path), "%s/watch-state.json", cfg->spool);
    w->state = json_load_file(w->state_path, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(w->state)) {
        json_decref(w->state);
        w->state = json_object();
    }
    w->n = cfg->nwatches;
    for (size_t i = 0; i < cfg->nwatches; i++) {
        watch_item *it = &w->items[i];
        it->w = w;
        it->cfg = &cfg->watches[i];
        (void)snprintf(it->key, sizeof(it->key), "%s#%s", it->cfg->repo,
                       it->cfg->branch ? it->cfg->branch : "HEAD");
        (void)uv_timer_init(loop, &it->timer);
        it->timer.data = it;
        w->open_handles++;
        uint64_t iv = (uint64_t)it->cfg->interval_s * 1000u;
        (void)uv_timer_start(&it->timer, on_timer, 100, iv);
    }
    *out = w;
    return 0;
}

static void timer_closed(uv_handle_t *h)
{
    watch_item *it = h->data;
    pr_watcher *w = it->w;
    w->open_handles--;
    maybe_free(w);
}

void pr_watcher_close(pr_watcher *w)
{
    if (!w)
        return;
    w->closing = true;
    for (size_t i = 0; i < w->n; i++) {
        watch_item *it = &w->items[i];
        if (it->busy)
            (void)uv_cancel((uv_req_t *)&it->work);
        uv_close((uv_handle_t *)&it->timer, timer_closed);
    }
}
