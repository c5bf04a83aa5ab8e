/* proctor: grade back-end candidates in a sandbox. Dispatches to the sub-commands; each one
 * initialises only what it uses, so `proctor sandbox` starts fast. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "proctor/log.h"

static void usage(FILE *f)
{
    fputs("usage: proctor COMMAND [OPTIONS]\n"
          "\n"
          "Grade candidate submissions in a locked-down sandbox and report as JSON.\n"
          "\n"
          "commands:\n"
          "  grade CHALLENGE_DIR REPO [--ref REF] [--runtime NAME] [-o FILE]\n"
          "                      fetch REPO, build and test it, print the report\n"
          "  sandbox [LIMITS] [--ro SRC[:DST]] [--rw SRC[:DST]] [--chdir DIR]\n"
          "          [--net none|loopback] [--profile NAME] [--result FILE] -- PROGRAM [ARG...]\n"
          "                      run one program under the graders' isolation\n"
          "  serve [--config FILE] run the grading daemon (spool, HTTP API, git watch)\n"
          "  challenge check DIR   validate a pack and grade its reference solutions\n"
          "  report REPORT.json --format html|junit|markdown\n"
          "  version               print the version\n"
          "\n"
          "Run 'proctor COMMAND --help' for the options of a command.\n"
          "Exit status: 0 done, 1 the job ended with status \"error\", 2 usage or configuration.\n",
          f);
}

int main(int argc, char **argv)
{
    const char *lv = getenv("PROCTOR_LOG");
    if (lv) {
        if (strcmp(lv, "debug") == 0)
            pr_log_set_level(PR_LOG_DEBUG);
        else if (strcmp(lv, "info") == 0)
            pr_log_set_level(PR_LOG_INFO);
        else if (strcmp(lv, "error") == 0)
            pr_log_set_level(PR_LOG_ERROR);
    }
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "grade") == 0)
        return pr_cli_grade(argc - 1, argv + 1);
    if (strcmp(cmd, "sandbox") == 0)
        return pr_cli_sandbox(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0)
        return pr_cli_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "challenge") == 0)
        return pr_cli_challenge(argc - 1, argv + 1);
    if (strcmp(cmd, "report") == 0)
        return pr_cli_report(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("proctor %s\n", PROCTOR_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "proctor: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
