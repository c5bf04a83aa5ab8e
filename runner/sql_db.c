/* The sql kind's database cache: one generated database per pack digest, built once (under a
 * lock, into a temporary file, then renamed) and copied for every job. */
#include "sql_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proctor/buf.h"
#include "proctor/common.h"

int pr_sql_cache_root(char *out, size_t outsz, pr_error *err)
{
    const char *env = getenv("PROCTOR_SQL_CACHE"); /* NOLINT(concurrency-mt-unsafe) */
    int n = 0;
    if (env && env[0] == '/')
        n = snprintf(out, outsz, "%s", env);
    else if (pr_cache_home(out, outsz, "sql", "/var/cache/proctor/sql") < 0)
        n = -1;
    if (n < 0 || (size_t)n >= outsz)
        return pr_error_set(err, PR_EINVAL, "sql cache directory path too long");
    if (pr_mkdir_p(out) < 0)
        return pr_error_sys(err, "sql cache %s", out);
    return 0;
}

int pr_sql_cache_lock(const char *root, const char *key, pr_error *err)
{
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/%s.lock", root, key);
    if (n < 0 || (size_t)n >= sizeof(path))
        return pr_error_set(err, PR_EINVAL, "sql cache lock path too long");
    int fd = pr_lock_file(path, 0600);
    if (fd < 0)
        return pr_error_sys(err, "lock %s", path);
    return fd;
}

typedef struct sqlite_sink {
    sqlite3 *db;
    sqlite3_stmt *ins;
} sqlite_sink;

static int sink_table(void *payload, const char *name, const char *const *columns, size_t ncols,
                      pr_error *err)
{
    sqlite_sink *s = payload;
    pr_buf sql = PR_BUF_INIT(4096);
    int rc = pr_buf_printf(&sql, "INSERT INTO \"%s\" (", name);
    for (size_t i = 0; i < ncols && rc == 0; i++)
        rc = pr_buf_printf(&sql, "%s\"%s\"", i ? ", " : "", columns[i]);
    rc = rc ? rc : pr_buf_puts(&sql, ") VALUES (");
    for (size_t i = 0; i < ncols && rc == 0; i++)
        rc = pr_buf_puts(&sql, i ? ", ?" : "?");
    rc = rc ? rc : pr_buf_puts(&sql, ")");
    if (rc < 0) {
        pr_buf_free(&sql);
        return pr_error_set(err, rc, "insert statement too long");
    }
    sqlite3_finalize(s->ins);
    s->ins = NULL;
    if (sqlite3_prepare_v2(s->db, sql.ptr, (int)sql.len, &s->ins, NULL) != SQLITE_OK) {
        rc = pr_error_set(err, PR_EINVAL, "generator table %s: %s", name, sqlite3_errmsg(s->db));
    }
    pr_buf_free(&sql);
    return rc;
}

static int sink_row(void *payload, const pr_sqlval *vals, size_t n, pr_error *err)
{
    sqlite_sink *s = payload;
    for (size_t i = 0; i < n; i++) {
        if (vals[i].is_text)
            (void)sqlite3_bind_text(s->ins, (int)i + 1, vals[i].s, -1, SQLITE_TRANSIENT);
        else
            (void)sqlite3_bind_int64(s->ins, (int)i + 1, vals[i].i);
    }
    int rc = sqlite3_step(s->ins);
    (void)sqlite3_reset(s->ins);
    if (rc != SQLITE_DONE)
        return pr_error_set(err, PR_EINVAL, "generated row refused: %s", sqlite3_errmsg(s->db));
    return 0;
}

int pr_sql_build_sqlite(const char *path, const char *schema_sql, const char *gen, uint64_t seed,
                        pr_error *err)
{
    sqlite_sink s = { NULL, NULL };
    char *emsg = NULL;
    int rc = 0;

    if (sqlite3_open_v2(path, &s.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        rc = pr_error_set(err, PR_ESYS, "create %s: %s", path,
                          s.db ? sqlite3_errmsg(s.db) : "out of memory");
        goto cleanup;
    }
    /* A fixed page size and no WAL: the file is the whole database, byte for byte the same
     * on every build. */
    if (sqlite3_exec(s.db,
                     "PRAGMA page_size=4096; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
                     "PRAGMA foreign_keys=ON;",
                     NULL, NULL, &emsg) != SQLITE_OK ||
        sqlite3_exec(s.db, schema_sql, NULL, NULL, &emsg) != SQLITE_OK ||
        sqlite3_exec(s.db, "BEGIN", NULL, NULL, &emsg) != SQLITE_OK) {
        rc = pr_error_set(err, PR_EINVAL, "pack schema: %s", emsg ? emsg : "failed");
        goto cleanup;
    }
    pr_sqlgen_sink sink = { sink_table, sink_row, &s };
    rc = pr_sqlgen_run(gen, seed, &sink, err);
    if (rc < 0)
        goto cleanup;
    sqlite3_finalize(s.ins);
    s.ins = NULL;
    if (sqlite3_exec(s.db, "COMMIT; PRAGMA foreign_key_check;", NULL, NULL, &emsg) != SQLITE_OK) {
        rc = pr_error_set(err, PR_EINVAL, "pack data: %s", emsg ? emsg : "commit failed");
        goto cleanup;
    }
cleanup:
    sqlite3_free(emsg);
    sqlite3_finalize(s.ins);
    if (s.db && sqlite3_close(s.db) != SQLITE_OK && rc == 0)
        rc = pr_error_set(err, PR_ESYS, "close %s", path);
    if (rc == 0 && chmod(path, 0444) != 0)
        rc = pr_error_sys(err, "chmod %s", path);
    if (rc < 0)
        (void)unlink(path);
    return rc;
}

int pr_sql_copy_file(const char *src, const char *dst, pr_error *err)
{
    int in = -1, out = -1, rc = 0;
    struct stat st;

    in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (in < 0 || fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = pr_error_sys(err, "open %s", src);
        goto cleanup;
    }
    out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (out < 0) {
        rc = pr_error_sys(err, "create %s", dst);
        goto cleanup;
    }
    off_t left = st.st_size;
    while (left > 0) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            char buf[65536];
            ssize_t r = read(in, buf, sizeof(buf));
            if (r <= 0 || write(out, buf, (size_t)r) != r) {
                rc = pr_error_sys(err, "copy %s", src);
                goto cleanup;
            }
            n = r;
        }
        left -= n;
    }
cleanup:
    pr_close(&in);
    pr_close(&out);
    if (rc < 0)
        (void)unlink(dst);
    return rc;
}

int pr_sql_read_file(char **out, size_t *len, const char *path, size_t max, pr_error *err)
{
    pr_buf b = PR_BUF_INIT(max);
    struct stat st;
    int rc = 0;
    char chunk[16384];

    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return pr_error_set(err, PR_ENOTFOUND, "%s: no such file", path);
        return pr_error_sys(err, "open %s", path);
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = pr_error_set(err, PR_EINVAL, "%s: not a regular file", path);
        goto cleanup;
    }
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = pr_error_sys(err, "read %s", path);
            goto cleanup;
        }
        if (n == 0)
            break;
        rc = pr_buf_put(&b, chunk, (size_t)n);
        if (rc < 0) {
            rc = pr_error_set(err, rc, "%s: larger than %zu bytes", path, max);
            goto cleanup;
        }
    }
    if (!b.ptr && pr_buf_puts(&b, "") < 0) {
        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }
    *len = b.len;
    *out = pr_buf_detach(&b);
cleanup:
    pr_buf_free(&b);
    pr_close(&fd);
    return rc;
}

int pr_sql_write_file(const char *path, const char *data, size_t len, pr_error *err)
{
    char tmp[4096];
    /* Unique per thread: two jobs of one daemon may write the same cache entry at once. */
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld.%ld", path, (long)getpid(), (long)gettid());
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return pr_error_set(err, PR_EINVAL, "path too long");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return pr_error_sys(err, "create %s", tmp);
    if (pr_write_all(fd, data, len) != 0) {
        int rc = pr_error_sys(err, "write %s", tmp);
        close(fd);
        (void)unlink(tmp);
        return rc;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        int rc = pr_error_sys(err, "fsync %s", tmp);
        (void)unlink(tmp);
        return rc;
    }
    if (rename(tmp, path) != 0) {
        int rc = pr_error_sys(err, "rename %s", tmp);
        (void)unlink(tmp);
        return rc;
    }
    return 0;
}
