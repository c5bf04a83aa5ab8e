/* The http kind's client against well-behaved and hostile servers over real loopback TCP:
 * clean errors, bounded memory, keep-alive, and the open-loop load generator's latency
 * measured from the schedule (coordinated omission) against a stalling server. */
#include "t.h"

#include <sys/resource.h>

#include "proctor/common.h"
#include "proctor/error.h"
#include "hostile.h"
#include "http_load.h"
#include "httpc.h"

static const char GET_REQ[] = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";

static pr_httpc_resp *one(uv_loop_t *loop, pr_httpc_conn **c, int port, const char *req,
                          uint64_t timeout_ms)
{
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", port, &a);
    if (!*c)
        T_EQ_INT(pr_httpc_conn_new(c, loop, (struct sockaddr *)&a, 0, false), 0);
    return pr_httpc_conn_do(*c, req, strlen(req), timeout_ms);
}

static void test_ok_keepalive_chunked(uv_loop_t *loop)
{
    int port = hs_start(HS_OK);
    pr_httpc_conn *c = NULL;
    for (int i = 0; i < 5; i++) {
        pr_httpc_resp *r = one(loop, &c, port, GET_REQ, 2000);
        T_EQ_INT(r->err, 0);
        T_EQ_INT(r->status, 200);
        T_EQ_STR(r->body.ptr, "{\"ok\":true}");
        T_EQ_STR(pr_httpc_resp_header(r, "content-type", 0), "application/json");
    }
    T_EQ_INT(pr_httpc_conn_connects(c), 1); /* keep-alive: one TCP connection for five */
    pr_httpc_resp *r = one(loop, &c, port, "GET /chunked HTTP/1.1\r\nHost: t\r\n\r\n", 2000);
    T_EQ_INT(r->err, 0);
    T_EQ_STR(r->body.ptr, "hello world");
    T_NULL(pr_httpc_resp_header(r, "Content-Length", 0));
    pr_httpc_conn_free(c);
}

static void test_hostile(uv_loop_t *loop)
{
    pr_httpc_conn *c = NULL;
    pr_httpc_resp *r;

    r = one(loop, &c, hs_start(HS_SILENT), GET_REQ, 300);
    T_EQ_INT(r->err, PR_ETIMEOUT);
    T_CONTAINS(r->errmsg, "no complete response within 300 ms");
    pr_httpc_conn_free(c);
    c = NULL;

    r = one(loop, &c, hs_start(HS_GARBAGE), GET_REQ, 2000);
    T_EQ_INT(r->err, PR_EINVAL);
    T_CONTAINS(r->errmsg, "malformed HTTP response");
    pr_httpc_conn_free(c);
    c = NULL;

    r = one(loop, &c, hs_start(HS_ENDLESS), GET_REQ, 10000);
    T_EQ_INT(r->err, 0);
    T_EQ_INT(r->status, 200);
    T_TRUE(r->truncated);
    T_EQ_INT(r->body.len, PR_HTTPC_BODY_MAX);
    pr_httpc_conn_free(c);
    c = NULL;

    r = one(loop, &c, hs_start(HS_MIDCLOSE), GET_REQ, 2000);
    T_EQ_INT(r->err, PR_ESYS);
    T_CONTAINS(r->errmsg, "closed in the middle");
    pr_httpc_conn_free(c);
    c = NULL;

    r = one(loop, &c, hs_start(HS_BIGHEADER), GET_REQ, 5000);
    T_EQ_INT(r->err, PR_ELIMIT);
    T_CONTAINS(r->errmsg, "response headers exceed");
    T_TRUE(r->head.len <= PR_HTTPC_HEADER_MAX + 1024);
    pr_httpc_conn_free(c);
    c = NULL;

    /* Nothing listens on port 1: a clean connect error. */
    r = one(loop, &c, 1, GET_REQ, 2000);
    T_EQ_INT(r->err, PR_ESYS);
    T_CONTAINS(r->errmsg, "connect");
    pr_httpc_conn_free(c);
}

static void test_load_coordinated_omission(void)
{
    int port = hs_start(HS_STALL);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", port, &a);
    char *variants[1] = { (char *)GET_REQ };
    size_t lens[1] = { sizeof(GET_REQ) - 1 };
    pr_load_entry e = { 1.0, variants, lens, 1 };
    pr_load_cfg cfg = { 0 };
    cfg.addr = (struct sockaddr *)&a;
    cfg.entries = &e;
    cfg.nentries = 1;
    cfg.rate_rps = 200;
    cfg.connections = 1;
    cfg.warmup_ms = 300;
    cfg.duration_ms = 2000;
    cfg.timeout_ms = 2000;
    cfg.seed = 7;
    cfg.cpu = -1;
    pr_load_result *res = calloc(1, sizeof(*res));
    pr_error err = { 0 };
    T_EQ_INT(pr_load_run(res, &cfg, &err), 0);
    double p50 = (double)pr_hist_percentile(&res->latency, 50) / 1e6;
    double p99 = (double)pr_hist_percentile(&res->latency, 99) / 1e6;
    double s99 = (double)pr_hist_percentile(&res->service, 99) / 1e6;
    fprintf(stderr,
            "load: scheduled %llu completed %llu ok %llu rate %.1f p50 %.3f ms p99 %.3f ms "
            "(service p99 %.3f ms) backlogged %llu connects %llu\n",
            (unsigned long long)res->scheduled, (unsigned long long)res->completed,
            (unsigned long long)res->ok, res->achieved_rps, p50, p99, s99,
            (unsigned long long)res->backlogged, (unsigned long long)res->connects);
    /* 2 s at 200 req/s: 400 requests, give or take one at the window's edges. */
    T_TRUE(res->scheduled >= 399 && res->scheduled <= 401);
    T_EQ_INT(res->completed, res->scheduled);
    T_EQ_INT(res->ok, res->scheduled);
    T_EQ_INT(res->connects, 1);
    /* Two 200 ms stalls in the window: about 2 x 40 requests wait behind them. Timed from the
     * schedule, p99 sits near the stall length; timed from the send it does not. */
    T_TRUE(p99 > 100.0);
    T_TRUE(s99 < p99 / 2);
    T_TRUE(res->backlogged > 20);
    free(res);

    /* Closed loop, as fast as possible, against a well-behaved server. */
    port = hs_start(HS_OK);
    uv_ip4_addr("127.0.0.1", port, &a);
    cfg.rate_rps = 0;
    cfg.connections = 4;
    cfg.warmup_ms = 100;
    cfg.duration_ms = 500;
    res = calloc(1, sizeof(*res));
    T_EQ_INT(pr_load_run(res, &cfg, &err), 0);
    fprintf(stderr, "closed loop: %llu requests, %.0f req/s\n", (unsigned long long)res->completed,
            res->achieved_rps);
    T_TRUE(res->completed > 100);
    T_EQ_INT(res->err_status + res->err_conn + res->err_timeout, 0);
    free(res);
}

int main(void)
{
    uv_loop_t loop;
    T_EQ_INT(uv_loop_init(&loop), 0);
    test_ok_keepalive_chunked(&loop);
    test_hostile(&loop);
    (void)uv_run(&loop, UV_RUN_DEFAULT);
    T_EQ_INT(uv_loop_close(&loop), 0);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    fprintf(stderr, "peak RSS after hostile servers: %ld KiB\n", ru.ru_maxrss);
    T_TRUE(ru.ru_maxrss < 64 * 1024); /* bounded: far below what the servers sent */
    test_load_coordinated_omission();
    return 0;
}
