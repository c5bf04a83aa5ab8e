/* libFuzzer target: the checks proctor makes on REPO and REF before libgit2 sees them
 * (pr_git_repo_normalise, pr_git_ref_check) and the credential redaction used in messages.
 * Input: REPO, a newline, then REF. */
#include "proctor/git.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proctor/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char repo[4200];
    char ref[600];
    char red[64];
    char red_big[4200];
    pr_error err = { 0 };
    char *url = NULL;

    if (size >= sizeof(repo) + sizeof(ref))
        return 0;
    const uint8_t *nl = memchr(data, '\n', size);
    size_t rlen = nl ? (size_t)(nl - data) : size;
    if (rlen >= sizeof(repo))
        return 0;
    memcpy(repo, data, rlen);
    repo[rlen] = '\0';
    size_t flen = nl ? size - rlen - 1 : 0;
    if (flen >= sizeof(ref))
        return 0;
    if (nl)
        memcpy(ref, nl + 1, flen);
    ref[flen] = '\0';

    int rc = pr_git_repo_normalise(&url, repo, &err);
    if (rc == 0) {
        /* Accepted: an absolute local path or an https/ssh URL without spaces or controls. */
        if (!url)
            abort();
        bool net = strncasecmp(url, "https://", 8) == 0 || strncasecmp(url, "ssh://", 6) == 0;
        if (!net && url[0] != '/')
            abort();
        for (const char *p = url; net && *p; p++) {
            if ((unsigned char)*p <= 0x20 || *p == 0x7F)
                abort();
        }
        if (repo[0] == '-')
            abort();
    } else if (url || err.msg[0] == '\0') {
        abort();
    }
    pr_free(url);

    memset(&err, 0, sizeof(err));
    const char *r = strlen(ref) == flen ? ref : NULL; /* an embedded NUL: test NULL instead */
    rc = pr_git_ref_check(r, &err);
    if (rc != 0 && (rc != PR_EINVAL || err.msg[0] == '\0'))
        abort();
    if (rc == 0 && r && (flen == 0 || r[0] == '-' || flen > 255))
        abort();

    /* Redaction never overruns and never grows the text; credentials go. */
    pr_git_url_redact(red, sizeof(red), repo);
    if (strlen(red) >= sizeof(red))
        abort();
    pr_git_url_redact(red_big, sizeof(red_big), repo);
    if (strlen(red_big) > rlen)
        abort();
    for (const char *sep = strstr(red_big, "://"); sep; sep = strstr(sep + 3, "://")) {
        /* What follows "://" up to the path is the host: no "user:password@" is left. */
        for (const char *p = sep + 3; *p && !strchr("/ '\"", *p); p++) {
            if (*p == '@')
                abort();
        }
    }
    return 0;
}
