/* The box watcher: the libuv loop watches every sandbox box (see proctor/boxwatch.h).
 *
 * sbx_spawn (any thread) hands a new box to watch_cb, which queues it and wakes the loop with
 * uv_async_send. On the loop, each box gets a uv_poll on its watch fd and a one-shot uv_timer
 * for its next limit check; either one runs sbx_proc_step, which handles what is ready, kills
 * the box on a limit and says when to look again. When the box has ended both handles are
 * closed and, in the last close callback, sbx_proc_watch_end wakes the thread waiting for the
 * result. Nothing here blocks and nothing polls on a fixed period. */
#include "proctor/boxwatch.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "proctor/buf.h"
#include "proctor/common.h"
#include "proctor/log.h"
#include "proctor/sandbox.h"

typedef struct box {
    pr_boxwatch *w;
    sbx_proc *p;
    uv_poll_t poll;
    uv_timer_t timer;
    bool poll_on;
    int open_handles;
    struct box *next;
} box;

struct pr_boxwatch {
    uv_loop_t *loop;
    uv_async_t async;
    sbx_monitor mon;
    pthread_mutex_t mu;
    box *pending;  /* handed over, not yet picked up by the loop (guarded by mu) */
    bool stopping; /* guarded by mu */
    atomic_uint_fast64_t watched, active, limit_checks, wakeups;
    /* Own thread (pr_boxwatch_start_thread). */
    bool own;
    uv_loop_t own_loop;
    pthread_t thread;
};

/* A watcher with its own thread that is stopping closes its async handle once no box is left,
 * which ends uv_run on that thread. */
static void close_if_done(pr_boxwatch *w)
{
    (void)pthread_mutex_lock(&w->mu);
    bool done = w->stopping && w->own && atomic_load(&w->active) == 0;
    (void)pthread_mutex_unlock(&w->mu);
    if (done && !uv_is_closing((uv_handle_t *)&w->async))
        uv_close((uv_handle_t *)&w->async, NULL);
}

static void box_closed(uv_handle_t *h)
{
    box *b = h->data;
    if (--b->open_handles > 0)
        return;
    pr_boxwatch *w = b->w;
    atomic_fetch_sub(&w->active, 1);
    sbx_proc_watch_end(b->p);
    pr_free(b);
    close_if_done(w);
}

static void box_step(box *b);

static void on_timer(uv_timer_t *t)
{
    box *b = t->data;
    atomic_fetch_add(&b->w->limit_checks, 1);
    box_step(b);
}

static void box_step(box *b)
{
    uint64_t wait_ms = 0;
    if (sbx_proc_step(b->p, &wait_ms) == 1) {
        /* uv_close stops the handles too. */
        if (b->poll_on)
            uv_close((uv_handle_t *)&b->poll, box_closed);
        uv_close((uv_handle_t *)&b->timer, box_closed);
        return;
    }
    /* Without a poll handle (could not be made) the timer alone drives the box, often. */
    if (!b->poll_on && wait_ms > 5)
        wait_ms = 5;
    (void)uv_timer_start(&b->timer, on_timer, wait_ms, 0);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    box *b = h->data;
    atomic_fetch_add(&b->w->wakeups, 1);
    box_step(b);
}

static void box_start(pr_boxwatch *w, box *b)
{
    b->open_handles = 1;
    (void)uv_timer_init(w->loop, &b->timer);
    b->timer.data = b;
    int fd = sbx_proc_watch_fd(b->p);
    if (fd >= 0 && uv_poll_init(w->loop, &b->poll, fd) == 0) {
        b->poll.data = b;
        b->open_handles++;
        b->poll_on = uv_poll_start(&b->poll, UV_READABLE, on_poll) == 0;
        if (!b->poll_on)
            uv_close((uv_handle_t *)&b->poll, box_closed);
    }
    if (!b->poll_on)
        pr_log(PR_LOG_WARN, "boxwatch: no poll handle for a box; its timer drives it");
    box_step(b);
}

static void on_async(uv_async_t *a)
{
    pr_boxwatch *w = a->data;
    (void)pthread_mutex_lock(&w->mu);
    box *list = w->pending;
    w->pending = NULL;
    (void)pthread_mutex_unlock(&w->mu);
    while (list) {
        box *b = list;
        list = b->next;
        b->next = NULL;
        box_start(w, b);
    }
    close_if_done(w);
}

static bool watch_cb(void *ctx, sbx_proc *p)
{
    pr_boxwatch *w = ctx;
    box *b = pr_calloc(1, sizeof(*b));
    if (!b)
        return false;
    b->w = w;
    b->p = p;
    (void)pthread_mutex_lock(&w->mu);
    if (w->stopping) {
        (void)pthread_mutex_unlock(&w->mu);
        pr_free(b);
        return false;
    }
    b->next = w->pending;
    w->pending = b;
    atomic_fetch_add(&w->watched, 1);
    atomic_fetch_add(&w->active, 1);
    (void)pthread_mutex_unlock(&w->mu);
    (void)uv_async_send(&w->async);
    return true;
}

static int init_common(pr_boxwatch *w, uv_loop_t *loop, pr_error *err)
{
    w->loop = loop;
    int rc = uv_async_init(loop, &w->async, on_async);
    if (rc < 0)
        return pr_error_set(err, PR_ESYS, "boxwatch: uv_async_init: %s", uv_strerror(rc));
    w->async.data = w;
    (void)pthread_mutex_init(&w->mu, NULL);
    w->mon.watch = watch_cb;
    w->mon.ctx = w;
    return 0;
}

int pr_boxwatch_attach(pr_boxwatch **out, uv_loop_t *loop, pr_error *err)
{
    *out = NULL;
    pr_boxwatch *w = pr_calloc(1, sizeof(*w));
    if (!w)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    int rc = init_common(w, loop, err);
    if (rc < 0) {
        pr_free(w);
        return rc;
    }
    sbx_set_monitor(&w->mon);
    *out = w;
    return 0;
}

static void *thread_main(void *arg)
{
    pr_boxwatch *w = arg;
    (void)uv_run(w->loop, UV_RUN_DEFAULT);
    return NULL;
}

int pr_boxwatch_start_thread(pr_boxwatch **out, pr_error *err)
{
    *out = NULL;
    pr_boxwatch *w = pr_calloc(1, sizeof(*w));
    if (!w)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    int rc = uv_loop_init(&w->own_loop);
    if (rc < 0) {
        pr_free(w);
        return pr_error_set(err, PR_ESYS, "boxwatch: uv_loop_init: %s", uv_strerror(rc));
    }
    w->own = true;
    rc = init_common(w, &w->own_loop, err);
    if (rc < 0) {
        (void)uv_loop_close(&w->own_loop);
        pr_free(w);
        return rc;
    }
    rc = pthread_create(&w->thread, NULL, thread_main, w);
    if (rc != 0) {
        uv_close((uv_handle_t *)&w->async, NULL);
        (void)uv_run(&w->own_loop, UV_RUN_DEFAULT);
        (void)uv_loop_close(&w->own_loop);
        (void)pthread_mutex_destroy(&w->mu);
        pr_free(w);
        return pr_error_set(err, PR_ESYS, "boxwatch: cannot start its thread");
    }
    sbx_set_monitor(&w->mon);
    *out = w;
    return 0;
}

static void attached_closed(uv_handle_t *h)
{
    pr_boxwatch *w = h->data;
    (void)pthread_mutex_destroy(&w->mu);
    pr_free(w);
}

void pr_boxwatch_stop(pr_boxwatch *w)
{
    if (!w)
        return;
    sbx_set_monitor(NULL);
    (void)pthread_mutex_lock(&w->mu);
    w->stopping = true;
    (void)pthread_mutex_unlock(&w->mu);
    if (w->own) {
        /* The loop closes its async handle once no box is left, then uv_run returns. */
        (void)uv_async_send(&w->async);
        (void)pthread_join(w->thread, NULL);
        (void)uv_loop_close(&w->own_loop);
        (void)pthread_mutex_destroy(&w->mu);
        pr_free(w);
        return;
    }
    /* Attached: the owner's loop runs on and frees w once the handle is closed. */
    uv_close((uv_handle_t *)&w->async, attached_closed);
}

void pr_boxwatch_get_stats(pr_boxwatch *w, pr_boxwatch_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!w)
        return;
    out->watched = atomic_load(&w->watched);
    out->active = atomic_load(&w->active);
    out->limit_checks = atomic_load(&w->limit_checks);
    out->wakeups = atomic_load(&w->wakeups);
}

int pr_boxwatch_metrics(pr_boxwatch *w, pr_buf *b)
{
    if (!w)
        return 0;
    pr_boxwatch_stats st;
    pr_boxwatch_get_stats(w, &st);
    return pr_buf_printf(b,
                         "# HELP proctor_sandbox_boxes_watched_total Sandbox boxes watched by the "
                         "event loop.\n"
                         "# TYPE proctor_sandbox_boxes_watched_total counter\n"
                         "proctor_sandbox_boxes_watched_total %llu\n"
                         "# HELP proctor_sandbox_boxes_active Boxes running now.\n"
                         "# TYPE proctor_sandbox_boxes_active gauge\n"
                         "proctor_sandbox_boxes_active %llu\n"
                         "# HELP proctor_sandbox_limit_timers_total Limit checks run by a "
                         "box's timer.\n"
                         "# TYPE proctor_sandbox_limit_timers_total counter\n"
                         "proctor_sandbox_limit_timers_total %llu\n"
                         "# HELP proctor_sandbox_box_wakeups_total Readiness events of boxes.\n"
                         "# TYPE proctor_sandbox_box_wakeups_total counter\n"
                         "proctor_sandbox_box_wakeups_total %llu\n",
                         (unsigned long long)st.watched, (unsigned long long)st.active,
                         (unsigned long long)st.limit_checks, (unsigned long long)st.wakeups);
}
