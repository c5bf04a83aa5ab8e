#ifndef PROCTOR_REDISQ_H
#define PROCTOR_REDISQ_H
/* The shared job queue of several `proctor serve` daemons: a Redis stream read through one
 * consumer group (DESIGN.md "Daemon", scale-out). Every accepted job is added to the stream;
 * each daemon reads entries as it has free workers (a blocking read on a second connection,
 * answered as soon as an entry is added), runs them through its own spool, stores
 * the final report in Redis and acknowledges the entry. Entries of a dead daemon are reclaimed
 * (XAUTOCLAIM) after claim_idle_s. Everything runs on the daemon's libuv loop thread, through
 * hiredis's asynchronous API; nothing blocks the loop. */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "proctor/buf.h"
#include "proctor/error.h"

/* The "queue" object of the daemon's configuration. */
typedef struct pr_redisq_cfg {
    char *host;            /* owned; an IP address; NULL with a unix socket */
    int port;              /* TCP port */
    char *unix_path;       /* owned; "unix:/path" in the config; NULL with TCP */
    char *stream;          /* owned; default "proctor:jobs"; also the prefix of the other keys */
    char *group;           /* owned; default "proctor" */
    char *consumer;        /* owned; NULL = "<hostname>-<pid>" */
    unsigned claim_idle_s; /* an entry unacknowledged this long is taken over; default 300 */
    char *username;        /* owned; Redis ACL user for AUTH, may be NULL */
    char *password;        /* owned; AUTH secret, may be NULL (then no AUTH); never logged */
} pr_redisq_cfg;

/** Parses the "queue" value of the configuration; messages name the field ("queue.redis:
 * ..."). v NULL (no "queue" key) gives *out = NULL and 0: the spool alone. Any thread. */
int pr_redisq_cfg_parse(pr_redisq_cfg **out, const json_t *v, pr_error *err);
/** NULL-safe. */
void pr_redisq_cfg_free(pr_redisq_cfg *c);

struct pr_daemon;
struct pr_http_conn;
typedef struct pr_redisq pr_redisq;

/** Starts the queue for a daemon whose spool exists (call before the spool's running/ is
 * recovered): jobs of running/ that this spool took from the stream and never finished are
 * dropped there (their entries are reclaimed through the stream), and the connection is
 * opened in the background (retried with backoff while Redis is unreachable). Loop thread. */
int pr_redisq_new(pr_redisq **out, struct pr_daemon *d, const pr_redisq_cfg *cfg, pr_error *err);
/** Connected, with the consumer group in place. */
bool pr_redisq_ready(const pr_redisq *q);
/** Whether a new submission must be refused (the API's 503): Redis unreachable, or the shared
 * backlog (entries in the stream, as of the last probe, plus the ones on their way) at limit.
 * err gets the reason. */
bool pr_redisq_refuses(const pr_redisq *q, size_t limit, pr_error *err);
/** Adds a job of spool/incoming to the stream. job is the normalised job object (with its
 * id); the file at incoming_path is removed once Redis has it. While Redis is unreachable, or
 * while the same id is on its way already, nothing happens: the spool's next scan tries
 * again. */
void pr_redisq_send(pr_redisq *q, const char *incoming_path, const json_t *job);
/** A job taken from the stream has its final report in spool/reports: stores it in Redis
 * (the first report stored for an id wins; a later one is replaced by it locally), marks the
 * job done and acknowledges the entry. Retried after a reconnection. */
void pr_redisq_finished(pr_redisq *q, const char *id);
/** GET /v1/submissions/{id} for an id this daemon does not know: answers from Redis (the
 * status, and the report once there is one). role is a pr_role, name the token's name (a
 * candidate sees only its own submissions, redacted). Responds exactly once, possibly later. */
void pr_redisq_http_get(pr_redisq *q, struct pr_http_conn *c, const char *id, int role,
                        const char *name);
/** Appends the queue's Prometheus lines (connection state, stream length, entries pending in
 * the group, jobs taken by this daemon). */
int pr_redisq_metrics(const pr_redisq *q, pr_buf *b);
/** Entries taken by this daemon and not acknowledged yet. */
size_t pr_redisq_taken(const pr_redisq *q);
/** Closes both connections, the blocking read's first (pending requests get their failure
 * callbacks now; replies still due on the command connection are awaited a few seconds
 * before), and the timers; the struct is freed once the loop has run the close callbacks.
 * NULL-safe. */
void pr_redisq_close(pr_redisq *q);

#endif
