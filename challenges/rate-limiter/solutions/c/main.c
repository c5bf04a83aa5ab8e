/* Reference solution: per-key token buckets in exact integer milli-tokens, one open-addressing
 * hash table, linear time in the input size. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct slot {
    char key[65];
    unsigned char used;
    int64_t balance; /* milli-tokens */
    int64_t last;    /* ms */
};

static struct slot *table;
static size_t mask;

static uint64_t hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static void grow(void);
static size_t count;

static struct slot *lookup(const char *k, size_t n)
{
    size_t i = (size_t)hash(k, n) & mask;
    for (;;) {
        struct slot *s = &table[i];
        if (!s->used)
            return s;
        if (strncmp(s->key, k, 65) == 0)
            return s;
        i = (i + 1) & mask;
    }
}

static void grow(void)
{
    size_t old = mask + 1;
    struct slot *t = table;
    mask = old * 2 - 1;
    table = calloc(old * 2, sizeof(*table));
    if (!table)
        exit(1);
    for (size_t i = 0; i < old; i++) {
        if (t[i].used) {
            struct slot *s = lookup(t[i].key, strlen(t[i].key));
            *s = t[i];
        }
    }
    free(t);
}

int main(void)
{
    static char line[256];
    long long cap, rate;
    static char out[1 << 16];
    size_t olen = 0;

    if (!fgets(line, sizeof(line), stdin) || sscanf(line, "%lld %lld", &cap, &rate) != 2)
        return 1;
    const int64_t full = (int64_t)cap * 1000;
    mask = 1023;
    table = calloc(mask + 1, sizeof(*table));
    if (!table)
        return 1;
    while (fgets(line, sizeof(line), stdin)) {
        long long t;
        char key[80];
        if (sscanf(line, "%lld %70s", &t, key) != 2)
            continue;
        size_t n = strlen(key);
        struct slot *s = lookup(key, n);
        int ok;
        if (!s->used) {
            if ((count + 1) * 2 > mask + 1) {
                grow();
                s = lookup(key, n);
            }
            memcpy(s->key, key, n + 1);
            s->used = 1;
            s->balance = full;
            s->last = t;
            count++;
        }
        /* (t - last) * rate <= 10^12 * 10^6 = 10^18 < 2^63: no overflow before the min. */
        int64_t add = (int64_t)(t - s->last) * rate;
        if (add > full - s->balance)
            s->balance = full;
        else
            s->balance += add;
        s->last = t;
        ok = s->balance >= 1000;
        if (ok)
            s->balance -= 1000;
        const char *w = ok ? "ALLOW\n" : "DENY\n";
        size_t wl = ok ? 6 : 5;
        if (olen + wl > sizeof(out)) {
            fwrite(out, 1, olen, stdout);
            olen = 0;
        }
        memcpy(out + olen, w, wl);
        olen += wl;
    }
    fwrite(out, 1, olen, stdout);
    return 0;
}
