/* Callbacks: POST a finished job's report to its callback_url (http:// only), signed with
 * X-Proctor-Signature: sha256=<hex HMAC-SHA256 of the body>. A minimal libuv TCP client:
 * resolve, connect, write, read the status line; retried with exponential backoff; never
 * blocks the loop. A persisted callback keeps its record (spool/callbacks/<id>.json) up to date
 * with the attempts made and removes it once delivered or given up. */
#include "daemon.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proctor/common.h"
#include "proctor/job.h"

#define CB_ATTEMPTS   5
#define CB_TIMEOUT_MS 10000u
#define CB_BACKOFF_MS 500u

typedef struct cb_item {
    pr_callbacks *cb;
    struct cb_item *prev, *next;
    char host[256];
    char port_s[8];
    char id[65];
    char *req; /* owned; the whole request */
    size_t req_len;
    char *url;    /* owned; for the record */
    char *record; /* owned; path of the pending record in the spool, NULL = not persisted */
    int limit;    /* attempts allowed in all (counting those made before a restart) */
    int attempt;
    int status; /* HTTP status of the last attempt, 0 none */
    bool tcp_open, ok, finished, resolving;
    int handles; /* open uv handles (timer, tcp) */
    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_write_t wr;
    char rbuf[256];
    size_t rlen;
} cb_item;

struct pr_callbacks {
    uv_loop_t *loop;
    pr_metrics *m;
    cb_item *items;
    size_t n;
    bool closing;
};

int pr_hmac_sha256_hex(char out[65], const char *key, const void *data, size_t len)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    if (!HMAC(EVP_sha256(), key, (int)strlen(key), data, len, mac, &mlen) || mlen != 32)
        return PR_EINTERNAL;
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < 32; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 15];
    }
    out[64] = '\0';
    return 0;
}

int pr_callback_url_parse(const char *url, char *host_out, size_t hostsz, int *port_out,
                          char *path_out, size_t pathsz)
{
    static const char scheme[] = "http://";
    if (strncmp(url, scheme, sizeof(scheme) - 1) != 0)
        return PR_EINVAL;
    const char *h = url + sizeof(scheme) - 1;
    size_t hl = strcspn(h, ":/?#");
    if (hl == 0 || hl >= hostsz)
        return PR_EINVAL;
    for (size_t i = 0; i < hl; i++) {
        char ch = h[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '-'))
            return PR_EINVAL;
    }
    memcpy(host_out, h, hl);
    host_out[hl] = '\0';
    const char *p = h + hl;
    *port_out = 80;
    if (*p == ':') {
        char *end = NULL;
        errno = 0;
        long port = strtol(p + 1, &end, 10);
        if (errno || end == p + 1 || port < 1 || port > 65535)
            return PR_EINVAL;
        *port_out = (int)port;
        p = end;
    }
    if (*p == '#')
        return PR_EINVAL;
    const char *path = *p ? p : "/";
    if (*path == '?') {
        int n = snprintf(path_out, pathsz, "/%s", path);
        if (n < 0 || (size_t)n >= pathsz)
            return PR_EINVAL;
    } else if (*path != '/') {
        return PR_EINVAL;
    } else {
        int n = snprintf(path_out, pathsz, "%s", path);
        if (n < 0 || (size_t)n >= pathsz)
            return PR_EINVAL;
    }
    for (const char *q = path_out; *q; q++) {
        if ((unsigned char)*q <= 0x20 || *q == 0x7f)
            return PR_EINVAL;
    }
    return 0;
}

int pr_callbacks_new(pr_callbacks **out, uv_loop_t *loop, pr_metrics *m)
{
    pr_callbacks *cb = pr_calloc(1, sizeof(*cb));
    *out = NULL;
    if (!cb)
        return PR_ENOMEM;
    cb->loop = loop;
    cb->m = m;
    *out = cb;
    return 0;
}

size_t pr_callbacks_pending(const pr_callbacks *cb)
{
    return cb ? cb->n : 0;
}

static void start_attempt(cb_item *it);

static void item_handle_closed(uv_handle_t *h)
{
    cb_item *it = h->data;
    if (--it->handles > 0)
        return;
    pr_callbacks *cb = it->cb;
    pr_free(it->req);
    pr_free(it->url);
    pr_free(it->record);
    pr_free(it);
    if (cb->closing && cb->n == 0)
        pr_free(cb);
}

static void item_finish(cb_item *it)
{
    pr_callbacks *cb = it->cb;
    if (it->finished)
        return;
    it->finished = true;
    if (it->record && !it->ok && cb->closing) {
        /* Shutting down: the record stays and the next start sends it again. */
        pr_dlog("info", "callback.pending",
                json_pack("{s:s,s:i}", "job", it->id, "attempts", it->attempt));
    } else {
        if (it->ok)
            cb->m->callbacks_ok++;
        else
            cb->m->callbacks_failed++;
        pr_dlog(it->ok ? "info" : "warn", it->ok ? "callback.delivered" : "callback.failed",
                json_pack("{s:s,s:i,s:i,s:b}", "job", it->id, "attempts", it->attempt,
                          "http_status", it->status, "given_up", !it->ok));
        if (it->record && unlink(it->record) != 0)
            pr_dlog("error", "callback.record_unlink_failed",
                    json_pack("{s:s,s:s}", "job", it->id, "path", it->record));
    }
    if (it->prev)
        it->prev->next = it->next;
    else
        cb->items = it->next;
    if (it->next)
        it->next->prev = it->prev;
    cb->n--;
    (void)uv_timer_stop(&it->timer);
    uv_close((uv_handle_t *)&it->timer, item_handle_closed);
}

static void on_backoff(uv_timer_t *t)
{
    start_attempt(t->data);
}

/* Called when one attempt is over and its socket (if any) is closed. */
static void attempt_over(cb_item *it)
{
    if (it->ok || it->attempt >= it->limit || it->cb->closing) {
        item_finish(it);
        return;
    }
    if (it->record) {
        /* The attempts made survive a crash (a restart resumes the count). */
        pr_error err = { 0 };
        if (pr_callback_record_write(it->record, it->id, "job.finished", it->url, it->attempt,
                                     &err) < 0)
            pr_dlog("error", "callback.record_write_failed",
                    json_pack("{s:s,s:s}", "job", it->id, "message", err.msg));
    }
    int shift = it->attempt - 1 < 6 ? it->attempt - 1 : 6;
    uint64_t delay = (uint64_t)CB_BACKOFF_MS << shift;
    (void)uv_timer_start(&it->timer, on_backoff, delay, 0);
}

static void tcp_closed(uv_handle_t *h)
{
    cb_item *it = h->data;
    it->tcp_open = false;
    attempt_over(it);
}

static void attempt_end(cb_item *it)
{
    (void)uv_timer_stop(&it->timer);
    if (it->tcp_open) {
        if (!uv_is_closing((uv_handle_t *)&it->tcp))
            uv_close((uv_handle_t *)&it->tcp, tcp_closed);
        return;
    }
    attempt_over(it);
}

static void on_timeout(uv_timer_t *t)
{
    cb_item *it = t->data;
    if (it->resolving) {
        /* Still resolving: cancel; the resolver callback ends the attempt. */
        (void)uv_cancel((uv_req_t *)&it->gai);
        return;
    }
    attempt_end(it);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    cb_item *it = h->data;
    (void)suggested;
    buf->base = it->rbuf + it->rlen;
    buf->len = sizeof(it->rbuf) - 1 - it->rlen;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    cb_item *it = s->data;
    (void)buf;
    if (nread < 0) {
        attempt_end(it);
        return;
    }
    it->rlen += (size_t)nread;
    it->rbuf[it->rlen] = '\0';
    if (!strstr(it->rbuf, "\r\n") && it->rlen < sizeof(it->rbuf) - 1)
        return;
    int status = 0;
    if (strncmp(it->rbuf, "HTTP/1.", 7) == 0 && it->rlen >= 12) {
        char *end = NULL;
        long v = strtol(it->rbuf + 9, &end, 10);
        if (end && end != it->rbuf + 9 && v >= 100 && v < 600)
            status = (int)v;
    }
    it->status = status;
    it->ok = status >= 200 && status < 300;
    attempt_end(it);
}

static void on_written(uv_write_t *w, int status)
{
    cb_item *it = w->data;
    if (status < 0)
        attempt_end(it);
}

static void on_connect(uv_connect_t *req, int status)
{
    cb_item *it = req->data;
    if (status < 0 || uv_is_closing((uv_handle_t *)&it->tcp)) {
        attempt_end(it);
        return;
    }
    uv_buf_t b = uv_buf_init(it->req, (unsigned)it->req_len);
    it->wr.data = it;
    if (uv_write(&it->wr, (uv_stream_t *)&it->tcp, &b, 1, on_written) < 0 ||
        uv_read_start((uv_stream_t *)&it->tcp, on_alloc, on_read) < 0)
        attempt_end(it);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    cb_item *it = req->data;
    it->resolving = false;
    if (status < 0 || !res || it->cb->closing) {
        uv_freeaddrinfo(res);
        attempt_end(it);
        return;
    }
    if (uv_tcp_init(it->cb->loop, &it->tcp) < 0) {
        uv_freeaddrinfo(res);
        attempt_end(it);
        return;
    }
    it->tcp.data = it;
    it->tcp_open = true;
    it->conn.data = it;
    int rc = uv_tcp_connect(&it->conn, &it->tcp, res->ai_addr, on_connect);
    uv_freeaddrinfo(res);
    if (rc < 0)
        attempt_end(it);
}

static void start_attempt(cb_item *it)
{
    struct addrinfo hints;
    it->attempt++;
    it->rlen = 0;
    it->status = 0;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    it->gai.data = it;
    it->resolving = true;
    (void)uv_timer_start(&it->timer, on_timeout, CB_TIMEOUT_MS, 0);
    if (uv_getaddrinfo(it->cb->loop, &it->gai, on_resolved, it->host, it->port_s, &hints) < 0) {
        it->resolving = false;
        attempt_end(it);
    }
}

int pr_callback_record_write(const char *path, const char *job_id, const char *event,
                             const char *url, int attempts, pr_error *err)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:i}", "id", job_id, "event", event, "url", url, "attempts",
                          attempts);
    if (!o)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    int rc = pr_spool_write_json(path, o, err);
    json_decref(o);
    return rc;
}

int pr_callback_record_load(const char *path, char id_out[65], char **url_out, int *attempts_out,
                            pr_error *err)
{
    char *text = NULL;
    size_t len = 0;
    json_error_t jerr;
    *url_out = NULL;
    int rc = pr_spool_read_file(&text, &len, path, 16384, err);
    if (rc < 0)
        return rc;
    json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    pr_free(text);
    const char *id = json_string_value(json_object_get(o, "id"));
    const char *event = json_string_value(json_object_get(o, "event"));
    const char *url = json_string_value(json_object_get(o, "url"));
    const json_t *at = json_object_get(o, "attempts");
    char host[256], p[1024];
    int port;
    if (!o || !id || !pr_job_id_valid(id) || strlen(id) >= 65 || !event ||
        strcmp(event, "job.finished") != 0 || !url ||
        pr_callback_url_parse(url, host, sizeof(host), &port, p, sizeof(p)) < 0 ||
        !json_is_integer(at)) {
        json_decref(o);
        return pr_error_set(err, PR_EINVAL, "%s: not a callback record", path);
    }
    json_int_t a = json_integer_value(at);
    *attempts_out = a < 0 ? 0 : a > CB_ATTEMPTS ? CB_ATTEMPTS : (int)a;
    (void)snprintf(id_out, 65, "%s", id);
    *url_out = pr_strdup(url);
    json_decref(o);
    return *url_out ? 0 : pr_error_set(err, PR_ENOMEM, "out of memory");
}

int pr_callback_post(pr_callbacks *cb, const char *url, const char *secret, const char *job_id,
                     const char *body, size_t len, pr_error *err)
{
    return pr_callback_post_record(cb, url, secret, job_id, body, len, NULL, 0, err);
}

int pr_callback_post_record(pr_callbacks *cb, const char *url, const char *secret,
                            const char *job_id, const char *body, size_t len,
                            const char *record_path, int attempts_done, pr_error *err)
{
    char path[1024];
    int port;
    pr_buf req = PR_BUF_INIT((64u << 20) + 4096);
    cb_item *it = pr_calloc(1, sizeof(*it));
    if (!it)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    if (pr_callback_url_parse(url, it->host, sizeof(it->host), &port, path, sizeof(path)) < 0) {
        pr_free(it);
        return pr_error_set(err, PR_EINVAL, "callback_url: not an http:// URL");
    }
    (void)snprintf(it->port_s, sizeof(it->port_s), "%d", port);
    (void)snprintf(it->id, sizeof(it->id), "%s", job_id);
    char sig[65] = "";
    if (secret && pr_hmac_sha256_hex(sig, secret, body, len) < 0) {
        pr_free(it);
        return pr_error_set(err, PR_EINTERNAL, "HMAC failed");
    }
    int rc = pr_buf_printf(&req,
                           "POST %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: proctor/%s\r\n"
                           "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                           "X-Proctor-Event: job.finished\r\nX-Proctor-Job: %s\r\n"
                           "%s%s%s"
                           "Connection: close\r\n\r\n",
                           path, it->host, port, PROCTOR_VERSION, len, job_id,
                           secret ? "X-Proctor-Signature: sha256=" : "", secret ? sig : "",
                           secret ? "\r\n" : "");
    if (rc == 0)
        rc = pr_buf_put(&req, body, len);
    if (rc < 0) {
        pr_buf_free(&req);
        pr_free(it);
        return pr_error_set(err, rc, "callback request too large");
    }
    it->req_len = req.len;
    it->req = pr_buf_detach(&req);
    it->url = pr_strdup(url);
    it->record = record_path ? pr_strdup(record_path) : NULL;
    if (!it->req || !it->url || (record_path && !it->record)) {
        pr_free(it->req);
        pr_free(it->url);
        pr_free(it->record);
        pr_free(it);
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    }
    /* After a restart at least one more attempt, whatever the count. */
    it->attempt = attempts_done < 0 ? 0 : attempts_done > CB_ATTEMPTS ? CB_ATTEMPTS : attempts_done;
    it->limit = it->attempt < CB_ATTEMPTS ? CB_ATTEMPTS : it->attempt + 1;
    it->cb = cb;
    (void)uv_timer_init(cb->loop, &it->timer);
    it->timer.data = it;
    it->handles = 1;
    it->next = cb->items;
    if (cb->items)
        cb->items->prev = it;
    cb->items = it;
    cb->n++;
    start_attempt(it);
    return 0;
}

void pr_callbacks_close(pr_callbacks *cb)
{
    if (!cb)
        return;
    cb->closing = true;
    if (cb->n == 0) {
        pr_free(cb);
        return;
    }
    /* Every item ends at its next step (attempt_over sees closing); the last one frees cb.
     * Undelivered reports stay readable through GET /v1/submissions/{id}. */
    cb_item *it = cb->items;
    while (it) {
        cb_item *next = it->next;
        if (it->tcp_open) {
            if (!uv_is_closing((uv_handle_t *)&it->tcp)) {
                (void)uv_timer_stop(&it->timer);
                uv_close((uv_handle_t *)&it->tcp, tcp_closed);
            }
        } else if (it->resolving) {
            (void)uv_cancel((uv_req_t *)&it->gai);
        } else {
            item_finish(it);
        }
        it = next;
    }
}
