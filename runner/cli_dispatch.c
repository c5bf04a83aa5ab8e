/* Entry point of libproctor-cli.so: every sub-command except `sandbox`, which the proctor
 * executable runs itself so that it starts without loading libgit2, libuv, SQLite, libpq and
 * OpenSSL (see runner/main.c). */
#include "cli.h"

#include <string.h>

int pr_cli_run(int argc, char **argv)
{
    const char *cmd = argv[0];
    if (strcmp(cmd, "grade") == 0)
        return pr_cli_grade(argc, argv);
    if (strcmp(cmd, "serve") == 0)
        return pr_cli_serve(argc, argv);
    if (strcmp(cmd, "challenge") == 0)
        return pr_cli_challenge(argc, argv);
    if (strcmp(cmd, "report") == 0)
        return pr_cli_report(argc, argv);
    if (strcmp(cmd, "sandbox") == 0)
        return pr_cli_sandbox(argc, argv);
    return 2;
}
