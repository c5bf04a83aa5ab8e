#ifndef PROCTOR_RUNNER_HDR_HIST_H
#define PROCTOR_RUNNER_HDR_HIST_H
/* A small HDR-style log-linear histogram (private to the http kind). Values are unsigned
 * integers (the http kind records nanoseconds). Values below 2048 are exact; above, each power
 * of two is split into 1024 linear sub-buckets, so any reported value is within 1/1024 (0.1 %)
 * of a recorded one. Memory is fixed (about 256 KiB) whatever is recorded; values above
 * PR_HIST_MAX are clamped (and counted in `clamped`). Not thread-safe; one owner. */

#include <stddef.h>
#include <stdint.h>

#define PR_HIST_SUB_BITS 10
#define PR_HIST_SUB      (1u << PR_HIST_SUB_BITS) /* 1024 sub-buckets per octave */
#define PR_HIST_MAX_EXP  30                       /* 2^40 ns, about 18 minutes */
#define PR_HIST_BUCKETS  ((size_t)2 * PR_HIST_SUB + (size_t)PR_HIST_MAX_EXP * PR_HIST_SUB)
#define PR_HIST_MAX      ((UINT64_C(1) << (PR_HIST_MAX_EXP + PR_HIST_SUB_BITS + 1)) - 1)

typedef struct pr_hist {
    uint64_t counts[PR_HIST_BUCKETS];
    uint64_t total;   /* values recorded */
    uint64_t min;     /* exact smallest value; UINT64_MAX when empty */
    uint64_t max;     /* exact largest value (after clamping) */
    uint64_t clamped; /* values above PR_HIST_MAX */
    long double sum;  /* for the mean */
} pr_hist;

/** Empties h. */
void pr_hist_reset(pr_hist *h);
/** Records one value. */
void pr_hist_record(pr_hist *h, uint64_t v);
/** Adds every count of src to dst. */
void pr_hist_merge(pr_hist *dst, const pr_hist *src);
/** The value at percentile p (0..100): the smallest recorded-bucket value v such that at least
 * p % of the values are <= v, reported as the bucket's upper bound (capped at the exact max).
 * 0 when empty. */
uint64_t pr_hist_percentile(const pr_hist *h, double p);
/** Arithmetic mean, 0 when empty. */
double pr_hist_mean(const pr_hist *h);

#endif
