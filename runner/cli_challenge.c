/* proctor challenge check DIR: validate a pack and grade every reference solution, which must land
 * inside its expect.json range. proctor challenge list DIR: the packs under DIR. */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>
#include <jansson.h>

#include "proctor/boxwatch.h"
#include "proctor/challenge.h"
#include "proctor/git.h"
#include "proctor/job.h"
#include "proctor/log.h"
#include "proctor/report.h"
#include "proctor/runtime.h"
#include "proctor/sandbox.h"

#define EXPECT_MAX_BYTES ((size_t)16 * 1024)
#define MAX_SOLUTIONS    256

static void usage(FILE *f)
{
    fputs("usage: proctor challenge check CHALLENGE_DIR [--parallel N] [--keep] [--verbose]\n"
          "       proctor challenge list DIR\n"
          "\n"
          "check: validate CHALLENGE_DIR/challenge.json, then grade every reference solution in\n"
          "CHALLENGE_DIR/solutions/<name>/ (each is turned into a throw-away git repository) and\n"
          "compare its percent with <name>/expect.json {\"min_percent\": N, \"max_percent\": M}.\n"
          "Prints one row per solution; exit 0 only when every solution lands in its range.\n"
          "\n"
          "list: one line per pack under DIR (id, kind, tests, or why it does not load).\n"
          "\n"
          "options:\n"
          "  --parallel N     sandboxes run at once per solution (default: number of cores)\n"
          "  --runtimes FILE  runtimes configuration (default: the shipped runner/runtimes.json)\n"
          "  --keep           keep the job directories\n"
          "  -v, --verbose    progress lines and every solution's failing tests\n"
          "\n"
          "examples:\n"
          "  proctor challenge check challenges/rate-limiter\n"
          "  proctor challenge list challenges\n"
          "\n"
          "exit status: 0 all solutions as expected, 1 some solution outside its range,\n"
          "2 usage error or malformed pack.\n",
          f);
}

static void on_progress(void *payload, const char *stage, const char *detail)
{
    const char *name = payload;
    fprintf(stderr, "  [%s] %s%s %s\n", name, stage, strcmp(stage, "test") == 0 ? "" : ":", detail);
}

/* Reads solutions/<name>/expect.json: {"min_percent": N, "max_percent": M}, 0..100. */
static int read_expect(double *lo, double *hi, int dirfd, const char *name, char *why, size_t whysz)
{
    char path[PATH_MAX];
    char buf[EXPECT_MAX_BYTES + 1];
    json_error_t jerr;
    int rc = -1;

    (void)snprintf(path, sizeof(path), "%s/expect.json", name);
    int fd = openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        (void)snprintf(why, whysz, "solutions/%s/expect.json: %s", name, strerror(errno));
        return -1;
    }
    ssize_t n = read(fd, buf, sizeof(buf));
    pr_close(&fd);
    if (n < 0 || (size_t)n > EXPECT_MAX_BYTES) {
        (void)snprintf(why, whysz, "solutions/%s/expect.json: unreadable or too large", name);
        return -1;
    }
    json_t *root = json_loadb(buf, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        (void)snprintf(why, whysz, "solutions/%s/expect.json: line %d: %s", name, jerr.line,
                       jerr.text);
        return -1;
    }
    const json_t *a = json_object_get(root, "min_percent");
    const json_t *b = json_object_get(root, "max_percent");
    if (!json_is_number(a) || !json_is_number(b) || json_number_value(a) < 0 ||
        json_number_value(b) > 100 || json_number_value(a) > json_number_value(b)) {
        (void)snprintf(why, whysz,
                       "solutions/%s/expect.json: expected {\"min_percent\": N, "
                       "\"max_percent\": M} with 0 <= N <= M <= 100",
                       name);
    } else {
        *lo = json_number_value(a);
        *hi = json_number_value(b);
        rc = 0;
    }
    json_decref(root);
    return rc;
}

/* Turns a solution directory into a one-commit bare repository at repo_path, reading the files
 * in place (the pack is never written to). */
static int solution_repo(const char *repo_path, const char *workdir, char *why, size_t whysz)
{
    git_repository *repo = NULL;
    git_index *index = NULL;
    git_signature *sig = NULL;
    git_tree *tree = NULL;
    git_oid tree_id, commit_id;
    int rc = -1;

    if (git_repository_init(&repo, repo_path, 1) < 0 ||
        git_repository_set_workdir(repo, workdir, 0) < 0 ||
        git_repository_index(&index, repo) < 0 ||
        git_index_add_all(index, NULL, GIT_INDEX_ADD_FORCE, NULL, NULL) < 0 ||
        git_index_remove_bypath(index, "expect.json") < 0 || git_index_write(index) < 0 ||
        git_index_write_tree(&tree_id, index) < 0 || git_tree_lookup(&tree, repo, &tree_id) < 0 ||
        git_signature_now(&sig, "proctor challenge check", "proctor@localhost") < 0 ||
        git_commit_create_v(&commit_id, repo, "HEAD", sig, sig, NULL, "reference solution", tree,
                            0) < 0) {
        const git_error *e = git_error_last();
        (void)snprintf(why, whysz, "cannot make a git repository: %s",
                       e && e->message ? e->message : "libgit2 error");
        goto cleanup;
    }
    rc = 0;
cleanup:
    git_tree_free(tree);
    git_signature_free(sig);
    git_index_free(index);
    git_repository_free(repo);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Names of the directories under solutions/, sorted. */
static int list_solutions(char ***out, size_t *n_out, const char *soldir)
{
    DIR *d = opendir(soldir);
    char **names = NULL;
    size_t n = 0;

    *out = NULL;
    *n_out = 0;
    if (!d)
        return errno == ENOENT ? 0 : -1;
    names = pr_calloc(MAX_SOLUTIONS, sizeof(char *));
    if (!names) {
        (void)closedir(d);
        return -1;
    }
    while (n < MAX_SOLUTIONS) {
        /* cppcheck-suppress readdirCalled ; the stream is private to this call */
        const struct dirent *de = readdir(d); /* NOLINT(concurrency-mt-unsafe) */
        if (!de)
            break;
        struct stat st;
        if (de->d_name[0] == '.')
            continue;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode))
            continue;
        names[n] = pr_strdup(de->d_name);
        if (names[n])
            n++;
    }
    (void)closedir(d);
    qsort(names, n, sizeof(char *), cmp_str);
    *out = names;
    *n_out = n;
    return 0;
}

/* Prints the tests that lost points, for --verbose and for failing rows. */
static void print_losses(const json_t *report)
{
    size_t i;
    json_t *t;
    json_array_foreach (json_object_get(report, "tests"), i, t) {
        double p = json_number_value(json_object_get(t, "points"));
        double m = json_number_value(json_object_get(t, "max_points"));
        if (p >= m)
            continue;
        char msg[121];
        const char *full = json_string_value(json_object_get(t, "message"));
        (void)snprintf(msg, sizeof(msg), "%s", full ? full : "");
        for (char *q = msg; *q; q++) {
            if (*q == '\n' || *q == '\r' || *q == '\t')
                *q = ' ';
        }
        fprintf(stderr, "      %-28s %-4s %g/%g %s\n",
                json_string_value(json_object_get(t, "name")),
                json_string_value(json_object_get(t, "verdict")), p, m, msg);
    }
}

typedef struct check_opts {
    int parallel;
    bool keep;
    bool verbose;
    const char *runtimes;
} check_opts;

static int check_pack(const char *dir, const check_opts *o)
{
    pr_challenge *c = NULL;
    pr_runtimes *rts = NULL;
    pr_error err = { 0 };
    char **names = NULL;
    size_t nnames = 0;
    char soldir[PATH_MAX], tmp[PATH_MAX];
    int status = 2;
    int soldfd = -1;
    bool sbx_up = false, git_up = false;
    pr_boxwatch *bw = NULL;
    size_t failed = 0;

    tmp[0] = '\0';
    if (pr_challenge_load(&c, dir, &err) < 0) {
        fprintf(stderr, "proctor challenge check: %s\n", err.msg);
        goto cleanup;
    }
    printf("%s: manifest ok (%s %s, kind %s, %zu tests, digest %.12s)\n", dir, c->id, c->version,
           c->kind_name, c->ntests, c->digest);
    if (pr_runtimes_load(&rts, o->runtimes, &err) < 0) {
        fprintf(stderr, "proctor challenge check: %s\n", err.msg);
        goto cleanup;
    }
    /* Every runtime the pack allows must be one this proctor knows. */
    for (size_t i = 0; c->runtimes[i]; i++) {
        if (!pr_runtimes_find(rts, c->runtimes[i])) {
            fprintf(stderr,
                    "proctor challenge check: %s/challenge.json: runtimes[%zu]: expected a "
                    "runtime of the runtimes configuration, got \"%s\"\n",
                    dir, i, c->runtimes[i]);
            goto cleanup;
        }
    }
    (void)snprintf(soldir, sizeof(soldir), "%s/solutions", c->dir);
    if (list_solutions(&names, &nnames, soldir) < 0) {
        fprintf(stderr, "proctor challenge check: %s: %s\n", soldir, strerror(errno));
        goto cleanup;
    }
    if (nnames == 0) {
        fprintf(stderr, "proctor challenge check: %s: no reference solutions to grade\n", soldir);
        status = 1;
        goto cleanup;
    }
    soldfd = open(soldir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (soldfd < 0) {
        fprintf(stderr, "proctor challenge check: %s: %s\n", soldir, strerror(errno));
        goto cleanup;
    }
    if (sbx_global_init(&err) < 0) {
        fprintf(stderr, "proctor challenge check: sandbox: %s\n", err.msg);
        goto cleanup;
    }
    sbx_up = true;
    if (pr_git_global_init(&err) < 0) {
        fprintf(stderr, "proctor challenge check: git: %s\n", err.msg);
        goto cleanup;
    }
    git_up = true;
    const char *t = getenv("TMPDIR"); /* NOLINT(concurrency-mt-unsafe): main thread */
    (void)snprintf(tmp, sizeof(tmp), "%s/proctor-check-XXXXXX", (t && t[0] == '/') ? t : "/tmp");
    if (!mkdtemp(tmp)) {
        fprintf(stderr, "proctor challenge check: mkdtemp %s: %s\n", tmp, strerror(errno));
        tmp[0] = '\0';
        goto cleanup;
    }
    /* As in `proctor grade`: a libuv loop watches every box. */
    if (pr_boxwatch_start_thread(&bw, &err) < 0)
        pr_log(PR_LOG_WARN, "proctor challenge check: %s; boxes are watched by their threads",
               err.msg);
    printf("%-24s %8s  %-13s %s\n", "solution", "percent", "expected", "result");
    for (size_t i = 0; i < nnames; i++) {
        double lo = 0, hi = 0;
        char why[512] = "";
        char repo[PATH_MAX + 64], work[PATH_MAX + 64], cache[PATH_MAX + 64], sol[PATH_MAX + 64];
        json_t *report = NULL;
        bool ok = false;
        double pct = -1;

        (void)snprintf(repo, sizeof(repo), "%s/%s.git", tmp, names[i]);
        (void)snprintf(work, sizeof(work), "%s/work", tmp);
        (void)snprintf(cache, sizeof(cache), "%s/cache", tmp);
        (void)snprintf(sol, sizeof(sol), "%s/%s", soldir, names[i]);
        if (read_expect(&lo, &hi, soldfd, names[i], why, sizeof(why)) == 0 &&
            solution_repo(repo, sol, why, sizeof(why)) == 0) {
            pr_job_spec spec;
            pr_env env;
            memset(&spec, 0, sizeof(spec));
            memset(&env, 0, sizeof(env));
            spec.repo = repo;
            spec.challenge_dir = c->dir;
            spec.candidate = names[i];
            env.runtimes = rts;
            env.cache_dir = cache;
            env.work_root = work;
            env.parallel = o->parallel;
            env.keep_work = o->keep;
            if (o->verbose) {
                env.progress = on_progress;
                env.payload = names[i];
            }
            if (pr_job_run(&report, &spec, &env, &err) < 0) {
                (void)snprintf(why, sizeof(why), "%s", err.msg);
            } else if (strcmp(json_string_value(json_object_get(report, "status")), "graded") !=
                       0) {
                const json_t *e = json_object_get(report, "error");
                (void)snprintf(why, sizeof(why), "status error at %s: %s",
                               json_string_value(json_object_get(e, "stage")),
                               json_string_value(json_object_get(e, "message")));
            } else {
                pct =
                    json_number_value(json_object_get(json_object_get(report, "score"), "percent"));
                ok = pct >= lo - 1e-9 && pct <= hi + 1e-9;
            }
        }
        char range[32], pcts[16];
        (void)snprintf(range, sizeof(range), "%g..%g", lo, hi);
        if (pct >= 0)
            (void)snprintf(pcts, sizeof(pcts), "%.1f", pct);
        else
            (void)snprintf(pcts, sizeof(pcts), "-");
        printf("%-24s %8s  %-13s %s%s%s\n", names[i], pcts, why[0] && pct < 0 ? "-" : range,
               ok ? "OK" : "FAIL", why[0] ? "  " : "", why);
        (void)fflush(stdout);
        if (report && (o->verbose || !ok))
            print_losses(report);
        if (!ok)
            failed++;
        json_decref(report);
    }
    printf("%zu of %zu solutions as expected\n", nnames - failed, nnames);
    status = failed ? 1 : 0;
cleanup:
    pr_boxwatch_stop(bw);
    if (tmp[0] && !o->keep)
        (void)pr_rm_rf(tmp);
    for (size_t i = 0; i < nnames; i++)
        pr_free(names[i]);
    pr_free(names);
    pr_close(&soldfd);
    pr_runtimes_free(rts);
    pr_challenge_free(c);
    if (git_up)
        pr_git_global_cleanup();
    if (sbx_up)
        sbx_global_cleanup();
    return status;
}

static int list_packs(const char *dir)
{
    char **names = NULL;
    size_t n = 0;
    int bad = 0;

    if (list_solutions(&names, &n, dir) < 0 || (n == 0 && access(dir, F_OK) != 0)) {
        fprintf(stderr, "proctor challenge list: %s: %s\n", dir, strerror(errno));
        pr_free(names);
        return 2;
    }
    for (size_t i = 0; i < n; i++) {
        char p[PATH_MAX + 256];
        pr_challenge *c = NULL;
        pr_error err = { 0 };
        (void)snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        if (pr_challenge_load(&c, p, &err) == 0) {
            printf("%-24s %-6s %3zu tests  %s\n", c->id, c->kind_name, c->ntests, c->title);
        } else if (err.code != PR_ENOTFOUND || !strstr(err.msg, "no such file")) {
            printf("%-24s error: %s\n", names[i], err.msg);
            bad++;
        }
        pr_challenge_free(c);
        pr_free(names[i]);
    }
    pr_free(names);
    return bad ? 1 : 0;
}

int pr_cli_challenge(int argc, char **argv)
{
    static const struct option opts[] = {
        { "parallel", required_argument, NULL, 'p' }, { "keep", no_argument, NULL, 'k' },
        { "verbose", no_argument, NULL, 'v' },        { "runtimes", required_argument, NULL, 'R' },
        { "help", no_argument, NULL, 'h' },           { NULL, 0, NULL, 0 },
    };
    check_opts o;

    memset(&o, 0, sizeof(o));
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        usage(stdout);
        return 0;
    }
    optind = 1;
    opterr = 0;
    for (;;) {
        int c = getopt_long(argc - 1, argv + 1, "vh", opts, NULL);
        if (c == -1)
            break;
        switch (c) {
        case 'p': {
            char *end = NULL;
            long n = strtol(optarg, &end, 10);
            if (!end || *end || end == optarg || n < 1 || n > 256) {
                fprintf(stderr, "proctor challenge: --parallel: expected 1..256, got '%s'\n",
                        optarg);
                return 2;
            }
            o.parallel = (int)n;
            break;
        }
        case 'k':
            o.keep = true;
            break;
        case 'v':
            o.verbose = true;
            break;
        case 'R':
            o.runtimes = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            fprintf(stderr, "proctor challenge: unknown or incomplete option '%s'\n\n",
                    argv[optind] ? argv[optind] : "");
            usage(stderr);
            return 2;
        }
    }
    int rest = argc - 1 - optind;
    char **args = argv + 1 + optind;
    json_set_alloc_funcs(pr_malloc, pr_free);
    if (strcmp(sub, "check") == 0 && rest == 1)
        return check_pack(args[0], &o);
    if (strcmp(sub, "list") == 0 && rest == 1)
        return list_packs(args[0]);
    fprintf(stderr, "proctor challenge: expected 'check CHALLENGE_DIR' or 'list DIR'\n\n");
    usage(stderr);
    return 2;
}
