/* core_dump [raise]: prints RLIMIT_CORE, optionally tries to raise it, then segfaults. No core
 * file may appear anywhere (the driver checks the work dir). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "sec.h"

int main(int argc, char **argv)
{
    struct rlimit rl;
    volatile int *p = NULL;
    (void)getrlimit(RLIMIT_CORE, &rl);
    printf("core cur=%lld max=%lld\n", (long long)rl.rlim_cur, (long long)rl.rlim_max);
    if (argc > 1 && !strcmp(argv[1], "raise")) {
        rl.rlim_cur = rl.rlim_max = RLIM_INFINITY;
        sec_report("raise RLIMIT_CORE", setrlimit(RLIMIT_CORE, &rl));
        (void)prctl(PR_SET_DUMPABLE, 1);
    }
    fflush(stdout);
    *p = 42;
    return 0;
}
