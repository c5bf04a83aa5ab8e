/* Open-loop load generator (see http_load.h). */
#include "http_load.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "proctor/common.h"
#include "httpc.h"

typedef struct slot {
    pr_httpc_conn *conn;
    struct gen *g;
    uint64_t sched_ns;
    bool measured;
    bool busy;
} slot;

typedef struct gen {
    const pr_load_cfg *cfg;
    pr_load_result *out;
    uv_loop_t loop;
    uv_timer_t timer;
    slot *slots;
    uint64_t *backlog; /* ring of scheduled times (bit 0 = measured) */
    size_t bl_head, bl_len;
    uint64_t rng;
    double total_weight;
    uint64_t inflight;
    uint64_t window_start_ns, last_done_ns;
    bool closed_loop;
    bool stop_closed;
} gen;

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void pick(gen *g, const char **req, size_t *len)
{
    const pr_load_cfg *cfg = g->cfg;
    double x = (double)(rng_next(&g->rng) >> 11) / 9007199254740992.0 * g->total_weight;
    size_t e = 0;
    for (; e + 1 < cfg->nentries; e++) {
        if (x < cfg->entries[e].weight)
            break;
        x -= cfg->entries[e].weight;
    }
    const pr_load_entry *en = &cfg->entries[e];
    size_t v = en->nvariants > 1 ? (size_t)(rng_next(&g->rng) % en->nvariants) : 0;
    *req = en->variants[v];
    *len = en->variant_lens[v];
}

static void send_on(gen *g, slot *s, uint64_t sched_ns, bool measured);

static void on_resp(pr_httpc_conn *c, pr_httpc_resp *r, void *payload)
{
    slot *s = payload;
    gen *g = s->g;
    pr_load_result *out = g->out;
    s->busy = false;
    g->inflight--;
    if (s->measured) {
        g->last_done_ns = r->done_ns;
        if (r->status > 0 && !r->err) {
            out->completed++;
            uint64_t from = g->closed_loop ? r->sent_ns : s->sched_ns;
            pr_hist_record(&out->latency, r->done_ns > from ? r->done_ns - from : 0);
            pr_hist_record(&out->service, r->done_ns > r->sent_ns ? r->done_ns - r->sent_ns : 0);
            if (r->status >= 100 && r->status < 600)
                out->status_class[r->status / 100]++;
            if (r->status >= 200 && r->status < 300) {
                out->ok++;
            } else {
                out->err_status++;
                if (!out->first_error[0])
                    (void)snprintf(out->first_error, sizeof(out->first_error), "status %d",
                                   r->status);
            }
        } else {
            if (r->err == PR_ETIMEOUT)
                out->err_timeout++;
            else if (r->err == PR_ESYS)
                out->err_conn++;
            else
                out->err_other++;
            if (!out->first_error[0])
                (void)snprintf(out->first_error, sizeof(out->first_error), "%s", r->errmsg);
        }
    }
    if (g->closed_loop) {
        if (!g->stop_closed)
            send_on(g, s, pr_now_ns(), true);
        return;
    }
    if (g->bl_len > 0) {
        uint64_t item = g->backlog[g->bl_head];
        g->bl_head = (g->bl_head + 1) % PR_LOAD_MAX_BACKLOG;
        g->bl_len--;
        send_on(g, s, item & ~1ULL, (item & 1) != 0);
    }
}

static void send_on(gen *g, slot *s, uint64_t sched_ns, bool measured)
{
    const char *req;
    size_t len;
    pick(g, &req, &len);
    s->sched_ns = sched_ns;
    s->measured = measured;
    s->busy = true;
    g->inflight++;
    if (measured)
        g->out->scheduled++;
    else
        g->out->warmup_sent++;
    if (pr_httpc_conn_send(s->conn, req, len, g->cfg->timeout_ms, on_resp, s) < 0) {
        s->busy = false;
        g->inflight--;
        if (measured)
            g->out->err_other++;
    }
}

static void dispatch(gen *g, uint64_t sched_ns, bool measured)
{
    for (unsigned i = 0; i < g->cfg->connections; i++) {
        if (!g->slots[i].busy) {
            send_on(g, &g->slots[i], sched_ns, measured);
            return;
        }
    }
    if (measured)
        g->out->backlogged++;
    if (g->bl_len >= PR_LOAD_MAX_BACKLOG) {
        if (measured) {
            g->out->scheduled++;
            g->out->dropped++;
        }
        return;
    }
    size_t tail = (g->bl_head + g->bl_len) % PR_LOAD_MAX_BACKLOG;
    g->backlog[tail] = (sched_ns & ~1ULL) | (measured ? 1 : 0);
    g->bl_len++;
}

static void noop_timer(uv_timer_t *t)
{
}

static void walk_close(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int pr_load_run(pr_load_result *out, const pr_load_cfg *cfg, pr_error *err)
{
    gen g;
    int rc = 0;
    cpu_set_t old_mask;
    bool pinned = false;
    bool loop_ok = false;

    memset(&g, 0, sizeof(g));
    memset(out, 0, sizeof(*out));
    pr_hist_reset(&out->latency);
    pr_hist_reset(&out->service);
    if (cfg->connections < 1 || cfg->connections > PR_LOAD_MAX_CONNECTIONS || cfg->nentries == 0 ||
        cfg->rate_rps < 0 || cfg->duration_ms == 0)
        return pr_error_set(err, PR_EINVAL, "load: bad configuration");
    g.cfg = cfg;
    g.out = out;
    g.rng = cfg->seed ? cfg->seed : 1;
    g.closed_loop = cfg->rate_rps == 0;
    for (size_t i = 0; i < cfg->nentries; i++)
        g.total_weight += cfg->entries[i].weight;
    g.slots = pr_calloc(cfg->connections, sizeof(*g.slots));
    g.backlog = g.closed_loop ? NULL : pr_malloc(PR_LOAD_MAX_BACKLOG * sizeof(uint64_t));
    if (!g.slots || (!g.closed_loop && !g.backlog)) {
        rc = pr_error_set(err, PR_ENOMEM, "load: out of memory");
        goto cleanup;
    }
    if (uv_loop_init(&g.loop) < 0) {
        rc = pr_error_set(err, PR_ESYS, "load: uv_loop_init failed");
        goto cleanup;
    }
    loop_ok = true;
    (void)uv_timer_init(&g.loop, &g.timer);
    for (unsigned i = 0; i < cfg->connections; i++) {
        g.slots[i].g = &g;
        rc = pr_httpc_conn_new(&g.slots[i].conn, &g.loop, cfg->addr, 0, true);
        if (rc < 0) {
            rc = pr_error_set(err, rc, "load: out of memory");
            goto cleanup;
        }
    }
    if (cfg->cpu >= 0 && pthread_getaffinity_np(pthread_self(), sizeof(old_mask), &old_mask) == 0) {
        cpu_set_t m;
        CPU_ZERO(&m);
        CPU_SET(cfg->cpu, &m);
        pinned = pthread_setaffinity_np(pthread_self(), sizeof(m), &m) == 0;
    }

    uint64_t t0 = pr_now_ns() + 1000000;
    uint64_t warm_end = t0 + cfg->warmup_ms * 1000000ULL;
    uint64_t end = warm_end + cfg->duration_ms * 1000000ULL;
    uint64_t hard_end = end + cfg->timeout_ms * 1000000ULL + 2000000000ULL;
    uint64_t next_tick = t0;
    bool window_open = false;

    if (g.closed_loop) {
        /* As fast as possible: every connection keeps one request in flight. */
        while (pr_now_ns() < t0)
            ;
        for (unsigned i = 0; i < cfg->connections; i++)
            send_on(&g, &g.slots[i], pr_now_ns(), false);
        for (;;) {
            uint64_t now = pr_now_ns();
            if (!window_open && now >= warm_end) {
                window_open = true;
                g.window_start_ns = now;
                for (unsigned i = 0; i < cfg->connections; i++)
                    g.slots[i].measured = true; /* in-flight warm-up answers count from now */
                out->scheduled += g.inflight;
                if (cfg->window)
                    cfg->window(cfg->payload, true);
            }
            if (now >= end)
                g.stop_closed = true;
            if (g.stop_closed && g.inflight == 0)
                break;
            if (now > hard_end)
                break;
            if (cfg->tick && now >= next_tick) {
                cfg->tick(cfg->payload);
                next_tick = now + 100000000ULL;
            }
            (void)uv_timer_start(&g.timer, noop_timer, 50, 0);
            (void)uv_run(&g.loop, UV_RUN_ONCE);
        }
    } else {
        double interval = 1e9 / cfg->rate_rps;
        uint64_t total =
            (uint64_t)((double)(cfg->warmup_ms + cfg->duration_ms) / 1000.0 * cfg->rate_rps);
        uint64_t next_i = 0;
        for (;;) {
            uint64_t now = pr_now_ns();
            while (next_i < total) {
                uint64_t at = t0 + (uint64_t)((double)next_i * interval);
                if (at > now)
                    break;
                bool measured = at >= warm_end;
                if (measured && !window_open) {
                    window_open = true;
                    g.window_start_ns = at;
                    if (cfg->window)
                        cfg->window(cfg->payload, true);
                }
                dispatch(&g, at, measured);
                next_i++;
            }
            if (next_i >= total && g.inflight == 0 && g.bl_len == 0)
                break;
            if (now > hard_end)
                break;
            if (cfg->tick && now >= next_tick) {
                cfg->tick(cfg->payload);
                next_tick = now + 100000000ULL;
            }
            uint64_t wait_ns = 50000000ULL;
            if (next_i < total) {
                uint64_t at = t0 + (uint64_t)((double)next_i * interval);
                wait_ns = at > now ? at - now : 0;
            }
            if (wait_ns > 2000000ULL) {
                /* Sleep in the poller until about 1 ms before the next send... */
                (void)uv_timer_start(&g.timer, noop_timer, (wait_ns - 1000000ULL) / 1000000ULL, 0);
                (void)uv_run(&g.loop, UV_RUN_ONCE);
            } else {
                /* ...then poll without sleeping so sends leave on time (wrk2 sleeps ~1 ms). */
                (void)uv_run(&g.loop, UV_RUN_NOWAIT);
            }
        }
    }
    if (window_open && cfg->window)
        cfg->window(cfg->payload, false);
    uint64_t last = g.last_done_ns > g.window_start_ns ? g.last_done_ns : pr_now_ns();
    out->window_s = window_open ? (double)(last - g.window_start_ns) / 1e9 : 0;
    out->achieved_rps = (double)out->completed / ((double)cfg->duration_ms / 1000.0);
    /* Requests still unanswered at the hard end count as timeouts. */
    for (unsigned i = 0; i < cfg->connections; i++) {
        if (g.slots[i].busy && g.slots[i].measured)
            out->err_timeout++;
        out->connects += pr_httpc_conn_connects(g.slots[i].conn);
    }
    out->err_timeout += g.bl_len; /* never sent */
    if (!out->first_error[0] && (g.bl_len > 0 || g.inflight > 0))
        (void)snprintf(out->first_error, sizeof(out->first_error),
                       "%llu requests still unanswered or unsent when the run ended",
                       (unsigned long long)g.bl_len + (unsigned long long)g.inflight);
cleanup:
    if (pinned)
        (void)pthread_setaffinity_np(pthread_self(), sizeof(old_mask), &old_mask);
    if (g.slots) {
        for (unsigned i = 0; i < cfg->connections; i++)
            pr_httpc_conn_free(g.slots[i].conn);
    }
    if (loop_ok) {
        uv_walk(&g.loop, walk_close, NULL);
        (void)uv_run(&g.loop, UV_RUN_DEFAULT);
        (void)uv_loop_close(&g.loop);
    }
    pr_free(g.slots);
    pr_free(g.backlog);
    return rc;
}
