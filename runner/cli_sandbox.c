/* `proctor sandbox`: run one program under the graders' isolation and print its result object.
 * Only the sandbox is initialised here (no libgit2, no libuv): start-up cost matters. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proctor/report.h"
#include "proctor/sandbox.h"

#define MAX_BINDS 64
#define MAX_ENV   128

static void usage(FILE *f)
{
    fprintf(f,
            "usage: proctor sandbox [OPTIONS] -- PROGRAM [ARG...]\n"
            "\n"
            "Runs PROGRAM in a fresh box (user, PID, mount, network, IPC, UTS and cgroup\n"
            "namespaces; read-only system directories; private /tmp; no capabilities;\n"
            "no_new_privs; a seccomp allowlist) with stdin, stdout and stderr passed through, and\n"
            "writes one JSON result object to --result FILE or as the last line on stderr:\n"
            "  {\"verdict\": \"OK|TLE|WLE|MLE|OLE|RE|SV|IE\", \"exit_code\": 0, \"signal\": null,\n"
            "   \"cpu_ms\": 3, \"wall_ms\": 5, \"max_rss_kb\": 1800, \"violation\": null,\n"
            "   \"isolation\": {...}}\n"
            "\n"
            "limits (0 or absent = default):\n"
            "  --cpu-ms N      CPU time of the whole process tree (default %d)\n"
            "  --wall-ms N     wall-clock time (default %d)\n"
            "  --mem-mb N      resident memory of the tree, cgroup-enforced (default %d)\n"
            "  --procs N       processes + threads (default %d)\n"
            "  --fsize-kb N    largest file the program may write (default %d)\n"
            "  --nofile N      open file descriptors (default %d)\n"
            "  --tmp-mb N      size of the private /tmp and /dev/shm (default %d)\n"
            "\n"
            "files and environment:\n"
            "  --ro SRC[:DST]  bind host path SRC read-only at DST inside (default DST = SRC)\n"
            "  --rw SRC[:DST]  bind SRC writable; it must be writable by the box's host uid\n"
            "                  (see --slot; uid %u for slot 0). Each file written there is\n"
            "                  capped by --fsize-kb, the total is not: put SRC on a size-limited\n"
            "                  filesystem; proctor grade gives every job its own\n"
            "                  capped tmpfs\n"
            "  --chdir DIR     working directory inside the box (default /)\n"
            "  --env K=V       set a variable (repeatable); the host environment is never\n"
            "                  passed; defaults: PATH=/usr/local/bin:/usr/bin:/bin HOME=/tmp\n"
            "                  LANG=C.UTF-8\n"
            "\n"
            "isolation:\n"
            "  --net none|loopback   no network at all (default), or only lo (127.0.0.1, ::1)\n"
            "  --profile NAME  seccomp profile: default (C, static), python, node, go, build\n"
            "                  (compilers, make); a forbidden call ends the run with verdict SV\n"
            "  --slot N        worker slot: picks the box's unique host uids (default: from pid)\n"
            "  --cpu N         pin the box to CPU N\n"
            "\n"
            "output:\n"
            "  --result FILE   write the result object to FILE instead of stderr\n"
            "\n"
            "PROGRAM is an absolute path inside the box or a name searched in its PATH.\n"
            "Exit status: 0 the program ran (whatever its verdict), 1 the sandbox failed (IE),\n"
            "2 usage error.\n"
            "\n"
            "example:\n"
            "  proctor sandbox --cpu-ms 2000 --mem-mb 128 --ro ./sol:/box --chdir /box \\\n"
            "      --profile python -- /usr/bin/python3 main.py < input.txt\n",
            SBX_DEFAULT_CPU_MS, SBX_DEFAULT_WALL_MS, SBX_DEFAULT_MEM_MB, SBX_DEFAULT_PROCS,
            SBX_DEFAULT_FSIZE_KB, SBX_DEFAULT_NOFILE, SBX_DEFAULT_TMP_MB, sbx_slot_host_uid(0));
}

/* Prints a usage error naming the problem and where to look, and yields exit status 2. */
#define bad(...)                                                                   \
    ((void)fputs("proctor sandbox: ", stderr), (void)fprintf(stderr, __VA_ARGS__), \
     (void)fputs("\nRun 'proctor sandbox --help' for the options.\n", stderr), 2)

static int parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-')
        return -1;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || !end || *end || v > (1ull << 40))
        return -1;
    *out = (uint64_t)v;
    return 0;
}

static int parse_bind(sbx_bind *b, char *arg, bool writable)
{
    char *colon = strchr(arg, ':');
    b->writable = writable;
    b->src = arg;
    b->dst = NULL;
    if (colon) {
        *colon = '\0';
        b->dst = colon + 1;
        if (!*b->dst)
            return -1;
    }
    return *b->src ? 0 : -1;
}

static int write_result(const sbx_result *r, const char *path)
{
    json_t *j = pr_sbx_result_json(r);
    if (!j)
        return -1;
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!text)
        return -1;
    int rc = 0;
    if (path) {
        /* A device or a pipe (/dev/null, /dev/stderr, a FIFO with a reader) is written in place
         * and never waited on. Anything else is created or truncated without following a
         * final symlink: a link planted by a box in a shared work directory is refused. */
        struct stat st;
        int fd;
        if (strcmp(path, "-") == 0 || strcmp(path, "/dev/stdout") == 0)
            fd = fcntl(1, F_DUPFD_CLOEXEC, 3);
        else if (strcmp(path, "/dev/stderr") == 0)
            fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
        else if (stat(path, &st) == 0 && (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)))
            fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        else
            fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
                      0644);
        size_t len = strlen(text);
        if (fd < 0 || write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1)
            rc = -1;
        if (fd >= 0 && close(fd) != 0)
            rc = -1;
        if (rc < 0)
            fprintf(stderr, "proctor sandbox: cannot write %s: %s\n", path, strerror(errno));
    } else {
        /* On a line of its own even when the program left a partial line on stderr. */
        fflush(stderr);
        fprintf(stderr, "\n%s\n", text);
    }
    free(text);
    return rc;
}

int pr_cli_sandbox(int argc, char **argv)
{
    sbx_spec spec;
    sbx_bind binds[MAX_BINDS];
    const char *env[MAX_ENV + 4];
    size_t nbinds = 0, nenv = 0;
    const char *result_path = NULL;
    int i;

    sbx_spec_init(&spec);
    spec.stdin_fd = 0;
    spec.stdout_fd = 1;
    spec.stderr_fd = 2;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t *lim = NULL;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--cpu-ms") == 0)
            lim = &spec.limits.cpu_ms;
        else if (strcmp(a, "--wall-ms") == 0)
            lim = &spec.limits.wall_ms;
        else if (strcmp(a, "--mem-mb") == 0)
            lim = &spec.limits.mem_mb;
        else if (strcmp(a, "--procs") == 0)
            lim = &spec.limits.procs;
        else if (strcmp(a, "--fsize-kb") == 0)
            lim = &spec.limits.fsize_kb;
        else if (strcmp(a, "--nofile") == 0)
            lim = &spec.limits.nofile;
        else if (strcmp(a, "--tmp-mb") == 0)
            lim = &spec.limits.tmp_mb;
        if (lim) {
            if (parse_u64(v, lim) != 0)
                return bad("%s needs a non-negative number", a);
            i++;
            continue;
        }
        if (!v)
            return bad("option %s needs a value (or is unknown)", a);
        if (strcmp(a, "--ro") == 0 || strcmp(a, "--rw") == 0) {
            if (nbinds == MAX_BINDS)
                return bad("too many binds (max 64) at %s", a);
            if (parse_bind(&binds[nbinds], argv[i + 1], a[3] == 'w') != 0)
                return bad("bad bind '%s': expected SRC[:DST]", v);
            struct stat st;
            if (stat(binds[nbinds].src, &st) != 0)
                return bad("cannot bind '%s': %s", binds[nbinds].src, strerror(errno));
            if (binds[nbinds].dst && binds[nbinds].dst[0] != '/')
                return bad("bind target '%s' must be an absolute path", binds[nbinds].dst);
            nbinds++;
            i++;
        } else if (strcmp(a, "--chdir") == 0) {
            if (v[0] != '/')
                return bad("--chdir wants an absolute path inside the box, not '%s'", v);
            spec.chdir = v;
            i++;
        } else if (strcmp(a, "--net") == 0) {
            if (strcmp(v, "none") == 0)
                spec.net = SBX_NET_NONE;
            else if (strcmp(v, "loopback") == 0)
                spec.net = SBX_NET_LOOPBACK;
            else
                return bad("--net takes none or loopback, not '%s'", v);
            i++;
        } else if (strcmp(a, "--profile") == 0) {
            static const char *const known[] = { "default", "python", "node", "go", "build" };
            bool ok = false;
            for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
                ok = ok || strcmp(v, known[k]) == 0;
            if (!ok)
                return bad("unknown profile '%s' (default, python, node, go, build)", v);
            spec.profile = v;
            i++;
        } else if (strcmp(a, "--result") == 0) {
            result_path = v;
            i++;
        } else if (strcmp(a, "--env") == 0) {
            if (!strchr(v, '=') || v[0] == '=')
                return bad("--env wants K=V, not '%s'", v);
            if (nenv == MAX_ENV)
                return bad("too many --env (max 128) at %s", v);
            env[nenv++] = v;
            i++;
        } else if (strcmp(a, "--slot") == 0 || strcmp(a, "--cpu") == 0) {
            uint64_t n;
            if (parse_u64(v, &n) != 0 || n > 30000)
                return bad("%s needs a small non-negative number", a);
            if (a[2] == 's')
                spec.slot = (int)n;
            else
                spec.cpu = (int)n;
            i++;
        } else {
            return bad("unknown option '%s'", a);
        }
    }
    if (i >= argc)
        return bad("%s", "no program given: proctor sandbox [OPTIONS] -- PROGRAM [ARG...]");

    /* Defaults first, then --env (a later K= replaces an earlier one). */
    static const char *const defaults[] = { "PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp",
                                            "LANG=C.UTF-8" };
    const char *envp[MAX_ENV + 4];
    size_t ne = 0;
    for (size_t k = 0; k < 3; k++)
        envp[ne++] = defaults[k];
    for (size_t k = 0; k < nenv; k++) {
        size_t kl = (size_t)(strchr(env[k], '=') - env[k]) + 1;
        size_t j;
        for (j = 0; j < ne; j++)
            if (strncmp(envp[j], env[k], kl) == 0)
                break;
        envp[j] = env[k];
        if (j == ne)
            ne++;
    }
    envp[ne] = NULL;
    spec.envp = envp;
    spec.argv = (const char *const *)(argv + i);
    spec.binds = binds;
    spec.nbinds = nbinds;

    pr_error err = { 0 };
    if (sbx_global_init(&err) < 0) {
        fprintf(stderr, "proctor sandbox: %s\n", err.msg);
        return 1;
    }
    sbx_result res;
    int rc = sbx_run(&res, &spec, &err);
    int wrc = write_result(&res, result_path);
    sbx_global_cleanup();
    if (rc < 0 || res.verdict == SBX_IE || wrc < 0)
        return 1;
    return 0;
}
