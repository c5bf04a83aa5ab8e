/* Result comparison and cost scoring for the sql kind. */
#include "sql_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proctor/common.h"

/* Order of JSON scalars for multiset comparison: null < numbers < strings < tagged objects. */
static int type_rank(const json_t *v)
{
    if (json_is_null(v))
        return 0;
    if (json_is_number(v))
        return 1;
    if (json_is_string(v))
        return 2;
    return 3;
}

/* Exact numeric comparison: two integers as integers, otherwise as long double, which holds
 * every int64 and every double exactly. */
static int num_cmp(const json_t *a, const json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b)) {
        json_int_t x = json_integer_value(a), y = json_integer_value(b);
        return (x > y) - (x < y);
    }
    long double x =
        json_is_integer(a) ? (long double)json_integer_value(a) : (long double)json_real_value(a);
    long double y =
        json_is_integer(b) ? (long double)json_integer_value(b) : (long double)json_real_value(b);
    return (x > y) - (x < y);
}

static int value_cmp(const json_t *a, const json_t *b)
{
    int ra = type_rank(a), rb = type_rank(b);
    if (ra != rb)
        return ra - rb;
    switch (ra) {
    case 0:
        return 0;
    case 1:
        return num_cmp(a, b);
    case 2: {
        size_t la = json_string_length(a), lb = json_string_length(b);
        int c = memcmp(json_string_value(a), json_string_value(b), la < lb ? la : lb);
        if (c != 0)
            return c;
        return (la > lb) - (la < lb);
    }
    default: {
        /* Tagged values (blobs, invalid text): compare their compact JSON text. */
        char *x = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS);
        char *y = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS);
        int c = (x && y) ? strcmp(x, y) : (x != NULL) - (y != NULL);
        pr_free(x); /* jansson allocates with malloc or, when hooked, pr_malloc */
        pr_free(y);
        return c;
    }
    }
}

static int row_cmp(const json_t *a, const json_t *b)
{
    size_t na = json_array_size(a), nb = json_array_size(b);
    size_t n = na < nb ? na : nb;
    for (size_t i = 0; i < n; i++) {
        int c = value_cmp(json_array_get(a, i), json_array_get(b, i));
        if (c != 0)
            return c;
    }
    return (na > nb) - (na < nb);
}

static int row_qsort_cmp(const void *a, const void *b)
{
    return row_cmp(*(json_t *const *)a, *(json_t *const *)b);
}

static void render_row(char *out, size_t outsz, const json_t *row)
{
    char *s = json_dumps(row, JSON_COMPACT | JSON_ENCODE_ANY);
    (void)snprintf(out, outsz, "%.150s%s", s ? s : "?", s && strlen(s) > 150 ? "..." : "");
    pr_free(s);
}

bool pr_sql_rows_equal(const json_t *expected, const json_t *got, bool ordered, char *why,
                       size_t whysz)
{
    size_t ne = json_array_size(expected), ng = json_array_size(got);
    json_t **ve = NULL, **vg = NULL;
    bool equal = true;
    char a[200], b[200];

    if (why && whysz)
        why[0] = '\0';
    if (ne != ng) {
        (void)snprintf(why, whysz, "expected %zu rows, got %zu", ne, ng);
        return false;
    }
    if (ne == 0)
        return true;
    ve = pr_calloc(ne, sizeof(json_t *));
    vg = pr_calloc(ng, sizeof(json_t *));
    if (!ve || !vg) {
        (void)snprintf(why, whysz, "out of memory while comparing");
        equal = false;
        goto cleanup;
    }
    for (size_t i = 0; i < ne; i++) {
        ve[i] = json_array_get(expected, i);
        vg[i] = json_array_get(got, i);
    }
    if (!ordered) {
        qsort(ve, ne, sizeof(json_t *), row_qsort_cmp);
        qsort(vg, ng, sizeof(json_t *), row_qsort_cmp);
    }
    for (size_t i = 0; i < ne; i++) {
        if (row_cmp(ve[i], vg[i]) != 0) {
            render_row(a, sizeof(a), ve[i]);
            render_row(b, sizeof(b), vg[i]);
            if (ordered)
                (void)snprintf(why, whysz, "row %zu: expected %s, got %s", i + 1, a, b);
            else
                (void)snprintf(why, whysz,
                               "rows differ (compared in any order): expected %s, got %s", a, b);
            equal = false;
            break;
        }
    }
cleanup:
    pr_free(ve);
    pr_free(vg);
    return equal;
}

long long pr_sql_cost(long long vm_steps, long long cache_misses)
{
    return vm_steps + 100 * cache_misses;
}

double pr_sql_cost_fraction(double cand, double ref, double full_ratio, double zero_ratio)
{
    if (!(ref > 0))
        ref = 1;
    if (!(cand >= 0))
        return 0;
    if (!(full_ratio >= 1))
        full_ratio = 1;
    if (!(zero_ratio > full_ratio))
        zero_ratio = full_ratio * 2;
    double r = cand / ref;
    if (r <= full_ratio)
        return 1.0;
    if (r >= zero_ratio)
        return 0.0;
    return 1.0 - log(r / full_ratio) / log(zero_ratio / full_ratio);
}
