/* proctor's load client (runner/http_load.c) as a command, for comparison with wrk.
 * usage: loadclient PORT RATE CONNECTIONS DURATION_S [WARMUP_S] [CPU]
 *   RATE 0 = closed loop (each connection as fast as it can, like wrk) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proctor/common.h"
#include "http_load.h"

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s PORT RATE CONNECTIONS DURATION_S [WARMUP_S] [CPU]\n", argv[0]);
        return 2;
    }
    static const char req[] = "GET /json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    char *variants[1] = { (char *)req };
    size_t lens[1] = { sizeof(req) - 1 };
    pr_load_entry e = { 1.0, variants, lens, 1 };
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", (int)strtol(argv[1], NULL, 10), &a);
    pr_load_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.addr = (struct sockaddr *)&a;
    cfg.entries = &e;
    cfg.nentries = 1;
    cfg.rate_rps = strtod(argv[2], NULL);
    cfg.connections = (unsigned)strtoul(argv[3], NULL, 10);
    cfg.duration_ms = (uint64_t)(strtod(argv[4], NULL) * 1000);
    cfg.warmup_ms = argc > 5 ? (uint64_t)(strtod(argv[5], NULL) * 1000) : 1000;
    cfg.cpu = argc > 6 ? (int)strtol(argv[6], NULL, 10) : -1;
    cfg.timeout_ms = 5000;
    cfg.seed = 1;
    pr_load_result *r = calloc(1, sizeof(*r));
    pr_error err = { 0 };
    if (pr_load_run(r, &cfg, &err) < 0) {
        fprintf(stderr, "load: %s\n", err.msg);
        return 1;
    }
    const pr_hist *h = &r->latency, *s = &r->service;
    printf("rate_rps %.0f completed %llu errors %llu connects %llu\n", r->achieved_rps,
           (unsigned long long)r->completed,
           (unsigned long long)(r->err_status + r->err_timeout + r->err_conn + r->err_other),
           (unsigned long long)r->connects);
    printf("from schedule: p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f max %.1f us\n",
           pr_hist_percentile(h, 50) / 1e3, pr_hist_percentile(h, 90) / 1e3,
           pr_hist_percentile(h, 99) / 1e3, pr_hist_percentile(h, 99.9) / 1e3, h->max / 1e3);
    printf("from send:     p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f max %.1f us\n",
           pr_hist_percentile(s, 50) / 1e3, pr_hist_percentile(s, 90) / 1e3,
           pr_hist_percentile(s, 99) / 1e3, pr_hist_percentile(s, 99.9) / 1e3, s->max / 1e3);
    free(r);
    return 0;
}
