/* The daemon core: one libuv loop; the spool state machine (incoming -> running -> done);
 * workers on the libuv threadpool running pr_job_run; retries of infrastructure failures;
 * signals (SIGTERM/SIGINT graceful stop, SIGHUP reload). */
#include "daemon.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "proctor/boxwatch.h"
#include "proctor/challenge.h"
#include "proctor/common.h"
#include "proctor/git.h"
#include "proctor/job.h"
#include "proctor/report.h"
#include "proctor/redisq.h"
#include "proctor/runtime.h"

#define REPORT_READ_MAX (32u << 20)
#define LOG_TAIL_MAX    4000

typedef struct pr_worker {
    uv_work_t work;
    pr_daemon *d;
    size_t slot;
    pr_spool_job job;
    json_t *errors; /* owned; messages of earlier failed attempts */
    char challenge_dir[4096];
    char report_path[4096];
    pr_env env;
    json_t *report; /* owned */
    pr_error err;
    int rc;
    bool retry;   /* infrastructure failure with attempts left */
    bool written; /* the final report is on disk */
    uint64_t start_ns;
    int stage; /* index into stage_names; written by the pool thread, read by the loop */
    char fail_msg[300];
    const char *fail_stage; /* stage named in the error object of a final failure */
} pr_worker;

static void dispatch(pr_daemon *d);

static const char *const stage_names[] = { "starting", "fetch", "build", "test" };

/* pr_env.progress: called on the pool thread running the job. */
static void on_progress(void *payload, const char *stage, const char *detail)
{
    pr_worker *w = payload;
    (void)detail;
    for (int i = 1; i < 4; i++) {
        if (strncmp(stage, stage_names[i], strlen(stage_names[i])) == 0)
            __atomic_store_n(&w->stage, i, __ATOMIC_RELAXED);
    }
}

const char *pr_daemon_job_stage(const pr_daemon *d, const char *id)
{
    for (int i = 0; i < d->cfg->workers; i++) {
        const pr_worker *w = d->slots[i];
        if (w && strcmp(w->job.id, id) == 0)
            return stage_names[__atomic_load_n(&w->stage, __ATOMIC_RELAXED)];
    }
    return NULL;
}

/* ---- logging ---- */

void pr_dlog(const char *level, const char *event, json_t *fields)
{
    static const char *const levels[] = { "debug", "info", "warn", "error" };
    int lv = 1;
    for (int i = 0; i < 4; i++) {
        if (strcmp(levels[i], level) == 0)
            lv = i;
    }
    static int threshold = -1;
    if (threshold < 0) {
        const char *e = getenv("PROCTOR_LOG"); /* NOLINT(concurrency-mt-unsafe): read once */
        threshold = 1;
        for (int i = 0; e && i < 4; i++) {
            if (strcmp(levels[i], e) == 0)
                threshold = i;
        }
    }
    if (lv < threshold) {
        json_decref(fields);
        return;
    }
    json_t *o = fields && json_is_object(fields) ? fields : json_object();
    if (fields && !json_is_object(fields))
        json_decref(fields);
    if (!o)
        return;
    struct timespec ts;
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    (void)gmtime_r(&ts.tv_sec, &tm);
    char t[96];
    (void)snprintf(t, sizeof(t), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   ts.tv_nsec / 1000000);
    (void)json_object_set_new(o, "ts", json_string(t));
    (void)json_object_set_new(o, "level", json_string(levels[lv]));
    (void)json_object_set_new(o, "event", json_string(event));
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!line)
        return;
    size_t n = strlen(line);
    char *l2 = pr_realloc(line, n + 2);
    if (l2) {
        line = l2;
        line[n++] = '\n';
        /* One write(2) per line so threads never interleave. */
        ssize_t w = write(STDERR_FILENO, line, n);
        (void)w;
    }
    pr_free(line);
}

/* strerror without its static buffer (thread-safe). */
static const char *errno_text(int e)
{
    static _Thread_local char buf[128];
    return strerror_r(e, buf, sizeof(buf));
}

/* ---- ids and paths ---- */

void pr_daemon_new_id(char *out, size_t outsz)
{
    pr_job_new_id(out, outsz);
}

bool pr_daemon_id_valid(const char *id)
{
    return pr_job_id_valid(id);
}

int pr_daemon_spool_path(const pr_daemon *d, char *out, size_t outsz, const char *sub,
                         const char *id)
{
    int n =
        snprintf(out, outsz, "%s/%s/%s%s", d->cfg->spool, sub, id, strchr(id, '.') ? "" : ".json");
    return (n < 0 || (size_t)n >= outsz) ? PR_EINVAL : 0;
}

static bool file_exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

bool pr_daemon_is_running(const pr_daemon *d, const char *id)
{
    for (int i = 0; i < d->cfg->workers; i++) {
        if (d->slots[i] && strcmp(d->slots[i]->job.id, id) == 0)
            return true;
    }
    return false;
}

json_t *pr_daemon_redact(const json_t *report)
{
    return pr_report_redact(report);
}

/* ---- challenges ---- */

int pr_daemon_load_challenges(pr_daemon *d, pr_error *err)
{
    DIR *dir = opendir(d->cfg->challenges);
    if (!dir)
        return pr_error_sys(err, "challenges: opendir %s", d->cfg->challenges);
    json_t *all = json_object();
    size_t count = 0;
    while (all && count < 10000) {
        /* cppcheck-suppress readdirCalled ; the stream is private to this call */
        const struct dirent *de = readdir(dir); /* NOLINT(concurrency-mt-unsafe) */
        if (!de)
            break;
        if (!pr_config_pack_id_valid(de->d_name))
            continue;
        char p[4096];
        (void)snprintf(p, sizeof(p), "%s/%s/challenge.json", d->cfg->challenges, de->d_name);
        if (!file_exists(p))
            continue;
        (void)snprintf(p, sizeof(p), "%s/%s", d->cfg->challenges, de->d_name);
        pr_challenge *c = NULL;
        pr_error e = { 0 };
        if (pr_challenge_load(&c, p, &e) < 0) {
            pr_dlog("warn", "challenge.invalid",
                    json_pack("{s:s,s:s}", "challenge", de->d_name, "message", e.msg));
            continue;
        }
        json_t *info = json_pack("{s:s,s:s?,s:s?,s:s?,s:I,s:s}", "id", de->d_name, "version",
                                 c->version, "title", c->title, "kind", c->kind_name, "tests",
                                 (json_int_t)c->ntests, "digest", c->digest);
        if (info)
            (void)json_object_set_new(all, de->d_name, info);
        pr_challenge_free(c);
        count++;
    }
    (void)closedir(dir);
    if (!all)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    json_decref(d->challenges);
    d->challenges = all;
    pr_dlog("info", "challenges.loaded", json_pack("{s:I}", "count", (json_int_t)count));
    return 0;
}

/* ---- queue ---- */

static int queue_push(pr_daemon *d, const char *id)
{
    if (d->q_len == d->q_cap) {
        size_t ncap = d->q_cap ? d->q_cap * 2 : 64;
        char **nq = pr_calloc(ncap, sizeof(*nq));
        if (!nq)
            return PR_ENOMEM;
        for (size_t i = 0; i < d->q_len; i++)
            nq[i] = d->queue[(d->q_head + i) % d->q_cap];
        pr_free(d->queue);
        d->queue = nq;
        d->q_cap = ncap;
        d->q_head = 0;
    }
    char *s = pr_strdup(id);
    if (!s)
        return PR_ENOMEM;
    d->queue[(d->q_head + d->q_len) % d->q_cap] = s;
    d->q_len++;
    return 0;
}

static char *queue_pop(pr_daemon *d)
{
    if (d->q_len == 0)
        return NULL;
    char *s = d->queue[d->q_head];
    d->queue[d->q_head] = NULL;
    d->q_head = (d->q_head + 1) % d->q_cap;
    d->q_len--;
    if (d->q_len == 0 && d->q_cap > 1024) {
        /* Give back the memory of a burst. */
        pr_free(d->queue);
        d->queue = NULL;
        d->q_cap = 0;
        d->q_head = 0;
    }
    return s;
}

/* Used by the shared queue (runner/redisq.c) for a job it wrote into running/. */
int pr_daemon_enqueue(pr_daemon *d, const char *id)
{
    int rc = queue_push(d, id);
    if (rc == 0)
        dispatch(d);
    return rc;
}

/* ---- spool pickup ---- */

static void reject_file(pr_daemon *d, const char *name, const char *reason)
{
    char from[4096], to[4096], rp[4200];
    (void)snprintf(from, sizeof(from), "%s/incoming/%s", d->cfg->spool, name);
    (void)snprintf(to, sizeof(to), "%s/rejected/%s", d->cfg->spool, name);
    (void)snprintf(rp, sizeof(rp), "%s.reason", to);
    int fd = open(rp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        ssize_t w1 = write(fd, reason, strlen(reason));
        ssize_t w2 = write(fd, "\n", 1);
        (void)w1;
        (void)w2;
        (void)fsync(fd);
        pr_close(&fd);
    }
    if (rename(from, to) != 0)
        (void)unlink(from);
    d->metrics.jobs_rejected++;
    pr_dlog("warn", "job.rejected", json_pack("{s:s,s:s}", "file", name, "reason", reason));
}

/* Backpressure: the in-memory queue holds at most limits.queue_length ids (queued + running);
 * further files wait in incoming/, untouched, until a job finishes. */
static bool spool_has_room(const pr_daemon *d)
{
    return d->q_len + d->nrunning < d->cfg->queue_length;
}

static bool spool_name_ok(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && n > 5 && n < 200 && strcmp(name + n - 5, ".json") == 0 &&
           !strstr(name, ".tmp-");
}

/* Moves one file of incoming/ to running/ and queues it. Crash safety: (1) a job without an id
 * is first rewritten in place, atomically, with its id; (2) one rename moves it to running/.
 * A crash between the steps leaves a file that already carries its id, so it is picked up
 * again under the same id; nothing is lost or duplicated. */
static void pickup_file(pr_daemon *d, const char *name)
{
    char path[4096], dst[4096], other[4096];
    pr_spool_job job;
    pr_error err = { 0 };
    json_t *norm = NULL;
    memset(&job, 0, sizeof(job));
    if (!spool_name_ok(name))
        return;
    if (!spool_has_room(d)) {
        d->spool_backlog = true; /* the file stays; the next scan counts and takes it */
        return;
    }
    (void)snprintf(path, sizeof(path), "%s/incoming/%s", d->cfg->spool, name);
    int rc = pr_spool_job_load(&job, path, &err);
    if (rc == PR_ENOTFOUND)
        return; /* already picked up */
    if (rc < 0) {
        if (rc == PR_ENOMEM)
            return;
        /* A file still being written (dropped without the write-then-rename idiom) is left
         * for a later scan rather than rejected half-written. */
        struct stat st;
        if (rc == PR_EJSON && lstat(path, &st) == 0 && time(NULL) - st.st_mtime < 2)
            return;
        reject_file(d, name, err.msg);
        return;
    }
    bool rewrite = false;
    if (!job.id[0]) {
        pr_daemon_new_id(job.id, sizeof(job.id));
        rewrite = true;
    }
    if (!job.queued_at[0]) {
        pr_time_rfc3339(job.queued_at, sizeof(job.queued_at), (long long)time(NULL));
        rewrite = true;
    }
    if (!job.source) {
        job.source = pr_strdup("spool");
        rewrite = true;
    }
    if (pr_daemon_spool_path(d, dst, sizeof(dst), "running", job.id) < 0)
        goto cleanup;
    static const char *const subs[] = { "running", "done", "reports" };
    for (size_t i = 0; i < PR_ARRAY_LEN(subs); i++) {
        (void)pr_daemon_spool_path(d, other, sizeof(other), subs[i], job.id);
        if (file_exists(other)) {
            reject_file(d, name, "duplicate job id");
            goto cleanup;
        }
    }
    if (rewrite) {
        norm = pr_spool_job_json(&job);
        if (!norm || pr_spool_write_json(path, norm, &err) < 0) {
            pr_dlog(
                "error", "spool.write_failed",
                json_pack("{s:s,s:s}", "file", name, "message", norm ? err.msg : "out of memory"));
            goto cleanup;
        }
    }
    if (d->redisq) {
        /* The shared queue: the job goes to the Redis stream, which any daemon reads; the file
         * stays in incoming/ until Redis has it. */
        json_decref(norm);
        norm = pr_spool_job_json(&job);
        if (norm)
            pr_redisq_send(d->redisq, path, norm);
        goto cleanup;
    }
    if (rename(path, dst) != 0) {
        pr_dlog("error", "spool.rename_failed",
                json_pack("{s:s,s:s}", "file", name, "message", errno_text(errno)));
        goto cleanup;
    }
    if (queue_push(d, job.id) < 0) {
        /* The job stays in running/ and is queued at the next start. */
        pr_dlog("error", "queue.oom", json_pack("{s:s}", "job", job.id));
        goto cleanup;
    }
    pr_dlog("info", "job.queued",
            json_pack("{s:s,s:s,s:s,s:s?}", "job", job.id, "source", job.source, "challenge",
                      job.challenge, "candidate", job.candidate));
cleanup:
    json_decref(norm);
    pr_spool_job_clear(&job);
}

typedef struct spool_entry {
    char *name;       /* owned */
    int64_t mtime_ns; /* arrival order of a dropped file */
} spool_entry;

static int spool_entry_cmp(const void *a, const void *b)
{
    const spool_entry *x = a, *y = b;
    if (x->mtime_ns != y->mtime_ns)
        return x->mtime_ns < y->mtime_ns ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Takes files of incoming/ in arrival order (mtime, then name) while the queue has room and
 * counts the ones left waiting (the proctor_spool_incoming_waiting gauge). */
static void scan_incoming(pr_daemon *d)
{
    char p[4096];
    (void)snprintf(p, sizeof(p), "%s/incoming", d->cfg->spool);
    DIR *dir = opendir(p);
    if (!dir)
        return;
    /* Names first, then pickup: renaming while iterating is allowed but may revisit. A full
     * queue only counts the names. */
    bool room = spool_has_room(d) && !d->stopping;
    spool_entry *ents = NULL;
    size_t n = 0, cap = 0, counted = 0;
    while (n < 100000) {
        /* cppcheck-suppress readdirCalled ; the stream is private to this call */
        const struct dirent *de = readdir(dir); /* NOLINT(concurrency-mt-unsafe) */
        if (!de)
            break;
        if (!spool_name_ok(de->d_name))
            continue;
        if (!room) {
            counted++;
            continue;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 32;
            spool_entry *ne = pr_realloc(ents, nc * sizeof(*ne));
            if (!ne)
                break;
            ents = ne;
            cap = nc;
        }
        struct stat st;
        if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        ents[n].mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        ents[n].name = pr_strdup(de->d_name);
        if (ents[n].name)
            n++;
    }
    (void)closedir(dir);
    if (n > 1)
        qsort(ents, n, sizeof(*ents), spool_entry_cmp);
    size_t waiting = counted;
    for (size_t i = 0; i < n; i++) {
        if (!d->stopping && spool_has_room(d))
            pickup_file(d, ents[i].name);
        else
            waiting++;
        pr_free(ents[i].name);
    }
    pr_free(ents);
    if (waiting != d->metrics.spool_incoming_waiting)
        pr_dlog("info", "spool.waiting",
                json_pack("{s:I,s:I}", "incoming_waiting", (json_int_t)waiting, "queue_length",
                          (json_int_t)d->cfg->queue_length));
    d->metrics.spool_incoming_waiting = waiting;
    d->spool_backlog = waiting > 0;
    dispatch(d);
}

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    pr_daemon *d = h->data;
    (void)events;
    if (d->stopping)
        return;
    if (status < 0 || !filename) {
        scan_incoming(d);
        return;
    }
    if (d->spool_backlog) {
        /* Older files wait: they go first, in arrival order, once there is room. */
        if (spool_has_room(d))
            scan_incoming(d);
        return;
    }
    pickup_file(d, filename);
    dispatch(d);
}

/* ---- git mirror cache pruning (hourly, on the threadpool) ---- */

static void prune_work_cb(uv_work_t *req)
{
    pr_daemon *d = req->data;
    pr_error err = { 0 };
    d->prune_removed = 0;
    if (pr_git_cache_prune(d->cfg->cache, (uint64_t)d->cfg->cache_max_age_h * 3600u,
                           &d->prune_removed, &err) < 0)
        pr_dlog("warn", "cache.prune_failed", json_pack("{s:s}", "message", err.msg));
}

static void prune_after_cb(uv_work_t *req, int status)
{
    pr_daemon *d = req->data;
    d->prune_busy = false;
    if (status == 0 && d->prune_removed > 0)
        pr_dlog("info", "cache.pruned",
                json_pack("{s:i,s:i}", "mirrors_removed", (int)d->prune_removed, "max_age_h",
                          (int)d->cfg->cache_max_age_h));
}

static void on_prune_timer(uv_timer_t *t)
{
    pr_daemon *d = t->data;
    if (d->prune_busy || d->stopping || d->cfg->cache_max_age_h == 0)
        return;
    d->prune_work.data = d;
    if (uv_queue_work(d->loop, &d->prune_work, prune_work_cb, prune_after_cb) == 0)
        d->prune_busy = true;
}

static void on_scan_timer(uv_timer_t *t)
{
    pr_daemon *d = t->data;
    if (!d->stopping)
        scan_incoming(d);
}

/* Removes what a killed daemon leaves behind: temporary files of atomic writes in the spool and
 * job directories under work/ (nothing runs yet, and each daemon owns its work dir). */
static void clean_leftovers(pr_daemon *d)
{
    static const char *const subs[] = { "incoming", "running", "reports", "callbacks", "tmp" };
    char p[4096], f[4400];
    for (size_t i = 0; i < PR_ARRAY_LEN(subs) + 1; i++) {
        bool work = i == PR_ARRAY_LEN(subs);
        bool tmpdir = !work && strcmp(subs[i], "tmp") == 0;
        if (work)
            (void)snprintf(p, sizeof(p), "%s", d->cfg->work);
        else
            (void)snprintf(p, sizeof(p), "%s/%s", d->cfg->spool, subs[i]);
        DIR *dir = opendir(p);
        if (!dir)
            continue;
        for (;;) {
            /* cppcheck-suppress readdirCalled ; the stream is private to this call */
            const struct dirent *de = readdir(dir); /* NOLINT(concurrency-mt-unsafe) */
            if (!de)
                break;
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            /* In work/ only the pipeline's own job directories (job-<id>-XXXXXX). */
            bool stale = (work && strncmp(de->d_name, "job-", 4) == 0) ||
                         (!work && strstr(de->d_name, ".tmp-") != NULL) ||
                         (!work && strstr(de->d_name, ".json.tmp") != NULL) || tmpdir;
            if (!stale)
                continue;
            (void)snprintf(f, sizeof(f), "%s/%s", p, de->d_name);
            /* The pipeline mounts a size-capped tmpfs on each job dir; a killed daemon leaves
             * it mounted. */
            if (work && umount2(f, MNT_DETACH) == 0)
                pr_dlog("info", "work.unmounted", json_pack("{s:s}", "dir", f));
            (void)pr_rm_rf(f);
        }
        (void)closedir(dir);
    }
}

typedef struct requeue_entry {
    char *name;   /* owned; file name in running/ or incoming/ */
    char id[65];  /* tie-break: the job id, else the file name */
    int64_t t_ns; /* submission time: the job's queued_at, else the file's mtime */
    bool running; /* in running/ (else incoming/) */
} requeue_entry;

static int requeue_cmp(const void *a, const void *b)
{
    const requeue_entry *x = a, *y = b;
    if (x->t_ns != y->t_ns)
        return x->t_ns < y->t_ns ? -1 : 1;
    int c = strcmp(x->id, y->id);
    if (c != 0)
        return c;
    return (int)y->running - (int)x->running;
}

/* One entry for a job file left in running/ or incoming/; false to skip the file. */
static bool requeue_entry_fill(pr_daemon *d, requeue_entry *e, int dfd, const char *name,
                               bool running)
{
    char path[4096];
    pr_spool_job job;
    pr_error err = { 0 };
    struct stat st;
    memset(e, 0, sizeof(*e));
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return false;
    e->running = running;
    e->t_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    (void)snprintf(e->id, sizeof(e->id), "%.*s", (int)(strlen(name) - 5), name);
    (void)snprintf(path, sizeof(path), "%s/%s/%s", d->cfg->spool, running ? "running" : "incoming",
                   name);
    if (pr_spool_job_load(&job, path, &err) == 0) {
        int64_t t;
        if (job.queued_at[0] && pr_spool_time_parse(&t, job.queued_at) == 0)
            e->t_ns = t;
        if (!running && job.id[0])
            (void)snprintf(e->id, sizeof(e->id), "%s", job.id);
        pr_spool_job_clear(&job);
    }
    e->name = pr_strdup(name);
    return e->name != NULL;
}

/* A file of running/ that is no job, or a job whose report exists (the daemon stopped between
 * the report and done/): the latter moves to done/, with its callback recorded. True when the
 * file is not to be requeued. */
static bool recover_finished(pr_daemon *d, const char *name, size_t *finished)
{
    char id[65], p[4096], rp[4096], dp[4096];
    size_t len = strlen(name) - 5;
    if (len >= sizeof(id))
        return true;
    memcpy(id, name, len);
    id[len] = '\0';
    if (!pr_daemon_id_valid(id))
        return true;
    (void)pr_daemon_spool_path(d, rp, sizeof(rp), "reports", id);
    if (!file_exists(rp))
        return false;
    /* Stopped before finish_job: its callback was not recorded yet. */
    (void)pr_daemon_callback_recover(d, id);
    (void)snprintf(p, sizeof(p), "%s/running/%s", d->cfg->spool, name);
    (void)pr_daemon_spool_path(d, dp, sizeof(dp), "done", id);
    if (rename(p, dp) == 0)
        (*finished)++;
    return true;
}

/* On start: jobs left in running/ are queued again, unless their report exists (the daemon
 * stopped between writing the report and moving the job to done/), and files of incoming/ are
 * taken while there is room; both in submission order (queued_at, else mtime; then id). */
static int recover_spool(pr_daemon *d)
{
    static const char *const subs[] = { "running", "incoming" };
    char p[4096];
    requeue_entry *ents = NULL;
    size_t n = 0, cap = 0, requeued = 0, finished = 0, picked = 0, nrunning = 0;
    for (size_t s = 0; s < PR_ARRAY_LEN(subs); s++) {
        bool running = s == 0;
        (void)snprintf(p, sizeof(p), "%s/%s", d->cfg->spool, subs[s]);
        DIR *dir = opendir(p);
        if (!dir) {
            if (running) {
                pr_free(ents);
                return PR_ESYS;
            }
            continue;
        }
        while (n < 200000) {
            /* cppcheck-suppress readdirCalled ; the stream is private to this call */
            const struct dirent *de = readdir(dir); /* NOLINT(concurrency-mt-unsafe) */
            if (!de)
                break;
            if (!spool_name_ok(de->d_name))
                continue;
            if (running && recover_finished(d, de->d_name, &finished))
                continue;
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 64;
                requeue_entry *ne = pr_realloc(ents, nc * sizeof(*ne));
                if (!ne)
                    break;
                ents = ne;
                cap = nc;
            }
            if (requeue_entry_fill(d, &ents[n], dirfd(dir), de->d_name, running)) {
                nrunning += running;
                n++;
            }
        }
        (void)closedir(dir);
    }
    if (n > 1)
        qsort(ents, n, sizeof(*ents), requeue_cmp);
    /* Jobs of running/ are held already; incoming/ files get the room they leave. */
    size_t budget = d->cfg->queue_length > nrunning ? d->cfg->queue_length - nrunning : 0;
    for (size_t i = 0; i < n; i++) {
        if (ents[i].running) {
            if (queue_push(d, ents[i].id) == 0)
                requeued++;
        } else if (picked < budget) {
            size_t before = d->q_len;
            pickup_file(d, ents[i].name);
            picked += d->q_len - before;
        }
        pr_free(ents[i].name);
    }
    pr_free(ents);
    pr_dlog("info", "spool.recovered",
            json_pack("{s:I,s:I,s:I}", "requeued", (json_int_t)requeued, "finished",
                      (json_int_t)finished, "incoming", (json_int_t)picked));
    return 0;
}

int pr_daemon_submit(pr_daemon *d, pr_spool_job *job, pr_error *err)
{
    char path[4096];
    if (d->stopping)
        return pr_error_set(err, PR_ELIMIT, "shutting down");
    if (d->q_len + d->nrunning >= d->cfg->queue_length)
        return pr_error_set(err, PR_ELIMIT, "queue is full");
    if (d->redisq && pr_redisq_refuses(d->redisq, d->cfg->queue_length, err))
        return PR_ELIMIT; /* Redis unreachable, or the shared backlog at queue_length */
    if (!job->id[0])
        pr_daemon_new_id(job->id, sizeof(job->id));
    if (!job->queued_at[0])
        pr_time_rfc3339(job->queued_at, sizeof(job->queued_at), (long long)time(NULL));
    if (pr_daemon_spool_path(d, path, sizeof(path), "incoming", job->id) < 0)
        return pr_error_set(err, PR_EINVAL, "path too long");
    json_t *o = pr_spool_job_json(job);
    if (!o)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    int rc = pr_spool_write_json(path, o, err);
    json_decref(o);
    if (rc < 0)
        return rc;
    char name[80];
    (void)snprintf(name, sizeof(name), "%s.json", job->id);
    pickup_file(d, name);
    dispatch(d);
    return 0;
}

/* ---- workers ---- */

/* Whether a report of status "error" comes from infrastructure (worth another attempt) or is
 * final: a missing repository or ref, an unknown challenge or runtime, a tree over the limits. */
int pr_daemon_infra_failure(const json_t *report, char *msg, size_t msgsz)
{
    const char *status = json_string_value(json_object_get(report, "status"));
    if (status && strcmp(status, "error") == 0) {
        const json_t *e = json_object_get(report, "error");
        const char *stage = json_string_value(json_object_get(e, "stage"));
        const char *m = json_string_value(json_object_get(e, "message"));
        /* Stages of pr_job_run: challenge, fetch, runtime, build, tests. A failed build of the
         * candidate's code is a graded report, so "build" and "tests" errors are the
         * sandbox's. */
        static const char *const final_stages[] = { "fetch", "challenge", "runtime" };
        for (size_t i = 0; stage && i < PR_ARRAY_LEN(final_stages); i++) {
            if (strcmp(stage, final_stages[i]) == 0)
                return 0;
        }
        (void)snprintf(msg, msgsz, "%s: %s", stage ? stage : "internal", m ? m : "error");
        return 1;
    }
    /* A graded report whose build or tests hit a sandbox internal error (IE). */
    const char *bv =
        json_string_value(json_object_get(json_object_get(report, "build"), "verdict"));
    if (bv && strcmp(bv, "IE") == 0) {
        (void)snprintf(msg, msgsz, "build: sandbox internal error");
        return 1;
    }
    size_t i, n = 0;
    const json_t *t;
    const char *first = NULL, *first_name = NULL;
    json_array_foreach (json_object_get(report, "tests"), i, t) {
        const char *v = json_string_value(json_object_get(t, "verdict"));
        if (v && strcmp(v, "IE") == 0) {
            if (!first) {
                first = json_string_value(json_object_get(t, "message"));
                first_name = json_string_value(json_object_get(t, "name"));
            }
            n++;
        }
    }
    if (n == 0)
        return 0;
    (void)snprintf(msg, msgsz, "tests: sandbox internal error (IE) in %zu test(s); %s: %s", n,
                   first_name ? first_name : "?", first ? first : "");
    return 2;
}

json_t *pr_daemon_error_report(const pr_spool_job *job, const char *stage, const char *msg,
                               uint64_t elapsed_ms)
{
    char repo[1024];
    pr_git_url_redact(repo, sizeof(repo), job->repo ? job->repo : "");
    json_t *r = pr_report_skeleton(job->id, job->queued_at, repo, job->ref, job->candidate);
    if (!r)
        return NULL;
    json_t *err = json_pack("{s:s, s:s}", "stage", stage, "message", msg);
    if (!err || json_object_set_new(r, "error", err) != 0 ||
        json_object_set_new(json_object_get(r, "challenge"), "id",
                            json_string(job->challenge ? job->challenge : "")) != 0 ||
        json_object_set_new(json_object_get(r, "timings"), "total_ms",
                            json_integer((json_int_t)elapsed_ms)) != 0) {
        json_decref(r);
        return NULL;
    }
    return r;
}

static json_t *error_report(const pr_worker *w, const char *stage, const char *msg)
{
    return pr_daemon_error_report(&w->job, stage, msg, (pr_now_ns() - w->start_ns) / 1000000u);
}

static void work_cb(uv_work_t *req)
{
    pr_worker *w = req->data;
    const pr_config *cfg = w->d->cfg;
    int max_attempts = cfg->max_attempts;
    char cj[4200];
    (void)snprintf(cj, sizeof(cj), "%s/challenge.json", w->challenge_dir);
    if (!file_exists(cj)) {
        w->report = error_report(w, "challenge", "unknown challenge");
    } else {
        pr_job_spec spec;
        memset(&spec, 0, sizeof(spec));
        spec.id = w->job.id;
        spec.repo = w->job.repo;
        spec.ref = w->job.ref;
        spec.challenge_dir = w->challenge_dir;
        spec.candidate = w->job.candidate;
        spec.queued_at = w->job.queued_at;
        w->rc = pr_job_run(&w->report, &spec, &w->env, &w->err);
        if (w->rc == 0 && w->d->fault_candidate && w->job.candidate &&
            strcmp(w->job.candidate, w->d->fault_candidate) == 0) {
            /* Test hook (PROCTOR_FAULT_CANDIDATE): this candidate's attempts fail as a sandbox
             * internal error would, to exercise the retry policy end to end. */
            (void)json_object_set_new(w->report, "status", json_string("error"));
            (void)json_object_set_new(
                w->report, "error",
                json_pack("{s:s,s:s}", "stage", "tests", "message", "injected sandbox failure"));
        }
        if (w->rc < 0) {
            (void)snprintf(w->fail_msg, sizeof(w->fail_msg), "%s", w->err.msg);
            json_decref(w->report);
            w->report = NULL;
        } else if (w->report) {
            int kind = pr_daemon_infra_failure(w->report, w->fail_msg, sizeof(w->fail_msg));
            if (kind > 0) {
                w->rc = PR_EINTERNAL;
                w->fail_stage = kind == 2 ? "tests" : "internal";
            }
        } else {
            (void)snprintf(w->fail_msg, sizeof(w->fail_msg), "no report");
            w->rc = PR_EINTERNAL;
        }
    }
    if (w->rc < 0 && w->job.attempts + 1 < max_attempts) {
        w->retry = true;
        return;
    }
    if (!w->report)
        w->report = error_report(w, "internal", w->fail_msg);
    if (!w->report)
        return;
    if (w->rc < 0) {
        /* The last attempt failed too: the report says so and carries the log tail. */
        pr_buf tail = PR_BUF_INIT(LOG_TAIL_MAX);
        size_t i;
        const json_t *m;
        json_array_foreach (w->errors, i, m) {
            (void)pr_buf_printf(&tail, "attempt %zu: %s\n", i + 1, json_string_value(m));
        }
        (void)pr_buf_printf(&tail, "attempt %d: %s\n", w->job.attempts + 1, w->fail_msg);
        const char *blog =
            json_string_value(json_object_get(json_object_get(w->report, "build"), "log"));
        if (blog) {
            size_t bl = strlen(blog);
            const char *start = bl > 1500 ? blog + bl - 1500 : blog;
            (void)pr_buf_printf(&tail, "build log tail:\n%s", start);
        }
        json_t *e = json_object_get(w->report, "error");
        if (!json_is_object(e)) {
            e = json_pack("{s:s,s:s}", "stage", w->fail_stage ? w->fail_stage : "internal",
                          "message", w->fail_msg);
            (void)json_object_set_new(w->report, "error", e);
        }
        (void)json_object_set_new(w->report, "status", json_string("error"));
        if (json_is_object(e)) {
            (void)json_object_set_new(e, "attempts", json_integer(w->job.attempts + 1));
            if (tail.ptr)
                (void)pr_report_set_text(e, "log_tail", tail.ptr, tail.len, LOG_TAIL_MAX);
        }
        pr_buf_free(&tail);
    }
    if (pr_report_write(w->report_path, w->report, &w->err) == 0)
        w->written = true;
}

static void finish_job(pr_daemon *d, pr_worker *w, double secs)
{
    char from[4096], to[4096];
    /* The callback is recorded before the job moves to done/: from here on a crash at any point
     * still sends it (at the next start). */
    bool cb_recorded =
        w->job.callback_url && d->callbacks && pr_daemon_callback_record(d, &w->job) == 0;
    (void)pr_daemon_spool_path(d, from, sizeof(from), "running", w->job.id);
    (void)pr_daemon_spool_path(d, to, sizeof(to), "done", w->job.id);
    if (rename(from, to) != 0)
        pr_dlog("error", "spool.rename_failed",
                json_pack("{s:s,s:s}", "job", w->job.id, "message", errno_text(errno)));
    pr_metrics_job(&d->metrics, w->report, secs);
    const json_t *score = json_object_get(w->report, "score");
    pr_dlog("info", "job.finished",
            json_pack("{s:s,s:s?,s:O?,s:f,s:i}", "job", w->job.id, "status",
                      json_string_value(json_object_get(w->report, "status")), "percent",
                      json_object_get(score, "percent"), "seconds", secs, "attempts",
                      w->job.attempts + 1));
    if (w->job.callback_url && d->callbacks)
        pr_daemon_callback_send(d, w->job.id, w->job.callback_url, w->report, cb_recorded, 0);
    if (d->redisq)
        pr_redisq_finished(d->redisq, w->job.id);
}

static void maybe_exit(pr_daemon *d);

static void after_work_cb(uv_work_t *req, int status)
{
    pr_worker *w = req->data;
    pr_daemon *d = w->d;
    (void)status;
    d->slots[w->slot] = NULL;
    d->nrunning--;
    double secs = (double)(pr_now_ns() - w->start_ns) / 1e9;
    if (w->retry) {
        d->metrics.jobs_retried++;
        pr_dlog("warn", "job.retry",
                json_pack("{s:s,s:i,s:s}", "job", w->job.id, "attempt", w->job.attempts + 1,
                          "message", w->fail_msg));
        w->job.attempts++;
        char path[4096];
        pr_error err = { 0 };
        json_t *o = pr_spool_job_json(&w->job);
        json_t *errs = w->errors ? json_copy(w->errors) : json_array();
        if (errs)
            (void)json_array_append_new(errs, json_string(w->fail_msg));
        if (o && errs)
            (void)json_object_set_new(o, "errors", errs);
        else
            json_decref(errs);
        (void)pr_daemon_spool_path(d, path, sizeof(path), "running", w->job.id);
        if (!o || pr_spool_write_json(path, o, &err) < 0)
            pr_dlog("error", "spool.write_failed", json_pack("{s:s}", "job", w->job.id));
        json_decref(o);
        if (!d->stopping)
            (void)queue_push(d, w->job.id);
    } else if (w->written) {
        finish_job(d, w, secs);
    } else {
        /* Not even the report could be written (disk full?): the job stays in running/ and
         * is retried at the next start. */
        pr_dlog("error", "report.write_failed",
                json_pack("{s:s,s:s}", "job", w->job.id, "message", w->err.msg));
    }
    json_decref(w->report);
    json_decref(w->errors);
    pr_spool_job_clear(&w->job);
    pr_free(w);
    if (d->stopping)
        maybe_exit(d);
    else if (d->spool_backlog)
        scan_incoming(d); /* room for a waiting file; dispatches too */
    else
        dispatch(d);
}

static void on_defer_timer(uv_timer_t *t)
{
    dispatch(t->data);
}

static bool disk_ok(pr_daemon *d)
{
    struct statvfs vfs;
    if (d->cfg->min_free_mb == 0 || statvfs(d->cfg->work, &vfs) != 0)
        return true;
    uint64_t free_mb = (uint64_t)vfs.f_bavail * vfs.f_frsize / ((uint64_t)1024 * 1024);
    if (free_mb >= d->cfg->min_free_mb)
        return true;
    d->metrics.jobs_deferred++;
    pr_dlog("warn", "job.deferred",
            json_pack("{s:I,s:I}", "free_mb", (json_int_t)free_mb, "min_free_mb",
                      (json_int_t)d->cfg->min_free_mb));
    return false;
}

static json_t *load_job_errors(const char *path)
{
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
    json_t *e = json_incref(json_object_get(root, "errors"));
    json_decref(root);
    if (e && !json_is_array(e)) {
        json_decref(e);
        e = NULL;
    }
    return e;
}

static void dispatch(pr_daemon *d)
{
    while (!d->stopping && d->q_len > 0 && d->nrunning < (size_t)d->cfg->workers) {
        if (!disk_ok(d)) {
            if (!uv_is_active((uv_handle_t *)&d->defer_timer))
                (void)uv_timer_start(&d->defer_timer, on_defer_timer, 5000, 0);
            return;
        }
        char *id = queue_pop(d);
        char path[4096], rp[4096];
        (void)pr_daemon_spool_path(d, path, sizeof(path), "running", id);
        (void)pr_daemon_spool_path(d, rp, sizeof(rp), "reports", id);
        pr_worker *w = pr_calloc(1, sizeof(*w));
        pr_error err = { 0 };
        if (!w) {
            (void)queue_push(d, id);
            pr_free(id);
            return;
        }
        if (pr_daemon_is_running(d, id) || file_exists(rp) ||
            pr_spool_job_load(&w->job, path, &err) < 0) {
            if (file_exists(rp) && !pr_daemon_is_running(d, id)) {
                char dp[4096];
                (void)pr_daemon_spool_path(d, dp, sizeof(dp), "done", id);
                (void)rename(path, dp);
            } else if (err.code) {
                pr_dlog("error", "job.unreadable",
                        json_pack("{s:s,s:s}", "job", id, "message", err.msg));
            }
            pr_spool_job_clear(&w->job);
            pr_free(w);
            pr_free(id);
            continue;
        }
        pr_free(id);
        w->errors = load_job_errors(path);
        size_t slot = 0;
        while (d->slots[slot])
            slot++;
        w->d = d;
        w->slot = slot;
        w->work.data = w;
        w->start_ns = pr_now_ns();
        (void)snprintf(w->challenge_dir, sizeof(w->challenge_dir), "%s/%s", d->cfg->challenges,
                       w->job.challenge);
        (void)snprintf(w->report_path, sizeof(w->report_path), "%s", rp);
        memset(&w->env, 0, sizeof(w->env));
        w->env.runtimes = d->runtimes;
        w->env.cache_dir = d->cfg->cache;
        w->env.work_root = d->cfg->work;
        w->env.git_limits.max_bytes = d->cfg->repo_bytes;
        w->env.git_limits.max_files = d->cfg->repo_files;
        w->env.parallel = d->cfg->parallel_per_job;
        w->env.progress = on_progress;
        w->env.payload = w;
        /* Not reloaded on SIGHUP, so these borrowed strings live as long as the daemon. */
        w->env.pg_host = d->cfg->pg_host;
        w->env.pg_port = d->cfg->pg_port;
        w->env.pg_admin = d->cfg->pg_admin;
        /* Distinct sandbox slots per worker so concurrent boxes never share uids. */
        w->env.slot_base = (int)slot * d->cfg->parallel_per_job;
        d->slots[slot] = w;
        d->nrunning++;
        pr_dlog("info", "job.started",
                json_pack("{s:s,s:i,s:i,s:s}", "job", w->job.id, "slot", (int)slot, "attempt",
                          w->job.attempts + 1, "challenge", w->job.challenge));
        int rc = uv_queue_work(d->loop, &w->work, work_cb, after_work_cb);
        if (rc < 0) {
            d->slots[slot] = NULL;
            d->nrunning--;
            pr_dlog("error", "job.queue_work_failed", json_pack("{s:s}", "error", uv_strerror(rc)));
            (void)queue_push(d, w->job.id);
            json_decref(w->errors);
            pr_spool_job_clear(&w->job);
            pr_free(w);
            return;
        }
    }
}

/* ---- signals and shutdown ---- */

static void close_walk_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void maybe_exit(pr_daemon *d)
{
    if (d->nrunning > 0)
        return;
    pr_dlog("info", "daemon.stopped", json_pack("{s:I}", "queued", (json_int_t)d->q_len));
    uv_stop(d->loop);
}

static void on_grace_timer(uv_timer_t *t)
{
    pr_daemon *d = t->data;
    json_t *ids = json_array();
    for (int i = 0; i < d->cfg->workers; i++) {
        if (d->slots[i])
            (void)json_array_append_new(ids, json_string(d->slots[i]->job.id));
    }
    pr_dlog("warn", "daemon.grace_expired", json_pack("{s:o}", "requeued_at_next_start", ids));
    /* Jobs still running stay in running/ and are requeued at the next start; their threads
     * cannot be cancelled, so the process leaves now. */
    d->exit_code = 0;
    _exit(0);
}

static void begin_shutdown(pr_daemon *d, const char *why)
{
    if (d->stopping)
        return;
    d->stopping = true;
    pr_dlog("info", "daemon.stopping",
            json_pack("{s:s,s:I,s:I}", "signal", why, "running", (json_int_t)d->nrunning, "queued",
                      (json_int_t)d->q_len));
    if (d->httpd) {
        pr_httpd_close(d->httpd);
        d->httpd = NULL;
    }
    if (d->watcher) {
        pr_watcher_close(d->watcher);
        d->watcher = NULL;
    }
    if (d->fs_event_on)
        (void)uv_fs_event_stop(&d->fs_event);
    (void)uv_timer_stop(&d->scan_timer);
    (void)uv_timer_stop(&d->prune_timer);
    (void)uv_timer_stop(&d->defer_timer);
    if (d->nrunning > 0)
        (void)uv_timer_start(&d->grace_timer, on_grace_timer, (uint64_t)d->cfg->grace_s * 1000u, 0);
    maybe_exit(d);
}

static void on_signal(uv_signal_t *s, int signum)
{
    pr_daemon *d = s->data;
    if (signum == SIGHUP) {
        pr_config *nc = NULL;
        pr_error err = { 0 };
        if (pr_config_load(&nc, d->cfg->path, &err) < 0) {
            pr_dlog("error", "config.reload_failed", json_pack("{s:s}", "message", err.msg));
            return;
        }
        /* Tokens (and their rates) and the challenge list are reloaded; the listen address,
         * spool and workers need a restart. A token kept across the reload keeps its rate
         * bucket, so a reload never resets a submitter's 429. */
        pr_rate_carry(nc, d->cfg);
        pr_cfg_token *old = d->cfg->tokens;
        size_t nold = d->cfg->ntokens;
        d->cfg->tokens = nc->tokens;
        d->cfg->ntokens = nc->ntokens;
        nc->tokens = old;
        nc->ntokens = nold;
        pr_config_free(nc);
        (void)pr_daemon_load_challenges(d, &err);
        pr_dlog("info", "config.reloaded",
                json_pack("{s:I}", "tokens", (json_int_t)d->cfg->ntokens));
        return;
    }
    begin_shutdown(d, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* ---- start ---- */

static int daemon_start(pr_daemon *d, pr_error *err)
{
    int rc = pr_spool_init(d->cfg->spool, err);
    if (rc < 0)
        return rc;
    /* Every box a job starts, on any worker thread, is watched by this loop: a uv_poll on its
     * descriptors and a uv_timer for its next limit check. */
    rc = pr_boxwatch_attach(&d->boxwatch, d->loop, err);
    if (rc < 0)
        return rc;
    if (pr_mkdir_p(d->cfg->cache) < 0 || pr_mkdir_p(d->cfg->work) < 0)
        return pr_error_sys(err, "mkdir cache/work");
    d->slots = pr_calloc((size_t)d->cfg->workers, sizeof(pr_worker *));
    if (!d->slots)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    rc = pr_daemon_load_challenges(d, err);
    if (rc < 0)
        return rc;
    clean_leftovers(d);
    if (d->cfg->queue) {
        /* Before running/ is recovered: the queue drops there the unfinished jobs it took. */
        rc = pr_redisq_new(&d->redisq, d, d->cfg->queue, err);
        if (rc < 0)
            return rc;
    }
    rc = recover_spool(d);
    if (rc < 0)
        return pr_error_sys(err, "spool: running/");
    pr_httpd_opts ho;
    memset(&ho, 0, sizeof(ho));
    ho.body_bytes = d->cfg->body_bytes;
    ho.header_bytes = d->cfg->header_bytes;
    ho.max_connections = d->cfg->max_connections;
    ho.request_timeout_s = d->cfg->request_timeout_s;
    ho.idle_timeout_s = d->cfg->idle_timeout_s;
    ho.handler = pr_daemon_http;
    ho.payload = d;
    ho.metrics = &d->metrics;
    rc = pr_httpd_new(&d->httpd, d->loop, d->cfg->listen_host, d->cfg->listen_port, &ho, err);
    if (rc < 0)
        return rc;
    rc = pr_callbacks_new(&d->callbacks, d->loop, &d->metrics);
    if (rc < 0)
        return pr_error_set(err, rc, "out of memory");
    pr_daemon_callbacks_resend(d); /* callbacks pending when the daemon stopped */
    (void)uv_timer_init(d->loop, &d->scan_timer);
    (void)uv_timer_init(d->loop, &d->prune_timer);
    d->prune_timer.data = d;
    (void)uv_timer_init(d->loop, &d->defer_timer);
    (void)uv_timer_init(d->loop, &d->grace_timer);
    d->scan_timer.data = d->defer_timer.data = d->grace_timer.data = d;
    char inc[4096];
    (void)snprintf(inc, sizeof(inc), "%s/incoming", d->cfg->spool);
    if (uv_fs_event_init(d->loop, &d->fs_event) == 0) {
        d->fs_event.data = d;
        d->fs_event_on = uv_fs_event_start(&d->fs_event, on_fs_event, inc, 0) == 0;
    }
    uint64_t scan_ms = (uint64_t)d->cfg->scan_interval_s * 1000u;
    (void)uv_timer_start(&d->scan_timer, on_scan_timer, scan_ms, scan_ms);
    /* Mirrors of repositories not graded for cache_max_age_h go: at start, then hourly. */
    (void)uv_timer_start(&d->prune_timer, on_prune_timer, 0, 3600u * 1000u);
    (void)uv_signal_init(d->loop, &d->sig_term);
    (void)uv_signal_init(d->loop, &d->sig_int);
    (void)uv_signal_init(d->loop, &d->sig_hup);
    d->sig_term.data = d->sig_int.data = d->sig_hup.data = d;
    (void)uv_signal_start(&d->sig_term, on_signal, SIGTERM);
    (void)uv_signal_start(&d->sig_int, on_signal, SIGINT);
    (void)uv_signal_start(&d->sig_hup, on_signal, SIGHUP);
    if (d->cfg->nwatches > 0) {
        rc = pr_watcher_new(&d->watcher, d->loop, d, d->cfg, err);
        if (rc < 0)
            return rc;
    }
    pr_dlog("info", "daemon.listening",
            json_pack("{s:s,s:i,s:i,s:s,s:I}", "host", d->cfg->listen_host, "port",
                      pr_httpd_port(d->httpd), "workers", d->cfg->workers, "spool", d->cfg->spool,
                      "requeued", (json_int_t)d->q_len));
    scan_incoming(d);
    return 0;
}

int pr_daemon_run(const char *config_path, pr_error *err);

int pr_daemon_run(const char *config_path, pr_error *err)
{
    pr_daemon d;
    uv_loop_t loop;
    int rc;
    memset(&d, 0, sizeof(d));
    rc = pr_config_load(&d.cfg, config_path, err);
    if (rc < 0)
        return rc;
    /* The threadpool is sized before its first use: one thread per worker plus room for
     * git ls-remote, DNS and file work. */
    char tp[16];
    (void)snprintf(tp, sizeof(tp), "%d", d.cfg->workers + 2);
    (void)setenv("UV_THREADPOOL_SIZE", tp, 1); /* NOLINT(concurrency-mt-unsafe): no threads yet */
    rc = pr_runtimes_load(&d.runtimes, d.cfg->runtimes, err);
    if (rc < 0) {
        pr_config_free(d.cfg);
        return rc;
    }
    rc = uv_loop_init(&loop);
    if (rc < 0) {
        pr_runtimes_free(d.runtimes);
        pr_config_free(d.cfg);
        return pr_error_set(err, PR_ESYS, "uv_loop_init: %s", uv_strerror(rc));
    }
    d.loop = &loop;
    d.exit_code = 0;
    d.fault_candidate = getenv("PROCTOR_FAULT_CANDIDATE"); /* NOLINT(concurrency-mt-unsafe) */
    rc = daemon_start(&d, err);
    if (rc == 0)
        (void)uv_run(&loop, UV_RUN_DEFAULT);
    /* Close every handle, then let the close callbacks run. */
    if (d.httpd)
        pr_httpd_close(d.httpd);
    if (d.watcher)
        pr_watcher_close(d.watcher);
    if (d.callbacks)
        pr_callbacks_close(d.callbacks);
    pr_redisq_close(d.redisq);    /* before the walk: its handles close themselves */
    pr_boxwatch_stop(d.boxwatch); /* before the walk: its handle frees it when closed */
    uv_walk(&loop, close_walk_cb, NULL);
    (void)uv_run(&loop, UV_RUN_DEFAULT);
    (void)uv_loop_close(&loop);
    while (d.q_len > 0)
        pr_free(queue_pop(&d));
    pr_free(d.queue);
    pr_free(d.slots);
    json_decref(d.challenges);
    pr_runtimes_free(d.runtimes);
    pr_config_free(d.cfg);
    return rc < 0 ? rc : d.exit_code;
}
