/* A small HTTP/1.1 server on the daemon's libuv loop: keep-alive, pipelining in order, caps on
 * header and body sizes, a timer per connection against slow or idle clients, and a cap on
 * connections. Framing is Debian's http-parser. Handlers run synchronously on the loop. */
#include "daemon.h"

#include <http_parser.h>
#include <stdio.h>
#include <string.h>

#include "proctor/common.h"
#include "proctor/log.h"

#define WRITE_QUEUE_MAX (32u << 20) /* a client that stops reading is dropped past this */

struct pr_http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    pr_httpd *h;
    struct pr_http_conn *prev, *next;
    http_parser parser;
    pr_buf url, field, value, body;
    char *authorization, *content_type;
    size_t header_bytes;
    int handles_open;
    int pending_writes;
    bool last_was_value;
    bool closing;
    bool close_after_write; /* Connection: close or an error response */
    bool draining;          /* reads are discarded until EOF (lingering close) */
    size_t drained;         /* bytes discarded */
    uv_shutdown_t shutdown_req;
    bool in_message;
    bool rejected;        /* the current request already got an error response */
    bool expect_continue; /* the client waits for "100 Continue" before its body */
    bool in_handler;      /* the handler is running for the current request */
    bool deferred;        /* the handler will respond later (pr_http_defer) */
    pr_buf rest;          /* bytes read after a deferred request (pipelining), parsed later */
    char rbuf[16384];
};

struct pr_httpd {
    uv_loop_t *loop;
    uv_tcp_t server;
    pr_httpd_opts opts;
    int port;
    size_t nconns;        /* open connections */
    size_t closing_conns; /* connections whose handles are still closing */
    pr_http_conn *conns;
    bool closing;
    bool server_open;
};

typedef struct write_req {
    uv_write_t req;
    pr_http_conn *c;
    char *data;
} write_req;

static http_parser_settings g_settings;

static const char *status_text(int code)
{
    switch (code) {
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

static void conn_free(pr_http_conn *c)
{
    pr_buf_free(&c->rest);
    pr_buf_free(&c->url);
    pr_buf_free(&c->field);
    pr_buf_free(&c->value);
    pr_buf_free(&c->body);
    pr_free(c->authorization);
    pr_free(c->content_type);
    pr_httpd *h = c->h;
    pr_free(c);
    h->closing_conns--;
    if (h->closing && h->nconns == 0 && h->closing_conns == 0 && !h->server_open)
        pr_free(h);
}

static void conn_handle_closed(uv_handle_t *hd)
{
    pr_http_conn *c = hd->data;
    if (--c->handles_open > 0)
        return;
    /* A deferred response still holds the connection: it is freed when that comes. */
    if (c->deferred)
        return;
    conn_free(c);
}

static void conn_close(pr_http_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    pr_httpd *h = c->h;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    h->nconns--;
    h->closing_conns++;
    (void)uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
}

static void on_timeout(uv_timer_t *t)
{
    pr_http_conn *c = t->data;
    json_t *f = json_pack("{s:b}", "in_request", c->in_message);
    pr_dlog("info", "http.timeout", f);
    conn_close(c);
}

static void arm_timer(pr_http_conn *c, unsigned seconds)
{
    (void)uv_timer_start(&c->timer, on_timeout, (uint64_t)seconds * 1000u, 0);
}

static void reset_request(pr_http_conn *c)
{
    pr_buf_clear(&c->url);
    pr_buf_clear(&c->field);
    pr_buf_clear(&c->value);
    /* Large bodies release their memory once the request is done. */
    if (c->body.cap > 65536)
        pr_buf_free(&c->body);
    else
        pr_buf_clear(&c->body);
    pr_free(c->authorization);
    pr_free(c->content_type);
    c->authorization = NULL;
    c->content_type = NULL;
    c->header_bytes = 0;
    c->last_was_value = false;
    c->rejected = false;
    c->expect_continue = false;
}

static void on_linger_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status;
}

/* Closing right after the last response while the client is still sending makes the kernel
 * reset the connection, and the client may lose the response. So: send FIN, discard what the
 * client still sends, and close at its EOF or after a short linger. */
static void linger_close(pr_http_conn *c)
{
    if (c->closing)
        return;
    c->draining = true;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        conn_close(c);
        return;
    }
    (void)uv_timer_start(&c->timer, on_linger_timeout, 2000, 0);
}

static void on_write(uv_write_t *req, int status)
{
    write_req *w = (write_req *)req;
    pr_http_conn *c = w->c;
    pr_free(w->data);
    pr_free(w);
    c->pending_writes--;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->close_after_write && c->pending_writes == 0)
        linger_close(c);
}

static void respond(pr_http_conn *c, int status, const char *content_type,
                    const char *extra_headers, const char *body, size_t len)
{
    pr_buf out = PR_BUF_INIT((64u << 20) + 4096);
    if (c->h->opts.metrics)
        pr_metrics_http(c->h->opts.metrics, status);
    if (c->closing)
        return;
    bool keep = !c->close_after_write && http_should_keep_alive(&c->parser) && !c->h->closing;
    if (!keep)
        c->close_after_write = true;
    int rc =
        pr_buf_printf(&out,
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
                      "Connection: %s\r\n%s\r\n",
                      status, status_text(status), content_type ? content_type : "application/json",
                      len, keep ? "keep-alive" : "close", extra_headers ? extra_headers : "");
    if (rc == 0 && len > 0 && c->parser.method != HTTP_HEAD)
        rc = pr_buf_put(&out, body, len);
    if (rc < 0) {
        pr_buf_free(&out);
        conn_close(c);
        return;
    }
    write_req *w = pr_calloc(1, sizeof(*w));
    if (!w) {
        pr_buf_free(&out);
        conn_close(c);
        return;
    }
    w->c = c;
    size_t total = out.len;
    w->data = pr_buf_detach(&out);
    uv_buf_t buf = uv_buf_init(w->data, (unsigned)total);
    c->pending_writes++;
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_write) < 0) {
        c->pending_writes--;
        pr_free(w->data);
        pr_free(w);
        conn_close(c);
        return;
    }
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > WRITE_QUEUE_MAX)
        conn_close(c);
    if (c->close_after_write)
        c->draining = true;
}

static void feed(pr_http_conn *c, const char *data, size_t n);
static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* The deferred response has been sent: parsing resumes with what the client sent meanwhile. */
/* Parses what the client sent while its request was deferred (pipelining), from the timer so
 * that a response never re-enters the parser. */
static void on_resume(uv_timer_t *t)
{
    pr_http_conn *c = t->data;
    size_t n = c->rest.len;
    char *data = pr_buf_detach(&c->rest);
    pr_buf_init(&c->rest, sizeof(c->rbuf));
    arm_timer(c, c->h->opts.idle_timeout_s);
    if (data)
        feed(c, data, n);
    pr_free(data);
    if (!c->closing && !c->deferred && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        conn_close(c);
}

/* The deferred response has been sent: reading and parsing resume. */
static void end_deferral(pr_http_conn *c)
{
    c->deferred = false;
    if (c->in_handler)
        return; /* answered before the handler returned: nothing was paused */
    if (c->handles_open == 0) {
        conn_free(c);
        return;
    }
    if (c->closing)
        return;
    http_parser_pause(&c->parser, 0);
    if (c->rest.len > 0 && !c->draining) {
        (void)uv_timer_start(&c->timer, on_resume, 0, 0);
        return;
    }
    if (!c->close_after_write)
        arm_timer(c, c->h->opts.idle_timeout_s);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        conn_close(c);
}

void pr_http_respond(pr_http_conn *c, int status, const char *content_type,
                     const char *extra_headers, const char *body, size_t len)
{
    respond(c, status, content_type, extra_headers, body, len);
    if (c->deferred)
        end_deferral(c);
}

void pr_http_defer(pr_http_conn *c)
{
    c->deferred = true;
}

void pr_http_respond_json(pr_http_conn *c, int status, const char *extra_headers, const json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT);
    if (!text) {
        static const char oom[] = "{\"error\":\"out of memory\"}";
        pr_http_respond(c, 500, NULL, NULL, oom, sizeof(oom) - 1);
        return;
    }
    size_t n = strlen(text);
    /* A trailing newline makes curl output readable. */
    char *t2 = pr_realloc(text, n + 2);
    if (t2) {
        text = t2;
        text[n++] = '\n';
        text[n] = '\0';
    }
    pr_http_respond(c, status, "application/json", extra_headers, text, n);
    pr_free(text);
}

void pr_http_respond_error(pr_http_conn *c, int status, const char *extra_headers, const char *msg)
{
    json_t *o = json_pack("{s:s}", "error", msg);
    if (!o) {
        pr_http_respond(c, status, "text/plain", extra_headers, "error\n", 6);
        return;
    }
    pr_http_respond_json(c, status, extra_headers, o);
    json_decref(o);
}

/* An error response that ends the connection (framing cannot continue). */
static void reject(pr_http_conn *c, int status, const char *msg)
{
    if (c->rejected)
        return;
    c->rejected = true;
    c->close_after_write = true;
    pr_http_respond_error(c, status, NULL, msg);
}

static int count_header(pr_http_conn *c, size_t n)
{
    c->header_bytes += n;
    if (c->header_bytes > c->h->opts.header_bytes) {
        reject(c, 431, "request line and headers are too large");
        return -1;
    }
    return 0;
}

static int on_message_begin(http_parser *p)
{
    pr_http_conn *c = p->data;
    reset_request(c);
    c->in_message = true;
    arm_timer(c, c->h->opts.request_timeout_s);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    pr_http_conn *c = p->data;
    if (count_header(c, n) < 0 || pr_buf_put(&c->url, at, n) < 0)
        return -1;
    return 0;
}

static void header_done(pr_http_conn *c)
{
    if (!c->field.ptr || !c->value.ptr)
        return;
    char **slot = NULL;
    if (strcasecmp(c->field.ptr, "Authorization") == 0)
        slot = &c->authorization;
    else if (strcasecmp(c->field.ptr, "Content-Type") == 0)
        slot = &c->content_type;
    if (slot && !*slot)
        *slot = pr_strdup(c->value.ptr);
    if (strcasecmp(c->field.ptr, "Expect") == 0 && strcasecmp(c->value.ptr, "100-continue") == 0)
        c->expect_continue = true;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    pr_http_conn *c = p->data;
    if (count_header(c, n) < 0)
        return -1;
    if (c->last_was_value) {
        header_done(c);
        pr_buf_clear(&c->field);
        pr_buf_clear(&c->value);
        c->last_was_value = false;
    }
    return pr_buf_put(&c->field, at, n) < 0 ? -1 : 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    pr_http_conn *c = p->data;
    if (count_header(c, n) < 0)
        return -1;
    c->last_was_value = true;
    return pr_buf_put(&c->value, at, n) < 0 ? -1 : 0;
}

static int on_headers_complete(http_parser *p)
{
    pr_http_conn *c = p->data;
    if (c->last_was_value)
        header_done(c);
    /* Check the declared length before reading any of the body. */
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > c->h->opts.body_bytes) {
        reject(c, 413, "request body too large");
        return -1;
    }
    if (c->expect_continue && (p->flags & F_CONTENTLENGTH) && p->content_length > 0) {
        /* curl and others wait (1 s) for this before sending a body. */
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        write_req *w = pr_calloc(1, sizeof(*w));
        char *data = pr_strdup(cont);
        if (!w || !data) {
            pr_free(w);
            pr_free(data);
            return 0; /* the client sends its body after its own timeout */
        }
        w->c = c;
        w->data = data;
        uv_buf_t b = uv_buf_init(data, sizeof(cont) - 1);
        c->pending_writes++;
        if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
            c->pending_writes--;
            pr_free(data);
            pr_free(w);
        }
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    pr_http_conn *c = p->data;
    /* Chunked bodies have no declared length: the buffer's cap stops them. */
    if (c->body.len + n > c->h->opts.body_bytes) {
        reject(c, 413, "request body too large");
        return -1;
    }
    if (pr_buf_put(&c->body, at, n) < 0) {
        reject(c, 500, "out of memory");
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    pr_http_conn *c = p->data;
    pr_http_req req;
    (void)uv_timer_stop(&c->timer);
    c->in_message = false;
    memset(&req, 0, sizeof(req));
    req.method = (int)p->method;
    char *url = c->url.ptr ? c->url.ptr : (char *)"";
    char *q = strchr(url, '?');
    if (q) {
        *q = '\0';
        req.query = q + 1;
    }
    char *frag = strchr(url, '#');
    if (frag)
        *frag = '\0';
    req.path = url;
    req.authorization = c->authorization;
    req.content_type = c->content_type;
    req.body = c->body.ptr;
    req.body_len = c->body.len;
    c->in_handler = true;
    c->h->opts.handler(c, &req, c->h->opts.payload);
    c->in_handler = false;
    if (c->deferred) {
        /* No more requests are parsed (nor read) until the response has been sent, so that
         * pipelined responses stay in order. */
        http_parser_pause(p, 1);
        (void)uv_read_stop((uv_stream_t *)&c->tcp);
        if (!c->closing)
            arm_timer(c, c->h->opts.request_timeout_s);
        return 0;
    }
    if (!c->closing && !c->close_after_write)
        arm_timer(c, c->h->opts.idle_timeout_s);
    /* Stop parsing pipelined requests once the connection is ending. */
    return c->close_after_write ? -1 : 0;
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
    pr_http_conn *c = hd->data;
    (void)suggested;
    buf->base = c->rbuf;
    buf->len = sizeof(c->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    pr_http_conn *c = s->data;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0 || c->closing)
        return;
    if (c->draining) {
        c->drained += (size_t)nread;
        if (c->drained > (1u << 20))
            conn_close(c);
        return;
    }
    feed(c, buf->base, (size_t)nread);
}

static void feed(pr_http_conn *c, const char *data, size_t nread)
{
    size_t done = http_parser_execute(&c->parser, &g_settings, data, nread);
    if (c->closing)
        return;
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (e == HPE_PAUSED) {
        /* A deferred request: keep what follows it for when its response is sent. */
        if (done < nread && pr_buf_put(&c->rest, data + done, nread - done) < 0)
            conn_close(c);
        return;
    }
    if (e != HPE_OK || done != (size_t)nread) {
        if (c->close_after_write) {
            c->draining = true;
            if (c->pending_writes == 0)
                linger_close(c);
            return;
        }
        char msg[128];
        (void)snprintf(msg, sizeof(msg), "malformed HTTP request: %s", http_errno_name(e));
        reject(c, 400, msg);
        c->draining = true;
        return;
    }
    if (c->parser.upgrade) {
        reject(c, 400, "protocol upgrades are not supported");
        c->draining = true;
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    pr_httpd *h = server->data;
    if (status < 0 || h->closing)
        return;
    pr_http_conn *c = pr_calloc(1, sizeof(*c));
    if (!c)
        return;
    c->h = h;
    if (uv_tcp_init(h->loop, &c->tcp) < 0) {
        pr_free(c);
        return;
    }
    c->tcp.data = c;
    c->handles_open = 1;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 || h->nconns >= h->opts.max_connections) {
        /* Over the cap: the connection is accepted (so the backlog drains) and closed. */
        c->closing = true;
        c->handles_open = 1;
        h->closing_conns++;
        uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
        return;
    }
    (void)uv_timer_init(h->loop, &c->timer);
    c->timer.data = c;
    c->handles_open = 2;
    (void)uv_tcp_nodelay(&c->tcp, 1);
    pr_buf_init(&c->url, h->opts.header_bytes);
    pr_buf_init(&c->field, h->opts.header_bytes);
    pr_buf_init(&c->value, h->opts.header_bytes);
    pr_buf_init(&c->body, h->opts.body_bytes);
    pr_buf_init(&c->rest, sizeof(c->rbuf));
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    h->nconns++;
    arm_timer(c, h->opts.idle_timeout_s);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        conn_close(c);
}

int pr_httpd_new(pr_httpd **out, uv_loop_t *loop, const char *host, int port,
                 const pr_httpd_opts *opts, pr_error *err)
{
    struct sockaddr_storage addr;
    pr_httpd *h = NULL;
    int rc;
    *out = NULL;
    memset(&g_settings, 0, sizeof(g_settings));
    g_settings.on_message_begin = on_message_begin;
    g_settings.on_url = on_url;
    g_settings.on_header_field = on_header_field;
    g_settings.on_header_value = on_header_value;
    g_settings.on_headers_complete = on_headers_complete;
    g_settings.on_body = on_body;
    g_settings.on_message_complete = on_message_complete;

    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr) != 0)
        return pr_error_set(err, PR_EINVAL, "listen: \"%s\" is not an IP address", host);
    h = pr_calloc(1, sizeof(*h));
    if (!h)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    h->loop = loop;
    h->opts = *opts;
    rc = uv_tcp_init(loop, &h->server);
    if (rc < 0) {
        pr_free(h);
        return pr_error_set(err, PR_ESYS, "uv_tcp_init: %s", uv_strerror(rc));
    }
    h->server.data = h;
    h->server_open = true;
    rc = uv_tcp_bind(&h->server, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&h->server, 511, on_connection);
    if (rc < 0) {
        (void)pr_error_set(err, PR_ESYS, "listen on %s:%d: %s", host, port, uv_strerror(rc));
        h->closing = true;
        pr_httpd_close(h);
        return PR_ESYS;
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    h->port = port;
    if (uv_tcp_getsockname(&h->server, (struct sockaddr *)&bound, &blen) == 0) {
        if (bound.ss_family == AF_INET)
            h->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
        else
            h->port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
    }
    *out = h;
    return 0;
}

int pr_httpd_port(const pr_httpd *h)
{
    return h->port;
}

size_t pr_httpd_connections(const pr_httpd *h)
{
    return h ? h->nconns : 0;
}

void pr_httpd_set_opts(pr_httpd *h, const pr_httpd_opts *opts)
{
    h->opts = *opts;
}

static void server_closed(uv_handle_t *hd)
{
    pr_httpd *h = hd->data;
    h->server_open = false;
    if (h->nconns == 0 && h->closing_conns == 0)
        pr_free(h);
}

void pr_httpd_close(pr_httpd *h)
{
    if (!h)
        return;
    h->closing = true;
    while (h->conns)
        conn_close(h->conns);
    /* The struct is freed by the last close callback (server or connection). */
    uv_close((uv_handle_t *)&h->server, server_closed);
}
