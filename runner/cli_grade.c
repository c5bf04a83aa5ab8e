/* proctor grade CHALLENGE_DIR REPO: fetch, build and test one submission, print the report. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "proctor/boxwatch.h"
#include "proctor/challenge.h"
#include "proctor/git.h"
#include "proctor/job.h"
#include "proctor/log.h"
#include "proctor/report.h"
#include "proctor/runtime.h"
#include "proctor/sandbox.h"

static void usage(FILE *f)
{
    fputs("usage: proctor grade CHALLENGE_DIR REPO [--ref REF] [--runtime NAME] [-o FILE]\n"
          "                     [--cache DIR] [--work DIR] [--keep] [--parallel N] [--quiet]\n"
          "\n"
          "Fetch REPO (a local path, file://, https:// or ssh:// URL) at REF, build it and run\n"
          "the tests of the challenge pack in CHALLENGE_DIR inside the sandbox, then print the\n"
          "report (JSON, schema proctor.report/1) on stdout. Progress goes to stderr.\n"
          "\n"
          "options:\n"
          "  --ref REF         branch, tag or commit (default: the remote HEAD)\n"
          "  --runtime NAME    c, python, node or go (default: proctor.json, else detected)\n"
          "  -o, --output FILE write the report to FILE atomically instead of stdout\n"
          "  --html FILE       reviewer-facing HTML report (not built yet)\n"
          "  --cache DIR       git mirrors (default: $XDG_CACHE_HOME/proctor, ~/.cache/proctor)\n"
          "  --work DIR        where job directories are made (default: $TMPDIR or /tmp)\n"
          "  --keep            keep the job directory (checkout, build log) for debugging\n"
          "  --parallel N      sandboxes run at once (default: number of cores)\n"
          "  --runtimes FILE   runtimes configuration (default: $PROCTOR_RUNTIMES, shipped file)\n"
          "  -q, --quiet       no progress lines\n"
          "\n"
          "examples:\n"
          "  proctor grade challenges/rate-limiter ./candidate-repo\n"
          "  proctor grade challenges/rate-limiter https://git.example.com/ann/rl.git --ref v2 "
          "-o ann.json\n"
          "  proctor grade challenges/rate-limiter file:///srv/git/bob.git --runtime python\n"
          "\n"
          "exit status: 0 graded (whatever the score), 1 the report has status \"error\"\n"
          "(fetch, build infrastructure...), 2 usage or configuration error (bad pack).\n",
          f);
}

static void on_progress(void *payload, const char *stage, const char *detail)
{
    (void)payload;
    if (strcmp(stage, "test") == 0)
        fprintf(stderr, "test %s\n", detail);
    else
        fprintf(stderr, "%s: %s\n", stage, detail);
}

/* Default cache: $XDG_CACHE_HOME/proctor, else $HOME/.cache/proctor, else /var/cache/proctor. */
static void default_cache(char *out, size_t outsz)
{
    if (pr_cache_home(out, outsz, "", "/var/cache/proctor") < 0)
        (void)snprintf(out, outsz, "/var/cache/proctor");
}

static const char *default_work(void)
{
    const char *t = getenv("TMPDIR"); /* NOLINT(concurrency-mt-unsafe): main thread */
    return (t && t[0] == '/') ? t : "/tmp";
}

static int print_report(const json_t *report)
{
    if (json_dumpf(report, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0 ||
        fputc('\n', stdout) == EOF || fflush(stdout) != 0)
        return -1;
    return 0;
}

int pr_cli_grade(int argc, char **argv)
{
    static const struct option opts[] = {
        { "ref", required_argument, NULL, 'r' },      { "runtime", required_argument, NULL, 't' },
        { "output", required_argument, NULL, 'o' },   { "html", required_argument, NULL, 'H' },
        { "cache", required_argument, NULL, 'c' },    { "work", required_argument, NULL, 'w' },
        { "keep", no_argument, NULL, 'k' },           { "parallel", required_argument, NULL, 'p' },
        { "runtimes", required_argument, NULL, 'R' }, { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },           { NULL, 0, NULL, 0 },
    };
    pr_job_spec spec;
    pr_env env;
    const char *out = NULL, *html = NULL, *rts_path = NULL;
    bool quiet = false;
    char cache[4096];
    pr_runtimes *rts = NULL;
    pr_challenge *c = NULL;
    json_t *report = NULL;
    pr_error err = { 0 };
    int status = 2;
    bool sbx_up = false, git_up = false;

    memset(&spec, 0, sizeof(spec));
    memset(&env, 0, sizeof(env));
    cache[0] = '\0';
    optind = 1;
    opterr = 0;
    for (;;) {
        int o = getopt_long(argc, argv, "o:qh", opts, NULL);
        if (o == -1)
            break;
        switch (o) {
        case 'r':
            spec.ref = optarg;
            break;
        case 't':
            spec.runtime = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'H':
            html = optarg;
            break;
        case 'c':
            (void)snprintf(cache, sizeof(cache), "%s", optarg);
            break;
        case 'w':
            env.work_root = optarg;
            break;
        case 'k':
            env.keep_work = true;
            break;
        case 'p': {
            char *end = NULL;
            long n = strtol(optarg, &end, 10);
            if (!end || *end || end == optarg || n < 1 || n > 256) {
                fprintf(stderr, "proctor grade: --parallel: expected 1..256, got '%s'\n", optarg);
                return 2;
            }
            env.parallel = (int)n;
            break;
        }
        case 'R':
            rts_path = optarg;
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            fprintf(stderr, "proctor grade: unknown or incomplete option '%s'\n\n",
                    argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    /* Positional arguments may also follow the options (GNU style). */
    if (argc - optind != 2) {
        fprintf(stderr, "proctor grade: expected CHALLENGE_DIR and REPO\n\n");
        usage(stderr);
        return 2;
    }
    spec.challenge_dir = argv[optind];
    spec.repo = argv[optind + 1];
    if (html) {
        fprintf(stderr, "proctor grade: --html: reviewer-facing reports are not built yet\n");
        return 2;
    }

    json_set_alloc_funcs(pr_malloc, pr_free);
    /* A bad pack is a configuration error (exit 2), caught before any fetch. */
    if (pr_challenge_load(&c, spec.challenge_dir, &err) < 0) {
        fprintf(stderr, "proctor grade: %s\n", err.msg);
        goto cleanup;
    }
    pr_challenge_free(c);
    c = NULL;
    if (pr_runtimes_load(&rts, rts_path, &err) < 0) {
        fprintf(stderr, "proctor grade: %s\n", err.msg);
        goto cleanup;
    }
    if (sbx_global_init(&err) < 0) {
        fprintf(stderr, "proctor grade: sandbox: %s\n", err.msg);
        goto cleanup;
    }
    sbx_up = true;
    if (pr_git_global_init(&err) < 0) {
        fprintf(stderr, "proctor grade: git: %s\n", err.msg);
        goto cleanup;
    }
    git_up = true;

    if (!cache[0])
        default_cache(cache, sizeof(cache));
    env.cache_dir = cache;
    if (!env.work_root)
        env.work_root = default_work();
    env.runtimes = rts;
    env.slot_base = 0;
    if (!quiet)
        env.progress = on_progress;

    /* A libuv loop on a thread of its own watches every box and enforces its limits as timers,
     * as in the daemon; without it each waiting thread would watch its own box. */
    pr_boxwatch *bw = NULL;
    const char *bwenv = getenv("PROCTOR_BOXWATCH"); /* NOLINT(concurrency-mt-unsafe): main */
    if (bwenv && strcmp(bwenv, "0") == 0)
        pr_log(PR_LOG_INFO, "proctor grade: PROCTOR_BOXWATCH=0, boxes watched by their threads");
    else if (pr_boxwatch_start_thread(&bw, &err) < 0)
        pr_log(PR_LOG_WARN, "proctor grade: %s; boxes are watched by their threads", err.msg);
    int jrc = pr_job_run(&report, &spec, &env, &err);
    pr_boxwatch_stop(bw);
    if (jrc < 0) {
        fprintf(stderr, "proctor grade: %s\n", err.msg);
        status = 1;
        goto cleanup;
    }
    if (out) {
        if (pr_report_write(out, report, &err) < 0) {
            fprintf(stderr, "proctor grade: %s\n", err.msg);
            status = 1;
            goto cleanup;
        }
    } else if (print_report(report) < 0) {
        fprintf(stderr, "proctor grade: cannot write the report to stdout\n");
        status = 1;
        goto cleanup;
    }
    const char *st = json_string_value(json_object_get(report, "status"));
    status = (st && strcmp(st, "graded") == 0) ? 0 : 1;
    if (!quiet) {
        const json_t *score = json_object_get(report, "score");
        if (status == 0) {
            fprintf(stderr, "score: %g/%g (%.1f%%)\n",
                    json_number_value(json_object_get(score, "earned")),
                    json_number_value(json_object_get(score, "max")),
                    json_number_value(json_object_get(score, "percent")));
        } else {
            const json_t *e = json_object_get(report, "error");
            fprintf(stderr, "error: %s: %s\n", json_string_value(json_object_get(e, "stage")),
                    json_string_value(json_object_get(e, "message")));
        }
    }
cleanup:
    json_decref(report);
    pr_challenge_free(c);
    pr_runtimes_free(rts);
    if (git_up)
        pr_git_global_cleanup();
    if (sbx_up)
        sbx_global_cleanup();
    return status;
}
