/* pr_git_fetch and pr_git_ls_remote against real repositories built with the git CLI in a
 * temporary directory, fetched by plain path and over file:// (no network). */
#include "proctor/git.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proctor/common.h"
#include "t.h"

static char g_tmp[256];    /* scratch root for everything this test makes */
static char g_origin[512]; /* bare repository the tests fetch from */
static char g_cache[512];  /* mirror cache shared by most tests */
static int g_dest_seq;     /* makes every destination directory unique */

/* ---------------------------------------------------------------------------------------- */
/* Running git                                                                               */

/* Runs a shell script in g_tmp; its stdout goes to out (trailing newlines cut) when out is not
 * NULL. Aborts when the script fails. RUN_SH formats the script first (a macro rather than a
 * varargs function keeps the format checked without va_list plumbing). */
#define RUN_SH(out, outsz, ...)                                            \
    do {                                                                   \
        char rs_script_[8192];                                             \
        int rs_n_ = snprintf(rs_script_, sizeof(rs_script_), __VA_ARGS__); \
        T_TRUE(rs_n_ > 0 && (size_t)rs_n_ < sizeof(rs_script_));           \
        run_script((out), (outsz), rs_script_);                            \
    } while (0)

static void run_script(char *out, size_t outsz, const char *script)
{
    int pfd[2];

    T_EQ_INT(pipe2(pfd, O_CLOEXEC), 0);
    pid_t pid = fork();
    T_TRUE(pid >= 0);
    if (pid == 0) {
        if (dup2(pfd[1], 1) < 0 || chdir(g_tmp) != 0)
            _exit(126);
        execl("/bin/sh", "sh", "-ec", script, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    size_t len = 0;
    char sink[4096];
    for (;;) {
        char *dst = out ? out + len : sink;
        size_t room = out ? outsz - 1 - len : sizeof(sink);
        if (room == 0) {
            dst = sink;
            room = sizeof(sink);
        }
        ssize_t r = read(pfd[0], dst, room);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (out && dst != sink)
            len += (size_t)r;
    }
    close(pfd[0]);
    int status = 0;
    T_EQ_INT(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        T_FAIL("script failed (status %d): %s", status, script);
    if (out) {
        while (len > 0 && out[len - 1] == '\n')
            len--;
        out[len] = '\0';
    }
}

static void next_dest(char *out, size_t outsz)
{
    (void)snprintf(out, outsz, "%s/dest/%d", g_tmp, ++g_dest_seq);
}

static bool path_exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

static void read_file(char *out, size_t outsz, const char *dir, const char *name)
{
    char p[1024];
    (void)snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "re");
    T_NOT_NULL(f);
    size_t n = fread(out, 1, outsz - 1, f);
    out[n] = '\0';
    fclose(f);
}

static int count_mirrors(const char *cache)
{
    char out[64];
    RUN_SH(out, sizeof(out), "ls -a '%s' | grep -c '[.]git$' || true", cache);
    return (int)strtol(out, NULL, 10);
}

/* ---------------------------------------------------------------------------------------- */
/* Fixtures                                                                                  */

static void make_origin(void)
{
    (void)snprintf(g_origin, sizeof(g_origin), "%s/origin.git", g_tmp);
    (void)snprintf(g_cache, sizeof(g_cache), "%s/cache", g_tmp);
    RUN_SH(NULL, 0,
           "git init -q --bare -b main origin.git\n"
           "git init -q -b main work && cd work\n"
           "printf 'hello\\n' > hello.txt\n"
           "printf '#!/bin/sh\\necho hi\\n' > run.sh && chmod 755 run.sh\n"
           "ln -s hello.txt link\n"
           "mkdir -p sub/dir && printf 'deep\\n' > sub/dir/deep.txt\n"
           "git add -A\n"
           "GIT_AUTHOR_NAME='Ada Lovelace' GIT_AUTHOR_EMAIL=ada@example.com "
           "GIT_AUTHOR_DATE='2026-01-02T03:04:05Z' GIT_COMMITTER_DATE='2026-01-03T04:05:06+02:00' "
           "git commit -q -m first\n"
           "git tag v1 && git tag -a -m 'annotated' v1a\n"
           "git checkout -q -b feature && printf 'feature\\n' > feature.txt && git add -A\n"
           "git commit -q -m feature\n"
           "git checkout -q main && printf 'hello again\\n' > hello.txt\n"
           /* An author name that is not valid UTF-8 must come out as valid UTF-8. */
           "GIT_AUTHOR_NAME=\"$(printf 'Bad \\377 Name')\" git -c i18n.commitEncoding=ISO-8859-1 "
           "commit -q -am second\n"
           "git push -q ../origin.git main feature v1 v1a\n");
}

/* ---------------------------------------------------------------------------------------- */
/* Tests                                                                                     */

static void test_default_head(void)
{
    char dest[512], want[128], buf[700];
    pr_git_info info;
    pr_error err = { 0 };

    next_dest(dest, sizeof(dest));
    T_EQ_INT(pr_git_fetch(&info, g_origin, NULL, g_cache, dest, NULL, &err), 0);
    RUN_SH(want, sizeof(want), "git -C origin.git rev-parse HEAD");
    T_EQ_STR(info.commit, want);
    T_EQ_STR(info.ref, "refs/heads/main");
    T_TRUE(info.fetched_objects > 0);
    RUN_SH(want, sizeof(want), "git -C origin.git ls-tree -r HEAD | wc -l");
    T_EQ_INT(info.files, strtol(want, NULL, 10));
    RUN_SH(want, sizeof(want),
           "git -C origin.git ls-tree -r -l HEAD | awk '{s+=$4} END {print s}'");
    T_EQ_INT(info.bytes, strtol(want, NULL, 10));
    RUN_SH(want, sizeof(want),
           "TZ=UTC git -C origin.git log -1 --format=%%cd "
           "--date=format-local:%%Y-%%m-%%dT%%H:%%M:%%SZ");
    T_EQ_STR(info.committed_at, want);
    /* The second commit's author name has a 0xFF byte: it becomes U+FFFD. */
    T_EQ_STR(info.author, "Bad \xEF\xBF\xBD Name <you@example.com>");

    read_file(buf, sizeof(buf), dest, "hello.txt");
    T_EQ_STR(buf, "hello again\n");
    read_file(buf, sizeof(buf), dest, "sub/dir/deep.txt");
    T_EQ_STR(buf, "deep\n");
    struct stat st;
    (void)snprintf(buf, sizeof(buf), "%s/run.sh", dest);
    T_EQ_INT(lstat(buf, &st), 0);
    T_EQ_INT(st.st_mode & 07777, 0755);
    (void)snprintf(buf, sizeof(buf), "%s/hello.txt", dest);
    T_EQ_INT(lstat(buf, &st), 0);
    T_EQ_INT(st.st_mode & 07777, 0644);
    (void)snprintf(buf, sizeof(buf), "%s/link", dest);
    T_EQ_INT(lstat(buf, &st), 0);
    T_TRUE(S_ISLNK(st.st_mode));
    char target[64];
    ssize_t tl = readlink(buf, target, sizeof(target) - 1);
    T_EQ_INT(tl, 9);
    target[tl] = '\0';
    T_EQ_STR(target, "hello.txt");
    /* No .git directory: the checkout holds the tree only. */
    (void)snprintf(buf, sizeof(buf), "%s/.git", dest);
    T_TRUE(!path_exists(buf));
}

static void test_author_exact(void)
{
    char dest[512], want[256];
    pr_git_info info;
    pr_error err = { 0 };

    next_dest(dest, sizeof(dest));
    T_EQ_INT(pr_git_fetch(&info, g_origin, "v1", g_cache, dest, NULL, &err), 0);
    RUN_SH(want, sizeof(want), "git -C origin.git log -1 --format='%%an <%%ae>' v1");
    T_EQ_STR(info.author, want);
    T_EQ_STR(info.author, "Ada Lovelace <ada@example.com>");
    /* Committer time 04:05:06+02:00 is 02:05:06 UTC. */
    T_EQ_STR(info.committed_at, "2026-01-03T02:05:06Z");
    RUN_SH(want, sizeof(want), "git -C origin.git rev-parse v1^{commit}");
    T_EQ_STR(info.commit, want);
    T_EQ_STR(info.ref, "refs/tags/v1");
}

static void expect_ref(const char *ref, const char *rev, const char *want_ref, const char *file)
{
    char dest[512], want[128];
    pr_git_info info;
    pr_error err = { 0 };

    next_dest(dest, sizeof(dest));
    int rc = pr_git_fetch(&info, g_origin, ref, g_cache, dest, NULL, &err);
    if (rc != 0)
        T_FAIL("ref %s: %s", ref, err.msg);
    RUN_SH(want, sizeof(want), "git -C origin.git rev-parse '%s^{commit}'", rev);
    T_EQ_STR(info.commit, want);
    if (want_ref)
        T_EQ_STR(info.ref, want_ref);
    else
        T_EQ_STR(info.ref, want);
    char p[600];
    (void)snprintf(p, sizeof(p), "%s/%s", dest, file);
    T_TRUE(path_exists(p));
}

static void test_refs(void)
{
    char sha[128], shortsha[16];

    expect_ref("feature", "feature", "refs/heads/feature", "feature.txt");
    expect_ref("refs/heads/feature", "feature", "refs/heads/feature", "feature.txt");
    expect_ref("main", "main", "refs/heads/main", "hello.txt");
    expect_ref("HEAD", "main", "refs/heads/main", "hello.txt");
    expect_ref("v1", "v1", "refs/tags/v1", "run.sh");
    expect_ref("v1a", "v1a", "refs/tags/v1a", "run.sh");
    expect_ref("refs/tags/v1a", "v1a", "refs/tags/v1a", "run.sh");
    RUN_SH(sha, sizeof(sha), "git -C origin.git rev-parse feature");
    expect_ref(sha, "feature", NULL, "feature.txt");
    (void)snprintf(shortsha, sizeof(shortsha), "%.8s", sha);
    expect_ref(shortsha, "feature", NULL, "feature.txt");
    /* A full id of an annotated tag object peels to its commit. */
    RUN_SH(sha, sizeof(sha), "git -C origin.git rev-parse v1a");
    expect_ref(sha, "v1a", NULL, "run.sh");
}

static void test_not_found(void)
{
    char dest[512], missing[512], notrepo[512], url[600];
    pr_git_info info;
    pr_error err = { 0 };

    next_dest(dest, sizeof(dest));
    T_EQ_INT(pr_git_fetch(&info, g_origin, "no-such-branch", g_cache, dest, NULL, &err),
             PR_ENOTFOUND);
    T_CONTAINS(err.msg, "no-such-branch");
    T_CONTAINS(err.msg, g_origin);
    T_TRUE(!path_exists(dest));

    memset(&err, 0, sizeof(err));
    T_EQ_INT(pr_git_fetch(&info, g_origin, "0123456789abcdef0123456789abcdef01234567", g_cache,
                          dest, NULL, &err),
             PR_ENOTFOUND);
    T_CONTAINS(err.msg, "ref not found");
    memset(&err, 0, sizeof(err));
    T_EQ_INT(pr_git_fetch(&info, g_origin, "abcdef0", g_cache, dest, NULL, &err), PR_ENOTFOUND);

    (void)snprintf(missing, sizeof(missing), "%s/does-not-exist.git", g_tmp);
    memset(&err, 0, sizeof(err));
    T_EQ_INT(pr_git_fetch(&info, missing, NULL, g_cache, dest, NULL, &err), PR_ENOTFOUND);
    T_CONTAINS(err.msg, "repository not found: ");
    T_CONTAINS(err.msg, "does-not-exist.git");
    (void)snprintf(url, sizeof(url), "file://%s", missing);
    memset(&err, 0, sizeof(err));
    T_EQ_INT(pr_git_fetch(&info, url, NULL, g_cache, dest, NULL, &err), PR_ENOTFOUND);
    T_CONTAINS(err.msg, "repository not found: ");

    /* A directory that exists but holds no repository. */
    (void)snprintf(notrepo, sizeof(notrepo), "%s/plain-dir", g_tmp);
    T_EQ_INT(mkdir(notrepo, 0755), 0);
    memset(&err, 0, sizeof(err));
    T_EQ_INT(pr_git_fetch(&info, notrepo, NULL, g_cache, dest, NULL, &err), PR_ENOTFOUND);
    T_CONTAINS(err.msg, "repository not found: ");
    T_CONTAINS(err.msg, "plain-dir");
    T_TRUE(!path_exists(dest));

    char sha[41];
    memset(&err, 0, sizeof(err));
    T_EQ_INT(pr_git_ls_remote(sha, missing, NULL, &err), PR_ENOTFOUND);
    T_CONTAINS(err.msg, "repository not found: ");
    memset(&err, 0, sizeof(err));
    T_TRUE(pr_git_ls_remote(sha, "https://user:secret@127.0.0.1:1/x.git", NULL, &err) < 0);
    T_TRUE(err.msg[0] != '\0');
    T_TRUE(strstr(err.msg, "secret") == NULL);
}

static void test_rejected_arguments(void)
{
    char dest[512], existing[512];
    pr_git_info info;
    pr_error err = { 0 };
    char *url = NULL;
    static const char *const bad[] = {
        "ext::sh -c touch% /tmp/pwned",
        "fd::17",
        "-uhelp",
        "--upload-pack=touch /tmp/pwned",
        "http://example.com/repo.git",
        "git://example.com/repo.git",
        "ftp://example.com/r",
        "https://-oProxyCommand=x/repo",
        "https://host/with space",
        "https://",
        "",
    };

    next_dest(dest, sizeof(dest));
    for (size_t i = 0; i < PR_ARRAY_LEN(bad); i++) {
        memset(&err, 0, sizeof(err));
        int rc = pr_git_fetch(&info, bad[i], NULL, g_cache, dest, NULL, &err);
        if (rc != PR_EINVAL)
            T_FAIL("repo \"%s\": rc %d, %s", bad[i], rc, err.msg);
        T_TRUE(err.msg[0] != '\0');
    }
    memset(&err, 0, sizeof(err));
    T_EQ_INT(pr_git_fetch(&info, "ext::sh -c true", NULL, g_cache, dest, NULL, &err), PR_EINVAL);
    T_CONTAINS(err.msg, "unsupported");
    T_EQ_INT(pr_git_fetch(&info, "-x", NULL, g_cache, dest, NULL, &err), PR_EINVAL);
    T_CONTAINS(err.msg, "'-'");
    T_EQ_INT(pr_git_fetch(&info, g_origin, "--orphan", g_cache, dest, NULL, &err), PR_EINVAL);
    T_EQ_INT(pr_git_fetch(&info, g_origin, "a b", g_cache, dest, NULL, &err), PR_EINVAL);

    /* https and ssh URLs are accepted and go to libgit2 unchanged. */
    T_EQ_INT(pr_git_repo_normalise(&url, "https://user:secret@example.com/team/repo.git", &err), 0);
    T_EQ_STR(url, "https://user:secret@example.com/team/repo.git");
    pr_free(url);
    T_EQ_INT(pr_git_repo_normalise(&url, "ssh://git@example.com/team/repo.git", &err), 0);
    pr_free(url);
    /* Relative paths and file:// URLs become the same absolute path (one mirror). */
    char cwd[512], rel[600], fileurl[600], *a = NULL, *b = NULL;
    T_NOT_NULL(getcwd(cwd, sizeof(cwd)));
    T_EQ_INT(chdir(g_tmp), 0);
    T_EQ_INT(pr_git_repo_normalise(&a, "./origin.git/", &err), 0);
    T_EQ_INT(chdir(cwd), 0);
    (void)snprintf(fileurl, sizeof(fileurl), "file://%s", g_origin);
    T_EQ_INT(pr_git_repo_normalise(&b, fileurl, &err), 0);
    T_EQ_STR(a, g_origin);
    T_EQ_STR(b, g_origin);
    pr_free(a);
    pr_free(b);
    (void)snprintf(rel, sizeof(rel), "file://localhost%s", g_origin);
    T_EQ_INT(pr_git_repo_normalise(&a, rel, &err), 0);
    T_EQ_STR(a, g_origin);
    pr_free(a);
    T_EQ_INT(pr_git_repo_normalise(&a, "file://otherhost/x", &err), PR_EINVAL);

    /* Credentials never show up in messages. */
    char red[128];
    pr_git_url_redact(red, sizeof(red), "https://user:secret@example.com/x.git");
    T_EQ_STR(red, "https://example.com/x.git");
    memset(&err, 0, sizeof(err));
    T_TRUE(pr_git_fetch(&info, "https://user:secret@127.0.0.1:1/x.git", NULL, g_cache, dest, NULL,
                        &err) < 0);
    T_TRUE(strstr(err.msg, "secret") == NULL);
    T_TRUE(strstr(err.msg, "user") == NULL);
    T_TRUE(!path_exists(dest));

    /* The destination must not exist yet. */
    (void)snprintf(existing, sizeof(existing), "%s/existing", g_tmp);
    T_EQ_INT(mkdir(existing, 0755), 0);
    memset(&err, 0, sizeof(err));
    T_EQ_INT(pr_git_fetch(&info, g_origin, NULL, g_cache, existing, NULL, &err), PR_EINVAL);
    T_CONTAINS(err.msg, "exists");
}

static void test_incremental(void)
{
    char dest[512], url[600], want[128], buf[128];
    pr_git_info info;
    pr_error err = { 0 };

    /* The mirror is keyed by the normalised URL: path and file:// share it. */
    (void)snprintf(url, sizeof(url), "file://%s", g_origin);
    next_dest(dest, sizeof(dest));
    T_EQ_INT(pr_git_fetch(&info, url, NULL, g_cache, dest, NULL, &err), 0);
    T_EQ_INT(info.fetched_objects, 0);
    T_EQ_INT(count_mirrors(g_cache), 1);

    /* A new commit on origin: fetched and checked out. */
    RUN_SH(NULL, 0,
           "cd work && printf 'third\\n' > hello.txt && git commit -q -am third && "
           "git push -q ../origin.git main");
    next_dest(dest, sizeof(dest));
    T_EQ_INT(pr_git_fetch(&info, g_origin, NULL, g_cache, dest, NULL, &err), 0);
    RUN_SH(want, sizeof(want), "git -C origin.git rev-parse HEAD");
    T_EQ_STR(info.commit, want);
    T_TRUE(info.fetched_objects > 0);
    read_file(buf, sizeof(buf), dest, "hello.txt");
    T_EQ_STR(buf, "third\n");
    T_EQ_INT(count_mirrors(g_cache), 1);

    /* Only the new objects move. (libgit2's local transport resends the objects of annotated
     * tags whenever it sends a pack, so this history has none.) */
    RUN_SH(NULL, 0,
           "git init -q --bare -b main inc.git && git init -q -b main incw && cd incw\n"
           "for i in $(seq 1 30); do echo $i > f$i; git add f$i; git commit -q -m c$i; done\n"
           "git tag light && git push -q ../inc.git main light\n");
    char inc[600];
    (void)snprintf(inc, sizeof(inc), "%s/inc.git", g_tmp);
    next_dest(dest, sizeof(dest));
    T_EQ_INT(pr_git_fetch(&info, inc, NULL, g_cache, dest, NULL, &err), 0);
    T_EQ_INT(info.fetched_objects, 90); /* 30 commits, 30 trees, 30 blobs */
    RUN_SH(NULL, 0,
           "cd incw && echo new > new && git add new && git commit -q -m new && "
           "git push -q ../inc.git main");
    next_dest(dest, sizeof(dest));
    T_EQ_INT(pr_git_fetch(&info, inc, NULL, g_cache, dest, NULL, &err), 0);
    T_EQ_INT(info.fetched_objects, 3); /* one commit, one tree, one blob */
    T_EQ_INT(info.files, 31);
    read_file(buf, sizeof(buf), dest, "new");
    T_EQ_STR(buf, "new\n");
    RUN_SH(want, sizeof(want), "git -C inc.git rev-parse HEAD");
    T_EQ_STR(info.commit, want);
    next_dest(dest, sizeof(dest));
    T_EQ_INT(pr_git_fetch(&info, inc, NULL, g_cache, dest, NULL, &err), 0);
    T_EQ_INT(info.fetched_objects, 0);
    T_EQ_INT(count_mirrors(g_cache), 2);

    /* A branch deleted upstream is gone from the mirror too. */
    RUN_SH(NULL, 0, "cd work && git push -q ../origin.git main:refs/heads/gone");
    next_dest(dest, sizeof(dest));
    T_EQ_INT(pr_git_fetch(&info, g_origin, "gone", g_cache, dest, NULL, &err), 0);
    RUN_SH(NULL, 0, "git -C origin.git branch -q -D gone");
    next_dest(dest, sizeof(dest));
    T_EQ_INT(pr_git_fetch(&info, g_origin, "gone", g_cache, dest, NULL, &err), PR_ENOTFOUND);
}

/* A crash can leave lock files or a damaged mirror behind; the next fetch still works. */
static void test_mirror_repair(void)
{
    char dest[512], cache[600], want[128];
    pr_git_info info;
    pr_error err = { 0 };

    (void)snprintf(cache, sizeof(cache), "%s/cache-repair", g_tmp);
    next_dest(dest, sizeof(dest));
    T_EQ_INT(pr_git_fetch(&info, g_origin, NULL, cache, dest, NULL, &err), 0);
    RUN_SH(NULL, 0,
           "for m in cache-repair/*.git; do touch \"$m/refs/heads/main.lock\" "
           "\"$m/packed-refs.lock\"; done\n"
           "cd work && echo repair > repair.txt && git add repair.txt && git commit -q -m repair "
           "&& git push -q ../origin.git main");
    next_dest(dest, sizeof(dest));
    int rc = pr_git_fetch(&info, g_origin, NULL, cache, dest, NULL, &err);
    if (rc != 0)
        T_FAIL("fetch over stale locks: %s", err.msg);
    RUN_SH(want, sizeof(want), "git -C origin.git rev-parse HEAD");
    T_EQ_STR(info.commit, want);
    T_EQ_INT(count_mirrors(cache), 1);

    /* A mirror whose HEAD and config are garbage is rebuilt. */
    RUN_SH(NULL, 0,
           "for m in cache-repair/*.git; do echo junk > \"$m/HEAD\"; echo '[[[' > "
           "\"$m/config\"; done");
    next_dest(dest, sizeof(dest));
    rc = pr_git_fetch(&info, g_origin, "feature", cache, dest, NULL, &err);
    if (rc != 0)
        T_FAIL("fetch into a damaged mirror: %s", err.msg);
    RUN_SH(want, sizeof(want), "git -C origin.git rev-parse feature");
    T_EQ_STR(info.commit, want);
}

/* Pruning: a mirror unused for longer than the age goes, a recent one stays, one being fetched
 * (its lock held) is skipped, and a pruned repository is simply fetched again. */
static void test_cache_prune(void)
{
    char dest[512], cache[600], out[256];
    pr_git_info info;
    pr_error err = { 0 };
    unsigned removed = 99;

    (void)snprintf(cache, sizeof(cache), "%s/cache-prune", g_tmp);
    T_EQ_INT(pr_git_cache_prune(cache, 60, &removed, &err), 0); /* no cache yet: nothing */
    T_EQ_INT((int)removed, 0);
    next_dest(dest, sizeof(dest));
    T_EQ_INT(pr_git_fetch(&info, g_origin, NULL, cache, dest, NULL, &err), 0);
    RUN_SH(NULL, 0,
           "git init -q --bare -b main other.git && git -C work push -q ../other.git main");
    char other[600];
    (void)snprintf(other, sizeof(other), "%s/other.git", g_tmp);
    next_dest(dest, sizeof(dest));
    T_EQ_INT(pr_git_fetch(&info, other, NULL, cache, dest, NULL, &err), 0);
    T_EQ_INT(count_mirrors(cache), 2);

    /* Just used: both stay. */
    T_EQ_INT(pr_git_cache_prune(cache, 3600, &removed, &err), 0);
    T_EQ_INT((int)removed, 0);
    T_EQ_INT(count_mirrors(cache), 2);

    /* Both last used two hours ago, one of them locked by a fetch in progress. */
    RUN_SH(NULL, 0, "touch -d '2 hours ago' cache-prune/*.lock");
    RUN_SH(out, sizeof(out), "ls \"$PWD\"/cache-prune/*.lock | head -1");
    out[strcspn(out, "\n")] = '\0';
    int held = open(out, O_RDWR | O_CLOEXEC);
    T_TRUE(held >= 0);
    T_EQ_INT(flock(held, LOCK_EX), 0);
    T_EQ_INT(pr_git_cache_prune(cache, 3600, &removed, &err), 0);
    T_EQ_INT((int)removed, 1);
    T_EQ_INT(count_mirrors(cache), 1);
    close(held);
    T_EQ_INT(pr_git_cache_prune(cache, 3600, &removed, &err), 0);
    T_EQ_INT((int)removed, 1);
    T_EQ_INT(count_mirrors(cache), 0);

    /* A pruned repository is fetched again in full. */
    next_dest(dest, sizeof(dest));
    T_EQ_INT(pr_git_fetch(&info, other, NULL, cache, dest, NULL, &err), 0);
    T_TRUE(info.fetched_objects > 0);
    T_EQ_INT(count_mirrors(cache), 1);
}

/* An empty repository has no default branch; a working (non-bare) repository works by path. */
static void test_other_repositories(void)
{
    char dest[512], repo[600], want[128];
    pr_git_info info;
    pr_error err = { 0 };

    RUN_SH(NULL, 0, "git init -q --bare -b main empty.git");
    (void)snprintf(repo, sizeof(repo), "%s/empty.git", g_tmp);
    next_dest(dest, sizeof(dest));
    T_EQ_INT(pr_git_fetch(&info, repo, NULL, g_cache, dest, NULL, &err), PR_ENOTFOUND);
    T_CONTAINS(err.msg, "empty.git");
    T_TRUE(!path_exists(dest));

    (void)snprintf(repo, sizeof(repo), "%s/work", g_tmp);
    memset(&err, 0, sizeof(err));
    T_EQ_INT(pr_git_fetch(&info, repo, NULL, g_cache, dest, NULL, &err), 0);
    RUN_SH(want, sizeof(want), "git -C work rev-parse HEAD");
    T_EQ_STR(info.commit, want);
    T_EQ_STR(info.ref, "refs/heads/main");
    char p[700];
    (void)snprintf(p, sizeof(p), "%s/.git", dest);
    T_TRUE(!path_exists(p));
}

typedef struct thread_job {
    char dest[512];
    pr_git_info info;
    pr_error err;
    int rc;
} thread_job;

static void *fetch_thread(void *arg)
{
    thread_job *j = arg;
    char cache[600];
    (void)snprintf(cache, sizeof(cache), "%s/cache-concurrent", g_tmp);
    j->rc = pr_git_fetch(&j->info, g_origin, NULL, cache, j->dest, NULL, &j->err);
    return NULL;
}

static void test_concurrent(void)
{
    thread_job jobs[4];
    pthread_t th[4];
    char want[128], fsck[4096];

    memset(jobs, 0, sizeof(jobs));
    for (int i = 0; i < 4; i++) {
        next_dest(jobs[i].dest, sizeof(jobs[i].dest));
        T_EQ_INT(pthread_create(&th[i], NULL, fetch_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        T_EQ_INT(pthread_join(th[i], NULL), 0);
    RUN_SH(want, sizeof(want), "git -C origin.git rev-parse HEAD");
    int fetched_total = 0;
    for (int i = 0; i < 4; i++) {
        if (jobs[i].rc != 0)
            T_FAIL("thread %d: %s", i, jobs[i].err.msg);
        T_EQ_STR(jobs[i].info.commit, want);
        fetched_total += jobs[i].info.fetched_objects > 0;
    }
    /* The lock makes exactly one of them download; the others find the objects there. */
    T_EQ_INT(fetched_total, 1);
    char cache[600];
    (void)snprintf(cache, sizeof(cache), "%s/cache-concurrent", g_tmp);
    T_EQ_INT(count_mirrors(cache), 1);
    RUN_SH(fsck, sizeof(fsck),
           "for m in cache-concurrent/*.git; do git -C \"$m\" fsck --strict "
           "2>&1; done; echo fsck-ok");
    T_CONTAINS(fsck, "fsck-ok");
}

static void test_ls_remote(void)
{
    char sha[41], want[128], url[600];
    pr_error err = { 0 };

    T_EQ_INT(pr_git_ls_remote(sha, g_origin, NULL, &err), 0);
    RUN_SH(want, sizeof(want), "git -C origin.git rev-parse HEAD");
    T_EQ_STR(sha, want);
    (void)snprintf(url, sizeof(url), "file://%s", g_origin);
    T_EQ_INT(pr_git_ls_remote(sha, url, "feature", &err), 0);
    RUN_SH(want, sizeof(want), "git -C origin.git rev-parse feature");
    T_EQ_STR(sha, want);
    T_EQ_INT(pr_git_ls_remote(sha, g_origin, "v1a", &err), 0);
    RUN_SH(want, sizeof(want), "git -C origin.git rev-parse 'v1a^{commit}'");
    T_EQ_STR(sha, want);
    memset(&err, 0, sizeof(err));
    T_EQ_INT(pr_git_ls_remote(sha, g_origin, "nope", &err), PR_ENOTFOUND);
    T_CONTAINS(err.msg, "nope");
    T_EQ_STR(sha, "");
}

/* ---------------------------------------------------------------------------------------- */
/* Limits and hostile trees                                                                  */

static void test_limits(void)
{
    char dest[512];
    pr_git_info info;
    pr_error err = { 0 };
    pr_git_limits lim = { 0, 3 };

    next_dest(dest, sizeof(dest));
    T_EQ_INT(pr_git_fetch(&info, g_origin, "v1", g_cache, dest, &lim, &err), PR_ELIMIT);
    T_CONTAINS(err.msg, "submission has 4 files, limit 3");
    T_TRUE(!path_exists(dest));
    lim = (pr_git_limits){ 10, 0 };
    memset(&err, 0, sizeof(err));
    T_EQ_INT(pr_git_fetch(&info, g_origin, "v1", g_cache, dest, &lim, &err), PR_ELIMIT);
    T_CONTAINS(err.msg, "limit 10 bytes");
    T_CONTAINS(err.msg, "submission has ");
    T_TRUE(!path_exists(dest));
    lim = (pr_git_limits){ 1000, 4 };
    T_EQ_INT(pr_git_fetch(&info, g_origin, "v1", g_cache, dest, &lim, &err), 0);
    T_EQ_INT(info.files, 4);
    next_dest(dest, sizeof(dest));

    /* 25000 entries (one shared empty blob: cheap to build) against the default 20000. */
    RUN_SH(NULL, 0,
           "git init -q --bare -b main big.git && cd big.git\n"
           "b=$(git hash-object -w --stdin </dev/null)\n"
           "t=$(seq 1 25000 | awk -v b=$b '{printf \"100644 blob %%s\\tf%%05d\\n\", b, $1}' | "
           "git mktree)\n"
           "git update-ref refs/heads/many $(git commit-tree -m many $t)\n"
           /* Ten names for the same subtree, seven levels: 10^7 files from 8 objects. */
           "t=$(for i in 0 1 2 3 4 5 6 7 8 9; do printf \"100644 blob $b\\tf$i\\n\"; done | git "
           "mktree)\n"
           "for l in 1 2 3 4 5 6 7; do t=$(for i in 0 1 2 3 4 5 6 7 8 9; do printf \"040000 tree "
           "$t\\td$i\\n\"; done | git mktree); done\n"
           "git update-ref refs/heads/bomb $(git commit-tree -m bomb $t)\n"
           "t=$(printf \"100644 blob $b\\tf\\n\" | git mktree)\n"
           "for l in $(seq 1 70); do t=$(printf \"040000 tree $t\\td\\n\" | git mktree); done\n"
           "git update-ref refs/heads/deep $(git commit-tree -m deep $t)\n"
           "git symbolic-ref HEAD refs/heads/many\n");
    char big[600];
    (void)snprintf(big, sizeof(big), "%s/big.git", g_tmp);
    memset(&err, 0, sizeof(err));
    T_EQ_INT(pr_git_fetch(&info, big, "many", g_cache, dest, NULL, &err), PR_ELIMIT);
    T_CONTAINS(err.msg, "submission has 25000 files, limit 20000");
    T_TRUE(!path_exists(dest));
    memset(&err, 0, sizeof(err));
    unsigned long long t0 = pr_now_ns();
    T_EQ_INT(pr_git_fetch(&info, big, "bomb", g_cache, dest, NULL, &err), PR_ELIMIT);
    T_CONTAINS(err.msg, "submission has more than");
    T_CONTAINS(err.msg, "limit 20000");
    T_TRUE(pr_now_ns() - t0 < 30ULL * 1000000000ULL);
    memset(&err, 0, sizeof(err));
    T_EQ_INT(pr_git_fetch(&info, big, "deep", g_cache, dest, NULL, &err), PR_ELIMIT);
    T_CONTAINS(err.msg, "deeper than 64");
    T_TRUE(!path_exists(dest));
    /* 25000 files are fine when the limit allows them. */
    lim = (pr_git_limits){ 0, 30000 };
    T_EQ_INT(pr_git_fetch(&info, big, "many", g_cache, dest, &lim, &err), 0);
    T_EQ_INT(info.files, 25000);
}

typedef struct raw_entry {
    const char *mode; /* "100644", "40000", "120000", "160000" */
    const char *name;
    const char *hex; /* object id */
} raw_entry;

static void hex_to_id(unsigned char id[20], const char *hex)
{
    T_EQ_INT(strlen(hex), 40);
    for (size_t k = 0; k < 20; k++) {
        char pair[3] = { hex[2 * k], hex[2 * k + 1], '\0' };
        char *end = NULL;
        id[k] = (unsigned char)strtoul(pair, &end, 16);
        T_TRUE(end == pair + 2);
    }
}

/* Writes a tree object with exactly these entries, in this order, bypassing git's checks. */
static void raw_tree(char out[41], const char *repo, const raw_entry *e, size_t n)
{
    char path[600];
    (void)snprintf(path, sizeof(path), "%s/tree.bin", g_tmp);
    FILE *f = fopen(path, "we");
    T_NOT_NULL(f);
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%s %s", e[i].mode, e[i].name);
        fputc(0, f);
        unsigned char id[20];
        hex_to_id(id, e[i].hex);
        T_EQ_INT(fwrite(id, 1, sizeof(id), f), sizeof(id));
    }
    fclose(f);
    RUN_SH(out, 41, "git -C %s hash-object -t tree --literally -w %s", repo, path);
}

static void raw_branch(const char *repo, const char *branch, const raw_entry *e, size_t n)
{
    char tree[64], commit[64];
    raw_tree(tree, repo, e, n);
    RUN_SH(commit, sizeof(commit), "git -C %s commit-tree -m %s %s", repo, branch, tree);
    RUN_SH(NULL, 0, "git -C %s update-ref refs/heads/%s %s", repo, branch, commit);
}

static void expect_unsafe(const char *repo, const char *branch, const char *outside)
{
    char dest[512], p[700];
    pr_git_info info;
    pr_error err = { 0 };

    next_dest(dest, sizeof(dest));
    int rc = pr_git_fetch(&info, repo, branch, g_cache, dest, NULL, &err);
    if (rc != PR_EUNSAFE)
        T_FAIL("branch %s: rc %d (%s), want EUNSAFE", branch, rc, err.msg);
    T_TRUE(!path_exists(dest));
    (void)snprintf(p, sizeof(p), "%s/passwd", outside);
    T_TRUE(!path_exists(p));
    (void)snprintf(p, sizeof(p), "%s/pwned", g_tmp);
    T_TRUE(!path_exists(p));
}

static void test_hostile_trees(void)
{
    char evil[512], outside[512], blob[64], linkout[64], linkrel[64], sub[64], pw[64];

    (void)snprintf(evil, sizeof(evil), "%s/evil.git", g_tmp);
    (void)snprintf(outside, sizeof(outside), "%s/outside", g_tmp);
    T_EQ_INT(mkdir(outside, 0755), 0);
    RUN_SH(NULL, 0, "git init -q --bare -b main evil.git");
    RUN_SH(blob, sizeof(blob), "printf 'owned\\n' | git -C evil.git hash-object -w --stdin");
    RUN_SH(linkout, sizeof(linkout), "printf '%%s' '%s' | git -C evil.git hash-object -w --stdin",
           outside);
    RUN_SH(linkrel, sizeof(linkrel),
           "printf '../../outside' | git -C evil.git hash-object -w --stdin");
    /* A subtree holding "passwd" and one holding "pwned". */
    const raw_entry pw_e[] = { { "100644", "passwd", blob } };
    raw_tree(sub, evil, pw_e, 1);
    const raw_entry pwned_e[] = { { "100644", "pwned", blob } };
    raw_tree(pw, evil, pwned_e, 1);

    /* symlink a -> outside, then "a/passwd" as one name. */
    const raw_entry slash[] = { { "120000", "a", linkout }, { "100644", "a/passwd", blob } };
    raw_branch(evil, "slash", slash, 2);
    expect_unsafe(evil, "slash", outside);
    /* symlink a -> outside, then a directory "a" holding passwd (written through the link if
     * anything followed it), and the same the other way round. */
    const raw_entry symdir[] = { { "120000", "a", linkout }, { "40000", "a", sub } };
    raw_branch(evil, "symdir", symdir, 2);
    expect_unsafe(evil, "symdir", outside);
    const raw_entry dirsym[] = { { "40000", "a", sub }, { "120000", "a", linkout } };
    raw_branch(evil, "dirsym", dirsym, 2);
    expect_unsafe(evil, "dirsym", outside);
    /* The same with a relative link. */
    const raw_entry symrel[] = { { "120000", "b", linkrel }, { "40000", "b", sub } };
    raw_branch(evil, "symrel", symrel, 2);
    expect_unsafe(evil, "symrel", outside);
    /* "..", ".", ".git", absolute names, empty names and duplicates. */
    const raw_entry dotdot[] = { { "40000", "..", pw } };
    raw_branch(evil, "dotdot", dotdot, 1);
    expect_unsafe(evil, "dotdot", outside);
    const raw_entry dotdot2[] = { { "100644", "../pwned", blob } };
    raw_branch(evil, "dotdot2", dotdot2, 1);
    expect_unsafe(evil, "dotdot2", outside);
    const raw_entry dot[] = { { "40000", ".", pw } };
    raw_branch(evil, "dot", dot, 1);
    expect_unsafe(evil, "dot", outside);
    const raw_entry dotgit[] = { { "40000", ".git", pw } };
    raw_branch(evil, "dotgit", dotgit, 1);
    expect_unsafe(evil, "dotgit", outside);
    const raw_entry dotgit2[] = { { "40000", ".GiT", pw } };
    raw_branch(evil, "dotgit2", dotgit2, 1);
    expect_unsafe(evil, "dotgit2", outside);
    char absname[600];
    (void)snprintf(absname, sizeof(absname), "%s/pwned", g_tmp);
    const raw_entry abs[] = { { "100644", absname, blob } };
    raw_branch(evil, "abs", abs, 1);
    expect_unsafe(evil, "abs", outside);
    const raw_entry dup[] = { { "100644", "x", blob }, { "100755", "x", blob } };
    raw_branch(evil, "dup", dup, 2);
    expect_unsafe(evil, "dup", outside);

    /* Allowed: a symlink pointing outside stays a symlink (never followed), and a submodule
     * entry is skipped. */
    const raw_entry ok[] = { { "120000", "escape", linkout },
                             { "160000", "module", "0123456789abcdef0123456789abcdef01234567" },
                             { "100644", "z", blob } };
    raw_branch(evil, "ok", ok, 3);
    char dest[512], p[700], target[600];
    pr_git_info info;
    pr_error err = { 0 };
    next_dest(dest, sizeof(dest));
    int rc = pr_git_fetch(&info, evil, "ok", g_cache, dest, NULL, &err);
    if (rc != 0)
        T_FAIL("ok tree: %s", err.msg);
    T_EQ_INT(info.files, 2);
    (void)snprintf(p, sizeof(p), "%s/escape", dest);
    ssize_t tl = readlink(p, target, sizeof(target) - 1);
    T_TRUE(tl > 0);
    target[tl] = '\0';
    T_EQ_STR(target, outside);
    (void)snprintf(p, sizeof(p), "%s/module", dest);
    T_TRUE(!path_exists(p));
    char listing[256];
    RUN_SH(listing, sizeof(listing), "ls -A '%s' | wc -l", outside);
    T_EQ_STR(listing, "0"); /* nothing was written outside the checkout */
}

/* ---------------------------------------------------------------------------------------- */
/* Allocation failures                                                                       */

static void test_alloc_fail(void)
{
    char dest[512];
    pr_git_info info;
    pr_error err = { 0 };
    int ok = 0;

    for (long n = 0; n < 200 && !ok; n++) {
        next_dest(dest, sizeof(dest));
        memset(&err, 0, sizeof(err));
        pr_alloc_fail_after(n);
        int rc = pr_git_fetch(&info, g_origin, "feature", g_cache, dest, NULL, &err);
        pr_alloc_fail_after(-1);
        if (rc == 0) {
            /* URL, mirror and lock paths, author, walk stack: each failed once on the way. */
            T_TRUE(n >= 6);
            ok = 1;
            break;
        }
        if (rc != PR_ENOMEM)
            T_FAIL("alloc fail after %ld: rc %d (%s)", n, rc, err.msg);
        T_TRUE(!path_exists(dest));
    }
    T_TRUE(ok);
    ok = 0;
    for (long n = 0; n < 200 && !ok; n++) {
        char sha[41];
        memset(&err, 0, sizeof(err));
        pr_alloc_fail_after(n);
        int rc = pr_git_ls_remote(sha, g_origin, "feature", &err);
        pr_alloc_fail_after(-1);
        if (rc == 0)
            ok = 1;
        else if (rc != PR_ENOMEM)
            T_FAIL("ls-remote alloc fail after %ld: rc %d (%s)", n, rc, err.msg);
    }
    T_TRUE(ok);
}

int main(void)
{
    pr_error err = { 0 };
    char cwd[256];

    (void)snprintf(g_tmp, sizeof(g_tmp), "/tmp/pr-git-test-XXXXXX");
    T_NOT_NULL(mkdtemp(g_tmp));
    T_NOT_NULL(getcwd(cwd, sizeof(cwd)));
    /* The git CLI must not read the host's configuration either. */
    T_EQ_INT(setenv("HOME", g_tmp, 1), 0);
    T_EQ_INT(setenv("GIT_CONFIG_NOSYSTEM", "1", 1), 0);
    T_EQ_INT(setenv("GIT_AUTHOR_NAME", "You", 1), 0);
    T_EQ_INT(setenv("GIT_AUTHOR_EMAIL", "you@example.com", 1), 0);
    T_EQ_INT(setenv("GIT_COMMITTER_NAME", "Grader", 1), 0);
    T_EQ_INT(setenv("GIT_COMMITTER_EMAIL", "grader@example.com", 1), 0);
    T_EQ_INT(pr_git_global_init(&err), 0);

    make_origin();
    test_default_head();
    test_author_exact();
    test_refs();
    test_not_found();
    test_rejected_arguments();
    test_incremental();
    test_mirror_repair();
    test_cache_prune();
    test_other_repositories();
    test_concurrent();
    test_ls_remote();
    test_limits();
    test_hostile_trees();
    test_alloc_fail();

    pr_git_global_cleanup();
    T_EQ_INT(pr_rm_rf(g_tmp), 0);
    printf("git fetch tests passed\n");
    return 0;
}
