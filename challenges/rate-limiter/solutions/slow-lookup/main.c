/* Flawed on purpose: correct arithmetic, but each request scans the list of every key seen so
 * far, so n requests over k keys cost O(n*k). Right on small inputs, too slow on large ones. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bucket {
    char key[65];
    int64_t balance;
    int64_t last;
};

int main(void)
{
    static char line[256];
    long long cap, rate;
    struct bucket *list = NULL;
    size_t n = 0, cap_list = 0;

    if (!fgets(line, sizeof(line), stdin) || sscanf(line, "%lld %lld", &cap, &rate) != 2)
        return 1;
    const int64_t full = (int64_t)cap * 1000;
    while (fgets(line, sizeof(line), stdin)) {
        long long t;
        char key[80];
        if (sscanf(line, "%lld %70s", &t, key) != 2)
            continue;
        struct bucket *b = NULL;
        for (size_t i = 0; i < n; i++) {
            if (strcmp(list[i].key, key) == 0) {
                b = &list[i];
                break;
            }
        }
        if (!b) {
            if (n == cap_list) {
                cap_list = cap_list ? cap_list * 2 : 64;
                list = realloc(list, cap_list * sizeof(*list));
                if (!list)
                    return 1;
            }
            b = &list[n++];
            snprintf(b->key, sizeof(b->key), "%s", key);
            b->balance = full;
            b->last = t;
        }
        int64_t add = (int64_t)(t - b->last) * rate;
        b->balance = add > full - b->balance ? full : b->balance + add;
        b->last = t;
        if (b->balance >= 1000) {
            b->balance -= 1000;
            fputs("ALLOW\n", stdout);
        } else {
            fputs("DENY\n", stdout);
        }
    }
    free(list);
    return 0;
}
