/* proctor serve [--config FILE]: the grading daemon (runner/daemon.c). */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "proctor/git.h"

int pr_daemon_run(const char *config_path, pr_error *err);

static void serve_usage(FILE *f)
{
    (void)fputs(
        "usage: proctor serve [--config FILE]\n"
        "\n"
        "Run the grading daemon: spool directory, HTTP API and git watch on one event loop,\n"
        "which also watches every sandbox and enforces its limits as timers; `workers` jobs\n"
        "grade at once on the threadpool.\n"
        "FILE defaults to ./proctor.json; see proctor.example.json for every key, and\n"
        "proctor.redis.example.json for several daemons sharing one queue in Redis (\"queue\").\n"
        "\n"
        "Three ways in, one queue:\n"
        "  - drop {\"repo\", \"ref\", \"challenge\", \"candidate\"} as SPOOL/incoming/NAME.json\n"
        "    (write elsewhere, then rename); the report lands in SPOOL/reports/ID.json;\n"
        "  - curl -X POST HOST/v1/submissions -H 'Authorization: Bearer TOKEN' -d '{...}'\n"
        "    -> 202 {\"id\"}; then GET /v1/submissions/ID for status and report;\n"
        "  - \"watch\": every new commit on a watched branch becomes a job.\n"
        "GET /healthz and /metrics need no token. Logs are JSON lines on stderr\n"
        "(PROCTOR_LOG=debug|info|warn|error).\n"
        "Signals: SIGTERM/SIGINT stop gracefully (grace_s), SIGHUP reloads tokens and "
        "challenges.\n"
        "kill -9 loses nothing: jobs left in SPOOL/running/ are requeued at the next start.\n",
        f);
}

int pr_cli_serve(int argc, char **argv)
{
    const char *config = "proctor.json";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            config = argv[i] + 9;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            serve_usage(stdout);
            return 0;
        } else {
            (void)fprintf(stderr, "proctor serve: unknown option '%s'\n", argv[i]);
            serve_usage(stderr);
            return 2;
        }
    }
    pr_error err = { 0 };
    if (pr_git_global_init(&err) < 0) {
        (void)fprintf(stderr, "proctor serve: %s\n", err.msg);
        return 2;
    }
    int rc = pr_daemon_run(config, &err);
    pr_git_global_cleanup();
    if (rc < 0) {
        (void)fprintf(stderr, "proctor serve: %s\n", err.msg);
        return 2;
    }
    return rc;
}
