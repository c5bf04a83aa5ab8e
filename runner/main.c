/* proctor: grade back-end candidates in a sandbox.
 *
 * Start-up cost is part of the sandbox's design: `proctor sandbox` runs from this executable,
 * which links only the sandbox, libseccomp and jansson. Every other sub-command lives in
 * libproctor-cli.so next to the executable (libgit2, libuv, SQLite, libpq, OpenSSL), loaded with
 * dlopen only when one of them is asked for. */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* Loads libproctor-cli.so from the executable's directory and runs the sub-command there. */
static int run_full_cli(int argc, char **argv)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) {
        perror("proctor: readlink /proc/self/exe");
        return 2;
    }
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    char lib[PATH_MAX + 32];
    (void)snprintf(lib, sizeof(lib), "%s/libproctor-cli.so", exe);
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "proctor: cannot load %s: %s\n", lib, dlerror());
        return 2;
    }
    int (*run)(int, char **) = NULL;
    void *sym = dlsym(h, "pr_cli_run");
    memcpy(&run, &sym, sizeof(run));
    if (!run) {
        fprintf(stderr, "proctor: %s has no pr_cli_run\n", lib);
        (void)dlclose(h);
        return 2;
    }
    /* The library stays loaded until exit: its threads and atexit handlers may still run. */
    /* cppcheck-suppress resourceLeak */
    return run(argc, argv);
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
    if (strcmp(cmd, "sandbox") == 0)
        return pr_cli_sandbox(argc - 1, argv + 1);
    if (strcmp(cmd, "grade") == 0 || strcmp(cmd, "serve") == 0 || strcmp(cmd, "challenge") == 0 ||
        strcmp(cmd, "report") == 0)
        return run_full_cli(argc - 1, argv + 1);
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
