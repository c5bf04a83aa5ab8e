/* Fuzzes the manifest loader: arbitrary bytes as challenge.json of a pack. Every input must end
 * in a pack or a clean error naming challenge.json, never a crash, leak or hang. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proctor/challenge.h"
#include "proctor/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static void remove_dir(void)
{
    (void)pr_rm_rf(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[128];
    if (!dir[0]) {
        json_set_alloc_funcs(pr_malloc, pr_free);
        (void)snprintf(dir, sizeof(dir), "/tmp/pr-fuzz-spec-XXXXXX");
        if (!mkdtemp(dir))
            abort();
        (void)atexit(remove_dir);
    }
    (void)snprintf(path, sizeof(path), "%s/challenge.json", dir);
    FILE *f = fopen(path, "we");
    if (!f)
        abort();
    if (size && fwrite(data, 1, size, f) != size)
        abort();
    if (fclose(f) != 0)
        abort();
    pr_challenge *c = NULL;
    pr_error err = { 0 };
    int rc = pr_challenge_load(&c, dir, &err);
    if (rc < 0 && (c || !strstr(err.msg, "challenge.json")))
        abort();
    if (rc == 0 && (!c || c->ntests == 0 || !c->runtimes || !c->runtimes[0]))
        abort();
    pr_challenge_free(c);
    return 0;
}
