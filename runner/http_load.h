#ifndef PROCTOR_RUNNER_HTTP_LOAD_H
#define PROCTOR_RUNNER_HTTP_LOAD_H
/* Open-loop HTTP load generator of the http kind (wrk2 model): requests are scheduled at a
 * constant rate and each latency is timed from its *scheduled* send time, so a server that
 * stalls is charged for the requests that queued behind the stall (no coordinated omission).
 * A second histogram keeps the service time (from the actual send) for comparison. Warm-up
 * requests are sent but not recorded. Runs on the calling thread with its own uv loop. */

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "proctor/error.h"
#include "hdr_hist.h"

#define PR_LOAD_MAX_CONNECTIONS 256
#define PR_LOAD_MAX_BACKLOG     (1u << 20)

typedef struct pr_load_entry {
    double weight;   /* relative share of the mix (> 0) */
    char **variants; /* raw HTTP/1.1 requests; one is picked at random per send */
    size_t *variant_lens;
    size_t nvariants;
} pr_load_entry;

typedef struct pr_load_cfg {
    const struct sockaddr *addr;
    const pr_load_entry *entries;
    size_t nentries;
    double rate_rps;      /* target rate; 0 = closed loop, each connection as fast as it can */
    unsigned connections; /* 1..PR_LOAD_MAX_CONNECTIONS */
    uint64_t warmup_ms;
    uint64_t duration_ms; /* measured window */
    uint64_t timeout_ms;  /* per request */
    uint64_t seed;
    int cpu; /* pin the calling thread to this CPU for the run; -1 = leave it */
    /* Called when the measured window opens (start = true) and when the last measured request
     * has completed (start = false), and every ~100 ms (tick). All may be NULL. */
    void (*window)(void *payload, bool start);
    void (*tick)(void *payload);
    void *payload;
} pr_load_cfg;

typedef struct pr_load_result {
    pr_hist latency;     /* ns from the scheduled send to the response, measured window only */
    pr_hist service;     /* ns from the actual send to the response, same requests */
    uint64_t scheduled;  /* measured requests scheduled */
    uint64_t completed;  /* measured requests answered with any status */
    uint64_t ok;         /* measured 2xx */
    uint64_t err_status; /* measured non-2xx */
    uint64_t err_timeout, err_conn, err_other; /* measured failures without a status */
    uint64_t backlogged;      /* measured requests that waited for a free connection */
    uint64_t dropped;         /* backlog overflow (counted as errors) */
    uint64_t status_class[6]; /* [1..5] = 1xx..5xx */
    uint64_t connects;        /* TCP connections opened (keep-alive reuse shows here) */
    uint64_t warmup_sent;
    double window_s;     /* measured window length in seconds (schedule to last answer) */
    double achieved_rps; /* completed measured requests / duration_ms */
    char first_error[160];
} pr_load_result;

/** Runs the load. out must be allocated by the caller (it holds two histograms, ~0.5 MiB).
 * Returns < 0 only for infrastructure failures (bad configuration, out of memory). */
int pr_load_run(pr_load_result *out, const pr_load_cfg *cfg, pr_error *err);

#endif
