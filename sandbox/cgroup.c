/* Box cgroups: one directory per box under proctor's own cgroup in each hierarchy (v2 when the
 * host delegates memory and pids there, else the v1 memory, pids and cpuacct hierarchies),
 * named proctor-<pid>-<slot>-<seq>, removed when the box ends. Global state is written only by
 * sbx__cg_global_init (before threads start) and read-only afterwards. */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "proctor/log.h"

static struct {
    int version;
    char *mem; /* proctor's own cgroup directory per hierarchy (owned) */
    char *pids;
    char *cpu;
    char *v2;
} g;

static atomic_uint g_seq;

/* /proc/self/cgroup and /proc/self/mountinfo, read once by sbx__cg_global_init. */
static struct {
    char *cgroup;
    size_t cgroup_len;
    char *mountinfo;
    size_t mountinfo_len;
} g_files;

static char *slurp(const char *path, size_t *len)
{
    size_t cap = 16384, off = 0;
    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    for (;;) {
        if (!buf || off + 1 >= cap) {
            if (buf)
                cap *= 2;
            if (cap > (4u << 20))
                break; /* caps a pathological mount table */
            char *n = pr_realloc(buf, cap);
            if (!n)
                break;
            buf = n;
        }
        ssize_t r = read(fd, buf + off, cap - 1 - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        off += (size_t)r;
    }
    (void)close(fd);
    if (buf) {
        buf[off] = '\0';
        *len = off;
    }
    return buf;
}

static int read_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off + 1 < size) {
        ssize_t r = read(fd, buf + off, size - 1 - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        off += (size_t)r;
    }
    buf[off] = '\0';
    (void)close(fd);
    return (int)off;
}

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    ssize_t w = write(fd, text, len);
    int saved = errno;
    (void)close(fd);
    errno = saved;
    return (w == (ssize_t)len) ? 0 : -1;
}

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = pr_malloc(n);
    if (s)
        (void)snprintf(s, n, "%s/%s", a, b);
    return s;
}

static bool has_word(const char *list, const char *word, char sep)
{
    size_t wl = strlen(word);
    const char *p = list;
    while (p && *p) {
        const char *e = strchr(p, sep);
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == wl && memcmp(p, word, wl) == 0)
            return true;
        p = e ? e + 1 : NULL;
    }
    return false;
}

/* Our own cgroup path in the v1 hierarchy holding controller (or v2 for ""), from
 * /proc/self/cgroup. */
static char *own_path(const char *controller)
{
    FILE *f = g_files.cgroup ? fmemopen(g_files.cgroup, g_files.cgroup_len, "r") : NULL;
    char line[1024];
    char *res = NULL;
    if (!f)
        return NULL;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c1 = '\0';
        *c2 = '\0';
        const char *ctrls = c1 + 1;
        bool match = controller[0] ? has_word(ctrls, controller, ',') : (ctrls[0] == '\0');
        if (match) {
            res = pr_strdup(c2 + 1);
            break;
        }
    }
    (void)fclose(f);
    return res;
}

/* The mount point of the hierarchy with controller (v1) or of cgroup2 (controller ""). The
 * mount's root must be "/" or a prefix of our path; we return mountpoint + (path - root). */
static char *hier_dir(const char *controller, const char *path)
{
    FILE *f = g_files.mountinfo ? fmemopen(g_files.mountinfo, g_files.mountinfo_len, "r") : NULL;
    char line[4096];
    char *res = NULL;
    if (!f)
        return NULL;
    while (!res && fgets(line, sizeof(line), f)) {
        char *save = NULL;
        char *fields[12];
        int n = 0;
        char *sep = strstr(line, " - ");
        if (!sep)
            continue;
        *sep = '\0';
        for (char *t = strtok_r(line, " ", &save); t && n < 12; t = strtok_r(NULL, " ", &save))
            fields[n++] = t;
        if (n < 5)
            continue;
        char *save2 = NULL;
        char *fstype = strtok_r(sep + 3, " ", &save2);
        (void)strtok_r(NULL, " ", &save2); /* source */
        char *opts = strtok_r(NULL, " \n", &save2);
        if (!fstype || !opts)
            continue;
        const char *root = fields[3], *mnt = fields[4];
        if (controller[0]) {
            if (strcmp(fstype, "cgroup") != 0 || !has_word(opts, controller, ','))
                continue;
        } else if (strcmp(fstype, "cgroup2") != 0) {
            continue;
        }
        size_t rl = strlen(root);
        const char *rest = path;
        if (strcmp(root, "/") != 0) {
            if (strncmp(path, root, rl) != 0 || (path[rl] != '/' && path[rl] != '\0'))
                continue;
            rest = path + rl;
        }
        size_t ml = strlen(mnt), pl = strlen(rest);
        res = pr_malloc(ml + pl + 1);
        if (res) {
            memcpy(res, mnt, ml);
            memcpy(res + ml, rest, pl + 1);
            /* "/sys/fs/cgroup/memory" + "/" -> drop the trailing slash */
            if (ml + pl > 1 && res[ml + pl - 1] == '/')
                res[ml + pl - 1] = '\0';
        }
    }
    (void)fclose(f);
    return res;
}

static char *find_dir(const char *controller)
{
    char *path = own_path(controller);
    char *dir = NULL;
    if (path) {
        dir = hier_dir(controller, path);
        pr_free(path);
    }
    if (dir && access(dir, W_OK) != 0) {
        pr_free(dir);
        dir = NULL;
    }
    return dir;
}

/* Removes empty box cgroups left by dead proctor processes (a crash between create and
 * destroy); a non-empty one is left alone. */
static void sweep_stale(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    /* readdir on a DIR of our own is thread-safe in glibc (readdir_r is deprecated). */
    /* cppcheck-suppress readdirCalled */
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "proctor-", 8) != 0 || e->d_type != DT_DIR)
            continue;
        char *end = NULL;
        long pid = strtol(e->d_name + 8, &end, 10);
        if (!end || *end != '-' || pid <= 0)
            continue;
        if (pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char *p = join(dir, e->d_name);
        if (p) {
            (void)rmdir(p);
            pr_free(p);
        }
    }
    (void)closedir(d);
}

int sbx__cg_global_init(pr_error *err)
{
    g.version = 0;
    g_files.cgroup = slurp("/proc/self/cgroup", &g_files.cgroup_len);
    g_files.mountinfo = slurp("/proc/self/mountinfo", &g_files.mountinfo_len);
    /* v2 only when our own cgroup delegates the controllers we need to its children. */
    char *v2 = find_dir("");
    if (v2) {
        char *sc = join(v2, "cgroup.subtree_control");
        char buf[256];
        if (sc && read_file(sc, buf, sizeof(buf)) >= 0 && strstr(buf, "memory") &&
            strstr(buf, "pids")) {
            g.v2 = v2;
            v2 = NULL;
            g.version = 2;
        }
        pr_free(sc);
        pr_free(v2);
    }
    if (g.version == 0) {
        g.mem = find_dir("memory");
        g.pids = find_dir("pids");
        g.cpu = find_dir("cpuacct");
        if (g.mem || g.pids || g.cpu)
            g.version = 1;
    }
    if (g.version == 2) {
        sweep_stale(g.v2);
    } else if (g.version == 1) {
        if (g.mem)
            sweep_stale(g.mem);
        if (g.pids)
            sweep_stale(g.pids);
        if (g.cpu)
            sweep_stale(g.cpu);
    }
    pr_free(g_files.cgroup);
    pr_free(g_files.mountinfo);
    memset(&g_files, 0, sizeof(g_files));
    pr_log(PR_LOG_DEBUG, "event=sandbox-cgroups version=%d mem=%s pids=%s cpu=%s v2=%s", g.version,
           g.mem ? g.mem : "-", g.pids ? g.pids : "-", g.cpu ? g.cpu : "-", g.v2 ? g.v2 : "-");
    (void)err;
    return 0;
}

void sbx__cg_global_cleanup(void)
{
    pr_free(g.mem);
    pr_free(g.pids);
    pr_free(g.cpu);
    pr_free(g.v2);
    memset(&g, 0, sizeof(g));
}

const char *sbx__cg_kind(void)
{
    return g.version == 2 ? "v2" : g.version == 1 ? "v1" : "none";
}

bool sbx__cg_has_pids(void)
{
    return g.version == 2 || g.pids != NULL;
}

static int make_box(char **out, const char *parent, const char *name, pr_error *err)
{
    *out = NULL;
    if (!parent)
        return 0;
    char *p = join(parent, name);
    if (!p)
        return pr_error_set(err, PR_ENOMEM, "out of memory");
    if (mkdir(p, 0755) != 0) {
        int rc = pr_error_sys(err, "mkdir %s", p);
        pr_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

static int set_value(const char *dir, const char *file, uint64_t v, pr_error *err)
{
    char path[4096], val[32];
    (void)snprintf(path, sizeof(path), "%s/%s", dir, file);
    (void)snprintf(val, sizeof(val), "%" PRIu64, v);
    if (write_file(path, val) != 0)
        return pr_error_sys(err, "write %s", path);
    return 0;
}

int sbx__cg_create(sbx__cg *cg, int slot, const sbx_limits *lim, pr_error *err)
{
    char name[96];
    int rc = 0;
    memset(cg, 0, sizeof(*cg));
    cg->version = g.version;
    if (g.version == 0)
        return 0;
    unsigned seq = atomic_fetch_add(&g_seq, 1);
    (void)snprintf(name, sizeof(name), "proctor-%ld-%d-%u", (long)getpid(), slot, seq);
    uint64_t mem = lim->mem_mb * 1024 * 1024;
    if (g.version == 2) {
        rc = make_box(&cg->v2, g.v2, name, err);
        if (rc < 0)
            goto fail;
        rc = set_value(cg->v2, "memory.max", mem, err);
        if (rc == 0)
            rc = set_value(cg->v2, "memory.swap.max", 0, err);
        if (rc == 0)
            rc = set_value(cg->v2, "pids.max", lim->procs + 1, err);
        if (rc < 0)
            goto fail;
        return 0;
    }
    rc = make_box(&cg->mem, g.mem, name, err);
    if (rc == 0)
        rc = make_box(&cg->pids, g.pids, name, err);
    if (rc == 0)
        rc = make_box(&cg->cpu, g.cpu, name, err);
    if (rc < 0)
        goto fail;
    if (cg->mem) {
        rc = set_value(cg->mem, "memory.limit_in_bytes", mem, err);
        if (rc < 0)
            goto fail;
        /* Resident memory plus swap equal to the limit: the box cannot swap its way out. */
        char path[4096];
        (void)snprintf(path, sizeof(path), "%s/memory.memsw.limit_in_bytes", cg->mem);
        if (access(path, F_OK) == 0) {
            rc = set_value(cg->mem, "memory.memsw.limit_in_bytes", mem, err);
            if (rc < 0)
                goto fail;
        }
        (void)set_value(cg->mem, "memory.swappiness", 0, NULL);
    }
    if (cg->pids) {
        /* + 1 for the box init */
        rc = set_value(cg->pids, "pids.max", lim->procs + 1, err);
        if (rc < 0)
            goto fail;
    }
    return 0;
fail:
    sbx__cg_destroy(cg);
    return rc;
}

static int attach_one(const char *dir, pid_t pid, pr_error *err)
{
    if (!dir)
        return 0;
    char path[4096], val[32];
    (void)snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
    (void)snprintf(val, sizeof(val), "%ld", (long)pid);
    if (write_file(path, val) != 0)
        return pr_error_sys(err, "write %s", path);
    return 0;
}

int sbx__cg_attach(const sbx__cg *cg, pid_t pid, pr_error *err)
{
    int rc = attach_one(cg->v2, pid, err);
    if (rc == 0)
        rc = attach_one(cg->mem, pid, err);
    if (rc == 0)
        rc = attach_one(cg->pids, pid, err);
    if (rc == 0)
        rc = attach_one(cg->cpu, pid, err);
    return rc;
}

/* cgroup v1: moving a whole process into a cgroup takes the global threadgroup rwsem for
 * writing, which waits for an RCU grace period (~10 ms here). Moving only the calling thread
 * ("0" into tasks) skips that lock, so the spawning thread steps into the box cgroups, clones
 * (the child inherits them) and steps back. Memory is charged to the mm owner, so the thread's
 * brief stay charges nothing to the box. */
static int tasks_self(const char *dir, pr_error *err)
{
    if (!dir)
        return 0;
    char path[4096];
    (void)snprintf(path, sizeof(path), "%s/tasks", dir);
    if (write_file(path, "0") != 0)
        return pr_error_sys(err, "write %s", path);
    return 0;
}

bool sbx__cg_can_enter(const sbx__cg *cg)
{
    return cg->version == 1;
}

int sbx__cg_enter(const sbx__cg *cg, pr_error *err)
{
    int rc = tasks_self(cg->mem, err);
    if (rc == 0)
        rc = tasks_self(cg->pids, err);
    if (rc == 0)
        rc = tasks_self(cg->cpu, err);
    return rc;
}

int sbx__cg_leave(const sbx__cg *cg)
{
    pr_error err = { 0 };
    int rc = 0;
    if (cg->mem && tasks_self(g.mem, &err) < 0)
        rc = -1;
    if (cg->pids && tasks_self(g.pids, &err) < 0)
        rc = -1;
    if (cg->cpu && tasks_self(g.cpu, &err) < 0)
        rc = -1;
    if (rc < 0)
        pr_log(PR_LOG_ERROR, "event=sandbox-cgroup-leave msg=\"%s\"", err.msg);
    return rc;
}

static uint64_t read_u64(const char *dir, const char *file, const char *key)
{
    char path[4096], buf[4096];
    if (!dir)
        return UINT64_MAX;
    (void)snprintf(path, sizeof(path), "%s/%s", dir, file);
    if (read_file(path, buf, sizeof(buf)) <= 0)
        return UINT64_MAX;
    const char *p = buf;
    if (key) {
        size_t kl = strlen(key);
        p = NULL;
        for (const char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
            if (strncmp(l, key, kl) == 0 && l[kl] == ' ') {
                p = l + kl + 1;
                break;
            }
        }
        if (!p)
            return UINT64_MAX;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(p, &end, 10);
    if (errno || end == p)
        return UINT64_MAX;
    return (uint64_t)v;
}

uint64_t sbx__cg_cpu_ns(const sbx__cg *cg)
{
    if (cg->v2) {
        uint64_t us = read_u64(cg->v2, "cpu.stat", "usage_usec");
        return us == UINT64_MAX ? us : us * 1000;
    }
    return read_u64(cg->cpu, "cpuacct.usage", NULL);
}

uint64_t sbx__cg_mem_peak_kb(const sbx__cg *cg)
{
    uint64_t v = cg->v2 ? read_u64(cg->v2, "memory.peak", NULL)
                        : read_u64(cg->mem, "memory.max_usage_in_bytes", NULL);
    return v == UINT64_MAX ? 0 : v / 1024;
}

uint64_t sbx__cg_mem_now_kb(const sbx__cg *cg)
{
    uint64_t v = cg->v2 ? read_u64(cg->v2, "memory.current", NULL)
                        : read_u64(cg->mem, "memory.usage_in_bytes", NULL);
    return v == UINT64_MAX ? 0 : v / 1024;
}

uint64_t sbx__cg_oom_kills(const sbx__cg *cg)
{
    uint64_t v = cg->v2 ? read_u64(cg->v2, "memory.events", "oom_kill")
                        : read_u64(cg->mem, "memory.oom_control", "oom_kill");
    return v == UINT64_MAX ? 0 : v;
}

static int kill_in(const char *dir)
{
    if (!dir)
        return 0;
    char path[4096], buf[8192];
    (void)snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
    if (read_file(path, buf, sizeof(buf)) <= 0)
        return 0;
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
        char *end = NULL;
        long pid = strtol(t, &end, 10);
        if (pid > 0) {
            (void)kill((pid_t)pid, SIGCONT);
            (void)kill((pid_t)pid, SIGKILL);
            n++;
        }
    }
    return n;
}

int sbx__cg_kill_all(const sbx__cg *cg)
{
    if (cg->v2) {
        char path[4096];
        (void)snprintf(path, sizeof(path), "%s/cgroup.kill", cg->v2);
        (void)write_file(path, "1");
        return kill_in(cg->v2);
    }
    return kill_in(cg->pids) + kill_in(cg->mem) + kill_in(cg->cpu);
}

/* rmdir succeeds only on an empty cgroup: that is the check that nothing of the box is left.
 * Busy means a task is still there (or exiting): kill everything in it and retry. */
static void remove_dir(char **dirp, const sbx__cg *cg)
{
    if (!*dirp)
        return;
    for (int i = 0; i < 500; i++) {
        if (rmdir(*dirp) == 0 || errno == ENOENT)
            break;
        if (errno != EBUSY) {
            pr_log(PR_LOG_WARN, "event=sandbox-cgroup-rmdir path=%s errno=%d", *dirp, errno);
            break;
        }
        (void)sbx__cg_kill_all(cg);
        struct timespec ts = { 0, 1000000 };
        (void)nanosleep(&ts, NULL);
        if (i == 499)
            pr_log(PR_LOG_ERROR, "event=sandbox-cgroup-busy path=%s", *dirp);
    }
    pr_free(*dirp);
    *dirp = NULL;
}

void sbx__cg_destroy(sbx__cg *cg)
{
    /* pids first: it is the one that counts every task. */
    remove_dir(&cg->pids, cg);
    remove_dir(&cg->v2, cg);
    remove_dir(&cg->mem, cg);
    remove_dir(&cg->cpu, cg);
}
