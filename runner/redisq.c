/* The shared job queue in Redis Streams (include/proctor/redisq.h). Keys, for a stream S:
 *   S            the stream; one entry per accepted job: fields "id" and "job" (JSON);
 *                entries are deleted once acknowledged, so its length is the queue depth
 *   S:jobs       hash id -> job JSON with "state" (queued, running, done) and "node"
 *   S:reports    hash id -> final report JSON (HSETNX: the first report stored wins)
 * Local state, under <spool>/redisq/taken/: one file per entry this daemon took (its id as the
 * file name, the stream entry id as the content), removed when the entry is acknowledged. The
 * job itself runs through the spool as before (running/ -> done/, reports/). */
#include "proctor/redisq.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <uv.h>

#include "daemon.h"
#include "proctor/common.h"
#include "proctor/job.h"
#include "proctor/report.h"

#define JOB_TEXT_MAX    ((size_t)64 * 1024)
#define REPORT_TEXT_MAX ((size_t)32 << 20)
#define NAME_MAX_LEN    200
#define BLOCK_MS        5000u /* a blocking read of new entries waits this long at most */
#define STATUS_MS       2000u /* stream length probe, doubling as a liveness check */
#define HUNG_MS         8000u /* a connection with a command unanswered this long is dropped */
/* The read connection waits BLOCK_MS by design; past this it is dropped as hung. */
#define READ_HUNG_MS   (BLOCK_MS + 3000u)
#define CONNECT_MS     5000u /* connection attempts give up after this */
#define BACKOFF_MIN_MS 200u
#define BACKOFF_MAX_MS 5000u
#define FLUSH_MS       3000u /* at exit, replies still due are awaited this long */

/* ---- configuration ---- */

/* Secrets are wiped before their memory goes back. */
static void forget_secret(char *s)
{
    if (!s)
        return;
    explicit_bzero(s, strlen(s));
    pr_free(s);
}

void pr_redisq_cfg_free(pr_redisq_cfg *c)
{
    if (!c)
        return;
    pr_free(c->host);
    pr_free(c->unix_path);
    pr_free(c->stream);
    pr_free(c->group);
    pr_free(c->consumer);
    pr_free(c->username);
    forget_secret(c->password);
    pr_free(c);
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > NAME_MAX_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= 0x20 || ch >= 0x7f)
            return false;
    }
    return true;
}

static int cfg_name(char **out, const json_t *obj, const char *key, const char *def, pr_error *err)
{
    const json_t *v = json_object_get(obj, key);
    const char *s = def;
    if (v) {
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
            !name_ok(json_string_value(v)))
            return pr_error_set(err, PR_EINVAL,
                                "queue.%s: expected 1..%d printable characters without spaces", key,
                                NAME_MAX_LEN);
        s = json_string_value(v);
    }
    if (!s)
        return 0;
    *out = pr_strdup(s);
    return *out ? 0 : pr_error_set(err, PR_ENOMEM, "out of memory");
}

static int cfg_address(pr_redisq_cfg *c, const json_t *v, pr_error *err)
{
    static const char expect[] =
        "queue.redis: expected \"IP:port\", \"[IPv6]:port\" or \"unix:/absolute/path\"";
    if (!v)
        return pr_error_set(err, PR_EINVAL, "queue.redis: missing (%s)", expect + 13);
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return pr_error_set(err, PR_EINVAL, "%s", expect);
    const char *s = json_string_value(v);
    if (strncmp(s, "unix:", 5) == 0) {
        struct sockaddr_un sun;
        if (s[5] != '/' || strlen(s + 5) >= sizeof(sun.sun_path))
            return pr_error_set(err, PR_EINVAL,
                                "queue.redis: a unix socket needs an absolute "
                                "path of fewer than 108 bytes");
        c->unix_path = pr_strdup(s + 5);
        return c->unix_path ? 0 : pr_error_set(err, PR_ENOMEM, "out of memory");
    }
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return pr_error_set(err, PR_EINVAL, "%s, got \"%.60s\"", expect, s);
    char host[64];
    size_t hl = (size_t)(colon - s);
    const char *h = s;
    if (s[0] == '[') {
        if (hl < 3 || s[hl - 1] != ']')
            return pr_error_set(err, PR_EINVAL, "%s, got \"%.60s\"", expect, s);
        h = s + 1;
        hl -= 2;
    }
    if (hl >= sizeof(host))
        return pr_error_set(err, PR_EINVAL, "queue.redis: host too long");
    memcpy(host, h, hl);
    host[hl] = '\0';
    /* A host name would need a resolver call, which hiredis makes blocking; an address (or
     * localhost) keeps the loop free. */
    if (strcmp(host, "localhost") == 0)
        (void)snprintf(host, sizeof(host), "127.0.0.1");
    unsigned char bin[16];
    if (inet_pton(AF_INET, host, bin) != 1 && inet_pton(AF_INET6, host, bin) != 1)
        return pr_error_set(err, PR_EINVAL,
                            "queue.redis: \"%s\" is not an IP address (host names are not "
                            "resolved; use an address, localhost or unix:/path)",
                            host);
    char *end = NULL;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno != 0 || end == colon + 1 || *end != '\0' || port < 1 || port > 65535)
        return pr_error_set(err, PR_EINVAL, "queue.redis: port must be 1..65535");
    c->host = pr_strdup(host);
    c->port = (int)port;
    return c->host ? 0 : pr_error_set(err, PR_ENOMEM, "out of memory");
}

int pr_redisq_cfg_parse(pr_redisq_cfg **out, const json_t *v, pr_error *err)
{
    static const char *const keys[] = { "redis",        "stream",   "group",    "consumer",
                                        "claim_idle_s", "username", "password", NULL };
    pr_redisq_cfg *c = NULL;
    int rc;
    *out = NULL;
    if (!v)
        return 0;
    if (!json_is_object(v))
        return pr_error_set(err, PR_EINVAL,
                            "queue: expected an object {redis, stream, group, consumer, "
                            "claim_idle_s}");
    const char *key = pr_json_unknown_key(v, keys);
    if (key) {
        char ex[64];
        pr_text_log_excerpt(ex, sizeof(ex), key, strlen(key));
        return pr_error_set(err, PR_EINVAL, "queue.%s: unknown key", ex);
    }
    c = pr_calloc(1, sizeof(*c));
    if (!c)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    rc = cfg_address(c, json_object_get(v, "redis"), err);
    if (rc == 0)
        rc = cfg_name(&c->stream, v, "stream", "proctor:jobs", err);
    if (rc == 0)
        rc = cfg_name(&c->group, v, "group", "proctor", err);
    if (rc == 0)
        rc = cfg_name(&c->consumer, v, "consumer", NULL, err);
    if (rc == 0)
        rc = cfg_name(&c->username, v, "username", NULL, err);
    if (rc == 0 && json_object_get(v, "password")) {
        const json_t *pw = json_object_get(v, "password");
        if (!json_is_string(pw) || json_string_length(pw) == 0 || json_string_length(pw) > 4000 ||
            strlen(json_string_value(pw)) != json_string_length(pw))
            rc = pr_error_set(err, PR_EINVAL, "queue.password: expected a non-empty string");
        else {
            c->password = pr_strdup(json_string_value(pw));
            if (!c->password)
                rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        }
    }
    if (rc == 0 && c->username && !c->password)
        rc = pr_error_set(err, PR_EINVAL, "queue.username: needs queue.password");
    if (rc < 0)
        goto cleanup;
    c->claim_idle_s = 300;
    const json_t *ci = json_object_get(v, "claim_idle_s");
    if (ci) {
        if (!json_is_integer(ci) || json_integer_value(ci) < 1 || json_integer_value(ci) > 86400) {
            rc = pr_error_set(err, PR_EINVAL,
                              "queue.claim_idle_s: expected an integer in "
                              "1..86400");
            goto cleanup;
        }
        c->claim_idle_s = (unsigned)json_integer_value(ci);
    }
    *out = c;
    c = NULL;
cleanup:
    pr_redisq_cfg_free(c);
    return rc;
}

/* ---- runtime state ---- */

typedef struct taken_entry {
    char id[65];
    char entry[48]; /* stream entry id "ms-seq" */
    bool finishing; /* the acknowledgement is on its way */
    bool lost;      /* another daemon took the entry over (heartbeat) */
} taken_entry;

typedef struct rq_events rq_events;

/* One connection to Redis. The daemon holds two, to the same address with the same AUTH: the
 * command connection (everything but the blocking read) and the read connection, used only
 * for XREADGROUP ... BLOCK, which stalls its connection until entries come or it times out. */
typedef struct rq_conn {
    struct pr_redisq *q;
    const char *role;      /* "command" or "read", in the log lines */
    bool blocking;         /* the read connection */
    redisAsyncContext *ac; /* NULL while disconnected */
    bool connected;        /* the connection is up */
    bool up;               /* authenticated (the command connection: and the group exists) */
    bool down_logged;      /* the outage is logged once */
    uint64_t connect_started_ns;
    unsigned backoff_ms;
    uv_timer_t t_conn;
} rq_conn;

struct pr_redisq {
    pr_daemon *d;
    uv_loop_t *loop;
    char *host, *unix_path;
    int port;
    char *stream, *group, *consumer;
    char *username, *password; /* owned; AUTH, password NULL = none */
    char *k_jobs, *k_reports;  /* S:jobs, S:reports */
    char taken_dir[4096];
    uint64_t claim_idle_ms;
    rq_conn cmd, rd;
    bool ready; /* the command connection is up and the group exists */
    bool closing;
    uv_timer_t t_claim, t_beat, t_status;
    uv_prepare_t p_stop; /* notices the daemon stopping: the blocking read is cancelled */
    int open_handles;
    bool reading; /* an XAUTOCLAIM is outstanding (command connection) */
    bool blocked; /* a blocking XREADGROUP is outstanding (read connection) */
    uint64_t blocked_sent_ns;
    size_t taking; /* entries received, being checked before they run */
    char claim_cursor[48];
    /* Jobs of spool/incoming whose XADD is outstanding. */
    char (*sending)[65];
    size_t nsending, capsending;
    taken_entry *taken;
    size_t ntaken, captaken;
    /* Liveness: the oldest unanswered probe. */
    uint64_t probe_sent_ns; /* 0 = none outstanding */
    long long stream_len, pending;
};

struct rq_events {
    redisAsyncContext *ac;
    uv_poll_t poll;
    int events;
};

static void schedule_connect(rq_conn *cn);
static void poll_stream(pr_redisq *q);
static void read_own_pending(pr_redisq *q);

static bool free_slot(const pr_redisq *q, size_t *n)
{
    const pr_daemon *d = q->d;
    size_t busy = d->nrunning + d->q_len + q->taking;
    if (d->stopping || q->closing || !q->ready || busy >= (size_t)d->cfg->workers)
        return false;
    *n = (size_t)d->cfg->workers - busy;
    return true;
}

/* ---- the libuv adapter (hiredis's own drops poll errors, which hangs a refused connect) ---- */

static void ev_poll_cb(uv_poll_t *h, int status, int events)
{
    rq_events *p = h->data;
    if (!p->ac)
        return;
    if (status < 0) {
        /* POLLERR: hiredis reads the socket error and fails the connection properly. */
        if (p->ac->c.flags & REDIS_CONNECTED)
            redisAsyncHandleRead(p->ac);
        else
            redisAsyncHandleWrite(p->ac);
        return;
    }
    if (events & UV_READABLE)
        redisAsyncHandleRead(p->ac);
    if (p->ac && (events & UV_WRITABLE))
        redisAsyncHandleWrite(p->ac);
}

static void ev_update(rq_events *p, int add, int del)
{
    p->events = (p->events | add) & ~del;
    if (p->events)
        (void)uv_poll_start(&p->poll, p->events, ev_poll_cb);
    else
        (void)uv_poll_stop(&p->poll);
}

static void ev_add_read(void *privdata)
{
    ev_update(privdata, UV_READABLE, 0);
}

static void ev_del_read(void *privdata)
{
    ev_update(privdata, 0, UV_READABLE);
}

static void ev_add_write(void *privdata)
{
    ev_update(privdata, UV_WRITABLE, 0);
}

static void ev_del_write(void *privdata)
{
    ev_update(privdata, 0, UV_WRITABLE);
}

static void ev_closed(uv_handle_t *h)
{
    pr_free(h->data);
}

static void ev_cleanup(void *privdata)
{
    rq_events *p = privdata;
    p->ac = NULL;
    uv_close((uv_handle_t *)&p->poll, ev_closed);
}

static int ev_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    rq_events *p = pr_calloc(1, sizeof(*p));
    if (!p)
        return -1;
    if (uv_poll_init(loop, &p->poll, ac->c.fd) != 0) {
        pr_free(p);
        return -1;
    }
    p->poll.data = p;
    p->ac = ac;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    ac->ev.data = p;
    return 0;
}

/* ---- commands ---- */

/* Sends one command on a connection; argv strings are NUL-terminated unless lens is given.
 * Returns 0, or -1 when there is no connection (fn is then not called). */
static int conn_cmd(rq_conn *cn, redisCallbackFn *fn, void *priv, int argc, const char **argv,
                    const size_t *lens)
{
    size_t l[16];
    if (!cn->ac || !cn->connected || argc > 16)
        return -1;
    for (int i = 0; i < argc; i++)
        l[i] = lens ? lens[i] : strlen(argv[i]);
    return redisAsyncCommandArgv(cn->ac, fn, priv, argc, argv, l) == REDIS_OK ? 0 : -1;
}

/* A command on the command connection. */
static int rq_cmd(pr_redisq *q, redisCallbackFn *fn, void *priv, int argc, const char **argv,
                  const size_t *lens)
{
    return conn_cmd(&q->cmd, fn, priv, argc, argv, lens);
}

/* The queue of a connection's callback (ac->data is its rq_conn). */
static pr_redisq *ac_queue(const redisAsyncContext *ac)
{
    return ((const rq_conn *)ac->data)->q;
}

static bool reply_is(const redisReply *r, int type)
{
    return r && r->type == type;
}

static void log_reply_error(const char *what, const redisReply *r)
{
    if (r && r->type == REDIS_REPLY_ERROR)
        pr_dlog("error", "queue.command_failed",
                json_pack("{s:s,s:s%}", "command", what, "message", r->str, (size_t)r->len));
}

/* ---- connection ---- */

static void drop_connection(rq_conn *cn, const char *why)
{
    if (!cn->ac)
        return;
    redisAsyncContext *ac = cn->ac;
    bool was_connected = cn->connected;
    pr_dlog("warn", "queue.connection_dropped",
            json_pack("{s:s,s:s}", "connection", cn->role, "reason", why));
    /* Pending callbacks run now with no reply; on_disconnect follows for a live connection. */
    redisAsyncFree(ac);
    if (!was_connected && cn->ac == ac) {
        cn->ac = NULL;
        schedule_connect(cn);
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    rq_conn *cn = ac->data;
    if (!cn || cn->ac != ac)
        return;
    pr_redisq *q = cn->q;
    cn->ac = NULL;
    cn->connected = false;
    cn->up = false;
    if (cn->blocking) {
        q->blocked = false;
    } else {
        q->ready = false;
        q->reading = false;
        q->probe_sent_ns = 0;
    }
    if (!q->closing && !(cn->blocking && q->d->stopping)) {
        pr_dlog("warn", "queue.disconnected",
                json_pack("{s:s,s:s}", "connection", cn->role, "message",
                          status == REDIS_OK ? "closed" : ac->errstr));
        cn->down_logged = true;
        schedule_connect(cn);
    }
}

static void on_group(redisAsyncContext *ac, void *reply, void *priv)
{
    pr_redisq *q = ac_queue(ac);
    const redisReply *r = reply;
    (void)priv;
    if (!r || q->closing)
        return;
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0) {
        pr_dlog("error", "queue.group_failed", json_pack("{s:s}", "message", r->str));
        drop_connection(&q->cmd, "XGROUP CREATE failed");
        return;
    }
    q->cmd.up = true;
    q->ready = true;
    q->cmd.backoff_ms = 0;
    q->cmd.down_logged = false;
    pr_dlog("info", "queue.connected",
            json_pack("{s:s,s:s,s:s}", "stream", q->stream, "group", q->group, "consumer",
                      q->consumer));
    /* Reports finished while Redis was away are stored and acknowledged now. */
    for (size_t i = 0; i < q->ntaken; i++) {
        char rp[4096];
        struct stat st;
        (void)pr_daemon_spool_path(q->d, rp, sizeof(rp), "reports", q->taken[i].id);
        if (!q->taken[i].finishing && lstat(rp, &st) == 0)
            pr_redisq_finished(q, q->taken[i].id);
    }
    read_own_pending(q);
    poll_stream(q);
}

static void create_group(pr_redisq *q)
{
    const char *argv[] = { "XGROUP", "CREATE", q->stream, q->group, "0", "MKSTREAM" };
    if (rq_cmd(q, on_group, NULL, 6, argv, NULL) < 0)
        drop_connection(&q->cmd, "XGROUP CREATE not sent");
}

/* Authenticated (or no AUTH): the command connection makes sure the group exists; the read
 * connection starts reading once the command connection is ready too. */
static void conn_up(rq_conn *cn)
{
    pr_redisq *q = cn->q;
    if (!cn->blocking) {
        create_group(q);
        return;
    }
    cn->up = true;
    cn->backoff_ms = 0;
    cn->down_logged = false;
    pr_dlog("info", "queue.read_connected", json_pack("{s:s}", "consumer", q->consumer));
    poll_stream(q);
}

static void on_auth(redisAsyncContext *ac, void *reply, void *priv)
{
    rq_conn *cn = ac->data;
    const redisReply *r = reply;
    (void)priv;
    if (!r || cn->q->closing)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        /* Redis's message names the problem, never the secret. */
        pr_dlog("error", "queue.auth_failed",
                json_pack("{s:s,s:s%}", "connection", cn->role, "message", r->str, (size_t)r->len));
        drop_connection(cn, "AUTH refused");
        return;
    }
    conn_up(cn);
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    rq_conn *cn = cac->data;
    if (!cn || cn->ac != cac)
        return;
    pr_redisq *q = cn->q;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback. */
        cn->ac = NULL;
        /* The command connection speaks for both: the read one fails alike. */
        if (!cn->down_logged && !q->closing && !cn->blocking)
            pr_dlog("warn", "queue.unreachable", json_pack("{s:s}", "message", cac->errstr));
        cn->down_logged = true;
        if (!q->closing)
            schedule_connect(cn);
        return;
    }
    cn->connected = true;
    if (q->password) {
        const char *argv[] = { "AUTH", q->username ? q->username : q->password, q->password };
        if (conn_cmd(cn, on_auth, NULL, q->username ? 3 : 2, argv, NULL) < 0)
            drop_connection(cn, "AUTH not sent");
        return;
    }
    conn_up(cn);
}

static void connect_now(rq_conn *cn)
{
    pr_redisq *q = cn->q;
    if (cn->ac || q->closing || (cn->blocking && q->d->stopping))
        return;
    redisAsyncContext *ac =
        q->unix_path ? redisAsyncConnectUnix(q->unix_path) : redisAsyncConnect(q->host, q->port);
    if (!ac) {
        schedule_connect(cn);
        return;
    }
    if (ac->err) {
        if (!cn->down_logged && !cn->blocking)
            pr_dlog("warn", "queue.unreachable", json_pack("{s:s}", "message", ac->errstr));
        cn->down_logged = true;
        redisAsyncFree(ac);
        schedule_connect(cn);
        return;
    }
    if (ev_attach(ac, q->loop) < 0) {
        redisAsyncFree(ac);
        schedule_connect(cn);
        return;
    }
    ac->data = cn;
    cn->ac = ac;
    cn->connect_started_ns = pr_now_ns();
    (void)redisAsyncSetConnectCallback(ac, on_connect);
    (void)redisAsyncSetDisconnectCallback(ac, on_disconnect);
}

static void on_conn_timer(uv_timer_t *t)
{
    pr_redisq *q = t->data;
    connect_now(t == &q->rd.t_conn ? &q->rd : &q->cmd);
}

static void schedule_connect(rq_conn *cn)
{
    if (cn->q->closing || (cn->blocking && cn->q->d->stopping))
        return;
    cn->backoff_ms = cn->backoff_ms ? cn->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (cn->backoff_ms > BACKOFF_MAX_MS)
        cn->backoff_ms = BACKOFF_MAX_MS;
    (void)uv_timer_start(&cn->t_conn, on_conn_timer, cn->backoff_ms, 0);
}

/* Closes a connection for good (the daemon stops): pending callbacks run now with no reply. */
static void close_conn(rq_conn *cn)
{
    (void)uv_timer_stop(&cn->t_conn);
    if (!cn->ac)
        return;
    /* A live connection's on_disconnect runs inside and clears cn->ac; a connecting one's
     * does not run. */
    redisAsyncFree(cn->ac);
    cn->ac = NULL;
    cn->connected = false;
    cn->up = false;
}

/* ---- the taken set ---- */

static taken_entry *taken_find(pr_redisq *q, const char *id)
{
    for (size_t i = 0; i < q->ntaken; i++) {
        if (strcmp(q->taken[i].id, id) == 0)
            return &q->taken[i];
    }
    return NULL;
}

static int taken_add(pr_redisq *q, const char *id, const char *entry)
{
    if (q->ntaken == q->captaken) {
        size_t nc = q->captaken ? q->captaken * 2 : 16;
        taken_entry *nt = pr_realloc(q->taken, nc * sizeof(*nt));
        if (!nt)
            return PR_ENOMEM;
        q->taken = nt;
        q->captaken = nc;
    }
    taken_entry *e = &q->taken[q->ntaken++];
    memset(e, 0, sizeof(*e));
    (void)snprintf(e->id, sizeof(e->id), "%s", id);
    (void)snprintf(e->entry, sizeof(e->entry), "%s", entry);
    return 0;
}

static void taken_remove(pr_redisq *q, const char *id)
{
    taken_entry *e = taken_find(q, id);
    if (!e)
        return;
    *e = q->taken[--q->ntaken];
    char p[4200];
    (void)snprintf(p, sizeof(p), "%s/%s", q->taken_dir, id);
    (void)unlink(p);
}

size_t pr_redisq_taken(const pr_redisq *q)
{
    return q ? q->ntaken : 0;
}

static bool sending_has(const pr_redisq *q, const char *id)
{
    for (size_t i = 0; i < q->nsending; i++) {
        if (strcmp(q->sending[i], id) == 0)
            return true;
    }
    return false;
}

static void sending_remove(pr_redisq *q, const char *id)
{
    for (size_t i = 0; i < q->nsending; i++) {
        if (strcmp(q->sending[i], id) == 0) {
            memcpy(q->sending[i], q->sending[--q->nsending], sizeof(q->sending[i]));
            return;
        }
    }
}

/* ---- sending jobs ---- */

typedef struct send_req {
    pr_redisq *q;
    char id[65];
    char path[4096];
    json_t *job; /* owned; for the log line */
} send_req;

static void on_xadd(redisAsyncContext *ac, void *reply, void *priv)
{
    send_req *s = priv;
    pr_redisq *q = s->q;
    const redisReply *r = reply;
    (void)ac;
    sending_remove(q, s->id);
    if (reply_is(r, REDIS_REPLY_STRING)) {
        /* Redis has the job: the local copy is no longer needed. */
        (void)unlink(s->path);
        q->stream_len++; /* until the next probe counts it */
        pr_dlog("info", "job.queued",
                json_pack("{s:s,s:s,s:s?,s:s?,s:s?,s:s%}", "job", s->id, "queue", "redis", "source",
                          json_string_value(json_object_get(s->job, "source")), "challenge",
                          json_string_value(json_object_get(s->job, "challenge")), "candidate",
                          json_string_value(json_object_get(s->job, "candidate")), "entry", r->str,
                          (size_t)r->len));
        poll_stream(q);
    } else {
        log_reply_error("XADD", r);
    }
    json_decref(s->job);
    pr_free(s);
}

static void on_ignore(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    (void)priv;
    log_reply_error("queue", reply);
}

/* Stores the job's status in S:jobs. */
static void set_status(pr_redisq *q, const json_t *job, const char *id, const char *state)
{
    json_t *o = json_deep_copy(job);
    if (!o)
        return;
    (void)json_object_set_new(o, "state", json_string(state));
    (void)json_object_set_new(o, "node", json_string(q->consumer));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!text)
        return;
    const char *argv[] = { "HSET", q->k_jobs, id, text };
    (void)rq_cmd(q, on_ignore, NULL, 4, argv, NULL);
    pr_free(text);
}

void pr_redisq_send(pr_redisq *q, const char *incoming_path, const json_t *job)
{
    const char *id = json_string_value(json_object_get(job, "id"));
    if (!q->ready || !id || sending_has(q, id))
        return;
    if (q->nsending == q->capsending) {
        size_t nc = q->capsending ? q->capsending * 2 : 16;
        char(*ns)[65] = pr_realloc(q->sending, nc * sizeof(*ns));
        if (!ns)
            return;
        q->sending = ns;
        q->capsending = nc;
    }
    char *text = json_dumps(job, JSON_COMPACT);
    send_req *s = pr_calloc(1, sizeof(*s));
    if (!text || !s || strlen(text) > JOB_TEXT_MAX) {
        pr_free(text);
        pr_free(s);
        return;
    }
    s->q = q;
    s->job = json_incref((json_t *)job);
    (void)snprintf(s->id, sizeof(s->id), "%s", id);
    (void)snprintf(s->path, sizeof(s->path), "%s", incoming_path);
    /* The status first, on the same connection, so that a reader that finds the entry finds
     * the status too. */
    set_status(q, job, id, "queued");
    const char *argv[] = { "XADD", q->stream, "*", "id", id, "job", text };
    if (rq_cmd(q, on_xadd, s, 7, argv, NULL) < 0) {
        json_decref(s->job);
        pr_free(s);
    } else {
        (void)snprintf(q->sending[q->nsending++], 65, "%s", id);
    }
    pr_free(text);
}

/* ---- finishing ---- */

typedef struct fin_req {
    pr_redisq *q;
    char id[65];
    char entry[48];
} fin_req;

static void on_report_get(redisAsyncContext *ac, void *reply, void *priv)
{
    fin_req *f = priv;
    const redisReply *r = reply;
    (void)ac;
    if (reply_is(r, REDIS_REPLY_STRING)) {
        /* Another run of this job stored its report first: that one is the job's report,
         * here too. */
        char rp[4096];
        json_t *rep = json_loadb(r->str, r->len, 0, NULL);
        pr_error err = { 0 };
        (void)pr_daemon_spool_path(f->q->d, rp, sizeof(rp), "reports", f->id);
        if (rep && pr_report_write(rp, rep, &err) == 0)
            pr_dlog("warn", "report.superseded",
                    json_pack("{s:s,s:s}", "job", f->id, "reason",
                              "another daemon stored this job's report first"));
        json_decref(rep);
    }
    pr_free(f);
}

static void on_acked(redisAsyncContext *ac, void *reply, void *priv)
{
    fin_req *f = priv;
    pr_redisq *q = f->q;
    const redisReply *r = reply;
    (void)ac;
    taken_entry *e = taken_find(q, f->id);
    if (reply_is(r, REDIS_REPLY_INTEGER)) {
        if (e && strcmp(e->entry, f->entry) == 0)
            taken_remove(q, f->id);
        pr_dlog("info", "queue.acked", json_pack("{s:s,s:s}", "job", f->id, "entry", f->entry));
        poll_stream(q);
    } else {
        log_reply_error("XACK", r);
        if (e)
            e->finishing = false; /* retried at the next connection */
    }
    pr_free(f);
}

/* The report is stored: the entry is acknowledged and deleted. */
static void on_report_set(redisAsyncContext *ac, void *reply, void *priv)
{
    fin_req *f = priv;
    pr_redisq *q = f->q;
    const redisReply *r = reply;
    (void)ac;
    if (!reply_is(r, REDIS_REPLY_INTEGER)) {
        /* Not stored (no connection, or an error such as Redis out of memory): the entry stays
         * pending and the whole step is tried again at the next connection. */
        log_reply_error("HSETNX", r);
        taken_entry *e = taken_find(q, f->id);
        if (e)
            e->finishing = false;
        pr_free(f);
        return;
    }
    if (r->integer == 0) {
        const char *argv[] = { "HGET", q->k_reports, f->id };
        fin_req *g = pr_calloc(1, sizeof(*g));
        if (g) {
            *g = *f;
            if (rq_cmd(q, on_report_get, g, 3, argv, NULL) < 0)
                pr_free(g);
        }
    }
    const char *ack[] = { "XACK", q->stream, q->group, f->entry };
    const char *del[] = { "XDEL", q->stream, f->entry };
    if (rq_cmd(q, on_acked, f, 4, ack, NULL) < 0) {
        taken_entry *e = taken_find(q, f->id);
        if (e)
            e->finishing = false;
        pr_free(f);
        return;
    }
    (void)rq_cmd(q, on_ignore, NULL, 3, del, NULL);
}

/* Stores the report (the first one stored for an id wins), then acknowledges and deletes the
 * entry: the entry never goes while Redis lacks the report. An interruption in between leaves
 * the entry pending with its report stored, which the reclaim path acknowledges without
 * running the job again. */
static int finish_entry(pr_redisq *q, const char *id, const char *entry, const char *report,
                        size_t len)
{
    fin_req *f = pr_calloc(1, sizeof(*f));
    if (!f)
        return PR_ENOMEM;
    f->q = q;
    (void)snprintf(f->id, sizeof(f->id), "%s", id);
    (void)snprintf(f->entry, sizeof(f->entry), "%s", entry);
    const char *hset[] = { "HSETNX", q->k_reports, id, report };
    size_t hlens[] = { 6, strlen(q->k_reports), strlen(id), len };
    if (rq_cmd(q, on_report_set, f, 4, hset, hlens) < 0) {
        pr_free(f);
        return PR_ESYS;
    }
    return 0;
}

static void on_job_for_done(redisAsyncContext *ac, void *reply, void *priv)
{
    fin_req *f = priv;
    const redisReply *r = reply;
    (void)ac;
    if (reply_is(r, REDIS_REPLY_STRING)) {
        json_t *job = json_loadb(r->str, r->len, 0, NULL);
        if (json_is_object(job))
            set_status(f->q, job, f->id, "done");
        json_decref(job);
    }
    pr_free(f);
}

void pr_redisq_finished(pr_redisq *q, const char *id)
{
    /* A worker is free (whether or not the job came from the stream). */
    poll_stream(q);
    taken_entry *e = taken_find(q, id);
    if (!e || e->finishing || !q->ready)
        return;
    char rp[4096];
    char *text = NULL;
    size_t len = 0;
    pr_error err = { 0 };
    (void)pr_daemon_spool_path(q->d, rp, sizeof(rp), "reports", id);
    if (pr_spool_read_file(&text, &len, rp, REPORT_TEXT_MAX, &err) < 0) {
        pr_dlog("error", "queue.report_unreadable",
                json_pack("{s:s,s:s}", "job", id, "message", err.msg));
        return;
    }
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
        len--;
    e->finishing = true;
    /* The status "done" keeps the job's fields; the state is rewritten from S:jobs. */
    fin_req *f = pr_calloc(1, sizeof(*f));
    if (f) {
        f->q = q;
        (void)snprintf(f->id, sizeof(f->id), "%s", id);
        const char *argv[] = { "HGET", q->k_jobs, id };
        if (rq_cmd(q, on_job_for_done, f, 3, argv, NULL) < 0)
            pr_free(f);
    }
    char entry[48];
    (void)snprintf(entry, sizeof(entry), "%s", e->entry);
    if (finish_entry(q, id, entry, text, len) < 0) {
        /* Not sent: tried again at the next connection. */
        taken_entry *again = taken_find(q, id);
        if (again)
            again->finishing = false;
    }
    pr_free(text);
}

/* ---- taking entries ---- */

typedef struct take_req {
    pr_redisq *q;
    char id[65];
    char entry[48];
    json_t *job; /* owned */
    bool reclaimed;
} take_req;

static void take_free(take_req *t)
{
    json_decref(t->job);
    pr_free(t);
}

static void ack_only(pr_redisq *q, const char *entry)
{
    const char *ack[] = { "XACK", q->stream, q->group, entry };
    const char *del[] = { "XDEL", q->stream, entry };
    (void)rq_cmd(q, on_ignore, NULL, 4, ack, NULL);
    (void)rq_cmd(q, on_ignore, NULL, 3, del, NULL);
}

static int write_taken_file(pr_redisq *q, const char *id, const char *entry)
{
    char p[4200];
    (void)snprintf(p, sizeof(p), "%s/%s", q->taken_dir, id);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return PR_ESYS;
    size_t n = strlen(entry);
    ssize_t w = write(fd, entry, n);
    int rc = (w == (ssize_t)n && fsync(fd) == 0) ? 0 : PR_ESYS;
    pr_close(&fd);
    return rc;
}

/* The entry is ours and no report exists: the job runs here, through the spool. */
static void start_job(pr_redisq *q, take_req *t)
{
    char path[4096];
    pr_error err = { 0 };
    pr_spool_job job;
    memset(&job, 0, sizeof(job));
    int rc = pr_spool_job_parse(&job, t->job, &err);
    if (rc == 0 && strcmp(job.id, t->id) != 0)
        rc = pr_error_set(&err, PR_EINVAL, "id: differs from the entry's id");
    pr_spool_job_clear(&job);
    if (rc < 0) {
        pr_dlog("error", "queue.bad_entry",
                json_pack("{s:s,s:s,s:s}", "entry", t->entry, "job", t->id, "message", err.msg));
        ack_only(q, t->entry);
        return;
    }
    (void)pr_daemon_spool_path(q->d, path, sizeof(path), "running", t->id);
    if (taken_add(q, t->id, t->entry) < 0)
        return; /* the entry stays pending and is reclaimed */
    if (write_taken_file(q, t->id, t->entry) < 0 || pr_spool_write_json(path, t->job, &err) < 0) {
        pr_dlog("error", "queue.spool_write_failed", json_pack("{s:s}", "job", t->id));
        taken_remove(q, t->id);
        (void)unlink(path);
        return;
    }
    set_status(q, t->job, t->id, "running");
    pr_dlog("info", "queue.taken",
            json_pack("{s:s,s:s,s:b}", "job", t->id, "entry", t->entry, "reclaimed", t->reclaimed));
    if (pr_daemon_enqueue(q->d, t->id) < 0) {
        /* Out of memory: the job is let go here (no heartbeat), so its entry is reclaimed. */
        pr_dlog("error", "queue.oom", json_pack("{s:s}", "job", t->id));
        taken_remove(q, t->id);
        (void)unlink(path);
    }
}

static void on_report_exists(redisAsyncContext *ac, void *reply, void *priv)
{
    take_req *t = priv;
    pr_redisq *q = t->q;
    const redisReply *r = reply;
    (void)ac;
    q->taking--;
    if (!q->closing && reply_is(r, REDIS_REPLY_INTEGER)) {
        if (r->integer == 1) {
            /* A report exists: the job ran already (its daemon died before acknowledging). */
            pr_dlog("info", "queue.already_done",
                    json_pack("{s:s,s:s}", "job", t->id, "entry", t->entry));
            ack_only(q, t->entry);
        } else if (!q->d->stopping) {
            start_job(q, t);
        }
    }
    take_free(t);
    poll_stream(q); /* the entry is running, or let go: either way taking went down */
}

/* One entry: [entry-id, [field, value, ...]] (the fields are nil for a deleted entry). */
static void take_entry(pr_redisq *q, const redisReply *e, bool reclaimed)
{
    if (!reply_is(e, REDIS_REPLY_ARRAY) || e->elements != 2 ||
        !reply_is(e->element[0], REDIS_REPLY_STRING) || e->element[0]->len >= 48)
        return;
    const char *entry = e->element[0]->str;
    const redisReply *f = e->element[1];
    const char *id = NULL;
    const redisReply *jobtext = NULL;
    for (size_t i = 0; reply_is(f, REDIS_REPLY_ARRAY) && i + 1 < f->elements; i += 2) {
        const redisReply *k = f->element[i], *v = f->element[i + 1];
        if (!reply_is(k, REDIS_REPLY_STRING) || !reply_is(v, REDIS_REPLY_STRING))
            continue;
        if (strcmp(k->str, "id") == 0)
            id = v->str;
        else if (strcmp(k->str, "job") == 0)
            jobtext = v;
    }
    if (!reply_is(f, REDIS_REPLY_ARRAY)) {
        ack_only(q, entry); /* deleted meanwhile */
        return;
    }
    if (!id || !pr_job_id_valid(id) || strlen(id) > 64 || !jobtext || jobtext->len > JOB_TEXT_MAX) {
        pr_dlog("error", "queue.bad_entry",
                json_pack("{s:s,s:s}", "entry", entry, "message", "missing or invalid id/job"));
        ack_only(q, entry);
        return;
    }
    const taken_entry *mine = taken_find(q, id);
    if (mine) {
        /* Running here already. Its own entry is acknowledged when it ends; a second entry of
         * the same job (sent twice by a daemon that died before removing its incoming file)
         * goes now. */
        if (strcmp(mine->entry, entry) != 0)
            ack_only(q, entry);
        return;
    }
    char rp[4096];
    struct stat st;
    (void)pr_daemon_spool_path(q->d, rp, sizeof(rp), "reports", id);
    if (lstat(rp, &st) == 0) {
        /* Finished here before (a daemon restarted between its report and the ack). */
        if (taken_add(q, id, entry) == 0)
            pr_redisq_finished(q, id);
        return;
    }
    take_req *t = pr_calloc(1, sizeof(*t));
    if (!t)
        return;
    t->q = q;
    t->reclaimed = reclaimed;
    (void)snprintf(t->id, sizeof(t->id), "%s", id);
    (void)snprintf(t->entry, sizeof(t->entry), "%s", entry);
    t->job = json_loadb(jobtext->str, jobtext->len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(t->job)) {
        pr_dlog("error", "queue.bad_entry",
                json_pack("{s:s,s:s}", "entry", entry, "message", "job is not a JSON object"));
        ack_only(q, entry);
        take_free(t);
        return;
    }
    const char *argv[] = { "HEXISTS", q->k_reports, id };
    if (rq_cmd(q, on_report_exists, t, 3, argv, NULL) < 0) {
        take_free(t);
        return;
    }
    q->taking++;
}

/* priv is BLOCKING for new entries (">", the read connection), OWN_PENDING for this
 * consumer's own pending ones (the command connection). */
static char own_pending_tag, blocking_tag;
#define OWN_PENDING ((void *)&own_pending_tag)
#define BLOCKING    ((void *)&blocking_tag)

static void on_xreadgroup(redisAsyncContext *ac, void *reply, void *priv)
{
    pr_redisq *q = ac_queue(ac);
    const redisReply *r = reply;
    if (priv == BLOCKING)
        q->blocked = false;
    if (!r || q->closing)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        /* Not read again at once: the status timer tries again (no loop of errors). */
        log_reply_error("XREADGROUP", r);
        if (strncmp(r->str, "NOGROUP", 7) == 0)
            drop_connection(&q->cmd, "the consumer group is gone; it is created again");
        return;
    }
    if (priv == OWN_PENDING && reply_is(r, REDIS_REPLY_ARRAY) && r->elements == 1 &&
        reply_is(r->element[0], REDIS_REPLY_ARRAY) && r->element[0]->elements == 2 &&
        reply_is(r->element[0]->element[1], REDIS_REPLY_ARRAY) &&
        r->element[0]->element[1]->elements > 0)
        pr_dlog("info", "queue.own_pending",
                json_pack("{s:I}", "entries", (json_int_t)r->element[0]->element[1]->elements));
    /* [[stream, [entry, ...]]] or nil */
    for (size_t s = 0; reply_is(r, REDIS_REPLY_ARRAY) && s < r->elements; s++) {
        const redisReply *st = r->element[s];
        if (!reply_is(st, REDIS_REPLY_ARRAY) || st->elements != 2 ||
            !reply_is(st->element[1], REDIS_REPLY_ARRAY))
            continue;
        for (size_t i = 0; i < st->element[1]->elements; i++)
            take_entry(q, st->element[1]->element[i], false);
    }
    /* Entries, or nil after BLOCK_MS: the next read while workers are still free. Entries
     * delivered while the daemon stops are not started (on_report_exists); they stay pending
     * and are reclaimed. */
    if (priv == BLOCKING)
        poll_stream(q);
}

/* Entries delivered to this consumer name and never acknowledged: taken and not finished
 * before a reconnection, or before a restart under the same (configured) consumer name. They
 * are this daemon's, so they run here at once rather than after claim_idle_s. */
static void read_own_pending(pr_redisq *q)
{
    const char *argv[] = { "XREADGROUP", "GROUP",   q->group,  q->consumer, "COUNT",
                           "1000",       "STREAMS", q->stream, "0" };
    (void)rq_cmd(q, on_xreadgroup, OWN_PENDING, 9, argv, NULL);
}

/* New entries are taken by a blocking read on the read connection: one outstanding at most,
 * sent only while a worker is free, answered as soon as an entry comes (or with nil after
 * BLOCK_MS, when it is sent again). Called whenever a worker may have become free: at
 * (re)connection, after each reply, when a job finishes or an entry is let go, and by the
 * status timer as a safety net (it sends nothing while a read is outstanding). */
static void poll_stream(pr_redisq *q)
{
    size_t n;
    if (q->blocked || !q->rd.up || !free_slot(q, &n))
        return;
    char count[24], block[24];
    (void)snprintf(count, sizeof(count), "%zu", n);
    (void)snprintf(block, sizeof(block), "%u", BLOCK_MS);
    const char *argv[] = { "XREADGROUP", "GROUP", q->group,  q->consumer, "COUNT", count,
                           "BLOCK",      block,   "STREAMS", q->stream,   ">" };
    if (conn_cmd(&q->rd, on_xreadgroup, BLOCKING, 11, argv, NULL) == 0) {
        q->blocked = true;
        q->blocked_sent_ns = pr_now_ns();
    }
}

/* SIGTERM: the outstanding blocking read is cancelled (its connection closed, which Redis
 * treats as a read that delivered nothing), so that no entry is handed to a stopping daemon
 * during its grace period. Runs once per loop iteration until then; a comparison. */
static void on_stop_check(uv_prepare_t *p)
{
    pr_redisq *q = p->data;
    if (!q->d->stopping)
        return;
    (void)uv_prepare_stop(p);
    if (q->rd.ac)
        pr_dlog("info", "queue.read_stopped", json_pack("{s:b}", "read_outstanding", q->blocked));
    close_conn(&q->rd);
    q->blocked = false;
}

/* ---- reclaim and heartbeat ---- */

static void on_autoclaim(redisAsyncContext *ac, void *reply, void *priv)
{
    pr_redisq *q = ac_queue(ac);
    const redisReply *r = reply;
    (void)priv;
    q->reading = false;
    if (!r || q->closing)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        log_reply_error("XAUTOCLAIM", r);
        return;
    }
    /* [next-cursor, [entry, ...], [deleted-id, ...]] */
    if (!reply_is(r, REDIS_REPLY_ARRAY) || r->elements < 2)
        return;
    if (reply_is(r->element[0], REDIS_REPLY_STRING) && r->element[0]->len < sizeof(q->claim_cursor))
        (void)snprintf(q->claim_cursor, sizeof(q->claim_cursor), "%s", r->element[0]->str);
    const redisReply *entries = r->element[1];
    for (size_t i = 0; reply_is(entries, REDIS_REPLY_ARRAY) && i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        if (reply_is(e, REDIS_REPLY_ARRAY) && e->elements == 2 &&
            reply_is(e->element[0], REDIS_REPLY_STRING))
            pr_dlog("warn", "queue.reclaimed",
                    json_pack("{s:s%}", "entry", e->element[0]->str, (size_t)e->element[0]->len));
        take_entry(q, e, true);
    }
}

static void on_claim_timer(uv_timer_t *t)
{
    pr_redisq *q = t->data;
    size_t n;
    if (q->reading || !free_slot(q, &n))
        return;
    char count[24], idle[24];
    (void)snprintf(count, sizeof(count), "%zu", n);
    (void)snprintf(idle, sizeof(idle), "%llu", (unsigned long long)q->claim_idle_ms);
    const char *argv[] = { "XAUTOCLAIM", q->stream,       q->group, q->consumer,
                           idle,         q->claim_cursor, "COUNT",  count };
    if (rq_cmd(q, on_autoclaim, NULL, 8, argv, NULL) == 0)
        q->reading = true;
}

/* The heartbeat: each entry this daemon holds and still owns is claimed again by it, which
 * resets its idle time, so that a job running longer than claim_idle_s is not taken over while
 * its daemon is alive. The ownership check and the claim are one script (atomic): an entry
 * another daemon has taken over meanwhile (this one was cut off from Redis for too long) is
 * left to it, and reported back as lost. */
static const char beat_script[] =
    "local kept = {}\n"
    "for i = 3, #ARGV do\n"
    "  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)\n"
    "  if p[1] and p[1][2] == ARGV[2] then\n"
    "    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')\n"
    "    kept[#kept + 1] = ARGV[i]\n"
    "  end\n"
    "end\n"
    "return kept\n";

#define BEAT_BATCH 10

typedef struct beat_req {
    pr_redisq *q;
    size_t n;
    char entries[BEAT_BATCH][48];
} beat_req;

static void on_beat(redisAsyncContext *ac, void *reply, void *priv)
{
    beat_req *b = priv;
    const redisReply *r = reply;
    (void)ac;
    if (!reply_is(r, REDIS_REPLY_ARRAY)) {
        log_reply_error("heartbeat", r);
        pr_free(b);
        return;
    }
    for (size_t i = 0; i < b->n; i++) {
        bool kept = false;
        for (size_t k = 0; k < r->elements; k++) {
            if (reply_is(r->element[k], REDIS_REPLY_STRING) &&
                strcmp(r->element[k]->str, b->entries[i]) == 0)
                kept = true;
        }
        for (size_t t = 0; !kept && t < b->q->ntaken; t++) {
            taken_entry *e = &b->q->taken[t];
            if (strcmp(e->entry, b->entries[i]) == 0 && !e->lost && !e->finishing) {
                /* The job goes on here; whichever report is stored first is kept. */
                e->lost = true;
                pr_dlog("warn", "queue.entry_lost",
                        json_pack("{s:s,s:s,s:s}", "job", e->id, "entry", e->entry, "reason",
                                  "taken over by another daemon (or acknowledged)"));
            }
        }
    }
    pr_free(b);
}

static void on_beat_timer(uv_timer_t *t)
{
    pr_redisq *q = t->data;
    if (!q->ready)
        return;
    size_t i = 0;
    while (i < q->ntaken) {
        beat_req *b = pr_calloc(1, sizeof(*b));
        if (!b)
            return;
        b->q = q;
        const char *argv[6 + BEAT_BATCH];
        size_t lens[6 + BEAT_BATCH];
        int argc = 0;
        argv[argc++] = "EVAL";
        argv[argc++] = beat_script;
        argv[argc++] = "1";
        argv[argc++] = q->stream;
        argv[argc++] = q->group;
        argv[argc++] = q->consumer;
        for (; i < q->ntaken && b->n < BEAT_BATCH; i++) {
            if (q->taken[i].lost)
                continue;
            (void)snprintf(b->entries[b->n], sizeof(b->entries[0]), "%s", q->taken[i].entry);
            argv[argc++] = b->entries[b->n++];
        }
        for (int k = 0; k < argc; k++)
            lens[k] = strlen(argv[k]);
        if (b->n == 0 ||
            redisAsyncCommandArgv(q->cmd.ac, on_beat, b, argc, argv, lens) != REDIS_OK) {
            pr_free(b);
            return;
        }
    }
}

/* ---- status probe (metrics and liveness) ---- */

static void on_xlen(redisAsyncContext *ac, void *reply, void *priv)
{
    pr_redisq *q = ac_queue(ac);
    const redisReply *r = reply;
    (void)priv;
    q->probe_sent_ns = 0;
    if (reply_is(r, REDIS_REPLY_INTEGER))
        q->stream_len = r->integer;
}

static void on_xpending(redisAsyncContext *ac, void *reply, void *priv)
{
    pr_redisq *q = ac_queue(ac);
    const redisReply *r = reply;
    (void)priv;
    if (reply_is(r, REDIS_REPLY_ARRAY) && r->elements >= 1 &&
        reply_is(r->element[0], REDIS_REPLY_INTEGER))
        q->pending = r->element[0]->integer;
}

static void on_status_timer(uv_timer_t *t)
{
    pr_redisq *q = t->data;
    uint64_t now = pr_now_ns();
    rq_conn *conns[] = { &q->cmd, &q->rd };
    for (size_t i = 0; i < PR_ARRAY_LEN(conns); i++) {
        rq_conn *cn = conns[i];
        if (cn->ac && !cn->connected &&
            now - cn->connect_started_ns > (uint64_t)CONNECT_MS * 1000000u)
            drop_connection(cn, "connect timed out");
    }
    /* The blocking read is answered within BLOCK_MS by a live Redis. */
    if (q->blocked && now - q->blocked_sent_ns > (uint64_t)READ_HUNG_MS * 1000000u)
        drop_connection(&q->rd, "no reply from Redis to the blocking read");
    if (!q->ready)
        return;
    poll_stream(q);
    if (q->probe_sent_ns) {
        if (now - q->probe_sent_ns > (uint64_t)HUNG_MS * 1000000u)
            drop_connection(&q->cmd, "no reply from Redis");
        return;
    }
    const char *xp[] = { "XPENDING", q->stream, q->group };
    const char *xl[] = { "XLEN", q->stream };
    if (rq_cmd(q, on_xpending, NULL, 3, xp, NULL) == 0 &&
        rq_cmd(q, on_xlen, NULL, 2, xl, NULL) == 0)
        q->probe_sent_ns = now;
}

int pr_redisq_metrics(const pr_redisq *q, pr_buf *b)
{
    return pr_buf_printf(
        b,
        "# HELP proctor_queue_redis_up Whether the shared Redis queue is reachable.\n"
        "# TYPE proctor_queue_redis_up gauge\nproctor_queue_redis_up %d\n"
        "# HELP proctor_queue_redis_entries Jobs in the shared stream (waiting or running).\n"
        "# TYPE proctor_queue_redis_entries gauge\nproctor_queue_redis_entries %lld\n"
        "# HELP proctor_queue_redis_pending Entries delivered to a daemon and not acknowledged.\n"
        "# TYPE proctor_queue_redis_pending gauge\nproctor_queue_redis_pending %lld\n"
        "# HELP proctor_queue_redis_taken Entries this daemon holds.\n"
        "# TYPE proctor_queue_redis_taken gauge\nproctor_queue_redis_taken %zu\n",
        q->ready ? 1 : 0, q->stream_len, q->pending, q->ntaken);
}

/* ---- reads through the API ---- */

typedef struct get_req {
    pr_redisq *q;
    pr_http_conn *c;
    char id[65];
    int role;
    char name[256];
    json_t *job; /* owned; from S:jobs */
    bool job_failed;
    bool orphan; /* answered already; on_get_job frees it */
} get_req;

static void on_get_job(redisAsyncContext *ac, void *reply, void *priv)
{
    get_req *g = priv;
    const redisReply *r = reply;
    (void)ac;
    if (g->orphan) {
        pr_free(g);
        return;
    }
    if (!r || r->type == REDIS_REPLY_ERROR)
        g->job_failed = true;
    else if (reply_is(r, REDIS_REPLY_STRING))
        g->job = json_loadb(r->str, r->len, 0, NULL);
}

static void on_get_report(redisAsyncContext *ac, void *reply, void *priv)
{
    get_req *g = priv;
    const redisReply *r = reply;
    pr_http_conn *c = g->c;
    json_t *resp = NULL;
    (void)ac;
    if (!r || r->type == REDIS_REPLY_ERROR || g->job_failed) {
        pr_http_respond_error(c, 503, "Retry-After: 5\r\n",
                              "the shared queue (redis) did not answer");
        goto cleanup;
    }
    const char *cand = json_string_value(json_object_get(g->job, "candidate"));
    json_t *report = NULL;
    if (reply_is(r, REDIS_REPLY_STRING))
        report = json_loadb(r->str, r->len, 0, NULL);
    if (!g->job && report) {
        cand =
            json_string_value(json_object_get(json_object_get(report, "submission"), "candidate"));
    }
    if ((!g->job && !report) ||
        (g->role == PR_ROLE_CANDIDATE && (!cand || strcmp(cand, g->name) != 0))) {
        json_decref(report);
        pr_http_respond_error(c, 404, NULL, "no such submission");
        goto cleanup;
    }
    const char *challenge = json_string_value(json_object_get(g->job, "challenge"));
    json_int_t attempts = json_integer_value(json_object_get(g->job, "attempts"));
    if (report) {
        if (g->role == PR_ROLE_CANDIDATE) {
            json_t *red = pr_daemon_redact(report);
            json_decref(report);
            report = red;
        }
        if (!challenge)
            challenge =
                json_string_value(json_object_get(json_object_get(report, "challenge"), "id"));
        resp = json_pack("{s:s,s:s,s:s?,s:s?,s:I,s:o?}", "id", g->id, "status", "done", "candidate",
                         cand, "challenge", challenge, "attempts", attempts, "report", report);
    } else {
        const char *state = json_string_value(json_object_get(g->job, "state"));
        bool running = state && strcmp(state, "running") == 0;
        resp = json_pack("{s:s,s:s,s:s?,s:s?,s:s?,s:I,s:s?}", "id", g->id, "status",
                         running ? "running" : "queued", "candidate", cand, "challenge", challenge,
                         "queued_at", json_string_value(json_object_get(g->job, "queued_at")),
                         "attempts", attempts, "node",
                         running ? json_string_value(json_object_get(g->job, "node")) : NULL);
    }
    if (!resp)
        pr_http_respond_error(c, 500, NULL, "out of memory");
    else
        pr_http_respond_json(c, 200, NULL, resp);
cleanup:
    json_decref(resp);
    json_decref(g->job);
    pr_free(g);
}

void pr_redisq_http_get(pr_redisq *q, pr_http_conn *c, const char *id, int role, const char *name)
{
    if (!q->ready) {
        pr_http_respond_error(c, 503, "Retry-After: 5\r\n",
                              "not known to this daemon, and the shared queue (redis) is "
                              "unreachable");
        return;
    }
    get_req *g = pr_calloc(1, sizeof(*g));
    if (!g) {
        pr_http_respond_error(c, 500, NULL, "out of memory");
        return;
    }
    g->q = q;
    g->c = c;
    g->role = role;
    (void)snprintf(g->id, sizeof(g->id), "%s", id);
    (void)snprintf(g->name, sizeof(g->name), "%s", name ? name : "");
    const char *aj[] = { "HGET", q->k_jobs, id };
    const char *ar[] = { "HGET", q->k_reports, id };
    /* Both on one connection, in order: on_get_report always runs after on_get_job. */
    if (rq_cmd(q, on_get_job, g, 3, aj, NULL) < 0) {
        pr_free(g);
        pr_http_respond_error(c, 503, "Retry-After: 5\r\n",
                              "the shared queue (redis) is unreachable");
        return;
    }
    if (rq_cmd(q, on_get_report, g, 3, ar, NULL) < 0) {
        /* on_get_job still runs (with no reply when the connection goes) and frees g. */
        g->orphan = true;
        pr_http_respond_error(c, 503, "Retry-After: 5\r\n",
                              "the shared queue (redis) is unreachable");
        return;
    }
    pr_http_defer(c);
}

/* ---- start and stop ---- */

/* Jobs of running/ that came from the stream: finished ones are kept (their ack is retried);
 * unfinished ones are dropped here, and the stream gives them to whichever daemon reclaims
 * their entry. */
static int recover_taken(pr_redisq *q, pr_error *err)
{
    DIR *dir = opendir(q->taken_dir);
    if (!dir)
        return pr_error_sys(err, "opendir %s", q->taken_dir);
    size_t kept = 0, dropped = 0;
    for (;;) {
        /* cppcheck-suppress readdirCalled ; the stream is private to this call */
        const struct dirent *de = readdir(dir); /* NOLINT(concurrency-mt-unsafe) */
        if (!de)
            break;
        if (!pr_job_id_valid(de->d_name) || strlen(de->d_name) > 64)
            continue;
        char p[4200], rp[4096], run[4096], entry[48];
        (void)snprintf(p, sizeof(p), "%s/%s", q->taken_dir, de->d_name);
        int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        ssize_t n = fd >= 0 ? read(fd, entry, sizeof(entry) - 1) : -1;
        pr_close(&fd);
        if (n <= 0) {
            (void)unlink(p);
            continue;
        }
        entry[n] = '\0';
        struct stat st;
        (void)pr_daemon_spool_path(q->d, rp, sizeof(rp), "reports", de->d_name);
        (void)pr_daemon_spool_path(q->d, run, sizeof(run), "running", de->d_name);
        if (lstat(rp, &st) == 0) {
            if (taken_add(q, de->d_name, entry) == 0)
                kept++;
            continue;
        }
        (void)unlink(run);
        (void)unlink(p);
        dropped++;
    }
    (void)closedir(dir);
    pr_dlog("info", "queue.recovered",
            json_pack("{s:I,s:I}", "to_acknowledge", (json_int_t)kept, "left_to_reclaim",
                      (json_int_t)dropped));
    return 0;
}

static char *join_key(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = pr_malloc(n);
    if (s)
        (void)snprintf(s, n, "%s:%s", a, b);
    return s;
}

static void handle_closed(uv_handle_t *h)
{
    pr_redisq *q = h->data;
    if (--q->open_handles > 0)
        return;
    pr_free(q->host);
    pr_free(q->unix_path);
    pr_free(q->stream);
    pr_free(q->group);
    pr_free(q->consumer);
    pr_free(q->username);
    forget_secret(q->password);
    pr_free(q->k_jobs);
    pr_free(q->k_reports);
    pr_free(q->sending);
    pr_free(q->taken);
    pr_free(q);
}

int pr_redisq_new(pr_redisq **out, pr_daemon *d, const pr_redisq_cfg *cfg, pr_error *err)
{
    pr_redisq *q = pr_calloc(1, sizeof(*q));
    *out = NULL;
    if (!q)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    q->d = d;
    q->loop = d->loop;
    q->port = cfg->port;
    q->claim_idle_ms = (uint64_t)cfg->claim_idle_s * 1000u;
    q->host = cfg->host ? pr_strdup(cfg->host) : NULL;
    q->unix_path = cfg->unix_path ? pr_strdup(cfg->unix_path) : NULL;
    q->stream = pr_strdup(cfg->stream);
    q->group = pr_strdup(cfg->group);
    q->username = cfg->username ? pr_strdup(cfg->username) : NULL;
    q->password = cfg->password ? pr_strdup(cfg->password) : NULL;
    if (cfg->consumer) {
        q->consumer = pr_strdup(cfg->consumer);
    } else {
        char host[256] = "host", name[320];
        (void)gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        (void)snprintf(name, sizeof(name), "%s-%ld", host, (long)getpid());
        for (char *p = name; *p; p++) {
            if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
                *p = '_';
        }
        q->consumer = pr_strdup(name);
    }
    q->k_jobs = q->stream ? join_key(q->stream, "jobs") : NULL;
    q->k_reports = q->stream ? join_key(q->stream, "reports") : NULL;
    (void)snprintf(q->claim_cursor, sizeof(q->claim_cursor), "0-0");
    q->cmd.q = q;
    q->cmd.role = "command";
    q->rd.q = q;
    q->rd.role = "read";
    q->rd.blocking = true;
    /* Every handle's data is q, for handle_closed; the connection timers find their rq_conn
     * from it. */
    uv_timer_t *timers[] = { &q->cmd.t_conn, &q->rd.t_conn, &q->t_claim, &q->t_beat, &q->t_status };
    for (size_t i = 0; i < PR_ARRAY_LEN(timers); i++) {
        (void)uv_timer_init(q->loop, timers[i]);
        timers[i]->data = q;
        q->open_handles++;
    }
    (void)uv_prepare_init(q->loop, &q->p_stop);
    q->p_stop.data = q;
    q->open_handles++;
    int rc = 0;
    if ((!q->host && !q->unix_path) || (cfg->password && !q->password) ||
        (cfg->username && !q->username) || !q->stream || !q->group || !q->consumer || !q->k_jobs ||
        !q->k_reports) {
        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        goto fail;
    }
    int n = snprintf(q->taken_dir, sizeof(q->taken_dir), "%s/redisq/taken", d->cfg->spool);
    if (n < 0 || (size_t)n >= sizeof(q->taken_dir)) {
        rc = pr_error_set(err, PR_EINVAL, "spool: path too long");
        goto fail;
    }
    if (pr_mkdir_p(q->taken_dir) < 0) {
        rc = pr_error_sys(err, "mkdir %s", q->taken_dir);
        goto fail;
    }
    rc = recover_taken(q, err);
    if (rc < 0)
        goto fail;
    uint64_t beat = q->claim_idle_ms / 3;
    if (beat < 100)
        beat = 100;
    uint64_t claim = q->claim_idle_ms / 2;
    if (claim < 500)
        claim = 500;
    (void)uv_timer_start(&q->t_claim, on_claim_timer, claim, claim);
    (void)uv_timer_start(&q->t_beat, on_beat_timer, beat, beat);
    (void)uv_timer_start(&q->t_status, on_status_timer, 500, STATUS_MS);
    (void)uv_prepare_start(&q->p_stop, on_stop_check);
    pr_dlog("info", "queue.starting",
            json_pack("{s:s,s:s,s:s,s:s,s:I}", "redis", q->unix_path ? q->unix_path : q->host,
                      "stream", q->stream, "group", q->group, "consumer", q->consumer,
                      "claim_idle_s", (json_int_t)cfg->claim_idle_s));
    connect_now(&q->cmd);
    connect_now(&q->rd);
    *out = q;
    return 0;
fail:
    pr_redisq_close(q);
    return rc;
}

bool pr_redisq_ready(const pr_redisq *q)
{
    return q && q->ready;
}

bool pr_redisq_refuses(const pr_redisq *q, size_t limit, pr_error *err)
{
    if (!q->ready) {
        (void)pr_error_set(err, PR_ELIMIT, "the shared job queue (redis) is unreachable");
        return true;
    }
    size_t backlog = (q->stream_len > 0 ? (size_t)q->stream_len : 0) + q->nsending;
    if (backlog >= limit) {
        (void)pr_error_set(err, PR_ELIMIT, "the shared job queue is full (%zu jobs)", backlog);
        return true;
    }
    return false;
}

static void on_flush_tick(uv_timer_t *t)
{
    (void)t; /* only wakes the loop */
}

/* At exit: replies still due (the reports and acknowledgements of the last jobs, typically
 * after SIGTERM let them finish; each may chain the next command) are awaited for a few
 * seconds, the loop running. */
static void flush_pending(pr_redisq *q)
{
    uv_timer_t *timers[] = { &q->cmd.t_conn, &q->rd.t_conn, &q->t_claim, &q->t_beat, &q->t_status };
    for (size_t i = 0; i < PR_ARRAY_LEN(timers); i++)
        (void)uv_timer_stop(timers[i]);
    (void)uv_prepare_stop(&q->p_stop);
    rq_conn *cn = &q->cmd;
    if (!cn->ac || !cn->connected || !cn->ac->replies.head)
        return;
    /* A timer bounds each wait of the loop (a silent Redis would leave nothing to wake it). */
    (void)uv_timer_start(&q->t_status, on_flush_tick, 100, 100);
    uint64_t deadline = pr_now_ns() + (uint64_t)FLUSH_MS * 1000000u;
    while (cn->ac && cn->connected && cn->ac->replies.head && pr_now_ns() < deadline)
        (void)uv_run(q->loop, UV_RUN_ONCE);
    (void)uv_timer_stop(&q->t_status);
    if (cn->ac && cn->connected && cn->ac->replies.head)
        pr_dlog("warn", "queue.flush_timeout",
                json_pack("{s:s}", "message", "replies still due at exit; entries are reclaimed"));
}

void pr_redisq_close(pr_redisq *q)
{
    if (!q || q->closing)
        return;
    q->closing = true;
    /* The read connection first: a blocking read outstanding is cancelled, and nothing is
     * read while the last replies are awaited. */
    close_conn(&q->rd);
    q->blocked = false;
    flush_pending(q);
    close_conn(&q->cmd);
    q->ready = false;
    uv_handle_t *handles[] = { (uv_handle_t *)&q->cmd.t_conn, (uv_handle_t *)&q->rd.t_conn,
                               (uv_handle_t *)&q->t_claim,    (uv_handle_t *)&q->t_beat,
                               (uv_handle_t *)&q->t_status,   (uv_handle_t *)&q->p_stop };
    for (size_t i = 0; i < PR_ARRAY_LEN(handles); i++)
        uv_close(handles[i], handle_closed);
}
