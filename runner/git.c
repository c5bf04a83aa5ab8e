#include "proctor/git.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <git2.h>
#include <openssl/evp.h>

#include "proctor/buf.h"
#include "proctor/common.h"

/* Caps on everything a repository or a caller controls (STYLE.md principle 3). */
#define GIT_URL_MAX           2048                     /* bytes of a REPO argument */
#define GIT_REF_MAX           255                      /* bytes of a REF argument */
#define GIT_DEPTH_MAX         64                       /* directory nesting in a checkout */
#define GIT_PATH_MAX          4096                     /* bytes of a relative path, with its NUL */
#define GIT_NAME_MAX          255                      /* bytes of one tree entry name */
#define GIT_LINK_MAX          4095                     /* bytes of a symlink target */
#define GIT_FETCH_WALL_NS     (600ULL * 1000000000ULL) /* one fetch, wall clock */
#define GIT_DEFAULT_MAX_BYTES (256ULL * 1024 * 1024)
#define GIT_DEFAULT_MAX_FILES 20000ULL
#define GIT_MIN_FETCH_BYTES   (64ULL * 1024 * 1024) /* floor of the per-fetch transfer cap */
#define GIT_PACK_OBJECT_MAX   (512UL * 1024 * 1024) /* largest object libgit2 will accept */
#define GIT_DISPLAY_MAX       160                   /* bytes of a repo or ref quoted in a message */

enum {
    FETCH_STOP_NONE = 0,
    FETCH_STOP_LIMIT,
    FETCH_STOP_TIMEOUT
};

typedef struct fetch_ctx {
    unsigned long long deadline_ns; /* pr_now_ns() after which the transfer is abandoned */
    uint64_t max_received;          /* bytes one fetch may receive */
    int stop;                       /* FETCH_STOP_*: why a callback cancelled the transfer */
} fetch_ctx;

typedef struct walk_frame {
    git_tree *tree; /* owned, except in frame 0 (the commit's tree) */
    size_t next;    /* index of the next entry to visit */
    int dirfd;      /* owned, except in frame 0; -1 in the counting pass */
    size_t pathlen; /* bytes of this directory's path in walk.path */
} walk_frame;

typedef struct walk {
    git_repository *repo; /* borrowed */
    git_odb *odb;         /* owned */
    walk_frame *frames;   /* GIT_DEPTH_MAX + 1 of them, owned */
    size_t depth;         /* frames in use */
    char *path;           /* GIT_PATH_MAX bytes, owned: the entry being visited, for messages */
    bool write;           /* false: count and check only; true: write the files */
    uint64_t files;       /* blobs and symlinks */
    uint64_t bytes;       /* sum of their sizes */
    uint64_t dirs;
    uint64_t max_entries; /* files + dirs at which the counting pass gives up */
    bool gave_up;         /* the counting pass reached max_entries */
} walk;

/* ---------------------------------------------------------------------------------------- */
/* Messages                                                                                  */

/* Bytes of "user:password@" at the start of a URL authority (s follows "://"), else 0. */
static size_t userinfo_len(const char *s)
{
    size_t skip = 0;
    for (size_t i = 0; s[i] && s[i] != '/' && s[i] != ' ' && s[i] != '\'' && s[i] != '"'; i++) {
        if (s[i] == '@')
            skip = i + 1;
    }
    return skip;
}

void pr_git_url_redact(char *out, size_t outsz, const char *url)
{
    size_t o = 0;
    size_t i = 0;

    if (outsz == 0)
        return;
    while (url && url[i] && o + 1 < outsz) {
        bool sep = strncmp(url + i, "://", 3) == 0;
        out[o++] = url[i++];
        if (sep) {
            /* Copy the separator, then drop the credentials of the authority. */
            for (int k = 0; k < 2 && o + 1 < outsz; k++)
                out[o++] = url[i++];
            i += userinfo_len(url + i);
        }
    }
    out[o] = '\0';
}

/* The repo or ref as it may appear in a message: credentials removed, bytes escaped, short. */
static void display_text(char out[GIT_DISPLAY_MAX], const char *text)
{
    char redacted[GIT_URL_MAX + 1];

    pr_git_url_redact(redacted, sizeof(redacted), text ? text : "(null)");
    pr_text_log_excerpt(out, GIT_DISPLAY_MAX, redacted, strlen(redacted));
}

/* Converts the libgit2 error of this thread (git_error_last() may be NULL) into err. */
static int git_fail(pr_error *err, int code, const char *what)
{
    const git_error *ge = git_error_last();
    char msg[200];

    pr_git_url_redact(msg, sizeof(msg), ge && ge->message ? ge->message : "unknown libgit2 error");
    return pr_error_set(err, code, "%s: %s", what, msg);
}

/* ---------------------------------------------------------------------------------------- */
/* Checks before libgit2                                                                     */

int pr_git_ref_check(const char *ref, pr_error *err)
{
    if (!ref)
        return 0;
    size_t len = strnlen(ref, GIT_REF_MAX + 1);
    if (len == 0)
        return pr_error_set(err, PR_EINVAL, "empty ref");
    if (len > GIT_REF_MAX)
        return pr_error_set(err, PR_EINVAL, "ref longer than %d bytes", GIT_REF_MAX);
    if (ref[0] == '-')
        return pr_error_set(err, PR_EINVAL, "ref must not start with '-'");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)ref[i];
        if (c <= 0x20 || c == 0x7F)
            return pr_error_set(err, PR_EINVAL, "ref contains a space or control character");
    }
    return 0;
}

static bool is_hex(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Length of a URL scheme followed by "://" at the start of s, else 0. */
static size_t scheme_len(const char *s)
{
    size_t i = 0;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return 0;
    while (s[i] && (((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'z') ||
                    (s[i] >= '0' && s[i] <= '9') || s[i] == '+' || s[i] == '.' || s[i] == '-'))
        i++;
    return strncmp(s + i, "://", 3) == 0 ? i : 0;
}

/* git's "<transport>::<address>" syntax runs helper programs (ext::sh -c ...): refused. */
static bool has_transport_prefix(const char *s)
{
    const char *colons = strstr(s, "::");
    const char *slash = strchr(s, '/');
    return colons && (!slash || colons < slash);
}

/* https:// and ssh:// URLs go to libgit2 unchanged after these checks. */
static int check_network_url(const char *url, size_t slen, pr_error *err)
{
    const char *auth = url + slen + 3;
    const char *host = auth;
    size_t alen = strcspn(auth, "/");

    for (const char *p = url; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c == 0x7F)
            return pr_error_set(err, PR_EINVAL,
                                "repository URL contains a space or control "
                                "character");
    }
    for (size_t i = 0; i < alen; i++) {
        if (auth[i] == '@')
            host = auth + i + 1;
    }
    if (host >= auth + alen || host[0] == '-' || host[0] == ':')
        return pr_error_set(err, PR_EINVAL, "repository URL has no valid host");
    if (auth[alen] != '/' || auth[alen + 1] == '\0')
        return pr_error_set(err, PR_EINVAL, "repository URL has no path");
    return 0;
}

/* file:// URL to a path: only an empty host or "localhost"; %XX sequences are decoded. */
static int file_url_path(char *out, size_t outsz, const char *url, pr_error *err)
{
    const char *p = url + 7;
    size_t o = 0;

    if (strncmp(p, "localhost/", 10) == 0)
        p += 9;
    if (p[0] != '/')
        return pr_error_set(err, PR_EINVAL, "file:// URL must name an absolute path on this host");
    for (size_t i = 0; p[i]; i++) {
        char c = p[i];
        if (c == '%') {
            int hi = p[i + 1] ? hex_value(p[i + 1]) : -1;
            int lo = hi >= 0 && p[i + 2] ? hex_value(p[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return pr_error_set(err, PR_EINVAL, "file:// URL has a bad %%-escape");
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (o + 1 >= outsz)
            return pr_error_set(err, PR_EINVAL, "repository path too long");
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

int pr_git_repo_normalise(char **url_out, const char *repo, pr_error *err)
{
    char path[GIT_URL_MAX + 1];
    char real[PATH_MAX];
    char disp[GIT_DISPLAY_MAX];
    struct stat st;
    const char *local = repo;
    int rc;

    *url_out = NULL;
    if (!repo || !repo[0])
        return pr_error_set(err, PR_EINVAL, "empty repository");
    size_t len = strnlen(repo, GIT_URL_MAX + 1);
    if (len > GIT_URL_MAX)
        return pr_error_set(err, PR_EINVAL, "repository longer than %d bytes", GIT_URL_MAX);
    if (repo[0] == '-')
        return pr_error_set(err, PR_EINVAL, "repository must not start with '-'");
    if (has_transport_prefix(repo))
        return pr_error_set(err, PR_EINVAL,
                            "unsupported repository transport (\"::\"); use a path, file://, "
                            "https:// or ssh:// URL");
    size_t slen = scheme_len(repo);
    if (slen > 0) {
        if ((slen == 5 && strncasecmp(repo, "https", 5) == 0) ||
            (slen == 3 && strncasecmp(repo, "ssh", 3) == 0)) {
            rc = check_network_url(repo, slen, err);
            if (rc < 0)
                return rc;
            *url_out = pr_strdup(repo);
            return *url_out ? 0 : pr_error_set(err, PR_ENOMEM, "out of memory");
        }
        if (!(slen == 4 && strncasecmp(repo, "file", 4) == 0))
            return pr_error_set(err, PR_EINVAL,
                                "unsupported URL scheme \"%.*s\"; use a path, file://, https:// "
                                "or ssh:// URL",
                                (int)(slen < 16 ? slen : 16), repo);
        rc = file_url_path(path, sizeof(path), repo, err);
        if (rc < 0)
            return rc;
        local = path;
    }
    /* A local repository: the real absolute path of an existing directory, so that a path and
     * the matching file:// URL share one mirror, and libgit2 picks its local transport. */
    display_text(disp, repo);
    if (!realpath(local, real)) {
        if (errno == ENOENT || errno == ENOTDIR)
            return pr_error_set(err, PR_ENOTFOUND, "repository not found: %s", disp);
        return pr_error_sys(err, "repository %s", disp);
    }
    if (stat(real, &st) != 0 || !S_ISDIR(st.st_mode))
        return pr_error_set(err, PR_ENOTFOUND, "repository not found: %s", disp);
    *url_out = pr_strdup(real);
    return *url_out ? 0 : pr_error_set(err, PR_ENOMEM, "out of memory");
}

/* ---------------------------------------------------------------------------------------- */
/* Global setup                                                                              */

int pr_git_global_init(pr_error *err)
{
    static const int levels[] = { GIT_CONFIG_LEVEL_PROGRAMDATA, GIT_CONFIG_LEVEL_SYSTEM,
                                  GIT_CONFIG_LEVEL_XDG, GIT_CONFIG_LEVEL_GLOBAL };

    if (git_libgit2_init() < 0)
        return git_fail(err, PR_EGIT, "libgit2 init");
    /* The host's gitconfig (url.insteadOf rewrites, proxies, redirects) must not change which
     * repository a job fetches, so libgit2 reads no system, XDG or global configuration. */
    for (size_t i = 0; i < PR_ARRAY_LEN(levels); i++) {
        if (git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, levels[i], "") < 0)
            return git_fail(err, PR_EGIT, "libgit2 search path");
    }
    /* Local repositories are often owned by a git or spool user; libgit2 never runs hooks or
     * other programs from them, so the ownership check only gets in the way. */
    if (git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0) < 0)
        return git_fail(err, PR_EGIT, "libgit2 owner validation");
    /* No single object from a submission may make libgit2 allocate gigabytes. */
    if (git_libgit2_opts(GIT_OPT_SET_PACK_MAX_OBJECT_SIZE, (size_t)GIT_PACK_OBJECT_MAX) < 0)
        return git_fail(err, PR_EGIT, "libgit2 pack object size");
    return 0;
}

void pr_git_global_cleanup(void)
{
    (void)git_libgit2_shutdown();
}

/* ---------------------------------------------------------------------------------------- */
/* The mirror cache                                                                          */

static int mirror_paths(char **mirror_out, char **lock_out, const char *cache_dir, const char *url,
                        pr_error *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    pr_buf b = PR_BUF_INIT(GIT_PATH_MAX);
    int rc;

    *mirror_out = NULL;
    *lock_out = NULL;
    if (EVP_Digest(url, strlen(url), md, &mdlen, EVP_sha256(), NULL) != 1) {
        (void)pr_error_set(err, PR_EINTERNAL, "sha256 of the repository URL failed");
        return PR_EINTERNAL;
    }
    for (size_t i = 0; i < mdlen; i++)
        (void)snprintf(hex + 2 * i, 3, "%02x", md[i]);
    rc = pr_buf_printf(&b, "%s/%s.git", cache_dir, hex);
    if (rc < 0)
        goto fail;
    *mirror_out = pr_buf_detach(&b);
    if (!*mirror_out) {
        rc = PR_ENOMEM;
        goto fail;
    }
    rc = pr_buf_printf(&b, "%s/%s.lock", cache_dir, hex);
    if (rc < 0)
        goto fail;
    *lock_out = pr_buf_detach(&b);
    if (!*lock_out) {
        rc = PR_ENOMEM;
        goto fail;
    }
    return 0;
fail:
    pr_buf_free(&b);
    pr_free(*mirror_out);
    *mirror_out = NULL;
    if (rc == PR_ELIMIT) {
        (void)pr_error_set(err, PR_ELIMIT, "cache directory path too long");
        return PR_ELIMIT;
    }
    (void)pr_error_set(err, PR_ENOMEM, "out of memory");
    return PR_ENOMEM;
}

/* Serialises fetches of one mirror across threads and processes: flock locks belong to the
 * open file description, so two opens of the lock file in one process exclude each other. */
static int mirror_lock(int *fd_out, const char *lock_path, pr_error *err)
{
    int fd = pr_lock_file(lock_path, 0600);
    if (fd < 0)
        return pr_error_sys(err, "lock %s", lock_path);
    /* The lock file's mtime is the mirror's last use (pr_git_cache_prune). */
    (void)futimens(fd, NULL);
    *fd_out = fd;
    return 0;
}

static bool is_lock_name(const char *name)
{
    size_t n = strlen(name);
    if (n != 64 + 5 || strcmp(name + 64, ".lock") != 0)
        return false;
    for (size_t i = 0; i < 64; i++) {
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return false;
    }
    return true;
}

int pr_git_cache_prune(const char *cache_dir, uint64_t max_age_s, unsigned *removed, pr_error *err)
{
    *removed = 0;
    int dfd = open(cache_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return errno == ENOENT ? 0 : pr_error_sys(err, "open cache %s", cache_dir);
    DIR *d = fdopendir(dfd);
    if (!d) {
        int rc = pr_error_sys(err, "read cache %s", cache_dir);
        pr_close(&dfd);
        return rc;
    }
    struct timespec now;
    (void)clock_gettime(CLOCK_REALTIME, &now);
    int rc = 0;
    const struct dirent *e;
    /* cppcheck-suppress readdirCalled ; the stream is private to this call */
    while ((e = readdir(d)) != NULL) { /* NOLINT(concurrency-mt-unsafe): own DIR */
        if (!is_lock_name(e->d_name))
            continue;
        int lfd = openat(dfd, e->d_name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
        if (lfd < 0)
            continue;
        struct stat st;
        /* A mirror in use (its lock held by a fetch, here or in another process) is skipped;
         * the lock file itself stays, so no two users can ever hold different lock files. */
        if (flock(lfd, LOCK_EX | LOCK_NB) == 0 && fstat(lfd, &st) == 0 &&
            (uint64_t)(now.tv_sec - st.st_mtim.tv_sec) > max_age_s) {
            char mirror[80];
            (void)snprintf(mirror, sizeof(mirror), "%.64s.git", e->d_name);
            char path[PATH_MAX];
            int n = snprintf(path, sizeof(path), "%s/%s", cache_dir, mirror);
            struct stat ms;
            if (n > 0 && (size_t)n < sizeof(path) &&
                fstatat(dfd, mirror, &ms, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(ms.st_mode)) {
                if (pr_rm_rf(path) == 0)
                    (*removed)++;
                else
                    rc = pr_error_sys(err, "remove %s", path);
            }
        }
        pr_close(&lfd); /* releases the lock */
    }
    (void)closedir(d);
    return rc;
}

/* Opens the bare mirror, creating it (or recreating a broken one) when needed. */
static int mirror_open(git_repository **out, bool *created, const char *path, pr_error *err)
{
    git_repository_init_options io;

    *out = NULL;
    *created = false;
    if (git_repository_open_ext(out, path, GIT_REPOSITORY_OPEN_NO_SEARCH | GIT_REPOSITORY_OPEN_BARE,
                                NULL) == 0)
        return 0;
    /* Missing, or left half-made by a crash: we hold the lock, so start again. */
    if (pr_rm_rf(path) < 0)
        return pr_error_sys(err, "remove broken mirror %s", path);
    (void)git_repository_init_options_init(&io, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
    io.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH;
    if (git_repository_init_ext(out, path, &io) < 0)
        return git_fail(err, PR_EGIT, "create mirror");
    *created = true;
    return 0;
}

static int fetch_on_transfer(const git_indexer_progress *stats, void *payload)
{
    fetch_ctx *ctx = payload;
    if ((uint64_t)stats->received_bytes > ctx->max_received) {
        ctx->stop = FETCH_STOP_LIMIT;
        return -1;
    }
    if (pr_now_ns() > ctx->deadline_ns) {
        ctx->stop = FETCH_STOP_TIMEOUT;
        return -1;
    }
    return 0;
}

static int fetch_on_sideband(const char *str, int len, void *payload)
{
    fetch_ctx *ctx = payload;
    (void)str;
    (void)len;
    if (pr_now_ns() > ctx->deadline_ns) {
        ctx->stop = FETCH_STOP_TIMEOUT;
        return -1;
    }
    return 0;
}

static int fetch_fail(pr_error *err, const fetch_ctx *ctx, const char *what, const char *disp)
{
    char ctxmsg[GIT_DISPLAY_MAX + 64];

    if (ctx->stop == FETCH_STOP_LIMIT)
        return pr_error_set(err, PR_ELIMIT, "fetch of %s received more than %" PRIu64 " bytes",
                            disp, ctx->max_received);
    if (ctx->stop == FETCH_STOP_TIMEOUT)
        return pr_error_set(err, PR_ETIMEOUT, "fetch of %s took longer than %llu s", disp,
                            GIT_FETCH_WALL_NS / 1000000000ULL);
    (void)snprintf(ctxmsg, sizeof(ctxmsg), "%s %s", what, disp);
    return git_fail(err, PR_EGIT, ctxmsg);
}

/* Connecting fails with GIT_ENOTFOUND (or a repository-class error for a local directory that
 * is no repository) when there is nothing to fetch from. */
static int connect_fail(pr_error *err, int grc, const fetch_ctx *ctx, const char *disp)
{
    const git_error *ge = git_error_last();
    if (grc == GIT_ENOTFOUND || (ge && ge->klass == GIT_ERROR_REPOSITORY))
        return pr_error_set(err, PR_ENOTFOUND, "repository not found: %s", disp);
    return fetch_fail(err, ctx, "connect to", disp);
}

/* Errors of the mirror itself (stale lock files after a crash, damaged objects or refs) rather
 * than of the remote or the network. */
static bool is_local_error(const git_error *ge)
{
    if (!ge)
        return false;
    switch (ge->klass) {
    case GIT_ERROR_OS:
    case GIT_ERROR_ODB:
    case GIT_ERROR_REFERENCE:
    case GIT_ERROR_FILESYSTEM:
    case GIT_ERROR_INDEXER:
        return true;
    default:
        return false;
    }
}

/* Brings the mirror up to date with all branches and tags of url. head_out receives the
 * remote's default branch ("refs/heads/main"), or "" when it has none. */
static int mirror_fetch(int *objects_out, bool *local_fault, char *head_out, size_t head_sz,
                        git_repository *repo, const char *url, const char *disp,
                        uint64_t max_received, pr_error *err)
{
    char spec_heads[] = "+refs/heads/*:refs/heads/*";
    char spec_tags[] = "+refs/tags/*:refs/tags/*";
    char *specs[] = { spec_heads, spec_tags };
    git_strarray refspecs = { specs, PR_ARRAY_LEN(specs) };
    git_remote *remote = NULL;
    git_buf head = { NULL, 0, 0 };
    git_fetch_options fo;
    git_remote_create_options co;
    fetch_ctx ctx = { pr_now_ns() + GIT_FETCH_WALL_NS, max_received, FETCH_STOP_NONE };
    int grc;
    int rc = 0;

    *objects_out = 0;
    *local_fault = false;
    head_out[0] = '\0';
    (void)git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
    fo.callbacks.transfer_progress = fetch_on_transfer;
    fo.callbacks.sideband_progress = fetch_on_sideband;
    fo.callbacks.payload = &ctx;
    fo.prune = GIT_FETCH_PRUNE;
    fo.update_fetchhead = 0;
    fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
    fo.follow_redirects = GIT_REMOTE_REDIRECT_INITIAL;

    /* Anonymous, and no url.insteadOf rewriting: the URL is exactly the one normalised. (This
     * also skips libgit2 1.5's config regex walk, which leaks pcre2 match data.) */
    (void)git_remote_create_options_init(&co, GIT_REMOTE_CREATE_OPTIONS_VERSION);
    co.repository = repo;
    co.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
    if (git_remote_create_with_opts(&remote, url, &co) < 0) {
        rc = git_fail(err, PR_EGIT, "remote");
        goto cleanup;
    }
    grc = git_remote_connect(remote, GIT_DIRECTION_FETCH, &fo.callbacks, &fo.proxy_opts, NULL);
    if (grc < 0) {
        rc = connect_fail(err, grc, &ctx, disp);
        goto cleanup;
    }
    grc = git_remote_default_branch(&head, remote);
    if (grc == 0 && head.ptr && head.size < head_sz) {
        memcpy(head_out, head.ptr, head.size);
        head_out[head.size] = '\0';
    } else if (grc < 0 && grc != GIT_ENOTFOUND) {
        rc = fetch_fail(err, &ctx, "default branch of", disp);
        goto cleanup;
    }
    if (git_remote_download(remote, &refspecs, &fo) < 0) {
        *local_fault = is_local_error(git_error_last());
        rc = fetch_fail(err, &ctx, "fetch", disp);
        goto cleanup;
    }
    *objects_out = (int)git_remote_stats(remote)->received_objects;
    if (git_remote_update_tips(remote, &fo.callbacks, 0, GIT_REMOTE_DOWNLOAD_TAGS_NONE,
                               "proctor fetch") < 0) {
        *local_fault = true;
        rc = git_fail(err, PR_EGIT, "update mirror refs");
        goto cleanup;
    }
    /* A branch deleted upstream must not stay resolvable from the mirror. */
    if (git_remote_prune(remote, &fo.callbacks) < 0) {
        *local_fault = true;
        rc = git_fail(err, PR_EGIT, "prune mirror refs");
        goto cleanup;
    }
    /* Keep the mirror's HEAD like the remote's, as git clone --mirror does. */
    if (head_out[0])
        (void)git_repository_set_head(repo, head_out);
cleanup:
    if (remote)
        (void)git_remote_disconnect(remote);
    git_remote_free(remote);
    git_buf_dispose(&head);
    return rc;
}

/* Opens (or creates) the mirror and fetches into it. No empty mirror is kept for a repository
 * that could not be fetched, and a mirror that fails locally is rebuilt from scratch once. */
static int mirror_sync(git_repository **out, int *objects, char *head, size_t head_sz,
                       const char *mirror, const char *url, const char *disp, uint64_t max_received,
                       pr_error *err)
{
    *out = NULL;
    for (int attempt = 0;; attempt++) {
        git_repository *repo = NULL;
        bool created = false;
        bool local_fault = false;
        int rc = mirror_open(&repo, &created, mirror, err);
        if (rc < 0)
            return rc;
        rc = mirror_fetch(objects, &local_fault, head, head_sz, repo, url, disp, max_received, err);
        if (rc == 0) {
            *out = repo;
            return 0;
        }
        git_repository_free(repo);
        if (created || local_fault)
            (void)pr_rm_rf(mirror);
        if (created || !local_fault || attempt > 0)
            return rc;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Ref resolution                                                                            */

static int peel_reference(git_commit **out, git_repository *repo, const char *name, bool *found,
                          pr_error *err)
{
    git_reference *r = NULL;
    git_object *obj = NULL;
    int grc;
    int rc = 0;

    *found = false;
    int valid = 0;
    if (git_reference_name_is_valid(&valid, name) < 0 || !valid)
        return 0;
    grc = git_reference_lookup(&r, repo, name);
    if (grc == GIT_ENOTFOUND || grc == GIT_EINVALIDSPEC)
        return 0;
    if (grc < 0)
        return git_fail(err, PR_EGIT, "look up ref");
    *found = true;
    if (git_reference_peel(&obj, r, GIT_OBJECT_COMMIT) < 0) {
        rc = git_fail(err, PR_ENOTFOUND, "ref does not point to a commit");
        goto cleanup;
    }
    *out = (git_commit *)obj;
    obj = NULL;
cleanup:
    git_object_free(obj);
    git_reference_free(r);
    return rc;
}

static int peel_object_id(git_commit **out, git_repository *repo, const char *hex, size_t len,
                          bool *found, pr_error *err)
{
    git_oid oid;
    git_object *obj = NULL;
    git_object *commit = NULL;
    int grc;
    int rc = 0;

    *found = false;
    if (git_oid_fromstrn(&oid, hex, len) < 0)
        return 0;
    grc = git_object_lookup_prefix(&obj, repo, &oid, len, GIT_OBJECT_ANY);
    if (grc == GIT_ENOTFOUND)
        return 0;
    if (grc == GIT_EAMBIGUOUS)
        return pr_error_set(err, PR_ENOTFOUND, "abbreviated commit %.*s is ambiguous", (int)len,
                            hex);
    if (grc < 0)
        return git_fail(err, PR_EGIT, "look up object");
    *found = true;
    if (git_object_peel(&commit, obj, GIT_OBJECT_COMMIT) < 0) {
        rc = pr_error_set(err, PR_ENOTFOUND, "object %.*s is not a commit", (int)len, hex);
        goto cleanup;
    }
    *out = (git_commit *)commit;
cleanup:
    git_object_free(obj);
    return rc;
}

/* Resolved names longer than the field are cut; refs that long are already rare. */
static void copy_name(char name_out[256], const char *name)
{
    size_t len = strnlen(name, 255);
    memcpy(name_out, name, len);
    name_out[len] = '\0';
}

/* Resolves ref like git does for a checkout: full object id, then refs/..., branch, tag, and
 * last an abbreviated commit. name_out receives the resolved name. */
static int resolve_ref(git_commit **out, char name_out[256], git_repository *repo, const char *ref,
                       const char *head, const char *disp, pr_error *err)
{
    char name[GIT_REF_MAX + 16];
    char rdisp[GIT_DISPLAY_MAX];
    bool found = false;
    size_t len;
    int rc;

    *out = NULL;
    if (!ref || strcmp(ref, "HEAD") == 0) {
        if (!head[0])
            return pr_error_set(err, PR_ENOTFOUND, "repository %s has no default branch (HEAD)",
                                disp);
        rc = peel_reference(out, repo, head, &found, err);
        if (rc == 0 && found)
            copy_name(name_out, head);
        goto done;
    }
    len = strlen(ref);
    if (len == 40 && is_hex(ref, len)) {
        rc = peel_object_id(out, repo, ref, len, &found, err);
        goto done_id;
    }
    if (strncmp(ref, "refs/", 5) == 0) {
        rc = peel_reference(out, repo, ref, &found, err);
        if (rc == 0 && found)
            copy_name(name_out, ref);
        goto done;
    }
    static const char *const prefixes[] = { "refs/heads/", "refs/tags/" };
    for (size_t i = 0; i < PR_ARRAY_LEN(prefixes); i++) {
        (void)snprintf(name, sizeof(name), "%s%s", prefixes[i], ref);
        rc = peel_reference(out, repo, name, &found, err);
        if (rc < 0 || found) {
            if (found && rc == 0)
                copy_name(name_out, name);
            goto done;
        }
    }
    if (len >= 7 && len < 40 && is_hex(ref, len)) {
        rc = peel_object_id(out, repo, ref, len, &found, err);
        goto done_id;
    }
    goto done;
done_id:
    if (rc == 0 && found)
        (void)git_oid_tostr(name_out, 41, git_commit_id(*out));
done:
    if (rc < 0)
        return rc;
    if (!found) {
        display_text(rdisp, ref ? ref : "HEAD");
        return pr_error_set(err, PR_ENOTFOUND, "ref not found: %s in %s", rdisp, disp);
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Commit metadata                                                                           */

static int fill_info(pr_git_info *out, const git_commit *commit, pr_error *err)
{
    const git_signature *author = git_commit_author(commit);
    const git_signature *committer = git_commit_committer(commit);
    pr_buf joined = PR_BUF_INIT(4096);
    char *clean = NULL;
    const char *name = author->name ? author->name : "";
    const char *email = author->email ? author->email : "";

    (void)git_oid_tostr(out->commit, sizeof(out->commit), git_commit_id(commit));
    pr_time_rfc3339(out->committed_at, sizeof(out->committed_at), (long long)committer->when.time);
    /* Name and email are bytes from the submission: capped, then made valid UTF-8. */
    if (pr_buf_put(&joined, name, strnlen(name, 1024)) < 0 || pr_buf_puts(&joined, " <") < 0 ||
        pr_buf_put(&joined, email, strnlen(email, 1024)) < 0 || pr_buf_puts(&joined, ">") < 0) {
        pr_buf_free(&joined);
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    }
    clean = pr_text_clean(joined.ptr, joined.len, sizeof(out->author) - 1, NULL);
    pr_buf_free(&joined);
    if (!clean)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    (void)snprintf(out->author, sizeof(out->author), "%s", clean);
    pr_free(clean);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Checkout: the tree is written from the mirror's objects relative to directory fds, so no
 * name in a hostile tree can make proctor write outside dest_dir.                           */

/* One path component from a tree. git itself refuses these on checkout; a crafted tree object
 * can still carry them. */
static bool entry_name_safe(const char *name, size_t len)
{
    if (len == 0 || len > GIT_NAME_MAX)
        return false;
    if (memchr(name, '/', len))
        return false;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    return strcasecmp(name, ".git") != 0;
}

static int walk_error_path(pr_error *err, int code, const walk *w, const char *what)
{
    char p[GIT_DISPLAY_MAX];
    pr_text_log_excerpt(p, sizeof(p), w->path, strlen(w->path));
    if (code == PR_ESYS)
        return pr_error_sys(err, "%s \"%s\"", what, p);
    return pr_error_set(err, code, "%s \"%s\"", what, p);
}

static int write_blob(walk *w, int dirfd, const git_tree_entry *e, mode_t mode, pr_error *err)
{
    git_blob *blob = NULL;
    int fd = -1;
    int rc = 0;

    if (git_blob_lookup(&blob, w->repo, git_tree_entry_id(e)) < 0)
        return git_fail(err, PR_EGIT, "read blob");
    /* O_EXCL never follows a symlink and refuses a second entry of the same name. */
    fd = openat(dirfd, git_tree_entry_name(e), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                mode);
    if (fd < 0) {
        rc = errno == EEXIST ? walk_error_path(err, PR_EUNSAFE, w, "duplicate tree entry")
                             : walk_error_path(err, PR_ESYS, w, "create");
        goto cleanup;
    }
    if (pr_write_all(fd, git_blob_rawcontent(blob), (size_t)git_blob_rawsize(blob)) != 0 ||
        fchmod(fd, mode) != 0) {
        rc = walk_error_path(err, PR_ESYS, w, "write");
        goto cleanup;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = walk_error_path(err, PR_ESYS, w, "close");
        goto cleanup;
    }
    fd = -1;
cleanup:
    pr_close(&fd);
    git_blob_free(blob);
    return rc;
}

static int write_link(walk *w, int dirfd, const git_tree_entry *e, pr_error *err)
{
    char target[GIT_LINK_MAX + 1];
    git_blob *blob = NULL;
    int rc = 0;

    if (git_blob_lookup(&blob, w->repo, git_tree_entry_id(e)) < 0)
        return git_fail(err, PR_EGIT, "read symlink");
    size_t len = (size_t)git_blob_rawsize(blob);
    if (len == 0 || len > GIT_LINK_MAX || memchr(git_blob_rawcontent(blob), '\0', len)) {
        rc = walk_error_path(err, PR_EUNSAFE, w, "bad symlink target at");
        goto cleanup;
    }
    memcpy(target, git_blob_rawcontent(blob), len);
    target[len] = '\0';
    /* The link is created, never resolved: proctor opens nothing through it. */
    if (symlinkat(target, dirfd, git_tree_entry_name(e)) != 0) {
        rc = errno == EEXIST ? walk_error_path(err, PR_EUNSAFE, w, "duplicate tree entry")
                             : walk_error_path(err, PR_ESYS, w, "symlink");
        goto cleanup;
    }
cleanup:
    git_blob_free(blob);
    return rc;
}

/* Counting pass: size of a blob without loading it. */
static int count_blob(walk *w, const git_tree_entry *e, git_filemode_t mode, pr_error *err)
{
    size_t size = 0;
    git_object_t type = GIT_OBJECT_INVALID;

    if (git_odb_read_header(&size, &type, w->odb, git_tree_entry_id(e)) < 0)
        return git_fail(err, PR_EGIT, "read object header");
    if (type != GIT_OBJECT_BLOB)
        return walk_error_path(err, PR_EGIT, w, "tree entry is not a blob:");
    if (mode == GIT_FILEMODE_LINK && (size == 0 || size > GIT_LINK_MAX))
        return walk_error_path(err, PR_EUNSAFE, w, "bad symlink target at");
    w->files++;
    w->bytes = (uint64_t)size > UINT64_MAX - w->bytes ? UINT64_MAX : w->bytes + (uint64_t)size;
    return 0;
}

static int enter_dir(walk *w, walk_frame *f, const git_tree_entry *e, size_t pathlen, pr_error *err)
{
    git_tree *sub = NULL;
    int fd = -1;
    const char *name = git_tree_entry_name(e);

    if (w->depth > GIT_DEPTH_MAX)
        return walk_error_path(err, PR_ELIMIT, w, "directories nested deeper than 64 at");
    w->dirs++;
    if (w->write) {
        if (mkdirat(f->dirfd, name, 0755) != 0)
            return errno == EEXIST ? walk_error_path(err, PR_EUNSAFE, w, "duplicate tree entry")
                                   : walk_error_path(err, PR_ESYS, w, "mkdir");
        /* We just made it; O_NOFOLLOW still refuses anything that is not that directory. */
        fd = openat(f->dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || fchmod(fd, 0755) != 0) {
            int rc = walk_error_path(err, PR_ESYS, w, "open directory");
            pr_close(&fd);
            return rc;
        }
    }
    if (git_tree_lookup(&sub, w->repo, git_tree_entry_id(e)) < 0) {
        pr_close(&fd);
        return git_fail(err, PR_EGIT, "read tree");
    }
    w->frames[w->depth] = (walk_frame){ sub, 0, fd, pathlen };
    w->depth++;
    return 0;
}

static int walk_entry(walk *w, walk_frame *f, const git_tree_entry *e, pr_error *err)
{
    const char *name = git_tree_entry_name(e);
    size_t nlen = strlen(name);
    size_t off = f->pathlen ? f->pathlen + 1 : 0;
    git_filemode_t mode = git_tree_entry_filemode(e);

    if (nlen > GIT_NAME_MAX || off + nlen + 1 > GIT_PATH_MAX) {
        w->path[f->pathlen] = '\0';
        return walk_error_path(err, PR_ELIMIT, w, "path or name too long under");
    }
    if (f->pathlen)
        w->path[f->pathlen] = '/';
    memcpy(w->path + off, name, nlen + 1);
    if (!entry_name_safe(name, nlen))
        return walk_error_path(err, PR_EUNSAFE, w, "unsafe path in tree:");
    if (!w->write && w->files + w->dirs >= w->max_entries) {
        w->gave_up = true;
        return PR_ELIMIT; /* check_limits words the message */
    }

    switch (mode) {
    case GIT_FILEMODE_TREE:
        return enter_dir(w, f, e, off + nlen, err);
    case GIT_FILEMODE_BLOB:
    case GIT_FILEMODE_BLOB_EXECUTABLE:
        if (!w->write)
            return count_blob(w, e, mode, err);
        return write_blob(w, f->dirfd, e, mode == GIT_FILEMODE_BLOB ? 0644 : 0755, err);
    case GIT_FILEMODE_LINK:
        if (!w->write)
            return count_blob(w, e, mode, err);
        return write_link(w, f->dirfd, e, err);
    case GIT_FILEMODE_COMMIT:
        return 0; /* a submodule: its commit is not in this repository */
    default:
        return walk_error_path(err, PR_EUNSAFE, w, "unsupported entry mode in tree:");
    }
}

static void walk_pop(walk *w)
{
    walk_frame *f = &w->frames[w->depth - 1];
    if (w->depth > 1) {
        git_tree_free(f->tree);
        pr_close(&f->dirfd);
    }
    f->tree = NULL;
    w->depth--;
}

/* Depth-first over the tree with an explicit stack (no recursion on submission data). */
static int walk_run(walk *w, git_tree *root, int root_fd, pr_error *err)
{
    int rc = 0;

    w->path[0] = '\0';
    w->frames[0] = (walk_frame){ root, 0, root_fd, 0 };
    w->depth = 1;
    while (w->depth > 0) {
        walk_frame *f = &w->frames[w->depth - 1];
        if (f->next >= git_tree_entrycount(f->tree)) {
            walk_pop(w);
            continue;
        }
        rc = walk_entry(w, f, git_tree_entry_byindex(f->tree, f->next++), err);
        if (rc < 0)
            break;
    }
    while (w->depth > 0)
        walk_pop(w);
    return rc;
}

static int check_limits(walk *w, git_tree *root, const pr_git_limits *limits, pr_error *err)
{
    uint64_t max_bytes = limits && limits->max_bytes ? limits->max_bytes : GIT_DEFAULT_MAX_BYTES;
    uint64_t max_files = limits && limits->max_files ? limits->max_files : GIT_DEFAULT_MAX_FILES;
    int rc;

    /* Shared subtrees can make a small repository expand to billions of entries; the counting
     * pass stops well past the limit instead of walking them all. */
    w->max_entries = max_files > (UINT64_MAX - 100000) / 4 ? UINT64_MAX : max_files * 4 + 100000;
    w->write = false;
    rc = walk_run(w, root, -1, err);
    if (rc == PR_ELIMIT && w->gave_up)
        return pr_error_set(err, PR_ELIMIT,
                            "submission has more than %" PRIu64 " files, limit %" PRIu64, w->files,
                            max_files);
    if (rc < 0)
        return rc;
    if (w->files > max_files)
        return pr_error_set(err, PR_ELIMIT, "submission has %" PRIu64 " files, limit %" PRIu64,
                            w->files, max_files);
    if (w->bytes > max_bytes)
        return pr_error_set(err, PR_ELIMIT,
                            "submission has %" PRIu64 " bytes, limit %" PRIu64 " bytes", w->bytes,
                            max_bytes);
    return 0;
}

/* Creates dest (it must not exist yet; missing parents are made) and opens it. */
static int dest_create(int *fd_out, const char *dest, pr_error *err)
{
    char parent[GIT_PATH_MAX];
    int r = mkdir(dest, 0755);

    *fd_out = -1;
    if (r != 0 && errno == ENOENT) {
        int n = snprintf(parent, sizeof(parent), "%s", dest);
        char *slash = strrchr(parent, '/');
        if (n < 0 || (size_t)n >= sizeof(parent) || !slash || slash == parent)
            return pr_error_set(err, PR_EINVAL, "bad destination %s", dest);
        *slash = '\0';
        if (pr_mkdir_p(parent) < 0)
            return pr_error_sys(err, "create %s", parent);
        r = mkdir(dest, 0755);
    }
    if (r != 0 && errno == EEXIST)
        return pr_error_set(err, PR_EINVAL, "destination already exists: %s", dest);
    if (r != 0)
        return pr_error_sys(err, "create %s", dest);
    *fd_out = open(dest, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (*fd_out < 0) {
        int rc = pr_error_sys(err, "open %s", dest);
        (void)rmdir(dest);
        return rc;
    }
    return 0;
}

static int checkout_commit(pr_git_info *out, git_repository *repo, const git_commit *commit,
                           const char *dest, const pr_git_limits *limits, pr_error *err)
{
    walk w = { 0 };
    git_tree *root = NULL;
    int dest_fd = -1;
    int rc;

    w.repo = repo;
    w.frames = pr_calloc(GIT_DEPTH_MAX + 2, sizeof(*w.frames));
    w.path = pr_malloc(GIT_PATH_MAX);
    if (!w.frames || !w.path) {
        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }
    if (git_repository_odb(&w.odb, repo) < 0 || git_commit_tree(&root, commit) < 0) {
        rc = git_fail(err, PR_EGIT, "read commit tree");
        goto cleanup;
    }
    rc = check_limits(&w, root, limits, err);
    if (rc < 0)
        goto cleanup;
    out->files = w.files;
    out->bytes = w.bytes;
    rc = dest_create(&dest_fd, dest, err);
    if (rc < 0)
        goto cleanup;
    w.write = true;
    rc = walk_run(&w, root, dest_fd, err);
    if (rc < 0)
        (void)pr_rm_rf(dest); /* no half-written checkout is left behind */
cleanup:
    pr_close(&dest_fd);
    git_tree_free(root);
    git_odb_free(w.odb);
    pr_free(w.frames);
    pr_free(w.path);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Entry points                                                                              */

int pr_git_fetch(pr_git_info *out, const char *repo, const char *ref, const char *cache_dir,
                 const char *dest_dir, const pr_git_limits *limits, pr_error *err)
{
    char disp[GIT_DISPLAY_MAX];
    char head[256];
    char *url = NULL;
    char *mirror = NULL;
    char *lock_path = NULL;
    int lock_fd = -1;
    git_repository *mirror_repo = NULL;
    git_commit *commit = NULL;
    int objects = 0;
    int rc;

    /* The whole history may be larger than the tree; the cap is a multiple of the tree limit. */
    uint64_t max_bytes = limits && limits->max_bytes ? limits->max_bytes : GIT_DEFAULT_MAX_BYTES;
    uint64_t max_received = max_bytes > UINT64_MAX / 4 ? UINT64_MAX : max_bytes * 4;
    if (max_received < GIT_MIN_FETCH_BYTES)
        max_received = GIT_MIN_FETCH_BYTES;

    memset(out, 0, sizeof(*out));
    if (!cache_dir || !cache_dir[0] || !dest_dir || !dest_dir[0])
        return pr_error_set(err, PR_EINVAL, "cache and destination directories are required");
    display_text(disp, repo);
    rc = pr_git_ref_check(ref, err);
    if (rc < 0)
        goto cleanup;
    rc = pr_git_repo_normalise(&url, repo, err);
    if (rc < 0)
        goto cleanup;
    rc = mirror_paths(&mirror, &lock_path, cache_dir, url, err);
    if (rc < 0)
        goto cleanup;
    if (pr_mkdir_p(cache_dir) < 0) {
        rc = pr_error_sys(err, "create cache directory %s", cache_dir);
        goto cleanup;
    }
    rc = mirror_lock(&lock_fd, lock_path, err);
    if (rc < 0)
        goto cleanup;
    rc = mirror_sync(&mirror_repo, &objects, head, sizeof(head), mirror, url, disp, max_received,
                     err);
    if (rc < 0)
        goto cleanup;
    out->fetched_objects = objects;
    rc = resolve_ref(&commit, out->ref, mirror_repo, ref, head, disp, err);
    if (rc < 0)
        goto cleanup;
    /* Checkouts from one mirror may run side by side under a shared lock; a fetch, which may
     * rebuild a damaged mirror, takes it exclusively. (Converting is not atomic: a waiting fetch
     * may slip in first. A fetch only adds objects; in the rare rebuild case, this checkout
     * fails with PR_EGIT rather than writing anything wrong.) */
    while (flock(lock_fd, LOCK_SH) != 0) {
        if (errno != EINTR) {
            rc = pr_error_sys(err, "lock %s", lock_path);
            goto cleanup;
        }
    }
    rc = fill_info(out, commit, err);
    if (rc < 0)
        goto cleanup;
    rc = checkout_commit(out, mirror_repo, commit, dest_dir, limits, err);
cleanup:
    pr_close(&lock_fd);
    git_commit_free(commit);
    git_repository_free(mirror_repo);
    pr_free(url);
    pr_free(mirror);
    pr_free(lock_path);
    if (rc < 0) {
        int keep = out->fetched_objects;
        memset(out, 0, sizeof(*out));
        out->fetched_objects = keep;
    }
    return rc;
}

static const git_remote_head *find_head(const git_remote_head **heads, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(heads[i]->name, name) == 0)
            return heads[i];
    }
    return NULL;
}

int pr_git_ls_remote(char sha_out[41], const char *repo, const char *ref, pr_error *err)
{
    char disp[GIT_DISPLAY_MAX];
    char rdisp[GIT_DISPLAY_MAX];
    char name[GIT_REF_MAX + 16];
    char *url = NULL;
    git_remote *remote = NULL;
    git_remote_callbacks cb;
    const git_remote_head **heads = NULL;
    const git_remote_head *hit = NULL;
    size_t n = 0;
    fetch_ctx ctx = { pr_now_ns() + GIT_FETCH_WALL_NS, 0, FETCH_STOP_NONE };
    int grc;
    int rc;

    sha_out[0] = '\0';
    display_text(disp, repo);
    rc = pr_git_ref_check(ref, err);
    if (rc < 0)
        goto cleanup;
    rc = pr_git_repo_normalise(&url, repo, err);
    if (rc < 0)
        goto cleanup;
    if (git_remote_create_detached(&remote, url) < 0) {
        rc = git_fail(err, PR_EGIT, "remote");
        goto cleanup;
    }
    (void)git_remote_init_callbacks(&cb, GIT_REMOTE_CALLBACKS_VERSION);
    cb.sideband_progress = fetch_on_sideband;
    cb.payload = &ctx;
    grc = git_remote_connect(remote, GIT_DIRECTION_FETCH, &cb, NULL, NULL);
    if (grc < 0) {
        rc = connect_fail(err, grc, &ctx, disp);
        goto cleanup;
    }
    if (git_remote_ls(&heads, &n, remote) < 0) {
        rc = git_fail(err, PR_EGIT, "ls-remote");
        goto cleanup;
    }
    if (!ref || strcmp(ref, "HEAD") == 0) {
        hit = find_head(heads, n, "HEAD");
    } else if (strncmp(ref, "refs/", 5) == 0) {
        (void)snprintf(name, sizeof(name), "%s^{}", ref);
        hit = find_head(heads, n, name);
        if (!hit)
            hit = find_head(heads, n, ref);
    } else {
        (void)snprintf(name, sizeof(name), "refs/heads/%s", ref);
        hit = find_head(heads, n, name);
        (void)snprintf(name, sizeof(name), "refs/tags/%s^{}", ref);
        if (!hit)
            hit = find_head(heads, n, name);
        (void)snprintf(name, sizeof(name), "refs/tags/%s", ref);
        if (!hit)
            hit = find_head(heads, n, name);
    }
    if (!hit) {
        display_text(rdisp, ref ? ref : "HEAD");
        rc = pr_error_set(err, PR_ENOTFOUND, "ref not found: %s in %s", rdisp, disp);
        goto cleanup;
    }
    (void)git_oid_tostr(sha_out, 41, &hit->oid);
cleanup:
    if (remote)
        (void)git_remote_disconnect(remote);
    git_remote_free(remote);
    pr_free(url);
    return rc;
}
