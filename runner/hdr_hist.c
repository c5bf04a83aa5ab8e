/* Log-linear histogram: exact below 2 * PR_HIST_SUB, then PR_HIST_SUB linear buckets per power
 * of two (HdrHistogram's layout with 3 significant digits, without its dependency). */
#include "hdr_hist.h"

#include <string.h>

void pr_hist_reset(pr_hist *h)
{
    memset(h->counts, 0, sizeof(h->counts));
    h->total = 0;
    h->min = UINT64_MAX;
    h->max = 0;
    h->clamped = 0;
    h->sum = 0;
}

static unsigned bucket_of(uint64_t v)
{
    if (v < (uint64_t)2 * PR_HIST_SUB)
        return (unsigned)v;
    /* e >= 1: v >> e lands in [PR_HIST_SUB, 2 * PR_HIST_SUB). */
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned e = msb - PR_HIST_SUB_BITS;
    return 2 * PR_HIST_SUB + (e - 1) * PR_HIST_SUB + (unsigned)((v >> e) - PR_HIST_SUB);
}

/* The largest value that maps to bucket b. */
static uint64_t bucket_high(unsigned b)
{
    if (b < 2 * PR_HIST_SUB)
        return b;
    unsigned e = (b - 2 * PR_HIST_SUB) / PR_HIST_SUB + 1;
    uint64_t sub = (b - 2 * PR_HIST_SUB) % PR_HIST_SUB + PR_HIST_SUB;
    return ((sub + 1) << e) - 1;
}

void pr_hist_record(pr_hist *h, uint64_t v)
{
    if (v > PR_HIST_MAX) {
        v = PR_HIST_MAX;
        h->clamped++;
    }
    h->counts[bucket_of(v)]++;
    h->total++;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->sum += (long double)v;
}

void pr_hist_merge(pr_hist *dst, const pr_hist *src)
{
    for (unsigned i = 0; i < PR_HIST_BUCKETS; i++)
        dst->counts[i] += src->counts[i];
    dst->total += src->total;
    dst->clamped += src->clamped;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t pr_hist_percentile(const pr_hist *h, double p)
{
    if (h->total == 0)
        return 0;
    if (p < 0)
        p = 0;
    if (p > 100)
        p = 100;
    /* Rank of the wanted value, 1-based: ceil(p/100 * total), at least 1. */
    long double want = (long double)p / 100.0L * (long double)h->total;
    uint64_t rank = (uint64_t)want;
    if ((long double)rank < want)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned b = 0; b < PR_HIST_BUCKETS; b++) {
        seen += h->counts[b];
        if (seen >= rank) {
            uint64_t v = bucket_high(b);
            if (v > h->max)
                v = h->max;
            if (v < h->min)
                v = h->min;
            return v;
        }
    }
    return h->max;
}

double pr_hist_mean(const pr_hist *h)
{
    if (h->total == 0)
        return 0;
    return (double)(h->sum / (long double)h->total);
}
