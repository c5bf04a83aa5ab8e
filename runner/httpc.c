/* HTTP/1.1 client on libuv with http-parser framing and hard caps (see httpc.h). */
#include "httpc.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>

#include "proctor/common.h"
#include "proctor/error.h"

#define RBUF_SIZE ((size_t)16 * 1024)
#define REQ_MAX   ((size_t)8 * 1024 * 1024)

/* One TCP connection attempt: its handles live until both close callbacks have run, which may
 * be after the owning conn has moved on to a new socket or been freed. */
typedef struct wrap {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t creq;
    uv_write_t wreq;
    struct pr_httpc_conn *conn; /* NULL once detached */
    int open_handles;
    bool connected;
    char rbuf[RBUF_SIZE];
} wrap;

struct pr_httpc_conn {
    uv_loop_t *loop;
    struct sockaddr_storage addr;
    wrap *w; /* current socket, or NULL */
    http_parser parser;
    pr_httpc_resp resp;
    pr_buf req;
    size_t body_max;
    bool discard_body;
    bool busy;
    bool msg_done;
    bool keep_alive;
    bool header_limit_hit;
    bool last_was_value;
    size_t header_bytes;
    uint64_t timeout_ms;
    uint64_t connects;
    pr_httpc_cb cb;
    void *payload;
};

static http_parser_settings parser_settings;
static uv_once_t settings_once = UV_ONCE_INIT;

static void wrap_close_cb(uv_handle_t *h)
{
    wrap *w = h->data;
    if (--w->open_handles == 0)
        pr_free(w);
}

static void drop_socket(pr_httpc_conn *c)
{
    wrap *w = c->w;
    if (!w)
        return;
    c->w = NULL;
    w->conn = NULL;
    uv_close((uv_handle_t *)&w->tcp, wrap_close_cb);
    uv_close((uv_handle_t *)&w->timer, wrap_close_cb);
}

static void finish(pr_httpc_conn *c, int err, const char *what, const char *detail)
{
    if (!c->busy)
        return;
    c->busy = false;
    c->resp.done_ns = pr_now_ns();
    if (c->w)
        (void)uv_timer_stop(&c->w->timer);
    if (err) {
        c->resp.err = err;
        (void)snprintf(c->resp.errmsg, sizeof(c->resp.errmsg), "%s%s", what, detail ? detail : "");
    }
    if (err || !c->keep_alive || c->resp.truncated)
        drop_socket(c);
    pr_httpc_cb cb = c->cb;
    void *payload = c->payload;
    c->cb = NULL;
    if (cb)
        cb(c, &c->resp, payload);
}

/* ---- http-parser callbacks ---- */

static int count_header(pr_httpc_conn *c, size_t n)
{
    c->header_bytes += n;
    if (c->header_bytes > PR_HTTPC_HEADER_MAX) {
        c->header_limit_hit = true;
        return -1;
    }
    return 0;
}

static int on_status(http_parser *p, const char *at, size_t n)
{
    return count_header(p->data, n);
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    pr_httpc_conn *c = p->data;
    if (count_header(c, n) < 0)
        return -1;
    if (c->last_was_value || c->resp.nheaders == 0) {
        if (c->resp.nheaders >= PR_HTTPC_MAX_HEADERS) {
            c->header_limit_hit = true;
            return -1;
        }
        /* A new header begins: terminate the previous value. */
        if (c->resp.nheaders > 0 && pr_buf_put(&c->resp.head, "", 1) < 0)
            return -1;
        c->resp.nheaders++;
        c->last_was_value = false;
    }
    return pr_buf_put(&c->resp.head, at, n) < 0 ? -1 : 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    pr_httpc_conn *c = p->data;
    if (count_header(c, n) < 0)
        return -1;
    if (!c->last_was_value) {
        if (pr_buf_put(&c->resp.head, "", 1) < 0)
            return -1;
        c->last_was_value = true;
    }
    return pr_buf_put(&c->resp.head, at, n) < 0 ? -1 : 0;
}

static int on_headers_complete(http_parser *p)
{
    pr_httpc_conn *c = p->data;
    if (c->resp.nheaders > 0 && pr_buf_put(&c->resp.head, "", 1) < 0)
        return -1;
    c->resp.status = p->status_code;
    c->resp.http_major = p->http_major;
    c->resp.http_minor = p->http_minor;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    pr_httpc_conn *c = p->data;
    c->resp.body_bytes += n;
    if (c->resp.body_bytes > c->body_max) {
        size_t room = c->body_max - c->resp.body.len;
        if (!c->discard_body && room > 0)
            (void)pr_buf_put(&c->resp.body, at, room < n ? room : n);
        c->resp.truncated = true;
        return -1;
    }
    if (!c->discard_body && pr_buf_put(&c->resp.body, at, n) < 0)
        return -1;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    pr_httpc_conn *c = p->data;
    c->msg_done = true;
    c->keep_alive = http_should_keep_alive(p) != 0;
    http_parser_pause(p, 1); /* anything after the response is not ours */
    return 0;
}

static void settings_init(void)
{
    http_parser_settings_init(&parser_settings);
    parser_settings.on_status = on_status;
    parser_settings.on_header_field = on_header_field;
    parser_settings.on_header_value = on_header_value;
    parser_settings.on_headers_complete = on_headers_complete;
    parser_settings.on_body = on_body;
    parser_settings.on_message_complete = on_message_complete;
}

/* ---- libuv callbacks ---- */

static void parse_bytes(pr_httpc_conn *c, const char *data, size_t n)
{
    size_t used = http_parser_execute(&c->parser, &parser_settings, data, n);
    if (c->msg_done) {
        if (used < n)
            c->keep_alive = false; /* unrequested bytes follow: do not reuse the socket */
        finish(c, 0, NULL, NULL);
        return;
    }
    if (c->resp.truncated) {
        finish(c, 0, NULL, NULL);
        return;
    }
    if (c->header_limit_hit) {
        finish(c, PR_ELIMIT, "response headers exceed ", "64 KiB or 200 fields");
        return;
    }
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (e != HPE_OK)
        finish(c, PR_EINVAL, "malformed HTTP response: ", http_errno_description(e));
    else if (used < n)
        finish(c, PR_EINVAL, "malformed HTTP response: ", "parser stopped");
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    wrap *w = h->data;
    buf->base = w->rbuf;
    buf->len = sizeof(w->rbuf);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    wrap *w = s->data;
    pr_httpc_conn *c = w->conn;
    if (!c)
        return;
    if (nread > 0) {
        if (!c->busy) {
            drop_socket(c); /* bytes nobody asked for */
            return;
        }
        parse_bytes(c, buf->base, (size_t)nread);
        return;
    }
    if (nread == 0)
        return;
    if (!c->busy) {
        drop_socket(c);
        return;
    }
    if (nread == UV_EOF) {
        /* A body delimited by the close ends here. */
        (void)http_parser_execute(&c->parser, &parser_settings, NULL, 0);
        if (c->msg_done) {
            c->keep_alive = false;
            finish(c, 0, NULL, NULL);
        } else if (c->resp.status == 0 && c->header_bytes == 0) {
            finish(c, PR_ESYS, "connection closed before any response", "");
        } else {
            finish(c, PR_ESYS, "connection closed in the middle of the response", "");
        }
        return;
    }
    finish(c, PR_ESYS, "read: ", uv_strerror((int)nread));
}

static void write_cb(uv_write_t *req, int status)
{
    wrap *w = req->data;
    pr_httpc_conn *c = w->conn;
    if (!c || status == 0)
        return;
    finish(c, PR_ESYS, "write: ", uv_strerror(status));
}

static void start_write(pr_httpc_conn *c)
{
    wrap *w = c->w;
    uv_buf_t b = uv_buf_init(c->req.ptr, (unsigned)c->req.len);
    c->resp.sent_ns = pr_now_ns();
    /* Try the write at once: a request that fits the socket buffer then needs no write request,
     * and libuv re-arms the socket's epoll registration for every queued write (one epoll_ctl
     * per request, a third of the client's syscalls in the load phase). */
    int n = uv_try_write((uv_stream_t *)&w->tcp, &b, 1);
    if (n == (int)b.len)
        return;
    if (n > 0) {
        b = uv_buf_init(c->req.ptr + n, (unsigned)(c->req.len - (size_t)n));
    } else if (n != UV_EAGAIN) {
        finish(c, PR_ESYS, "write: ", uv_strerror(n));
        return;
    }
    w->wreq.data = w;
    int rc = uv_write(&w->wreq, (uv_stream_t *)&w->tcp, &b, 1, write_cb);
    if (rc < 0)
        finish(c, PR_ESYS, "write: ", uv_strerror(rc));
}

static void connect_cb(uv_connect_t *req, int status)
{
    wrap *w = req->data;
    pr_httpc_conn *c = w->conn;
    if (!c)
        return;
    if (status < 0) {
        finish(c, PR_ESYS, "connect: ", uv_strerror(status));
        return;
    }
    w->connected = true;
    int rc = uv_read_start((uv_stream_t *)&w->tcp, alloc_cb, read_cb);
    if (rc < 0) {
        finish(c, PR_ESYS, "read: ", uv_strerror(rc));
        return;
    }
    start_write(c);
}

static void timer_cb(uv_timer_t *t)
{
    wrap *w = t->data;
    pr_httpc_conn *c = w->conn;
    if (!c)
        return;
    char ms[32];
    (void)snprintf(ms, sizeof(ms), "%llu ms", (unsigned long long)c->timeout_ms);
    finish(c, PR_ETIMEOUT, "no complete response within ", ms);
}

static int open_socket(pr_httpc_conn *c)
{
    wrap *w = pr_calloc(1, sizeof(*w));
    if (!w)
        return PR_ENOMEM;
    w->conn = c;
    w->tcp.data = w;
    w->timer.data = w;
    w->creq.data = w;
    int rc = uv_tcp_init(c->loop, &w->tcp);
    if (rc < 0) {
        pr_free(w);
        return PR_ESYS;
    }
    w->open_handles = 1;
    rc = uv_timer_init(c->loop, &w->timer);
    if (rc < 0) {
        uv_close((uv_handle_t *)&w->tcp, wrap_close_cb);
        return PR_ESYS;
    }
    w->open_handles = 2;
    c->w = w;
    c->connects++;
    rc = uv_tcp_connect(&w->creq, &w->tcp, (const struct sockaddr *)&c->addr, connect_cb);
    if (rc < 0)
        return rc;
    (void)uv_tcp_nodelay(&w->tcp, 1);
    return 0;
}

int pr_httpc_conn_new(pr_httpc_conn **out, uv_loop_t *loop, const struct sockaddr *addr,
                      size_t body_max, bool discard_body)
{
    uv_once(&settings_once, settings_init);
    *out = NULL;
    pr_httpc_conn *c = pr_calloc(1, sizeof(*c));
    if (!c)
        return PR_ENOMEM;
    c->loop = loop;
    memcpy(&c->addr, addr,
           addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
    c->body_max = body_max ? body_max : PR_HTTPC_BODY_MAX;
    c->discard_body = discard_body;
    pr_buf_init(&c->req, REQ_MAX);
    pr_buf_init(&c->resp.head, PR_HTTPC_HEADER_MAX + (size_t)PR_HTTPC_MAX_HEADERS * 2 + 16);
    pr_buf_init(&c->resp.body, c->body_max);
    *out = c;
    return 0;
}

void pr_httpc_conn_free(pr_httpc_conn *c)
{
    if (!c)
        return;
    drop_socket(c);
    pr_buf_free(&c->req);
    pr_buf_free(&c->resp.head);
    pr_buf_free(&c->resp.body);
    pr_free(c);
}

bool pr_httpc_conn_busy(const pr_httpc_conn *c)
{
    return c->busy;
}

uint64_t pr_httpc_conn_connects(const pr_httpc_conn *c)
{
    return c->connects;
}

int pr_httpc_conn_send(pr_httpc_conn *c, const char *req, size_t len, uint64_t timeout_ms,
                       pr_httpc_cb cb, void *payload)
{
    if (c->busy)
        return PR_EINVAL;
    pr_buf_clear(&c->req);
    int rc = pr_buf_put(&c->req, req, len);
    if (rc < 0)
        return rc;
    pr_buf_clear(&c->resp.head);
    pr_buf_clear(&c->resp.body);
    c->resp.status = 0;
    c->resp.err = 0;
    c->resp.errmsg[0] = '\0';
    c->resp.nheaders = 0;
    c->resp.truncated = false;
    c->resp.body_bytes = 0;
    c->resp.http_major = c->resp.http_minor = 0;
    c->msg_done = false;
    c->keep_alive = false;
    c->header_limit_hit = false;
    c->last_was_value = false;
    c->header_bytes = 0;
    c->timeout_ms = timeout_ms;
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = c;
    c->cb = cb;
    c->payload = payload;
    c->busy = true;
    c->resp.sent_ns = pr_now_ns();
    if (!c->w) {
        rc = open_socket(c);
        if (c->w)
            (void)uv_timer_start(&c->w->timer, timer_cb, timeout_ms, 0);
        if (rc < 0) {
            finish(c, PR_ESYS, "connect: ", rc == PR_ENOMEM ? "out of memory" : uv_strerror(rc));
            return 0;
        }
        return 0;
    }
    (void)uv_timer_start(&c->w->timer, timer_cb, timeout_ms, 0);
    if (c->w->connected)
        start_write(c);
    return 0;
}

static void do_cb(pr_httpc_conn *c, pr_httpc_resp *resp, void *payload)
{
    *(bool *)payload = true;
}

pr_httpc_resp *pr_httpc_conn_do(pr_httpc_conn *c, const char *req, size_t len, uint64_t timeout_ms)
{
    bool done = false;
    if (pr_httpc_conn_send(c, req, len, timeout_ms, do_cb, &done) < 0) {
        c->resp.err = PR_ENOMEM;
        (void)snprintf(c->resp.errmsg, sizeof(c->resp.errmsg), "cannot send the request");
        return &c->resp;
    }
    while (!done)
        (void)uv_run(c->loop, UV_RUN_ONCE);
    return &c->resp;
}

const char *pr_httpc_resp_header(const pr_httpc_resp *r, const char *name, size_t nth)
{
    const char *p = r->head.ptr;
    const char *end = p ? p + r->head.len : NULL;
    for (size_t i = 0; p && i < r->nheaders && p < end; i++) {
        const char *value = p + strlen(p) + 1;
        if (value >= end)
            return NULL;
        if (strcasecmp(p, name) == 0) {
            if (nth == 0)
                return value;
            nth--;
        }
        p = value + strlen(value) + 1;
    }
    return NULL;
}
