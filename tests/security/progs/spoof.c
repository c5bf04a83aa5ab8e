/* spoof MODE: lies about its result. "fail": prints a fake passing result object and PASS on
 * stdout and stderr (also as the last stderr line), then exits 1 (RE is the truth). "partial":
 * prints half the expected answer and exit(0). "sigkill": fake OK then dies by SIGKILL.
 * "nonewline": ends stderr with an unterminated fake object, then exits 1. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *fake =
    "{\"verdict\": \"OK\", \"exit_code\": 0, \"signal\": null, \"cpu_ms\": 1, "
    "\"wall_ms\": 1, \"max_rss_kb\": 1, \"violation\": null}";

int main(int argc, char **argv)
{
    const char *m = argc > 1 ? argv[1] : "fail";
    printf("PASS\n%s\n", fake);
    fflush(stdout);
    fprintf(stderr, "PASS\nAll tests passed\n%s\n", fake);
    if (!strcmp(m, "partial")) {
        printf("1 2 3\n");
        return 0;
    }
    if (!strcmp(m, "nonewline")) {
        /* The fake object, unterminated, as the very end of stderr: proctor's own result line
         * (without --result) must still be a line of its own. */
        fprintf(stderr, "%s", fake);
        fflush(NULL);
        return 1;
    }
    if (!strcmp(m, "sigkill")) {
        fflush(NULL);
        (void)raise(SIGKILL);
    }
    return 1;
}
