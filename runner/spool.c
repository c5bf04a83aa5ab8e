/* The spool directory: job files, atomic JSON writes and job validation. The state machine
 * itself (incoming -> running -> done) is driven by runner/daemon.c. */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "proctor/common.h"
#include "proctor/job.h"
#include "proctor/report.h"

#define JOB_FILE_MAX ((size_t)64 * 1024)

int pr_spool_init(const char *spool, pr_error *err)
{
    static const char *const subs[] = { "incoming", "running",   "done", "reports",
                                        "rejected", "callbacks", "tmp" };
    char p[4096];
    for (size_t i = 0; i < PR_ARRAY_LEN(subs); i++) {
        int n = snprintf(p, sizeof(p), "%s/%s", spool, subs[i]);
        if (n < 0 || (size_t)n >= sizeof(p))
            return pr_error_set(err, PR_EINVAL, "spool: path too long");
        if (pr_mkdir_p(p) < 0)
            return pr_error_sys(err, "spool: mkdir %s", p);
    }
    return 0;
}

void pr_spool_job_clear(pr_spool_job *j)
{
    if (!j)
        return;
    pr_free(j->repo);
    pr_free(j->ref);
    pr_free(j->challenge);
    pr_free(j->candidate);
    pr_free(j->callback_url);
    pr_free(j->source);
    memset(j, 0, sizeof(*j));
}

static int job_str(char **out, const json_t *obj, const char *key, bool required, size_t max,
                   pr_error *err)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required)
            return pr_error_set(err, PR_EINVAL, "%s: missing (expected a string)", key);
        return 0;
    }
    if (!json_is_string(v))
        return pr_error_set(err, PR_EINVAL, "%s: expected a string", key);
    size_t n = json_string_length(v);
    if (n == 0 || n > max)
        return pr_error_set(err, PR_EINVAL, "%s: expected 1..%zu bytes", key, max);
    const char *s = json_string_value(v);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f)
            return pr_error_set(err, PR_EINVAL, "%s: control characters are not allowed", key);
    }
    *out = pr_strndup(s, n);
    return *out ? 0 : pr_error_set(err, PR_ENOMEM, "out of memory");
}

int pr_spool_job_parse(pr_spool_job *out, const json_t *obj, pr_error *err)
{
    static const char *const keys[] = { "id",        "repo",         "ref",       "challenge",
                                        "candidate", "callback_url", "queued_at", "attempts",
                                        "source",    "errors",       NULL };
    pr_spool_job j;
    int rc;
    memset(&j, 0, sizeof(j));
    memset(out, 0, sizeof(*out));
    if (!json_is_object(obj))
        return pr_error_set(err, PR_EINVAL, "expected a JSON object");
    const char *key = pr_json_unknown_key(obj, keys);
    if (key) {
        char ex[64];
        pr_text_log_excerpt(ex, sizeof(ex), key, strlen(key));
        return pr_error_set(err, PR_EINVAL, "%s: unknown field", ex);
    }
    rc = job_str(&j.repo, obj, "repo", true, 2048, err);
    if (rc == 0)
        rc = job_str(&j.ref, obj, "ref", false, 255, err);
    if (rc == 0)
        rc = job_str(&j.challenge, obj, "challenge", true, 64, err);
    if (rc == 0)
        rc = job_str(&j.candidate, obj, "candidate", false, 200, err);
    if (rc == 0)
        rc = job_str(&j.callback_url, obj, "callback_url", false, 1024, err);
    if (rc == 0)
        rc = job_str(&j.source, obj, "source", false, 16, err);
    if (rc < 0)
        goto cleanup;
    if (!j.repo || !j.challenge) {
        rc = pr_error_set(err, PR_EINVAL, "repo and challenge are required");
        goto cleanup;
    }
    if (!pr_config_pack_id_valid(j.challenge)) {
        rc = pr_error_set(err, PR_EINVAL, "challenge: not a valid pack id");
        goto cleanup;
    }
    if (j.ref && (j.ref[0] == '-' || strstr(j.ref, ".."))) {
        rc = pr_error_set(err, PR_EINVAL, "ref: not a valid git ref");
        goto cleanup;
    }
    if (j.repo[0] == '-') {
        rc = pr_error_set(err, PR_EINVAL, "repo: must not start with '-'");
        goto cleanup;
    }
    if (j.callback_url) {
        char host[256], path[1024];
        int port;
        if (pr_callback_url_parse(j.callback_url, host, sizeof(host), &port, path, sizeof(path)) <
            0) {
            rc = pr_error_set(err, PR_EINVAL,
                              "callback_url: expected http://host[:port]/path (http only)");
            goto cleanup;
        }
    }
    const json_t *id = json_object_get(obj, "id");
    if (id && !json_is_null(id)) {
        if (!json_is_string(id) || !pr_job_id_valid(json_string_value(id)) ||
            json_string_length(id) >= sizeof(j.id)) {
            rc = pr_error_set(err, PR_EINVAL, "id: expected 1..64 of [A-Za-z0-9_-]");
            goto cleanup;
        }
        (void)snprintf(j.id, sizeof(j.id), "%s", json_string_value(id));
    }
    const json_t *qa = json_object_get(obj, "queued_at");
    if (qa && !json_is_null(qa)) {
        if (!json_is_string(qa) || json_string_length(qa) >= sizeof(j.queued_at) ||
            json_string_length(qa) < 10) {
            rc = pr_error_set(err, PR_EINVAL, "queued_at: expected an RFC 3339 time");
            goto cleanup;
        }
        (void)snprintf(j.queued_at, sizeof(j.queued_at), "%s", json_string_value(qa));
    }
    const json_t *at = json_object_get(obj, "attempts");
    if (at && !json_is_null(at)) {
        if (!json_is_integer(at) || json_integer_value(at) < 0 || json_integer_value(at) > 100) {
            rc = pr_error_set(err, PR_EINVAL, "attempts: expected an integer 0..100");
            goto cleanup;
        }
        j.attempts = (int)json_integer_value(at);
    }
    *out = j;
    memset(&j, 0, sizeof(j));
    rc = 0;
cleanup:
    pr_spool_job_clear(&j);
    return rc;
}

json_t *pr_spool_job_json(const pr_spool_job *j)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = 0;
    bad |= json_object_set_new(o, "id", json_string(j->id));
    bad |= json_object_set_new(o, "repo", json_string(j->repo));
    bad |= json_object_set_new(o, "ref", j->ref ? json_string(j->ref) : json_null());
    bad |= json_object_set_new(o, "challenge", json_string(j->challenge));
    bad |=
        json_object_set_new(o, "candidate", j->candidate ? json_string(j->candidate) : json_null());
    if (j->callback_url)
        bad |= json_object_set_new(o, "callback_url", json_string(j->callback_url));
    bad |= json_object_set_new(o, "queued_at", json_string(j->queued_at));
    bad |= json_object_set_new(o, "attempts", json_integer(j->attempts));
    bad |= json_object_set_new(o, "source", json_string(j->source ? j->source : "spool"));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int fsync_dir_of(const char *path)
{
    char dir[4096];
    (void)snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return 0;
    *slash = '\0';
    int fd = open(dir[0] ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    (void)fsync(fd);
    pr_close(&fd);
    return 0;
}

int pr_spool_write_json(const char *path, const json_t *v, pr_error *err)
{
    char tmp[4200];
    char *text = NULL;
    int fd = -1;
    int rc = 0;
    static unsigned long seq;

    int n = snprintf(tmp, sizeof(tmp), "%s.tmp-%ld-%lu", path, (long)getpid(), ++seq);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return pr_error_set(err, PR_EINVAL, "path too long");
    /* The temporary name starts with the final name, so it lives in the same directory;
     * readers skip names that contain ".tmp-". */
    text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text) {
        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = pr_error_sys(err, "open %s", tmp);
        goto cleanup;
    }
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = pr_error_sys(err, "write %s", tmp);
            goto cleanup;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0) {
        rc = pr_error_sys(err, "fsync %s", tmp);
        goto cleanup;
    }
    pr_close(&fd);
    if (rename(tmp, path) != 0) {
        rc = pr_error_sys(err, "rename %s", path);
        goto cleanup;
    }
    (void)fsync_dir_of(path);
cleanup:
    if (fd >= 0) {
        pr_close(&fd);
    }
    if (rc < 0)
        (void)unlink(tmp);
    pr_free(text);
    return rc;
}

int pr_spool_read_file(char **out, size_t *len_out, const char *path, size_t max, pr_error *err)
{
    int fd = -1;
    char *buf = NULL;
    int rc = 0;
    struct stat st;
    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        rc = errno == ENOENT ? pr_error_set(err, PR_ENOTFOUND, "%s: not found", path)
                             : pr_error_sys(err, "open %s", path);
        goto cleanup;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = pr_error_set(err, PR_EINVAL, "%s: not a regular file", path);
        goto cleanup;
    }
    if ((uint64_t)st.st_size > max) {
        rc = pr_error_set(err, PR_ELIMIT, "%s: larger than %zu bytes", path, max);
        goto cleanup;
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    buf = pr_malloc(cap);
    if (!buf) {
        rc = pr_error_set(err, PR_ENOMEM, "out of memory");
        goto cleanup;
    }
    for (;;) {
        if (len + 1 >= cap) {
            /* The file grew after fstat: read the rest up to the cap. */
            if (cap > max) {
                rc = pr_error_set(err, PR_ELIMIT, "%s: larger than %zu bytes", path, max);
                goto cleanup;
            }
            size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            char *nb = pr_realloc(buf, ncap + 1);
            if (!nb) {
                rc = pr_error_set(err, PR_ENOMEM, "out of memory");
                goto cleanup;
            }
            buf = nb;
            cap = ncap + 1;
        }
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = pr_error_sys(err, "read %s", path);
            goto cleanup;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    *out = buf;
    buf = NULL;
    if (len_out)
        *len_out = len;
cleanup:
    pr_close(&fd);
    pr_free(buf);
    return rc;
}

int pr_spool_job_load(pr_spool_job *out, const char *path, pr_error *err)
{
    char *text = NULL;
    size_t len = 0;
    json_error_t jerr;
    memset(out, 0, sizeof(*out));
    int rc = pr_spool_read_file(&text, &len, path, JOB_FILE_MAX, err);
    if (rc < 0)
        return rc;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    pr_free(text);
    if (!root)
        return pr_error_set(err, PR_EJSON, "malformed JSON: line %d: %s", jerr.line, jerr.text);
    rc = pr_spool_job_parse(out, root, err);
    json_decref(root);
    return rc;
}

/* n decimal digits at s; false on anything else. */
static bool fixed_digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

int pr_spool_time_parse(int64_t *out_ns, const char *rfc3339)
{
    const char *s = rfc3339;
    int year, mon, day, hour, min, sec;
    if (!s || strlen(s) < 20 || !fixed_digits(s, 4, &year) || s[4] != '-' ||
        !fixed_digits(s + 5, 2, &mon) || s[7] != '-' || !fixed_digits(s + 8, 2, &day) ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !fixed_digits(s + 11, 2, &hour) ||
        s[13] != ':' || !fixed_digits(s + 14, 2, &min) || s[16] != ':' ||
        !fixed_digits(s + 17, 2, &sec))
        return PR_EINVAL;
    if (year < 1970 || mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 ||
        sec > 60)
        return PR_EINVAL;
    const char *p = s + 19;
    int64_t frac_ns = 0;
    if (*p == '.') {
        int64_t scale = 100000000;
        p++;
        if (*p < '0' || *p > '9')
            return PR_EINVAL;
        for (; *p >= '0' && *p <= '9'; p++) {
            frac_ns += (*p - '0') * scale;
            scale /= 10;
        }
    }
    int64_t offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (!fixed_digits(p + 1, 2, &oh) || p[3] != ':' || !fixed_digits(p + 4, 2, &om) ||
            oh > 23 || om > 59)
            return PR_EINVAL;
        offset_s = (int64_t)(oh * 3600 + om * 60) * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return PR_EINVAL;
    }
    if (*p != '\0')
        return PR_EINVAL;
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return PR_EINVAL;
    *out_ns = ((int64_t)t - offset_s) * 1000000000 + frac_ns;
    return 0;
}
