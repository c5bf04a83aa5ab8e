#ifndef PROCTOR_BOXWATCH_H
#define PROCTOR_BOXWATCH_H
/* The box watcher: a libuv loop watches every sandbox box (sbx_monitor). Each box gets a
 * uv_poll on its watch fd (the pidfd and the status, exec and seccomp-listener descriptors) and
 * a uv_timer for its next limit check (wall clock, CPU of the whole tree, set-up allowance), so
 * limits are enforced by the loop from the moment a box starts, whichever thread later waits for
 * its result. The daemon attaches it to its own loop; `proctor grade` runs one on a thread. */

#include <stdint.h>
#include <uv.h>

#include "proctor/buf.h"
#include "proctor/error.h"

typedef struct pr_boxwatch pr_boxwatch;

typedef struct pr_boxwatch_stats {
    uint64_t watched;      /* boxes handed to the loop since start */
    uint64_t active;       /* boxes the loop watches now */
    uint64_t limit_checks; /* timer expiries (limit checks) */
    uint64_t wakeups;      /* readiness events on a box's fd */
} pr_boxwatch_stats;

/** Attaches a watcher to loop (call on the loop's thread) and installs it as the sandbox
 * monitor: from now on every box sbx_spawn starts, in any thread, is watched by this loop. */
int pr_boxwatch_attach(pr_boxwatch **out, uv_loop_t *loop, pr_error *err);
/** Starts a thread running a loop of its own with a watcher attached. */
int pr_boxwatch_start_thread(pr_boxwatch **out, pr_error *err);
/** Uninstalls the monitor (new boxes are watched by their waiting threads again). Boxes in
 * flight stay watched until they end. Then, for a watcher with its own thread, stops and joins
 * the thread; for an attached one, closes its handle (the loop must run once more). NULL-safe. */
void pr_boxwatch_stop(pr_boxwatch *w);
/** Counters; any thread. */
void pr_boxwatch_get_stats(pr_boxwatch *w, pr_boxwatch_stats *out);
/** Appends the counters in Prometheus text format (proctor_sandbox_boxes_watched_total,
 * proctor_sandbox_boxes_active, proctor_sandbox_limit_timers_total,
 * proctor_sandbox_box_wakeups_total). NULL w appends nothing. Returns 0 or < 0 (buffer cap). */
int pr_boxwatch_metrics(pr_boxwatch *w, pr_buf *b);

#endif
