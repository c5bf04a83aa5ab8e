/* The pipeline of one job (DESIGN.md): challenge -> fetch -> runtime -> build in the sandbox ->
 * tests through the kind's grader -> score -> report. Every stage failure still produces a
 * complete report with status "error". No globals: several jobs run at once on pool threads. */
#include "proctor/job.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "proctor/buf.h"
#include "proctor/challenge.h"
#include "proctor/kind.h"
#include "proctor/log.h"
#include "proctor/report.h"
#include "proctor/sandbox.h"

#define BUILD_LOG_MAX ((size_t)64 * 1024)

/* Everything one run of the pipeline owns; released in job_state_close. */
typedef struct job_state {
    const pr_job_spec *spec;
    const pr_env *env;
    char id[72];
    char dir[PATH_MAX];          /* per-job directory, "" until made */
    char src[PATH_MAX + 16];     /* <dir>/src: the checked-out submission */
    char scratch[PATH_MAX + 16]; /* <dir>/scratch: per-test files of the kind */
    pr_challenge *challenge;
    const pr_runtime *runtime;
    json_t *report;       /* owned until handed to the caller */
    sbx_result build_res; /* for environment.isolation */
    bool build_ran;
    bool dir_is_tmpfs; /* dir is a private tmpfs mount, unmounted at the end */
    unsigned long long t_start;
    pthread_mutex_t progress_lock; /* kinds report from their worker threads */
    atomic_uint tests_started;
} job_state;

static unsigned long long ms_since(unsigned long long t0)
{
    return (pr_now_ns() - t0) / 1000000ULL;
}

static void progress(const job_state *js, const char *stage, const char *fmt, ...) PR_PRINTF(3, 4);

static void progress(const job_state *js, const char *stage, const char *fmt, ...)
{
    if (!js->env->progress)
        return;
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    js->env->progress(js->env->payload, stage, detail);
}

/* g->progress of the kinds: serialises calls to env->progress (kinds grade on several threads)
 * and numbers the tests as they start ("3/14 name"). */
static void test_progress(void *payload, const char *stage, const char *detail)
{
    job_state *js = payload;
    char buf[600];
    const char *d = detail ? detail : "";
    const pr_challenge *c = js->challenge;
    for (size_t i = 0; c && strcmp(stage, "test") == 0 && i < c->ntests; i++) {
        if (strcmp(c->tests[i].name, d) == 0) {
            unsigned n = atomic_fetch_add(&js->tests_started, 1) + 1;
            (void)snprintf(buf, sizeof(buf), "%u/%zu %s", n, c->ntests, d);
            d = buf;
            break;
        }
    }
    (void)pthread_mutex_lock(&js->progress_lock);
    js->env->progress(js->env->payload, stage, d);
    (void)pthread_mutex_unlock(&js->progress_lock);
}

void pr_job_new_id(char *out, size_t outsz)
{
    static const char alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    unsigned char rnd[26];
    size_t got = 0;
    while (got < sizeof(rnd)) {
        ssize_t n = getrandom(rnd + got, sizeof(rnd) - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got < sizeof(rnd)) {
        /* getrandom cannot fail on Linux >= 3.17 once seeded; mix the clock as a last resort. */
        unsigned long long t = pr_now_ns() ^ ((unsigned long long)getpid() << 32);
        for (size_t i = got; i < sizeof(rnd); i++) {
            t = t * 6364136223846793005ULL + 1442695040888963407ULL;
            rnd[i] = (unsigned char)(t >> 56);
        }
    }
    size_t n = 0;
    for (size_t i = 0; i < sizeof(rnd) && n + 1 < outsz; i++)
        out[n++] = alphabet[rnd[i] % 36];
    if (outsz > 0)
        out[n] = '\0';
}

bool pr_job_id_valid(const char *id)
{
    if (!id)
        return false;
    size_t n = strlen(id);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static void now_rfc3339(char *out, size_t outsz)
{
    pr_time_rfc3339(out, outsz, (long long)time(NULL));
}

static json_t *str_or_null(const char *s)
{
    return (s && s[0]) ? json_string(s) : json_null();
}

/* The report's skeleton with every section present, so that any failure leaves a complete
 * report. Fields are filled in as the stages run. */
static int report_skeleton(job_state *js)
{
    char repo[1024];
    const pr_job_spec *sp = js->spec;

    pr_git_url_redact(repo, sizeof(repo), sp->repo ? sp->repo : "");
    js->report = pr_report_skeleton(js->id, sp->queued_at, repo, sp->ref, sp->candidate);
    return js->report ? 0 : PR_ENOMEM;
}

static int set_timing(job_state *js, const char *key, unsigned long long ms)
{
    return json_object_set_new(json_object_get(js->report, "timings"), key,
                               json_integer((json_int_t)ms));
}

/* One SKIP result per manifest test that has none yet (build failed, or a stage before the
 * tests failed). */
static int skip_remaining(job_state *js, json_t *tests, const char *why)
{
    if (!js->challenge)
        return 0;
    pr_grading g;
    memset(&g, 0, sizeof(g));
    g.tests = tests;
    for (size_t i = json_array_size(tests); i < js->challenge->ntests; i++) {
        if (!pr_grading_add_test(&g, &js->challenge->tests[i], "SKIP", 0, NULL, why, strlen(why)))
            return PR_ENOMEM;
    }
    return 0;
}

/* Copies msg with every occurrence of the repository URL's "user:password" part replaced by
 * "***": messages from lower layers may quote the URL they were given. */
static void scrub_credentials(char *out, size_t outsz, const char *msg, const char *repo)
{
    const char *scheme = repo ? strstr(repo, "://") : NULL;
    const char *host = scheme ? scheme + 3 : NULL;
    const char *at = NULL;
    for (const char *p = host; p && *p && *p != '/'; p++) {
        if (*p == '@')
            at = p;
    }
    size_t ulen = at ? (size_t)(at - host) : 0;
    size_t o = 0;
    for (const char *p = msg; *p && o + 1 < outsz;) {
        if (ulen > 0 && strncmp(p, host, ulen) == 0) {
            for (const char *r = "***"; *r && o + 1 < outsz; r++)
                out[o++] = *r;
            p += ulen;
            continue;
        }
        out[o++] = *p++;
    }
    out[o] = '\0';
}

/* Marks the report as failed at stage with message; the report stays complete. */
static int fail_stage(job_state *js, const char *stage, const char *message)
{
    char clean[512];
    scrub_credentials(clean, sizeof(clean), message, js->spec->repo);
    json_t *e = json_object();
    if (!e)
        return PR_ENOMEM;
    if (json_object_set_new(e, "stage", json_string(stage)) != 0 ||
        pr_report_set_text(e, "message", clean, strlen(clean), 1024) < 0 ||
        json_object_set_new(js->report, "error", e) != 0) {
        json_decref(e);
        return PR_ENOMEM;
    }
    if (json_object_set_new(js->report, "status", json_string("error")) != 0)
        return PR_ENOMEM;
    pr_log(PR_LOG_INFO, "job=%s event=stage_failed stage=%s", js->id, stage);
    char why[300];
    (void)snprintf(why, sizeof(why), "not run: the %s stage failed", stage);
    return skip_remaining(js, json_object_get(js->report, "tests"), why);
}

static int stage_challenge(job_state *js, pr_error *err)
{
    int rc = pr_challenge_load(&js->challenge, js->spec->challenge_dir, err);
    if (rc < 0)
        return rc;
    const pr_challenge *c = js->challenge;
    json_t *ch = json_object_get(js->report, "challenge");
    if (json_object_set_new(ch, "id", json_string(c->id)) != 0 ||
        json_object_set_new(ch, "version", json_string(c->version)) != 0 ||
        json_object_set_new(ch, "kind", json_string(c->kind_name)) != 0 ||
        json_object_set_new(ch, "digest", json_string(c->digest)) != 0)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    return 0;
}

/* Puts the job directory on its own tmpfs, so that nothing a submission does during its build
 * (the only step where the work tree is writable) can fill the host's disk or inodes: the
 * kernel caps the size and the inode count, and pages written from a box are charged to that
 * box's memory cgroup. Without the privilege to mount, the plain directory is kept and the
 * per-file size limit is the only cap. */
static void mount_job_tmpfs(job_state *js)
{
    uint64_t max_bytes =
        js->env->git_limits.max_bytes ? js->env->git_limits.max_bytes : (uint64_t)256 << 20;
    uint64_t max_files = js->env->git_limits.max_files ? js->env->git_limits.max_files : 20000;
    uint64_t size = 2 * max_bytes + ((uint64_t)768 << 20);
    uint64_t inodes = 2 * max_files + 100000;
    char opts[128];
    (void)snprintf(opts, sizeof(opts), "size=%llu,nr_inodes=%llu,mode=0700",
                   (unsigned long long)size, (unsigned long long)inodes);
    if (mount("proctor-job", js->dir, "tmpfs", MS_NOSUID | MS_NODEV, opts) == 0) {
        js->dir_is_tmpfs = true;
        return;
    }
    pr_log(PR_LOG_DEBUG, "job=%s event=job_tmpfs_unavailable errno=%d", js->id, errno);
}

static int make_job_dir(job_state *js, pr_error *err)
{
    const char *root = js->env->work_root ? js->env->work_root : "/tmp";
    if (pr_mkdir_p(root) < 0)
        return pr_error_sys(err, "work directory %s", root);
    int n = snprintf(js->dir, sizeof(js->dir), "%s/job-%s-XXXXXX", root, js->id);
    if (n < 0 || (size_t)n >= sizeof(js->dir) - 16) {
        js->dir[0] = '\0';
        return pr_error_set(err, PR_EINVAL, "work directory path too long");
    }
    if (!mkdtemp(js->dir)) {
        int rc = pr_error_sys(err, "cannot create a job directory under %s", root);
        js->dir[0] = '\0';
        return rc;
    }
    if (!js->env->keep_work)
        mount_job_tmpfs(js);
    /* Private to proctor: the sandbox opens bind sources with proctor's own access, and no
     * other host user has any business in a candidate's checkout. */
    if (chmod(js->dir, 0700) != 0)
        return pr_error_sys(err, "chmod %s", js->dir);
    (void)snprintf(js->src, sizeof(js->src), "%s/src", js->dir);
    (void)snprintf(js->scratch, sizeof(js->scratch), "%s/scratch", js->dir);
    if (mkdir(js->scratch, 0700) != 0)
        return pr_error_sys(err, "mkdir %s", js->scratch);
    if (js->env->keep_work)
        progress(js, "fetch", "job directory %s (kept)", js->dir);
    return 0;
}

static int stage_fetch(job_state *js, pr_error *err)
{
    pr_git_info info;
    char shown[1024];

    memset(&info, 0, sizeof(info));
    pr_git_url_redact(shown, sizeof(shown), js->spec->repo ? js->spec->repo : "");
    progress(js, "fetch", "%s%s%s", shown, js->spec->ref ? " @ " : "",
             js->spec->ref ? js->spec->ref : "");
    if (!js->spec->repo || !js->spec->repo[0])
        return pr_error_set(err, PR_EINVAL, "no repository given");
    /* No environment lookups here (pool threads): the CLI and the daemon pass their cache. */
    const char *cache = js->env->cache_dir ? js->env->cache_dir : "/var/cache/proctor";
    int rc = pr_git_fetch(&info, js->spec->repo, js->spec->ref, cache, js->src,
                          &js->env->git_limits, err);
    if (rc < 0)
        return rc;
    json_t *sub = json_object_get(js->report, "submission");
    if (pr_report_set_text(sub, "ref", info.ref, strnlen(info.ref, sizeof(info.ref)),
                           sizeof(info.ref)) < 0 ||
        json_object_set_new(sub, "commit", json_string(info.commit)) != 0 ||
        pr_report_set_text(sub, "author", info.author, strnlen(info.author, sizeof(info.author)),
                           sizeof(info.author)) < 0 ||
        json_object_set_new(sub, "committed_at", str_or_null(info.committed_at)) != 0)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    progress(js, "fetch", "ok %.12s (%llu files, %llu bytes)", info.commit,
             (unsigned long long)info.files, (unsigned long long)info.bytes);
    return 0;
}

static int stage_runtime(job_state *js, pr_error *err)
{
    const pr_runtimes *rts = js->env->runtimes;
    const pr_challenge *c = js->challenge;
    int rc;

    if (!rts)
        return pr_error_set(err, PR_EINVAL, "no runtimes configured");
    if (js->spec->runtime) {
        js->runtime = pr_runtimes_find(rts, js->spec->runtime);
        if (!js->runtime)
            return pr_error_set(err, PR_ENOTFOUND, "unknown runtime \"%.64s\"", js->spec->runtime);
    } else {
        rc = pr_runtimes_detect(&js->runtime, rts, js->src, err);
        if (rc < 0)
            return rc;
    }
    bool allowed = false;
    for (size_t i = 0; c->runtimes[i]; i++) {
        if (strcmp(c->runtimes[i], js->runtime->name) == 0)
            allowed = true;
    }
    if (!allowed) {
        char names[200] = "";
        size_t o = 0;
        for (size_t i = 0; c->runtimes[i]; i++) {
            int w = snprintf(names + o, sizeof(names) - o, "%s%s", i ? ", " : "", c->runtimes[i]);
            if (w < 0 || (size_t)w >= sizeof(names) - o)
                break;
            o += (size_t)w;
        }
        return pr_error_set(err, PR_EINVAL,
                            "runtime \"%s\" is not allowed by challenge %s (allowed: %s)",
                            js->runtime->name, c->id, names);
    }
    if (!js->runtime->available)
        return pr_error_set(err, PR_ENOTFOUND, "runtime \"%s\" is not installed on this host",
                            js->runtime->name);
    if (json_object_set_new(json_object_get(js->report, "submission"), "runtime",
                            json_string(js->runtime->name)) != 0)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    return 0;
}

/* Sets the mode of every directory and regular file below root: writable by anyone for the build
 * (the box's ids are not the owner), read-only for the tests. Walks with a worklist of relative
 * paths, each directory opened beneath root with no symlink anywhere on the way, and changes
 * modes with AT_SYMLINK_NOFOLLOW, so a symlink in the submission is never followed. Runs only
 * when no sandboxed process is alive. */
static int chmod_tree(const char *root, bool writable, pr_error *err)
{
    int rootfd = -1;
    char **todo = NULL;
    size_t ntodo = 0, cap = 0, visited = 0;
    DIR *d = NULL;
    char *cur = NULL;
    int rc = 0;

    rootfd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (rootfd < 0)
        return pr_error_sys(err, "open %s", root);
    if (fchmod(rootfd, writable ? 0777 : 0555) != 0) {
        rc = pr_error_sys(err, "chmod %s", root);
        goto cleanup;
    }
    cur = pr_strdup(".");
    while (cur) {
        struct open_how how;
        memset(&how, 0, sizeof(how));
        how.flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
        int fd = (int)syscall(SYS_openat2, rootfd, cur, &how, sizeof(how));
        if (fd < 0) {
            rc = pr_error_sys(err, "open %s/%s", root, cur);
            goto cleanup;
        }
        d = fdopendir(fd);
        if (!d) {
            rc = pr_error_sys(err, "opendir %s/%s", root, cur);
            pr_close(&fd);
            goto cleanup;
        }
        for (;;) {
            /* readdir on a stream private to this call is thread-safe in glibc. */
            /* cppcheck-suppress readdirCalled ; the stream is private to this call */
            const struct dirent *de = readdir(d); /* NOLINT(concurrency-mt-unsafe) */
            if (!de)
                break;
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            struct stat st;
            if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
                continue;
            if (++visited > 1000000) {
                rc = pr_error_set(err, PR_ELIMIT, "%s: too many files", root);
                goto cleanup;
            }
            if (S_ISREG(st.st_mode)) {
                mode_t m = (st.st_mode & 0111) ? 0555 : 0444;
                if (writable)
                    m |= 0222;
                (void)fchmodat(dirfd(d), de->d_name, m, AT_SYMLINK_NOFOLLOW);
            } else if (S_ISDIR(st.st_mode)) {
                (void)fchmodat(dirfd(d), de->d_name, writable ? 0777 : 0555, AT_SYMLINK_NOFOLLOW);
                if (ntodo == cap) {
                    size_t ncap = cap ? cap * 2 : 32;
                    char **p = pr_realloc(todo, ncap * sizeof(char *));
                    if (!p) {
                        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
                        goto cleanup;
                    }
                    todo = p;
                    cap = ncap;
                }
                pr_buf path = PR_BUF_INIT(PATH_MAX);
                if (pr_buf_printf(&path, "%s/%s", cur, de->d_name) < 0) {
                    pr_buf_free(&path);
                    rc = pr_error_set(err, PR_ELIMIT, "%s: path too long", root);
                    goto cleanup;
                }
                todo[ntodo++] = pr_buf_detach(&path);
                if (!todo[ntodo - 1]) {
                    ntodo--;
                    rc = pr_error_set(err, PR_ENOMEM, "out of memory");
                    goto cleanup;
                }
            }
        }
        (void)closedir(d);
        d = NULL;
        pr_free(cur);
        cur = ntodo > 0 ? todo[--ntodo] : NULL;
    }
cleanup:
    if (d)
        (void)closedir(d);
    pr_free(cur);
    for (size_t i = 0; i < ntodo; i++)
        pr_free(todo[i]);
    pr_free(todo);
    pr_close(&rootfd);
    return rc;
}

/* Reads the head of the build log into report.build.log (64 KiB, cleaned to UTF-8). */
static int attach_build_log(job_state *js, json_t *build, int fd)
{
    char *buf = NULL;
    struct stat st;
    size_t have = 0;
    int rc = PR_ENOMEM;

    if (fstat(fd, &st) != 0 || lseek(fd, 0, SEEK_SET) != 0)
        return pr_report_set_text(build, "log", "", 0, BUILD_LOG_MAX);
    buf = pr_malloc(BUILD_LOG_MAX);
    if (!buf)
        goto cleanup;
    while (have < BUILD_LOG_MAX) {
        ssize_t n = read(fd, buf + have, BUILD_LOG_MAX - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    rc = pr_report_set_text(build, "log", buf, have, BUILD_LOG_MAX);
    if (rc == 0 && (uint64_t)st.st_size > have) {
        if (json_object_set_new(build, "log_truncated", json_true()) != 0 ||
            json_object_set_new(build, "log_bytes", json_integer((json_int_t)st.st_size)) != 0)
            rc = PR_ENOMEM;
    }
    (void)js;
cleanup:
    pr_free(buf);
    return rc;
}

/* Builds in the sandbox. Returns < 0 for an infrastructure failure; *ok tells whether the
 * submission built. */
static int stage_build(job_state *js, bool *ok, pr_error *err)
{
    const pr_runtime *rt = js->runtime;
    json_t *build = json_object_get(js->report, "build");
    char logpath[PATH_MAX + 16];
    int logfd = -1;
    int rc = 0;
    pr_run_plan *plan = NULL;

    *ok = false;
    rc = chmod_tree(js->src, true, err);
    if (rc < 0)
        return rc;
    if (!rt->build_argv) {
        /* Nothing to build; a trivial box still tells which isolation is in force here, so
         * that the report states it rather than assumes it. */
        sbx_spec probe;
        sbx_spec_init(&probe);
        static const char *const argv_true[] = { "/bin/true", NULL };
        probe.argv = argv_true;
        probe.slot = js->env->slot_base;
        probe.limits.wall_ms = 10000;
        memset(&js->build_res, 0, sizeof(js->build_res));
        if (sbx_run(&js->build_res, &probe, NULL) == 0 && js->build_res.verdict == SBX_OK)
            js->build_ran = true;
        *ok = true;
        progress(js, "build", "ok (nothing to build)");
        return json_object_set_new(build, "verdict", json_string("OK")) == 0
                   ? 0
                   : pr_error_set(err, PR_ENOMEM, "out of memory");
    }
    progress(js, "build", "%s", rt->name);
    (void)snprintf(logpath, sizeof(logpath), "%s/build.log", js->dir);
    logfd = open(logpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (logfd < 0) {
        rc = pr_error_sys(err, "%s", logpath);
        goto cleanup;
    }

    /* The run plan gives the runtime's env and binds; then the build's own differences. */
    plan = pr_calloc(1, sizeof(*plan));
    if (!plan) {
        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }
    pr_grading g;
    memset(&g, 0, sizeof(g));
    g.challenge = js->challenge;
    g.runtime = rt;
    g.workdir = js->src;
    g.netns_fd = -1;
    g.time_multiplier = 1.0;
    pr_run_plan_init(plan, &g, NULL);
    plan->binds[0].writable = true;
    size_t n = 0;
    for (; rt->build_argv[n] && n + 1 < PR_ARRAY_LEN(plan->argv); n++)
        plan->argv[n] = rt->build_argv[n];
    plan->argv[n] = NULL;
    plan->spec.profile = rt->build_profile ? rt->build_profile : "build";
    memset(&plan->spec.limits, 0, sizeof(plan->spec.limits));
    plan->spec.limits.cpu_ms = rt->build_cpu_ms;
    plan->spec.limits.wall_ms = rt->build_wall_ms;
    plan->spec.limits.mem_mb = rt->build_mem_mb;
    plan->spec.limits.procs = 256;
    plan->spec.limits.fsize_kb = SBX_DEFAULT_FSIZE_KB;
    plan->spec.limits.nofile = 1024;
    plan->spec.limits.tmp_mb = 512;
    plan->spec.stdout_fd = logfd;
    plan->spec.stderr_fd = logfd;
    plan->spec.slot = js->env->slot_base;
    plan->spec.netns_fd = -1;

    sbx_result *res = &js->build_res;
    memset(res, 0, sizeof(*res));
    rc = sbx_run(res, &plan->spec, err);
    js->build_ran = true;
    if (rc < 0)
        goto cleanup;
    if (res->verdict == SBX_IE) {
        /* The sandbox failed, not the candidate's build: an error report, not a score. */
        rc = pr_error_set(err, PR_ESYS, "sandbox: %s",
                          res->message[0] ? res->message : "internal error");
        goto cleanup;
    }
    *ok = res->verdict == SBX_OK;
    if (json_object_set_new(build, "verdict", json_string(sbx_verdict_name(res->verdict))) != 0 ||
        json_object_set_new(build, "cpu_ms", json_integer((json_int_t)res->cpu_ms)) != 0 ||
        json_object_set_new(build, "wall_ms", json_integer((json_int_t)res->wall_ms)) != 0 ||
        attach_build_log(js, build, logfd) < 0) {
        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }
    if (!*ok) {
        json_t *detail = json_object();
        if (detail && res->signal)
            (void)json_object_set_new(detail, "signal", json_integer(res->signal));
        else if (detail)
            (void)json_object_set_new(detail, "exit_code", json_integer(res->exit_code));
        if (detail && res->message[0])
            (void)pr_report_set_text(detail, "message", res->message,
                                     strnlen(res->message, sizeof(res->message)), 256);
        if (detail)
            (void)json_object_set_new(build, "result", detail);
    }
    progress(js, "build", "%s %.1f s", *ok ? "ok" : sbx_verdict_name(res->verdict),
             (double)res->wall_ms / 1000.0);
cleanup:
    pr_free(plan);
    pr_close(&logfd);
    return rc;
}

static int default_parallel(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > 64 ? 64 : (int)n;
}

static int stage_tests(job_state *js, pr_error *err)
{
    const pr_challenge *c = js->challenge;
    json_t *tests = json_object_get(js->report, "tests");
    int netns = -1;
    int rc;

    rc = chmod_tree(js->src, false, err);
    if (rc < 0)
        return rc;
    netns = sbx_netns_new(NULL);

    pr_grading g;
    memset(&g, 0, sizeof(g));
    g.challenge = c;
    g.runtime = js->runtime;
    g.job_id = js->id;
    g.workdir = js->src;
    g.scratch = js->scratch;
    g.time_multiplier = pr_challenge_multiplier(c, js->runtime->name, js->runtime->time_multiplier);
    g.parallel = js->env->parallel > 0 ? js->env->parallel : default_parallel();
    g.slot_base = js->env->slot_base;
    g.pg_host = js->env->pg_host;
    g.pg_port = js->env->pg_port;
    g.pg_admin = js->env->pg_admin;
    g.netns_fd = netns;
    g.tests = tests;
    g.metrics = json_object_get(js->report, "metrics");
    if (js->env->progress) {
        g.progress = test_progress;
        g.payload = js;
    }

    rc = c->kind->grade(&g, c->kind_state, err);
    pr_close(&netns);
    if (rc < 0)
        return rc;
    if (json_array_size(tests) > c->ntests)
        return pr_error_set(err, PR_EINTERNAL, "grader %s returned %zu results for %zu tests",
                            c->kind_name, json_array_size(tests), c->ntests);
    if (json_array_size(tests) < c->ntests)
        return pr_error_set(err, PR_EINTERNAL, "grader %s returned %zu results for %zu tests",
                            c->kind_name, json_array_size(tests), c->ntests);
    return 0;
}

static void job_state_close(job_state *js)
{
    if (js->dir[0] && js->dir_is_tmpfs) {
        /* Dropping the mount frees everything in it at once; boxes that still hold a copy of
         * the mount let go of it when they end (MNT_DETACH). */
        if (umount2(js->dir, MNT_DETACH) == 0)
            (void)rmdir(js->dir);
        else
            (void)pr_rm_rf(js->dir);
    } else if (js->dir[0] && !js->env->keep_work)
        (void)pr_rm_rf(js->dir);
    else if (js->dir[0])
        pr_log(PR_LOG_INFO, "job=%s event=kept_work dir=%s", js->id, js->dir);
    pr_challenge_free(js->challenge);
    js->challenge = NULL;
    json_decref(js->report);
    js->report = NULL;
}

int pr_job_run(json_t **report_out, const pr_job_spec *job, const pr_env *env, pr_error *err)
{
    job_state js;
    pr_error serr = { 0 };
    const char *stage = NULL;
    int rc;
    unsigned long long t;

    *report_out = NULL;
    memset(&js, 0, sizeof(js));
    js.spec = job;
    js.env = env;
    js.t_start = pr_now_ns();
    atomic_init(&js.tests_started, 0);
    if (pthread_mutex_init(&js.progress_lock, NULL) != 0)
        return pr_error_set(err, PR_ESYS, "pthread_mutex_init failed");
    if (job->id && pr_job_id_valid(job->id))
        (void)snprintf(js.id, sizeof(js.id), "%s", job->id);
    else
        pr_job_new_id(js.id, sizeof(js.id));
    rc = report_skeleton(&js);
    if (rc < 0) {
        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }
    pr_log(PR_LOG_INFO, "job=%s event=start", js.id);

    stage = "challenge";
    rc = stage_challenge(&js, &serr);
    if (rc < 0)
        goto failed;

    stage = "fetch";
    t = pr_now_ns();
    rc = make_job_dir(&js, &serr);
    if (rc == 0)
        rc = stage_fetch(&js, &serr);
    (void)set_timing(&js, "fetch_ms", ms_since(t));
    if (rc < 0)
        goto failed;

    stage = "runtime";
    rc = stage_runtime(&js, &serr);
    if (rc < 0)
        goto failed;

    stage = "build";
    t = pr_now_ns();
    bool built = false;
    rc = stage_build(&js, &built, &serr);
    (void)set_timing(&js, "build_ms", ms_since(t));
    if (rc < 0)
        goto failed;
    if (!built) {
        /* The candidate's build failed: graded, every test SKIP with 0 points. */
        rc = skip_remaining(&js, json_object_get(js.report, "tests"), "not run: the build failed");
        if (rc < 0)
            goto oom;
        goto done;
    }

    stage = "tests";
    t = pr_now_ns();
    rc = stage_tests(&js, &serr);
    (void)set_timing(&js, "tests_ms", ms_since(t));
    if (rc < 0)
        goto failed;
    goto done;

failed:
    if (rc == PR_ENOMEM && !serr.msg[0])
        goto oom;
    if (fail_stage(&js, stage, serr.msg[0] ? serr.msg : pr_errcode_name(rc)) < 0)
        goto oom;
done:
    /* The skeleton says "error" so that no path can leave a half-made report marked graded. */
    if (json_is_null(json_object_get(js.report, "error")) &&
        json_object_set_new(js.report, "status", json_string("graded")) != 0)
        goto oom;
    if (js.build_ran) {
        json_t *iso = pr_isolation_json(&js.build_res.isolation);
        if (iso)
            (void)json_object_set_new(json_object_get(js.report, "environment"), "isolation", iso);
    }
    if (pr_report_score(js.report) < 0)
        goto oom;
    char finished[32];
    now_rfc3339(finished, sizeof(finished));
    (void)json_object_set_new(json_object_get(js.report, "job"), "finished_at",
                              json_string(finished));
    (void)set_timing(&js, "total_ms", ms_since(js.t_start));
    pr_log(PR_LOG_INFO, "job=%s event=done status=%s", js.id,
           json_string_value(json_object_get(js.report, "status")));
    *report_out = js.report;
    js.report = NULL;
    rc = 0;
    goto cleanup;
oom:
    rc = pr_error_set(err, PR_ENOMEM, "out of memory while building the report");
cleanup:
    job_state_close(&js);
    (void)pthread_mutex_destroy(&js.progress_lock);
    return rc;
}
