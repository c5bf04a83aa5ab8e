/* The log-linear histogram against a sorted-array reference. */
#include "t.h"

#include <stdlib.h>

#include "hdr_hist.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t ref_percentile(const uint64_t *sorted, size_t n, double p)
{
    double want = p / 100.0 * (double)n;
    size_t rank = (size_t)want;
    if ((double)rank < want)
        rank++;
    if (rank == 0)
        rank = 1;
    return sorted[rank - 1];
}

static void check_against_reference(uint64_t *vals, size_t n)
{
    static pr_hist h;
    pr_hist_reset(&h);
    for (size_t i = 0; i < n; i++)
        pr_hist_record(&h, vals[i]);
    qsort(vals, n, sizeof(vals[0]), cmp_u64);
    static const double ps[] = { 0, 1, 10, 50, 90, 95, 99, 99.9, 99.99, 100 };
    for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
        uint64_t want = ref_percentile(vals, n, ps[i]);
        uint64_t got = pr_hist_percentile(&h, ps[i]);
        /* Reported values are bucket upper bounds: never below, at most 1/1024 above. */
        if (got < want || (double)(got - want) > (double)want / 1024.0 + 1.0)
            T_FAIL("p%g: got %llu, reference %llu", ps[i], (unsigned long long)got,
                   (unsigned long long)want);
    }
    T_EQ_INT(h.total, n);
    T_EQ_INT(pr_hist_percentile(&h, 100), vals[n - 1]);
}

int main(void)
{
    enum {
        N = 200000
    };
    uint64_t *vals = malloc(N * sizeof(*vals));
    T_TRUE(vals != NULL);
    uint64_t s = 42;
    /* Log-uniform values from 1 ns to about 1 s: every octave is exercised. */
    for (size_t i = 0; i < N; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        unsigned shift = (unsigned)(s >> 59) % 30;
        vals[i] = ((s >> 20) & ((1ULL << shift) - 1)) + 1;
    }
    check_against_reference(vals, N);

    /* A bimodal latency shape: the stalling server of research/challenges.md 3.3. */
    for (size_t i = 0; i < N; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        vals[i] = (i % 11 == 0) ? 1000000 + (s >> 40) % 200000000 : 60000 + (s >> 40) % 40000;
    }
    check_against_reference(vals, N);

    /* Small counts, exact values, clamping and empty. */
    static pr_hist h;
    pr_hist_reset(&h);
    T_EQ_INT(pr_hist_percentile(&h, 50), 0);
    pr_hist_record(&h, 5);
    pr_hist_record(&h, 7);
    T_EQ_INT(pr_hist_percentile(&h, 50), 5);
    T_EQ_INT(pr_hist_percentile(&h, 51), 7);
    pr_hist_record(&h, UINT64_MAX);
    T_EQ_INT(h.clamped, 1);
    T_EQ_INT(pr_hist_percentile(&h, 100), PR_HIST_MAX);
    free(vals);
    return 0;
}
