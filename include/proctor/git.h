#ifndef PROCTOR_GIT_H
#define PROCTOR_GIT_H
/* Fetching submissions with libgit2: a cache of bare mirrors, exact-commit checkouts, limits.
 * Callable from any thread after pr_git_global_init(); blocking (daemon: libuv threadpool). */

#include <stddef.h>
#include <stdint.h>

#include "proctor/error.h"

typedef struct pr_git_limits {
    uint64_t max_bytes; /* total size of the checked-out files; 0 = 256 MiB */
    uint64_t max_files; /* number of files in the checked-out tree; 0 = 20000 */
} pr_git_limits;

typedef struct pr_git_info {
    char commit[41];       /* 40 hex of the commit checked out */
    char ref[256];         /* the ref as resolved ("HEAD" -> "refs/heads/main") */
    char author[256];      /* "Name <email>", valid UTF-8 */
    char committed_at[32]; /* RFC 3339, UTC */
    uint64_t bytes;        /* size of the checked-out tree */
    uint64_t files;        /* files in the checked-out tree */
    int fetched_objects;   /* objects received by this fetch (0 when the mirror had them) */
} pr_git_info;

/** git_libgit2_init() and global options; main thread, once. */
int pr_git_global_init(pr_error *err);
void pr_git_global_cleanup(void);

/** Fetches repo (local path, file://, https://, ssh://) into a bare mirror under cache_dir
 * (created if missing; one mirror per repository URL, so later fetches move only new objects),
 * resolves ref (branch, tag, full or abbreviated commit; NULL = the remote HEAD) and checks the
 * commit out into dest_dir, which must not exist yet. Symlinks in the tree are written as
 * symlinks and never followed by proctor; a tree over the limits is refused (PR_ELIMIT) with a
 * message naming the limit. Errors: PR_ENOTFOUND (no such repo or ref), PR_EGIT, PR_ELIMIT. */
int pr_git_fetch(pr_git_info *out, const char *repo, const char *ref, const char *cache_dir,
                 const char *dest_dir, const pr_git_limits *limits, pr_error *err);

/** Removes the mirrors under cache_dir not used for more than max_age_s seconds (each fetch
 * marks its mirror used). A mirror being fetched (here or by another process) is skipped. The
 * count removed goes to *removed. Returns 0, or < 0 when the cache could not be read or a
 * mirror not removed (the others are still pruned). Any thread; blocking. */
int pr_git_cache_prune(const char *cache_dir, uint64_t max_age_s, unsigned *removed, pr_error *err);

/** Resolves ref (a branch name or NULL for HEAD) on the remote without fetching objects
 * (ls-remote). Writes the 40-hex commit to sha_out. */
int pr_git_ls_remote(char sha_out[41], const char *repo, const char *ref, pr_error *err);

/** Checks a REPO argument before libgit2 sees it and normalises it: a local path or file:// URL
 * becomes the absolute real path of an existing directory; https:// and ssh:// URLs are kept.
 * Other schemes (ext::, http://, git://) and strings starting with '-' are refused (PR_EINVAL);
 * a missing local path is PR_ENOTFOUND. *url_out is owned by the caller (pr_free). Any thread. */
int pr_git_repo_normalise(char **url_out, const char *repo, pr_error *err);

/** Checks a REF argument (NULL is fine): at most 255 bytes, no control characters, spaces or
 * leading '-'. 0 or PR_EINVAL. Any thread. */
int pr_git_ref_check(const char *ref, pr_error *err);

/** Copies url into out (size outsz) with any "user:password@" part removed, for messages and
 * logs. Any thread. */
void pr_git_url_redact(char *out, size_t outsz, const char *url);

#endif
