/* Deterministic data for SQL challenges. Every value comes from a keyed hash of (seed, table,
 * row, field), never from a repeating pattern, so a wrong query does not pass by accident; edge
 * rows are planted on purpose (see plant_* below). The same rows feed SQLite and PostgreSQL. */
#include "sql_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proctor/common.h"

#define N_CUSTOMERS 20000
#define N_PRODUCTS  1000
#define N_ORDERS    200000

#define T_2020    1577836800LL /* 2020-01-01 00:00:00 UTC */
#define T_2023    1672531200LL
#define T_2024    1704067200LL
#define T_2024_H2 1719792000LL /* 2024-07-01 */
#define T_2025    1735689600LL
#define T_2025_H2 1751328000LL /* 2025-07-01 */
#define T_2026    1767225600LL

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t h3(uint64_t seed, uint64_t table, uint64_t row, uint64_t field)
{
    return mix(mix(mix(seed ^ (table << 56)) ^ row) ^ (field * 0x100000001b3ULL));
}

/* Uniform in [0, n). */
static uint64_t pick(uint64_t h, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)h * n) >> 64);
}

static void fmt_time(char *out, size_t n, long long t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    (void)gmtime_r(&tt, &tm);
    (void)strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm);
}

enum {
    CLS_ACTIVE = 0,
    CLS_HEAVY,
    CLS_CHURNED,
    CLS_NEVER
};

typedef struct gen_order {
    long long t; /* created_at, UNIX seconds */
    int customer;
    int status; /* index into statuses[] */
    int first_item, nitems;
} gen_order;

typedef struct gen_item {
    int order_id, product, quantity, price;
} gen_item;

typedef struct gen {
    uint64_t seed;
    unsigned char cls[N_CUSTOMERS + 1];
    int price[N_PRODUCTS + 1];
    gen_order *orders; /* index 0 unused; ids 1..norders */
    size_t norders, cap_orders;
    gen_item *items;
    size_t nitems, cap_items;
    int *heavy, nheavy;
    int *light, nlight;   /* active + churned: may order before the churn date */
    int *active, nactive; /* active only */
} gen;

static const char *const statuses[] = { "pending", "paid", "shipped", "cancelled", "refunded" };
enum {
    ST_PENDING = 0,
    ST_PAID,
    ST_SHIPPED,
    ST_CANCELLED,
    ST_REFUNDED
};

static const char *const categories[] = { "books",   "electronics", "garden", "toys",
                                          "kitchen", "sports",      "beauty", "grocery",
                                          "office",  "automotive",  "music",  "apparel" };
static const char *const adjectives[] = { "Classic", "Compact", "Deluxe", "Eco",  "Smart",
                                          "Rugged",  "Urban",   "Pro",    "Mini", "Ultra",
                                          "Vintage", "Fresh",   "Nordic", "Solar" };
static const char *const nouns[] = { "Lamp",   "Kettle",  "Backpack", "Speaker", "Notebook",
                                     "Helmet", "Blender", "Jacket",   "Puzzle",  "Router",
                                     "Mug",    "Drill",   "Guitar",   "Sneaker", "Planter" };
static const char *const first_names[] = { "anna",  "ben",  "chloe", "david", "emma",  "felix",
                                           "grace", "hugo", "ines",  "jonas", "kira",  "liam",
                                           "mia",   "noah", "olga",  "pablo", "quinn", "rosa",
                                           "sven",  "tara", "umar",  "vera",  "wei",   "yara" };
static const char *const last_names[] = { "smith",  "muller", "garcia", "rossi",  "kowalski",
                                          "dubois", "silva",  "jensen", "novak",  "tanaka",
                                          "okafor", "singh",  "brown",  "larsen", "moreau" };
static const char *const domains[] = { "mail.example", "inbox.example", "post.example",
                                       "corp.example", "web.example" };
/* Country weights in percent (sum 100). */
static const char *const countries[] = { "US", "DE", "GB", "FR", "IN", "BR",
                                         "CA", "NL", "ES", "IT", "PL", "SE" };
static const int country_weight[] = { 25, 12, 10, 9, 8, 7, 6, 5, 5, 5, 4, 4 };

static int add_order(gen *g, long long t, int customer, int status, pr_error *err)
{
    if (g->norders + 1 >= g->cap_orders) {
        size_t cap = g->cap_orders * 2;
        gen_order *p = pr_realloc(g->orders, cap * sizeof(*p));
        if (!p)
            return pr_error_set(err, PR_ENOMEM, "out of memory");
        g->orders = p;
        g->cap_orders = cap;
    }
    g->norders++;
    gen_order *o = &g->orders[g->norders];
    o->t = t;
    o->customer = customer;
    o->status = status;
    o->first_item = (int)g->nitems;
    o->nitems = 0;
    return (int)g->norders;
}

/* Items must be added right after their order (items stay grouped by order id). */
static int add_item(gen *g, int order_id, int product, int quantity, int price, pr_error *err)
{
    if (g->nitems + 1 >= g->cap_items) {
        size_t cap = g->cap_items * 2;
        gen_item *p = pr_realloc(g->items, cap * sizeof(*p));
        if (!p)
            return pr_error_set(err, PR_ENOMEM, "out of memory");
        g->items = p;
        g->cap_items = cap;
    }
    g->items[g->nitems++] = (gen_item){ order_id, product, quantity, price };
    g->orders[order_id].nitems++;
    return 0;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static int classify(gen *g, pr_error *err)
{
    g->heavy = pr_calloc(N_CUSTOMERS, sizeof(int));
    g->light = pr_calloc(N_CUSTOMERS, sizeof(int));
    g->active = pr_calloc(N_CUSTOMERS, sizeof(int));
    if (!g->heavy || !g->light || !g->active)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    for (int c = 1; c <= N_CUSTOMERS; c++) {
        uint64_t h = pick(h3(g->seed, 1, (uint64_t)c, 9), 10000);
        int k = CLS_ACTIVE;
        if (h < 12)
            k = CLS_HEAVY; /* ~24 customers share 12% of all orders */
        else if (h < 12 + 600)
            k = CLS_CHURNED; /* ~6%: ordered only before 2024-07 */
        else if (h < 12 + 600 + 200)
            k = CLS_NEVER; /* ~2%: no orders at all */
        /* Fixed roles for the public parameter sets and planted edge rows. */
        if (c == 42)
            k = CLS_HEAVY;
        else if (c == 4711)
            k = CLS_ACTIVE;
        else if (c == 77 || (c >= 19990 && c <= 19994))
            k = CLS_NEVER;
        g->cls[c] = (unsigned char)k;
        if (k == CLS_HEAVY)
            g->heavy[g->nheavy++] = c;
        if (k == CLS_ACTIVE || k == CLS_CHURNED)
            g->light[g->nlight++] = c;
        if (k == CLS_ACTIVE)
            g->active[g->nactive++] = c;
    }
    return 0;
}

static int items_for(gen *g, int oid, uint64_t row, pr_error *err)
{
    uint64_t k = pick(h3(g->seed, 4, row, 0), 1000);
    int n = k < 15 ? 0 : k < 215 ? 1 : k < 435 ? 2 : k < 655 ? 3 : k < 825 ? 4 : k < 925 ? 5 : 6;
    for (int j = 0; j < n; j++) {
        uint64_t u = h3(g->seed, 4, row, 10 + (uint64_t)j);
        /* Popular products: squaring a uniform variate skews towards low ids. */
        double x = (double)pick(u, 1000000) / 1000000.0;
        int product = 1 + (int)(x * x * N_PRODUCTS);
        uint64_t q = pick(h3(g->seed, 4, row, 30 + (uint64_t)j), 100);
        int quantity = q < 60 ? 1 : q < 85 ? 2 : q < 93 ? 3 : 4 + (int)(q % 7);
        int price = g->price[product];
        if (pick(h3(g->seed, 4, row, 50 + (uint64_t)j), 5) == 0)
            price = price * 85 / 100; /* a discount: unit price differs from list price */
        int rc = add_item(g, oid, product, quantity, price, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int base_orders(gen *g, pr_error *err)
{
    long long *times = pr_malloc(N_ORDERS * sizeof(long long));
    if (!times)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    for (uint64_t j = 0; j < N_ORDERS; j++)
        times[j] = T_2023 + (long long)pick(h3(g->seed, 3, j, 1), (uint64_t)(T_2026 - T_2023));
    /* Ids follow time, as in a real shop; equal seconds happen and are kept. */
    qsort(times, N_ORDERS, sizeof(long long), cmp_ll);
    int rc = 0;
    for (uint64_t j = 0; j < N_ORDERS && rc == 0; j++) {
        long long t = times[j];
        int c;
        uint64_t who = pick(h3(g->seed, 3, j, 2), 1000);
        if (who < 120)
            c = g->heavy[pick(h3(g->seed, 3, j, 3), (uint64_t)g->nheavy)];
        else if (t < T_2024_H2)
            c = g->light[pick(h3(g->seed, 3, j, 3), (uint64_t)g->nlight)];
        else
            c = g->active[pick(h3(g->seed, 3, j, 3), (uint64_t)g->nactive)];
        uint64_t s = pick(h3(g->seed, 3, j, 4), 100);
        int st = s < 55   ? ST_PAID
                 : s < 73 ? ST_SHIPPED
                 : s < 80 ? ST_PENDING
                 : s < 92 ? ST_CANCELLED
                          : ST_REFUNDED;
        int oid = add_order(g, t, c, st, err);
        if (oid < 0)
            rc = oid;
        else
            rc = items_for(g, oid, j, err);
    }
    pr_free(times);
    return rc;
}

/* q2: for the public customers, the two most recent orders share one second (the higher id,
 * which has no items, must come first with total 0), and a third is an hour earlier. */
static int plant_recent(gen *g, pr_error *err)
{
    static const int who[] = { 42, 4711 };
    for (size_t i = 0; i < PR_ARRAY_LEN(who); i++) {
        long long t = T_2026 - 3600 * (long long)(i + 1) - 17;
        int a = add_order(g, t, who[i], ST_SHIPPED, err);
        if (a < 0)
            return a;
        int rc = add_item(g, a, 17 + (int)i, 2, g->price[17 + i], err);
        if (rc < 0)
            return rc;
        rc = add_item(g, a, 230, 1, g->price[230], err);
        if (rc < 0)
            return rc;
        int b = add_order(g, t, who[i], ST_PENDING, err); /* same second, no items */
        if (b < 0)
            return b;
        int c = add_order(g, t - 3600, who[i], ST_CANCELLED, err);
        if (c < 0)
            return c;
        rc = add_item(g, c, 5, 1, g->price[5], err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* q3: paid orders on the first and the last second of every year. */
static int plant_year_edges(gen *g, pr_error *err)
{
    static const long long starts[] = { T_2023, T_2024, T_2025, T_2026 };
    for (size_t y = 0; y < PR_ARRAY_LEN(starts); y++) {
        long long edges[2] = { starts[y] - 1, starts[y] };
        for (int e = 0; e < 2; e++) {
            if (edges[e] < T_2023 || edges[e] >= T_2026)
                continue;
            int c = g->active[pick(h3(g->seed, 6, y, (uint64_t)e), (uint64_t)g->nactive)];
            int o = add_order(g, edges[e], c, ST_PAID, err);
            if (o < 0)
                return o;
            int product = 1 + (int)pick(h3(g->seed, 6, y, 10 + (uint64_t)e), N_PRODUCTS);
            int rc = add_item(g, o, product, 3, g->price[product] + 7, err);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

/* q4: customers with a single order exactly on, and one second before, each public :since. */
static int plant_since_edges(gen *g, pr_error *err)
{
    static const long long at[] = { T_2025_H2, T_2025_H2 - 1, T_2024, T_2024 - 1 };
    for (size_t i = 0; i < PR_ARRAY_LEN(at); i++) {
        int o = add_order(g, at[i], 19990 + (int)i, ST_SHIPPED, err);
        if (o < 0)
            return o;
        int rc = add_item(g, o, 99, 1, g->price[99], err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static long long *paid_totals(const gen *g)
{
    long long *tot = pr_calloc(N_CUSTOMERS + 1, sizeof(long long));
    if (!tot)
        return NULL;
    for (size_t i = 0; i < g->nitems; i++) {
        const gen_order *o = &g->orders[g->items[i].order_id];
        if (o->status == ST_PAID)
            tot[o->customer] += (long long)g->items[i].quantity * g->items[i].price;
    }
    return tot;
}

/* The customer at 0-based rank r of paid totals (ties by id), or 0. */
static int rank_of(const long long *tot, int r)
{
    int chosen[16] = { 0 };
    if (r < 0 || r >= 16)
        return 0;
    for (int k = 0; k <= r; k++) {
        int best = 0;
        for (int c = 1; c <= N_CUSTOMERS; c++) {
            bool used = false;
            for (int j = 0; j < k; j++)
                used = used || chosen[j] == c;
            if (used)
                continue;
            if (!best || tot[c] > tot[best])
                best = c;
        }
        chosen[k] = best;
    }
    return chosen[r];
}

/* q1: a tie between ranks 3 and 4, and a tie across the cut between ranks 10 and 11 where the
 * lower id must win. Each tie is made with one extra paid order of one item. */
static int plant_ties(gen *g, pr_error *err)
{
    long long *tot = paid_totals(g);
    int rc = 0;
    if (!tot)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    int a = rank_of(tot, 2), b = rank_of(tot, 3);
    if (a && b && tot[a] > tot[b]) {
        int o = add_order(g, T_2024 + 86400LL * 40 + 3600LL * 5, b, ST_PAID, err);
        if (o < 0) {
            rc = o;
            goto cleanup;
        }
        rc = add_item(g, o, 500, 1, (int)(tot[a] - tot[b]), err);
        if (rc < 0)
            goto cleanup;
        tot[b] = tot[a];
    }
    int tenth = rank_of(tot, 9);
    /* The lightest-id customer outside the top ten, below the tenth's id, joins the tie. */
    int joiner = 0;
    for (int c = 1; c < tenth && !joiner; c++) {
        if (tot[c] < tot[tenth] && tot[tenth] - tot[c] < 2000000000LL && g->cls[c] != CLS_NEVER)
            joiner = c;
    }
    if (joiner) {
        int o = add_order(g, T_2025 + 86400LL * 100 + 777, joiner, ST_PAID, err);
        if (o < 0) {
            rc = o;
            goto cleanup;
        }
        rc = add_item(g, o, 501, 1, (int)(tot[tenth] - tot[joiner]), err);
    }
cleanup:
    pr_free(tot);
    return rc;
}

static int emit_table(const pr_sqlgen_sink *sink, const char *name, const char *const *cols,
                      size_t n, pr_error *err)
{
    return sink->table(sink->payload, name, cols, n, err);
}

static int emit(gen *g, const pr_sqlgen_sink *sink, pr_error *err)
{
    static const char *const ccols[] = { "id", "email", "country", "created_at" };
    static const char *const pcols[] = { "id", "name", "category", "price_cents" };
    static const char *const ocols[] = { "id", "customer_id", "status", "created_at" };
    static const char *const icols[] = { "order_id", "product_id", "quantity", "unit_price_cents" };
    char a[128], b[64], t[32];
    pr_sqlval v[4];
    int rc = emit_table(sink, "customers", ccols, 4, err);
    for (int c = 1; c <= N_CUSTOMERS && rc == 0; c++) {
        uint64_t f = pick(h3(g->seed, 1, (uint64_t)c, 1), PR_ARRAY_LEN(first_names));
        uint64_t l = pick(h3(g->seed, 1, (uint64_t)c, 2), PR_ARRAY_LEN(last_names));
        uint64_t d = pick(h3(g->seed, 1, (uint64_t)c, 3), PR_ARRAY_LEN(domains));
        (void)snprintf(a, sizeof(a), "%s.%s%d@%s", first_names[f], last_names[l], c, domains[d]);
        uint64_t w = pick(h3(g->seed, 1, (uint64_t)c, 4), 100);
        size_t k = 0;
        for (int acc = country_weight[0]; acc <= (int)w; acc += country_weight[++k]) {
        }
        fmt_time(t, sizeof(t),
                 T_2020 + (long long)pick(h3(g->seed, 1, (uint64_t)c, 5),
                                          (uint64_t)(T_2025_H2 - T_2020)));
        v[0] = (pr_sqlval){ false, c, NULL };
        v[1] = (pr_sqlval){ true, 0, a };
        v[2] = (pr_sqlval){ true, 0, countries[k] };
        v[3] = (pr_sqlval){ true, 0, t };
        rc = sink->row(sink->payload, v, 4, err);
    }
    if (rc == 0)
        rc = emit_table(sink, "products", pcols, 4, err);
    for (int p = 1; p <= N_PRODUCTS && rc == 0; p++) {
        uint64_t ad = pick(h3(g->seed, 2, (uint64_t)p, 1), PR_ARRAY_LEN(adjectives));
        uint64_t no = pick(h3(g->seed, 2, (uint64_t)p, 2), PR_ARRAY_LEN(nouns));
        uint64_t ca = pick(h3(g->seed, 2, (uint64_t)p, 3), PR_ARRAY_LEN(categories));
        (void)snprintf(b, sizeof(b), "%s %s %d", adjectives[ad], nouns[no], p);
        v[0] = (pr_sqlval){ false, p, NULL };
        v[1] = (pr_sqlval){ true, 0, b };
        v[2] = (pr_sqlval){ true, 0, categories[ca] };
        v[3] = (pr_sqlval){ false, g->price[p], NULL };
        rc = sink->row(sink->payload, v, 4, err);
    }
    if (rc == 0)
        rc = emit_table(sink, "orders", ocols, 4, err);
    for (size_t o = 1; o <= g->norders && rc == 0; o++) {
        fmt_time(t, sizeof(t), g->orders[o].t);
        v[0] = (pr_sqlval){ false, (long long)o, NULL };
        v[1] = (pr_sqlval){ false, g->orders[o].customer, NULL };
        v[2] = (pr_sqlval){ true, 0, statuses[g->orders[o].status] };
        v[3] = (pr_sqlval){ true, 0, t };
        rc = sink->row(sink->payload, v, 4, err);
    }
    if (rc == 0)
        rc = emit_table(sink, "order_items", icols, 4, err);
    for (size_t i = 0; i < g->nitems && rc == 0; i++) {
        v[0] = (pr_sqlval){ false, g->items[i].order_id, NULL };
        v[1] = (pr_sqlval){ false, g->items[i].product, NULL };
        v[2] = (pr_sqlval){ false, g->items[i].quantity, NULL };
        v[3] = (pr_sqlval){ false, g->items[i].price, NULL };
        rc = sink->row(sink->payload, v, 4, err);
    }
    return rc;
}

bool pr_sqlgen_known(const char *name)
{
    return name && strcmp(name, "orders") == 0;
}

int pr_sqlgen_run(const char *name, uint64_t seed, const pr_sqlgen_sink *sink, pr_error *err)
{
    gen *g = NULL;
    int rc;

    if (!pr_sqlgen_known(name))
        return pr_error_set(err, PR_EINVAL, "unknown data generator '%s'", name ? name : "");
    g = pr_calloc(1, sizeof(*g));
    if (!g)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    g->seed = seed;
    g->cap_orders = N_ORDERS + 64;
    g->cap_items = (size_t)N_ORDERS * 4;
    g->orders = pr_malloc(g->cap_orders * sizeof(gen_order));
    g->items = pr_malloc(g->cap_items * sizeof(gen_item));
    if (!g->orders || !g->items) {
        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }
    for (int p = 1; p <= N_PRODUCTS; p++) {
        /* Log-uniform list prices from 1.99 to about 999.99. */
        double u = (double)pick(h3(seed, 2, (uint64_t)p, 4), 1000000) / 1000000.0;
        double cents = 199.0;
        for (int k = 0; k < (int)(u * 1000); k++)
            cents *= 1.006234; /* 1000 steps of this factor span about 1:500 */
        g->price[p] = (int)cents;
    }
    rc = classify(g, err);
    if (rc == 0)
        rc = base_orders(g, err);
    if (rc == 0)
        rc = plant_recent(g, err);
    if (rc == 0)
        rc = plant_year_edges(g, err);
    if (rc == 0)
        rc = plant_since_edges(g, err);
    if (rc == 0)
        rc = plant_ties(g, err);
    if (rc == 0)
        rc = emit(g, sink, err);
cleanup:
    if (g) {
        pr_free(g->orders);
        pr_free(g->items);
        pr_free(g->heavy);
        pr_free(g->light);
        pr_free(g->active);
    }
    pr_free(g);
    return rc;
}
