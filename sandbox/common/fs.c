#include "proctor/common.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proctor/error.h"

int pr_mkdir_p(const char *dir)
{
    char path[4096];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof(path)) {
        errno = ENAMETOOLONG;
        return PR_ESYS;
    }
    memcpy(path, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return PR_ESYS;
        path[i] = saved;
    }
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    /* Directories come after their contents (FTW_DEPTH); symlinks are removed, not followed. */
    int rc = (flag == FTW_DP) ? rmdir(path) : unlink(path);
    if (rc != 0 && errno != ENOENT) {
        /* A read-only directory left by a submission: make it writable and try again. */
        if (errno == EACCES || errno == EPERM) {
            char parent[4096];
            (void)snprintf(parent, sizeof(parent), "%s", path);
            char *slash = strrchr(parent, '/');
            if (slash) {
                *slash = '\0';
                (void)chmod(parent, 0700);
                rc = (flag == FTW_DP) ? rmdir(path) : unlink(path);
            }
        }
    }
    return 0;
}

int pr_rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : PR_ESYS;
    if (!S_ISDIR(st.st_mode))
        return unlink(path) == 0 ? 0 : PR_ESYS;
    /* Make every directory traversable first: a submission may leave mode 000 dirs. */
    (void)nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
    return access(path, F_OK) == 0 ? PR_ESYS : 0;
}

int pr_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int pr_lock_file(const char *path, unsigned mode)
{
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
    if (fd < 0)
        return -1;
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            int e = errno;
            (void)close(fd);
            errno = e;
            return -1;
        }
    }
    return fd;
}

int pr_cache_home(char *out, size_t outsz, const char *sub, const char *fallback)
{
    const char *v = secure_getenv("XDG_CACHE_HOME");
    const char *sep = sub[0] ? "/" : "";
    int n;
    if (v && v[0] == '/')
        n = snprintf(out, outsz, "%s/proctor%s%s", v, sep, sub);
    else if ((v = secure_getenv("HOME")) && v[0] == '/')
        n = snprintf(out, outsz, "%s/.cache/proctor%s%s", v, sep, sub);
    else
        n = snprintf(out, outsz, "%s", fallback);
    return n < 0 || (size_t)n >= outsz ? PR_ELIMIT : 0;
}
