/* Reference solution in C: one pass over the log with a hash table of endpoints, then a sort of
 * each endpoint's latencies for the nearest-rank p95. Integer arithmetic only. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct endpoint {
    char *key; /* "PATH\0METHOD" stored as path, NUL, method */
    size_t path_len;
    const char *method;
    uint64_t errors;
    uint32_t *lat;
    size_t n, cap;
};

static struct endpoint **table;
static size_t mask = 1023, used;
static struct endpoint **all;
static size_t nall, capall;

static uint64_t hash(const char *s, size_t n, const char *m)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    for (; *m; m++)
        h = (h ^ (unsigned char)*m) * 1099511628211ULL;
    return h;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (!p)
        exit(1);
    return p;
}

static struct endpoint *find(const char *path, size_t plen, const char *method, int create);

static void grow(void)
{
    size_t old = mask + 1;
    struct endpoint **t = table;
    mask = old * 2 - 1;
    table = calloc(old * 2, sizeof(*table));
    if (!table)
        exit(1);
    for (size_t i = 0; i < old; i++) {
        if (t[i]) {
            size_t j = (size_t)hash(t[i]->key, t[i]->path_len, t[i]->method) & mask;
            while (table[j])
                j = (j + 1) & mask;
            table[j] = t[i];
        }
    }
    free(t);
}

static struct endpoint *find(const char *path, size_t plen, const char *method, int create)
{
    size_t i = (size_t)hash(path, plen, method) & mask;
    while (table[i]) {
        struct endpoint *e = table[i];
        if (e->path_len == plen && e->method == method && memcmp(e->key, path, plen) == 0)
            return e;
        i = (i + 1) & mask;
    }
    if (!create)
        return NULL;
    struct endpoint *e = calloc(1, sizeof(*e));
    if (!e)
        exit(1);
    e->key = malloc(plen + 1);
    if (!e->key)
        exit(1);
    memcpy(e->key, path, plen);
    e->key[plen] = 0;
    e->path_len = plen;
    e->method = method;
    table[i] = e;
    if (nall == capall) {
        capall = capall ? capall * 2 : 256;
        all = xrealloc(all, capall * sizeof(*all));
    }
    all[nall++] = e;
    if (++used * 2 > mask + 1)
        grow();
    return e;
}

static const char *const methods[] = { "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS" };

static const char *method_of(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (strlen(methods[i]) == n && memcmp(methods[i], s, n) == 0)
            return methods[i];
    }
    return NULL;
}

static int all_digits(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
    }
    return 1;
}

/* Normalises path[0..n) into out; returns the new length. */
static size_t normalise(char *out, const char *path, size_t n)
{
    const char *q = memchr(path, '?', n);
    if (q)
        n = (size_t)(q - path);
    if (n > 1 && path[n - 1] == '/')
        n--;
    size_t o = 0, i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && path[j] != '/')
            j++;
        if (all_digits(path + i, j - i)) {
            memcpy(out + o, ":id", 3);
            o += 3;
        } else {
            memcpy(out + o, path + i, j - i);
            o += j - i;
        }
        if (j < n)
            out[o++] = '/';
        i = j + 1;
    }
    return o;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_ep(const void *a, const void *b)
{
    const struct endpoint *x = *(struct endpoint *const *)a, *y = *(struct endpoint *const *)b;
    size_t n = x->path_len < y->path_len ? x->path_len : y->path_len;
    int c = memcmp(x->key, y->key, n);
    if (c)
        return c;
    if (x->path_len != y->path_len)
        return x->path_len < y->path_len ? -1 : 1;
    return strcmp(x->method, y->method);
}

/* Splits a line into at most 5 fields on runs of spaces and tabs; returns the count. */
static int split(char *s, size_t len, char **f, size_t *fl)
{
    int n = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && (s[i] == ' ' || s[i] == '\t'))
            i++;
        if (i == len)
            break;
        size_t j = i;
        while (j < len && s[j] != ' ' && s[j] != '\t')
            j++;
        if (n == 5)
            return 6;
        f[n] = s + i;
        fl[n] = j - i;
        n++;
        i = j;
    }
    return n;
}

int main(void)
{
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return 1;
    for (;;) {
        if (len == cap) {
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        size_t r = fread(buf + len, 1, cap - len, stdin);
        if (r == 0)
            break;
        len += r;
    }
    table = calloc(mask + 1, sizeof(*table));
    char *norm = malloc(2048 * 2 + 16);
    if (!table || !norm)
        return 1;
    uint64_t total = 0, skipped = 0;
    size_t pos = 0;
    while (pos < len) {
        char *line = buf + pos;
        char *nl = memchr(line, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - line) : len - pos;
        pos += ll + 1;
        if (ll > 0 && line[ll - 1] == '\r')
            ll--;
        char *f[5];
        size_t fl[5];
        int nf = split(line, ll, f, fl);
        if (nf == 0)
            continue;
        const char *m = nf == 4 ? method_of(f[0], fl[0]) : NULL;
        int ok = m != NULL && fl[1] >= 1 && fl[1] <= 2048 && f[1][0] == '/';
        for (size_t i = 0; ok && i < fl[1]; i++) {
            unsigned char c = (unsigned char)f[1][i];
            if (c < 0x21 || c > 0x7E)
                ok = 0;
        }
        ok = ok && fl[2] == 3 && all_digits(f[2], 3) && f[2][0] >= '1' && f[2][0] <= '5';
        ok = ok && fl[3] >= 1 && fl[3] <= 9 && all_digits(f[3], fl[3]);
        if (!ok) {
            skipped++;
            continue;
        }
        total++;
        size_t nl2 = normalise(norm, f[1], fl[1]);
        struct endpoint *e = find(norm, nl2, m, 1);
        if (f[2][0] == '5')
            e->errors++;
        uint32_t lat = 0;
        for (size_t i = 0; i < fl[3]; i++)
            lat = lat * 10 + (uint32_t)(f[3][i] - '0');
        if (e->n == e->cap) {
            e->cap = e->cap ? e->cap * 2 : 8;
            e->lat = xrealloc(e->lat, e->cap * sizeof(*e->lat));
        }
        e->lat[e->n++] = lat;
    }
    qsort(all, nall, sizeof(*all), cmp_ep);
    for (size_t i = 0; i < nall; i++) {
        struct endpoint *e = all[i];
        qsort(e->lat, e->n, sizeof(*e->lat), cmp_u32);
        uint64_t n = e->n;
        uint64_t rank = (95 * n + 99) / 100;
        uint64_t h = (20000 * e->errors + n) / (2 * n);
        printf("%s %s %llu %llu.%02llu %u\n", e->method, e->key, (unsigned long long)n,
               (unsigned long long)(h / 100), (unsigned long long)(h % 100), e->lat[rank - 1]);
    }
    printf("total %llu skipped %llu\n", (unsigned long long)total, (unsigned long long)skipped);
    return 0;
}
