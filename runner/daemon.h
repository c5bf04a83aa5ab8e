#ifndef PROCTOR_RUNNER_DAEMON_H
#define PROCTOR_RUNNER_DAEMON_H
/* Private to the daemon (`proctor serve`): configuration, the spool directory, the HTTP/1.1
 * server, metrics, callbacks and git watch. Everything here runs on the one libuv loop thread
 * unless a comment says otherwise. */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "proctor/buf.h"
#include "proctor/error.h"

/* ---- configuration (runner/config.c) ---- */

typedef enum pr_role {
    PR_ROLE_SUBMITTER = 1,
    PR_ROLE_REVIEWER = 2,
    PR_ROLE_CANDIDATE = 3
} pr_role;

typedef struct pr_cfg_token {
    char *token; /* owned; the bearer secret */
    char *name;  /* owned; a candidate token sees submissions whose candidate == name */
    pr_role role;
    double per_minute; /* submissions refilled per minute; 0 = unlimited */
    double burst;      /* bucket size */
    double bucket;     /* tokens left (runtime state) */
    uint64_t last_ns;  /* last refill, monotonic ns (runtime state) */
} pr_cfg_token;

typedef struct pr_cfg_watch {
    char *repo, *branch, *challenge, *candidate; /* owned; branch may be NULL (HEAD) */
    unsigned interval_s;
} pr_cfg_watch;

typedef struct pr_config {
    char *path;               /* owned; the file it was read from */
    char *listen_host;        /* owned; default 127.0.0.1 */
    int listen_port;          /* default 8080; 0 = any free port (logged) */
    char *spool, *challenges; /* owned, required */
    char *cache, *work;       /* owned; default <spool>/cache, <spool>/work */
    char *runtimes;           /* owned; runtimes file, NULL = built-in default */
    char *callback_secret;    /* owned, may be NULL (callbacks are then unsigned) */
    int workers;              /* parallel jobs; default: number of cores */
    int parallel_per_job;     /* sandboxes one job may run at once; default 1 */
    pr_cfg_token *tokens;     /* owned */
    size_t ntokens;
    pr_cfg_watch *watches; /* owned */
    size_t nwatches;
    uint64_t repo_bytes, repo_files; /* limits on the checked-out tree */
    size_t queue_length;             /* jobs queued or running before 503 */
    size_t body_bytes;               /* request body cap (413) */
    size_t header_bytes;             /* request line + headers cap (431) */
    unsigned request_timeout_s;      /* a request must complete within this (slowloris) */
    unsigned idle_timeout_s;         /* keep-alive idle connection lifetime */
    size_t max_connections;
    unsigned grace_s;            /* SIGTERM: running jobs may finish for this long */
    uint64_t min_free_mb;        /* a job is deferred while the work dir has less free space */
    int max_attempts;            /* infrastructure failures retried up to this many attempts */
    unsigned scan_interval_s;    /* safety-net scan of spool/incoming */
    unsigned cache_max_age_h;    /* git mirrors unused this long are pruned (hourly); 0 = never */
    struct pr_redisq_cfg *queue; /* owned; "queue": the shared Redis stream; NULL = spool only */
    char *pg_host;  /* owned; "postgres.host": socket directory or host name; NULL = not set */
    int pg_port;    /* "postgres.port", default 5432 */
    char *pg_admin; /* owned; "postgres.admin", default "postgres" */
} pr_config;

/** Reads and validates a config file; messages name the field ("tokens[1].role: ..."). */
int pr_config_load(pr_config **out, const char *path, pr_error *err);
/** Same from a JSON text (path is used only for messages and relative paths). */
int pr_config_parse(pr_config **out, const char *text, size_t len, const char *path, pr_error *err);
void pr_config_free(pr_config *c);
/** True for a pack id: 1..64 of [A-Za-z0-9_.-], not starting with '.'. */
bool pr_config_pack_id_valid(const char *id);

/* ---- token bucket (runner/config.c) ---- */

/** Takes one submission from the token's bucket at now_ns. Returns 0 when allowed, else the
 * number of seconds (>= 1) after which one will be available. */
unsigned pr_rate_take(pr_cfg_token *t, uint64_t now_ns);
/** On reload: every token of `to` whose token string is also in `from` keeps that token's
 * bucket state (tokens left, last refill), clamped to its new burst; the new rate applies from
 * the last refill on. Other tokens start with a full bucket. */
void pr_rate_carry(pr_config *to, const pr_config *from);

/* ---- spool directory (runner/spool.c) ---- */

/* A normalised job: the file content of spool/{incoming,running,done}/<id>.json. */
typedef struct pr_spool_job {
    char id[65];
    char *repo, *ref, *challenge, *candidate, *callback_url; /* owned; ref etc. may be NULL */
    char queued_at[32];
    int attempts; /* attempts already made */
    char *source; /* "api", "spool", "watch" */
} pr_spool_job;

/** Creates spool/{incoming,running,done,reports,rejected,callbacks,tmp}. */
int pr_spool_init(const char *spool, pr_error *err);
/** Parses and validates a job object (from a dropped file or an API body). Fields: repo
 * (string, required), ref, challenge (pack id, required), candidate, callback_url (http://),
 * id (optional, checked), queued_at, attempts, source. Messages name the field. */
int pr_spool_job_parse(pr_spool_job *out, const json_t *obj, pr_error *err);
void pr_spool_job_clear(pr_spool_job *j);
json_t *pr_spool_job_json(const pr_spool_job *j);
/** Writes a JSON value to path atomically (tmp in the same dir, fsync, rename, dir fsync). */
int pr_spool_write_json(const char *path, const json_t *v, pr_error *err);
/** Reads a small file whole (at most max bytes, else PR_ELIMIT). *out is pr_free'd. */
int pr_spool_read_file(char **out, size_t *len_out, const char *path, size_t max, pr_error *err);
/** Reads and parses a job file of the spool (capped). */
int pr_spool_job_load(pr_spool_job *out, const char *path, pr_error *err);
/** Parses an RFC 3339 time ("2026-11-25T15:01:55Z", with optional fraction and "+hh:mm"
 * offset) into ns since the epoch. 0 or PR_EINVAL. Any thread. */
int pr_spool_time_parse(int64_t *out_ns, const char *rfc3339);

/* ---- metrics (runner/metrics.c) ---- */

typedef struct pr_metrics {
    uint64_t http_by_code[600];
    uint64_t jobs_graded, jobs_error, jobs_retried, jobs_deferred, sandbox_failures;
    uint64_t submissions_accepted, callbacks_ok, callbacks_failed, jobs_rejected;
    uint64_t verdicts[10]; /* AC WA TLE WLE MLE OLE RE SV IE SKIP */
    uint64_t dur_buckets[12];
    double dur_sum;
    uint64_t dur_count;
    uint64_t spool_incoming_waiting; /* gauge: files left in incoming/ for want of room in the
                                      * queue (limits.queue_length), as of the last scan */
} pr_metrics;

void pr_metrics_http(pr_metrics *m, int code);
/** Counts a final report: status, verdicts, duration (seconds), sandbox failures. */
void pr_metrics_job(pr_metrics *m, const json_t *report, double seconds);
/** Prometheus text exposition into b. */
int pr_metrics_render(const pr_metrics *m, size_t queued, size_t running, size_t connections,
                      pr_buf *b);

/* ---- HTTP/1.1 server (runner/httpd.c) ---- */

typedef struct pr_httpd pr_httpd;
typedef struct pr_http_conn pr_http_conn;

typedef struct pr_http_req {
    int method;          /* enum http_method */
    char *path;          /* owned by the connection; path part of the URL, not decoded */
    char *query;         /* owned by the connection; may be NULL */
    char *authorization; /* owned by the connection; may be NULL */
    char *content_type;  /* may be NULL */
    char *body;          /* NUL-terminated; may be NULL */
    size_t body_len;
} pr_http_req;

/* Handler: called on the loop thread once per complete request; must call pr_http_respond
 * exactly once before returning. */
typedef void (*pr_http_handler)(pr_http_conn *c, const pr_http_req *req, void *payload);

typedef struct pr_httpd_opts {
    size_t body_bytes, header_bytes, max_connections;
    unsigned request_timeout_s, idle_timeout_s;
    pr_http_handler handler;
    void *payload;
    pr_metrics *metrics; /* counts responses by code; may be NULL */
} pr_httpd_opts;

int pr_httpd_new(pr_httpd **out, uv_loop_t *loop, const char *host, int port,
                 const pr_httpd_opts *opts, pr_error *err);
/** The port actually bound (useful with port 0). */
int pr_httpd_port(const pr_httpd *h);
size_t pr_httpd_connections(const pr_httpd *h);
/** Updates caps (SIGHUP); existing connections keep theirs. */
void pr_httpd_set_opts(pr_httpd *h, const pr_httpd_opts *opts);
/** Stops listening and closes every connection; the struct is freed once all handles have
 * closed (after the loop has run). */
void pr_httpd_close(pr_httpd *h);

/** Sends a response. extra_headers is "Name: value\r\n"... or NULL. body is copied. */
void pr_http_respond(pr_http_conn *c, int status, const char *content_type,
                     const char *extra_headers, const char *body, size_t len);
/** Called by a handler that will respond later (after a round trip to Redis, say): the handler
 * returns without responding, and exactly one pr_http_respond* call on c follows from the
 * loop thread. The connection stays valid until then even if the client goes away (the
 * response is then dropped); no further request of it is read or parsed until then. The
 * request's strings are not valid after the handler returns: copy what is needed. */
void pr_http_defer(pr_http_conn *c);
/** Convenience: JSON body (the value is not consumed). */
void pr_http_respond_json(pr_http_conn *c, int status, const char *extra_headers, const json_t *v);
/** {"error": msg} */
void pr_http_respond_error(pr_http_conn *c, int status, const char *extra_headers, const char *msg);

/* ---- callbacks (runner/callback.c) ---- */

typedef struct pr_callbacks pr_callbacks;
int pr_callbacks_new(pr_callbacks **out, uv_loop_t *loop, pr_metrics *m);
/** Queues POST of body to url (http:// only), signed with secret when non-NULL. The body is
 * copied. Retries with exponential backoff; never blocks the loop. */
int pr_callback_post(pr_callbacks *cb, const char *url, const char *secret, const char *job_id,
                     const char *body, size_t len, pr_error *err);
/** Hex HMAC-SHA256 of data (65 bytes out). */
int pr_hmac_sha256_hex(char out[65], const char *key, const void *data, size_t len);
/** Parses http://host[:port][/path]. host_out >= 256, path_out >= 1024. */
int pr_callback_url_parse(const char *url, char *host_out, size_t hostsz, int *port_out,
                          char *path_out, size_t pathsz);
size_t pr_callbacks_pending(const pr_callbacks *cb);
void pr_callbacks_close(pr_callbacks *cb);
/** pr_callback_post, persisted in the spool: record_path (NULL = not persisted) holds the
 * record {id, event, url, attempts}, written by the caller before; it is rewritten with the
 * attempt count after each failed attempt and removed (and logged) once the callback is
 * delivered or given up; a shutdown leaves it for the next start. attempts_done counts attempts
 * made before a restart (at least one more is made). */
int pr_callback_post_record(pr_callbacks *cb, const char *url, const char *secret,
                            const char *job_id, const char *body, size_t len,
                            const char *record_path, int attempts_done, pr_error *err);
/** Writes a pending-callback record atomically. */
int pr_callback_record_write(const char *path, const char *job_id, const char *event,
                             const char *url, int attempts, pr_error *err);
/** Reads and checks a record; *url_out is the caller's (pr_free). attempts clamped to 0..5. */
int pr_callback_record_load(const char *path, char id_out[65], char **url_out, int *attempts_out,
                            pr_error *err);

/* ---- daemon core (runner/daemon.c) ---- */

typedef struct pr_daemon pr_daemon;
typedef struct pr_watcher pr_watcher;
struct pr_runtimes;
struct pr_worker;

struct pr_daemon {
    uv_loop_t *loop;
    pr_config *cfg;               /* owned */
    struct pr_runtimes *runtimes; /* owned, may be NULL */
    pr_httpd *httpd;              /* owned (closed at shutdown) */
    pr_callbacks *callbacks;      /* owned */
    pr_watcher *watcher;          /* owned */
    struct pr_redisq *redisq;     /* owned; the shared queue, NULL without "queue" */
    struct pr_boxwatch *boxwatch; /* owned; the loop watches every sandbox box */
    pr_metrics metrics;
    json_t *challenges; /* owned; {id: {id, version, title, kind, tests, digest}} */
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_fs_event_t fs_event;
    uv_timer_t scan_timer, defer_timer, grace_timer, prune_timer;
    uv_work_t prune_work; /* one cache prune at a time on the threadpool */
    bool prune_busy;
    unsigned prune_removed;
    char **queue; /* owned ring of job ids (each owned) waiting for a worker */
    size_t q_head, q_len, q_cap;
    struct pr_worker **slots; /* owned array [workers]; NULL = free */
    size_t nrunning;
    bool stopping;
    bool fs_event_on;
    bool spool_backlog; /* files wait in incoming/ for room: rescan when a job finishes */
    int exit_code;
    const char *fault_candidate; /* test hook: $PROCTOR_FAULT_CANDIDATE, jobs that fail as IE */
};

/** HTTP entry point (runner/daemon_api.c). */
void pr_daemon_http(pr_http_conn *c, const pr_http_req *req, void *payload);
/** Job id of the job in a worker slot, or NULL. */
bool pr_daemon_is_running(const pr_daemon *d, const char *id);
/** Builds a path inside the spool: <spool>/<sub>/<id>.json. */
int pr_daemon_spool_path(const pr_daemon *d, char *out, size_t outsz, const char *sub,
                         const char *id);
/** Whether a report shows an infrastructure failure worth another attempt: status "error" at
 * a stage that is not final (final: fetch of a missing repository or ref, unknown challenge or
 * runtime) returns 1; a graded report with a sandbox internal error (IE) in the build or a test
 * returns 2; else 0. msg gets a one-line description. Any thread. */
int pr_daemon_infra_failure(const json_t *report, char *msg, size_t msgsz);
/** A complete proctor.report/1 of status "error" for a job the pipeline could not run (unknown
 * pack, pipeline failure). New reference, NULL on OOM. Any thread. */
json_t *pr_daemon_error_report(const pr_spool_job *job, const char *stage, const char *msg,
                               uint64_t elapsed_ms);
/** The stage ("starting", "fetch", "build", "test") of a running job, or NULL. */
const char *pr_daemon_job_stage(const pr_daemon *d, const char *id);
/** Reloads the challenge list from cfg->challenges. */
int pr_daemon_load_challenges(pr_daemon *d, pr_error *err);
/** A new random job id (26 chars of [0-9a-z]). */
void pr_daemon_new_id(char *out, size_t outsz);
bool pr_daemon_id_valid(const char *id);
/** Candidate view of a report. New reference. */
json_t *pr_daemon_redact(const json_t *report);

/** Emits one JSON object per line on stderr: {"ts", "level", "event", ...fields}. fields is
 * consumed (may be NULL). */
void pr_dlog(const char *level, const char *event, json_t *fields);

/* ---- callbacks that survive a crash (runner/callback_spool.c) ---- */

/** Records the job's pending callback in spool/callbacks/<id>.json (before the job moves to
 * done/). 0, or an error (logged). */
int pr_daemon_callback_record(pr_daemon *d, const pr_spool_job *job);
/** Sends the job.finished callback of report; persisted: through its record. */
void pr_daemon_callback_send(pr_daemon *d, const char *id, const char *url, const json_t *report,
                             bool persisted, int attempts_done);
/** At start, for a job of running/ whose report exists: records its callback unless recorded. */
int pr_daemon_callback_recover(pr_daemon *d, const char *id);
/** At start: sends every recorded callback again; drops records of unknown jobs (logged). */
void pr_daemon_callbacks_resend(pr_daemon *d);

/** Writes a job into spool/incoming (atomically) and picks it up. Returns 0, PR_ELIMIT when
 * the queue is full, or another error. The job's id is set when absent. */
int pr_daemon_submit(pr_daemon *d, pr_spool_job *job, pr_error *err);
/** Queues a job whose file is in spool/running/ (taken from the shared queue) and dispatches.
 * Returns 0 or PR_ENOMEM. */
int pr_daemon_enqueue(pr_daemon *d, const char *id);

/* ---- git watch (runner/watch.c) ---- */

int pr_watcher_new(pr_watcher **out, uv_loop_t *loop, pr_daemon *d, const pr_config *cfg,
                   pr_error *err);
void pr_watcher_close(pr_watcher *w);

#endif
