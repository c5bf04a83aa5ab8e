#ifndef PROCTOR_RUNNER_HTTPC_H
#define PROCTOR_RUNNER_HTTPC_H
/* HTTP/1.1 client on libuv for the http kind: one keep-alive connection per pr_httpc_conn, one
 * request in flight at a time, responses framed by http-parser (Content-Length, chunked, or
 * until close). Memory stays bounded whatever the server sends: headers are capped (the
 * response fails with PR_ELIMIT), the body is capped (kept up to the cap, `truncated` set,
 * the connection dropped), and every request has a timeout. Everything runs on the thread that
 * runs the loop; sockets are created on that thread (so in its network namespace). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "proctor/buf.h"

#define PR_HTTPC_HEADER_MAX  ((size_t)64 * 1024)
#define PR_HTTPC_BODY_MAX    ((size_t)1024 * 1024)
#define PR_HTTPC_MAX_HEADERS 200

typedef struct pr_httpc_resp {
    int status;       /* HTTP status, 0 when no response was read */
    int err;          /* 0, or PR_ETIMEOUT, PR_ESYS (connect, reset, early close), PR_ELIMIT,
                         PR_EINVAL (not HTTP) */
    char errmsg[160]; /* one line when err != 0 */
    pr_buf head;      /* "name\0value\0" pairs, capped at the header limit */
    size_t nheaders;
    pr_buf body;         /* capped at body_max */
    bool truncated;      /* the body went past body_max; the rest was not read */
    uint64_t body_bytes; /* body bytes seen (including those past the cap) */
    uint64_t sent_ns;    /* when the request was handed to the socket (pr_now_ns clock) */
    uint64_t done_ns;    /* when the response completed or failed */
    int http_major, http_minor;
} pr_httpc_resp;

typedef struct pr_httpc_conn pr_httpc_conn;
typedef void (*pr_httpc_cb)(pr_httpc_conn *c, pr_httpc_resp *resp, void *payload);

/** A connection to addr (IPv4 or IPv6) driven by loop. Nothing connects until the first send.
 * body_max 0 means PR_HTTPC_BODY_MAX; discard_body keeps no body bytes (load phase). */
int pr_httpc_conn_new(pr_httpc_conn **out, uv_loop_t *loop, const struct sockaddr *addr,
                      size_t body_max, bool discard_body);
/** Closes the socket and frees c; pending callbacks are not called. Handle memory is released
 * by libuv close callbacks, so run the loop once more before uv_loop_close. NULL-safe. */
void pr_httpc_conn_free(pr_httpc_conn *c);
/** Sends one request (complete bytes: request line, headers, body; copied) and calls cb once
 * with the response or the failure. Connects or reconnects as needed. 0, or PR_EINVAL when a
 * request is already in flight, PR_ENOMEM. */
int pr_httpc_conn_send(pr_httpc_conn *c, const char *req, size_t len, uint64_t timeout_ms,
                       pr_httpc_cb cb, void *payload);
/** True while a request is in flight. */
bool pr_httpc_conn_busy(const pr_httpc_conn *c);
/** Sends and runs the loop until the response is complete. The response is borrowed, valid
 * until the next send on c or its free. */
pr_httpc_resp *pr_httpc_conn_do(pr_httpc_conn *c, const char *req, size_t len, uint64_t timeout_ms);
/** Number of TCP connections this conn has opened (for keep-alive statistics). */
uint64_t pr_httpc_conn_connects(const pr_httpc_conn *c);

/** The nth (0-based) value of header name (case-insensitive) in resp, or NULL. */
const char *pr_httpc_resp_header(const pr_httpc_resp *r, const char *name, size_t nth);

#endif
