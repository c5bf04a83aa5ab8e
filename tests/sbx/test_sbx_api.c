/* Functional tests of the sandbox through its C API (sbx_run, sbx_spawn, sbx_netns_new): real
 * processes in real namespaces, real cgroups, real seccomp. The test subject is sbx_probe. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "proctor/boxwatch.h"
#include "proctor/report.h"
#include "proctor/sandbox.h"
#include "t.h"

static char g_probe_dir[4096];

static void spec_probe(sbx_spec *s, sbx_bind *b, const char **argv)
{
    sbx_spec_init(s);
    b->src = g_probe_dir;
    b->dst = "/t";
    b->writable = false;
    s->binds = b;
    s->nbinds = 1;
    s->argv = argv;
    s->limits.wall_ms = 10000;
}

static sbx_result run_probe(const char *a1, const char *a2, const sbx_limits *lim)
{
    const char *argv[] = { "/t/sbx_probe", a1, a2, NULL };
    sbx_spec s;
    sbx_bind b;
    spec_probe(&s, &b, argv);
    if (lim)
        s.limits = *lim;
    sbx_result r;
    pr_error err = { 0 };
    int rc = sbx_run(&r, &s, &err);
    if (rc < 0)
        fprintf(stderr, "sbx_run(%s): %s\n", a1, err.msg);
    fprintf(stderr, "  %-14s %-4s exit=%d sig=%d cpu=%llu wall=%llu rss=%llu viol=%s msg=%s\n", a1,
            sbx_verdict_name(r.verdict), r.exit_code, r.signal, (unsigned long long)r.cpu_ms,
            (unsigned long long)r.wall_ms, (unsigned long long)r.max_rss_kb, r.violation,
            r.message);
    return r;
}

static void test_ok_and_isolation(void)
{
    sbx_result r = run_probe("ok", NULL, NULL);
    T_EQ_STR(sbx_verdict_name(r.verdict), "OK");
    T_EQ_INT(r.exit_code, 0);
    T_EQ_INT(r.signal, 0);
    T_TRUE(r.isolation.userns && r.isolation.pidns && r.isolation.netns && r.isolation.mntns);
    T_TRUE(r.isolation.ipcns && r.isolation.utsns && r.isolation.cgroupns);
    T_TRUE(r.isolation.seccomp && r.isolation.no_new_privs && r.isolation.caps_dropped);
    T_TRUE(r.max_rss_kb > 0);

    json_t *j = pr_sbx_result_json(&r);
    T_TRUE(j != NULL);
    static const char *const keys[] = { "verdict", "exit_code",  "signal",    "cpu_ms",
                                        "wall_ms", "max_rss_kb", "violation", "isolation" };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        T_TRUE(json_object_get(j, keys[i]) != NULL);
    T_TRUE(json_is_null(json_object_get(j, "signal")));
    T_TRUE(json_is_null(json_object_get(j, "violation")));
    json_t *iso = json_object_get(j, "isolation");
    static const char *const flags[] = { "userns", "pidns",   "netns",
                                         "mntns",  "seccomp", "no_new_privs" };
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        T_TRUE(json_is_true(json_object_get(iso, flags[i])));
    T_TRUE(json_is_string(json_object_get(iso, "cgroup")));
    json_decref(j);
}

static void test_runtime_errors(void)
{
    sbx_result r = run_probe("exit", "3", NULL);
    T_EQ_STR(sbx_verdict_name(r.verdict), "RE");
    T_EQ_INT(r.exit_code, 3);
    r = run_probe("segv", NULL, NULL);
    T_EQ_STR(sbx_verdict_name(r.verdict), "RE");
    T_EQ_INT(r.signal, SIGSEGV);
    json_t *j = pr_sbx_result_json(&r);
    T_EQ_INT(json_integer_value(json_object_get(j, "signal")), SIGSEGV);
    json_decref(j);
}

static void test_cpu_and_wall(void)
{
    sbx_limits l = { .cpu_ms = 300, .wall_ms = 5000 };
    sbx_result r = run_probe("spin", NULL, &l);
    T_EQ_STR(sbx_verdict_name(r.verdict), "TLE");
    T_TRUE(r.cpu_ms >= 300 && r.cpu_ms <= 400); /* typically 302 */

    /* CPU of the whole tree: two spinning processes share one limit. */
    l = (sbx_limits){ .cpu_ms = 400, .wall_ms = 5000 };
    r = run_probe("spin_procs", "2", &l);
    T_EQ_STR(sbx_verdict_name(r.verdict), "TLE");
    T_TRUE(r.cpu_ms >= 400 && r.cpu_ms <= 550);

    l = (sbx_limits){ .wall_ms = 300 };
    r = run_probe("sleep", "5000", &l);
    T_EQ_STR(sbx_verdict_name(r.verdict), "WLE");
    T_TRUE(r.wall_ms >= 300 && r.wall_ms < 1500);
    T_TRUE(r.cpu_ms < 100);
}

static void test_memory(const char *cg)
{
    if (strcmp(cg, "none") == 0) {
        fprintf(stderr, "  (no cgroups: memory tests skipped)\n");
        return;
    }
    sbx_limits l = { .mem_mb = 64 };
    sbx_result r = run_probe("membomb", NULL, &l);
    T_EQ_STR(sbx_verdict_name(r.verdict), "MLE");
    T_TRUE(r.max_rss_kb >= 60 * 1024);
    /* A huge PROT_NONE reservation is not resident memory. */
    r = run_probe("reserve", NULL, &l);
    T_EQ_STR(sbx_verdict_name(r.verdict), "OK");
}

static void test_output_limits(void)
{
    sbx_limits l = { .fsize_kb = 1024 };
    sbx_result r = run_probe("fsize", NULL, &l);
    T_EQ_STR(sbx_verdict_name(r.verdict), "OLE");
    T_EQ_INT(r.signal, SIGXFSZ);
    l = (sbx_limits){ .tmp_mb = 4, .fsize_kb = 1 << 20 };
    r = run_probe("tmpfill", NULL, &l);
    T_EQ_STR(sbx_verdict_name(r.verdict), "OLE");
    r = run_probe("inodes", NULL, &l);
    T_EQ_STR(sbx_verdict_name(r.verdict), "OLE");
}

static void test_violations(void)
{
    static const char *const cases[][2] = { { "ptrace", "ptrace" },
                                            { "mount", "mount" },
                                            { "unshare_user", "unshare" },
                                            { "clone_newuser", "clone" },
                                            { "packet", "socket" } };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sbx_result r = run_probe(cases[i][0], NULL, NULL);
        T_EQ_STR(sbx_verdict_name(r.verdict), "SV");
        T_EQ_STR(r.violation, cases[i][1]);
        json_t *j = pr_sbx_result_json(&r);
        T_EQ_STR(json_string_value(json_object_get(json_object_get(j, "violation"), "syscall")),
                 cases[i][1]);
        json_decref(j);
    }
}

static void test_stdio(void)
{
    int in[2], out[2];
    T_EQ_INT(pipe(in), 0);
    T_EQ_INT(pipe(out), 0);
    T_EQ_INT(write(in[1], "hello box\n", 10), 10);
    close(in[1]);
    const char *argv[] = { "/t/sbx_probe", "cat", NULL };
    sbx_spec s;
    sbx_bind b;
    spec_probe(&s, &b, argv);
    s.stdin_fd = in[0];
    s.stdout_fd = out[1];
    sbx_result r;
    T_EQ_INT(sbx_run(&r, &s, NULL), 0);
    close(out[1]);
    close(in[0]);
    char buf[64] = { 0 };
    T_EQ_INT(read(out[0], buf, sizeof(buf) - 1), 10);
    close(out[0]);
    T_EQ_STR(buf, "hello box\n");
    T_EQ_STR(sbx_verdict_name(r.verdict), "OK");
}

static int run_capture(char *buf, size_t bufsz, sbx_spec *s)
{
    int out[2];
    T_EQ_INT(pipe(out), 0);
    s->stdout_fd = out[1];
    s->stderr_fd = out[1];
    sbx_result r;
    pr_error err = { 0 };
    int rc = sbx_run(&r, s, &err);
    close(out[1]);
    memset(buf, 0, bufsz);
    size_t off = 0;
    ssize_t n;
    while (off + 1 < bufsz && (n = read(out[0], buf + off, bufsz - 1 - off)) > 0)
        off += (size_t)n;
    close(out[0]);
    if (rc < 0)
        fprintf(stderr, "sbx_run: %s\n", err.msg);
    else if (r.verdict != SBX_OK)
        fprintf(stderr, "  %s: %s %s %s\n", s->argv[0], sbx_verdict_name(r.verdict), r.violation,
                r.message);
    return rc < 0 ? -1 : (int)r.verdict;
}

static void test_binds_and_chdir(void)
{
    char dir[] = "/tmp/sbx_test_XXXXXX";
    T_TRUE(mkdtemp(dir) != NULL);
    char ro[4200], rw[4200], path[4300];
    snprintf(ro, sizeof(ro), "%s/ro", dir);
    snprintf(rw, sizeof(rw), "%s/rw", dir);
    T_EQ_INT(mkdir(ro, 0755), 0);
    T_EQ_INT(mkdir(rw, 0777), 0);
    T_EQ_INT(chmod(rw, 0777), 0);
    snprintf(path, sizeof(path), "%s/data.txt", ro);
    FILE *f = fopen(path, "w");
    T_TRUE(f != NULL);
    fputs("from the host\n", f);
    fclose(f);

    sbx_bind binds[3] = { { g_probe_dir, "/t", false },
                          { ro, "/box/in", false },
                          { rw, "/box/out", true } };
    sbx_spec s;
    char buf[512];
    const char *a_read[] = { "/t/sbx_probe", "read", "in/data.txt", NULL };
    sbx_spec_init(&s);
    s.binds = binds;
    s.nbinds = 3;
    s.chdir = "/box";
    s.argv = a_read;
    T_EQ_INT(run_capture(buf, sizeof(buf), &s), SBX_OK);
    T_EQ_STR(buf, "from the host\n");

    const char *a_wro[] = { "/t/sbx_probe", "write", "/box/in/new.txt", NULL };
    s.argv = a_wro;
    T_EQ_INT(run_capture(buf, sizeof(buf), &s), SBX_RE);
    T_CONTAINS(buf, "Read-only file system");

    const char *a_wrw[] = { "/t/sbx_probe", "write", "out/result.txt", NULL };
    s.argv = a_wrw;
    T_EQ_INT(run_capture(buf, sizeof(buf), &s), SBX_OK);
    snprintf(path, sizeof(path), "%s/result.txt", rw);
    struct stat st;
    T_EQ_INT(stat(path, &st), 0);
    T_EQ_INT(st.st_size, 8);
    /* Written as the slot's unprivileged host uid, never as root. */
    T_NE_INT(st.st_uid, 0);

    /* A setuid bit left in a writable bind is cleared after the run. */
    const char *a_suid[] = { "/bin/sh", "-c",
                             "touch out/suid && chmod 4755 out/suid && ls -l out/suid", NULL };
    s.argv = a_suid;
    T_EQ_INT(run_capture(buf, sizeof(buf), &s), SBX_OK);
    T_CONTAINS(buf, "rws");
    snprintf(path, sizeof(path), "%s/suid", rw);
    T_EQ_INT(stat(path, &st), 0);
    T_EQ_INT(st.st_mode & (S_ISUID | S_ISGID), 0);
    unlink(path);

    const char *a_who[] = { "/t/sbx_probe", "whoami", NULL };
    s.argv = a_who;
    s.chdir = "/box/out";
    T_EQ_INT(run_capture(buf, sizeof(buf), &s), SBX_OK);
    T_CONTAINS(buf, "uid=1000 gid=1000 pid=2 cwd=/box/out");

    /* The host file system beyond the binds is invisible. */
    const char *a_ls[] = { "/t/sbx_probe", "ls", "/", NULL };
    s.argv = a_ls;
    s.chdir = NULL;
    T_EQ_INT(run_capture(buf, sizeof(buf), &s), SBX_OK);
    T_TRUE(strstr(buf, "\nwork\n") == NULL && strstr(buf, "\nroot\n") == NULL);
    T_TRUE(strstr(buf, "\nhome\n") == NULL && strstr(buf, "\nsys\n") == NULL);
    const char *a_shadow[] = { "/t/sbx_probe", "read", "/etc/shadow", NULL };
    s.argv = a_shadow;
    T_EQ_INT(run_capture(buf, sizeof(buf), &s), SBX_RE);
    T_CONTAINS(buf, "No such file");

    unlink(path);
    snprintf(path, sizeof(path), "%s/data.txt", ro);
    unlink(path);
    rmdir(ro);
    rmdir(rw);
    rmdir(dir);
}

static void test_network(void)
{
    const char *argv_lo[] = { "/t/sbx_probe", "netlo", NULL };
    const char *argv_none[] = { "/t/sbx_probe", "netnone", NULL };
    sbx_spec s;
    sbx_bind b;
    sbx_result r;
    spec_probe(&s, &b, argv_lo);
    s.net = SBX_NET_LOOPBACK;
    T_EQ_INT(sbx_run(&r, &s, NULL), 0);
    T_EQ_STR(sbx_verdict_name(r.verdict), "OK");
    spec_probe(&s, &b, argv_none);
    s.net = SBX_NET_NONE;
    T_EQ_INT(sbx_run(&r, &s, NULL), 0);
    T_EQ_STR(sbx_verdict_name(r.verdict), "OK");

    /* A shared loopback netns, joined by two runs in turn. */
    pr_error err = { 0 };
    int ns = sbx_netns_new(&err);
    if (ns < 0)
        T_FAIL("sbx_netns_new: %s", err.msg);
    for (int i = 0; i < 2; i++) {
        spec_probe(&s, &b, argv_lo);
        s.netns_fd = ns;
        T_EQ_INT(sbx_run(&r, &s, NULL), 0);
        T_EQ_STR(sbx_verdict_name(r.verdict), "OK");
    }
    close(ns);
}

static bool uid_has_process(unsigned uid)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    bool found = false;
    char path[300], line[256];
    while (d && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/status", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        while (fgets(line, sizeof(line), f)) {
            unsigned r, eu;
            if (sscanf(line, "Uid: %u %u", &r, &eu) == 2 && (r == uid || eu == uid))
                found = true;
        }
        fclose(f);
    }
    if (d)
        closedir(d);
    return found;
}

static void test_daemon_dies(void)
{
    const char *argv[] = { "/t/sbx_probe", "daemon", NULL };
    sbx_spec s;
    sbx_bind b;
    sbx_result r;
    spec_probe(&s, &b, argv);
    s.slot = 901;
    T_EQ_INT(sbx_run(&r, &s, NULL), 0);
    T_EQ_STR(sbx_verdict_name(r.verdict), "OK");
    T_TRUE(!uid_has_process(sbx_slot_host_uid(901)));
    T_TRUE(!uid_has_process(sbx_slot_host_uid(901) - 1));

    /* A fork bomb hits pids.max (EAGAIN) and is gone afterwards too. */
    const char *argv_fb[] = { "/t/sbx_probe", "forkbomb", NULL };
    spec_probe(&s, &b, argv_fb);
    s.slot = 902;
    s.limits.procs = 20;
    T_EQ_INT(sbx_run(&r, &s, NULL), 0);
    T_EQ_STR(sbx_verdict_name(r.verdict), "OK");
    T_TRUE(!uid_has_process(sbx_slot_host_uid(902)));
}

/* No box cgroup of this process is left in any hierarchy. */
static void test_no_cgroup_left(void)
{
    static const char *const roots[] = { "/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids",
                                         "/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup" };
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "proctor-%ld-", (long)getpid());
    FILE *f = fopen("/proc/self/cgroup", "r");
    char line[1024];
    int checked = 0;
    while (f && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        char *path = strchr(strchr(line, ':') + 1, ':') + 1;
        for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
            char dir[2048];
            snprintf(dir, sizeof(dir), "%s%s", roots[i], path);
            DIR *d = opendir(dir);
            struct dirent *e;
            while (d && (e = readdir(d))) {
                if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
                    T_FAIL("cgroup left behind: %s/%s", dir, e->d_name);
            }
            if (d) {
                checked++;
                closedir(d);
            }
        }
    }
    if (f)
        fclose(f);
    T_TRUE(checked > 0);
}

static void test_runtimes(void)
{
    const char *py[] = { "/usr/bin/python3", "-c",
                         "import json,os; print(json.dumps([os.getuid()]))", NULL };
    const char *node[] = { "/usr/bin/node", "-e", "console.log(JSON.stringify([1+1]))", NULL };
    sbx_spec s;
    char buf[256];
    if (access(py[0], X_OK) == 0) {
        sbx_spec_init(&s);
        s.argv = py;
        s.profile = "python";
        T_EQ_INT(run_capture(buf, sizeof(buf), &s), SBX_OK);
        T_EQ_STR(buf, geteuid() == 0 ? "[1000]\n" : "[0]\n");
    }
    if (access(node[0], X_OK) == 0) {
        sbx_spec_init(&s);
        s.argv = node;
        s.profile = "node";
        s.limits.mem_mb = 512;
        T_EQ_INT(run_capture(buf, sizeof(buf), &s), SBX_OK);
        T_EQ_STR(buf, "[2]\n");
    }
}

/* gcc and go build under the "build" profile into a writable work dir, then run the results
 * under "default" and "go". */
static void test_build_profiles(void)
{
    char dir[] = "/tmp/sbx_build_XXXXXX";
    T_TRUE(mkdtemp(dir) != NULL);
    T_EQ_INT(chmod(dir, 0777), 0);
    char path[4200], buf[4096];
    snprintf(path, sizeof(path), "%s/main.c", dir);
    FILE *f = fopen(path, "w");
    fputs("#include <stdio.h>\nint main(void){puts(\"c hello\");return 0;}\n", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/main.go", dir);
    f = fopen(path, "w");
    fputs("package main\nimport \"fmt\"\nfunc main(){ fmt.Println(\"go hello\") }\n", f);
    fclose(f);
    sbx_bind b = { dir, "/box", true };
    sbx_spec s;
    const char *env[] = { "PATH=/usr/local/bin:/usr/bin:/bin",
                          "HOME=/tmp",
                          "GOCACHE=/tmp/gocache",
                          "GOPATH=/tmp/gopath",
                          "GO111MODULE=off",
                          NULL };

    if (access("/usr/bin/gcc", X_OK) == 0) {
        const char *cc[] = { "gcc", "-O1", "-o", "main_c", "main.c", NULL };
        sbx_spec_init(&s);
        s.binds = &b;
        s.nbinds = 1;
        s.chdir = "/box";
        s.argv = cc;
        s.profile = "build";
        s.limits.mem_mb = 512;
        T_EQ_INT(run_capture(buf, sizeof(buf), &s), SBX_OK);
        const char *run[] = { "/box/main_c", NULL };
        s.argv = run;
        s.profile = "default";
        T_EQ_INT(run_capture(buf, sizeof(buf), &s), SBX_OK);
        T_EQ_STR(buf, "c hello\n");
    }
    if (access("/usr/bin/go", X_OK) == 0) {
        const char *gob[] = { "/usr/bin/go", "build", "-o", "main_go", "main.go", NULL };
        sbx_spec_init(&s);
        s.binds = &b;
        s.nbinds = 1;
        s.chdir = "/box";
        s.argv = gob;
        s.envp = env;
        s.profile = "build";
        s.limits.mem_mb = 1024;
        s.limits.tmp_mb = 512;
        s.limits.cpu_ms = 60000;
        s.limits.wall_ms = 60000;
        s.limits.procs = 256;
        int v = run_capture(buf, sizeof(buf), &s);
        if (v != SBX_OK)
            fprintf(stderr, "go build output: %s\n", buf);
        T_EQ_INT(v, SBX_OK);
        const char *run[] = { "/box/main_go", NULL };
        sbx_spec_init(&s);
        s.binds = &b;
        s.nbinds = 1;
        s.argv = run;
        s.profile = "go";
        T_EQ_INT(run_capture(buf, sizeof(buf), &s), SBX_OK);
        T_EQ_STR(buf, "go hello\n");
    }
    T_EQ_INT(pr_rm_rf(dir), 0);
}

/* A long-running server: spawn, talk to it from a thread in its netns, read its usage, kill. */
static void test_spawn_server(void)
{
    const char *py[] = { "/usr/bin/python3", "-c",
                         "import socket\n"
                         "s=socket.socket(); s.bind(('127.0.0.1',8080)); s.listen(4)\n"
                         "while True:\n"
                         "  c,_=s.accept(); c.sendall(b'pong'); c.close()\n",
                         NULL };
    sbx_spec s;
    sbx_spec_init(&s);
    s.argv = py;
    s.profile = "python";
    s.net = SBX_NET_LOOPBACK;
    s.limits.wall_ms = 20000;
    sbx_proc *p = NULL;
    pr_error err = { 0 };
    T_EQ_INT(sbx_spawn(&p, &s, &err), 0);
    int nsfd = sbx_proc_netns_fd(p);
    T_TRUE(nsfd >= 0);
    int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    T_EQ_INT(setns(nsfd, CLONE_NEWNET), 0);
    char got[8] = { 0 };
    for (int attempt = 0; attempt < 500; attempt++) {
        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = { .sin_family = AF_INET,
                                 .sin_port = htons(8080),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        if (connect(c, (struct sockaddr *)&a, sizeof(a)) == 0) {
            T_EQ_INT(read(c, got, 4), 4);
            close(c);
            break;
        }
        close(c);
        struct timespec ts = { 0, 20000000 };
        nanosleep(&ts, NULL);
    }
    T_EQ_INT(setns(self, CLONE_NEWNET), 0);
    close(self);
    T_EQ_STR(got, "pong");
    T_TRUE(sbx_proc_cpu_us(p) > 0);
    T_TRUE(sbx_proc_rss_kb(p) > 0);
    sbx_proc_kill(p);
    sbx_result r;
    T_EQ_INT(sbx_proc_wait(p, &r, &err), 0);
    T_EQ_INT(r.signal, SIGKILL);
    sbx_proc_free(p);
}

/* The filters built into the binary are the ones the rule tables compile to today. */
static void test_filters_current(void)
{
    for (size_t i = 0; i < sbx__seccomp_nprofiles(); i++) {
        const struct sock_fprog *built = NULL;
        struct sock_fprog *fresh = NULL;
        pr_error err = { 0 };
        T_EQ_INT(sbx__seccomp_get(&built, sbx__seccomp_profile_name(i), &err), 0);
        T_EQ_INT(sbx__seccomp_compile(&fresh, i, &err), 0);
        T_EQ_INT(built->len, fresh->len);
        T_EQ_INT(memcmp(built->filter, fresh->filter, fresh->len * sizeof(fresh->filter[0])), 0);
        sbx__seccomp_free(fresh);
    }
    const struct sock_fprog *none = NULL;
    T_EQ_INT(sbx__seccomp_get(&none, "java", NULL), PR_EINVAL);
}

/* spec.cpu pins the box: the program sees one CPU. */
static void test_cpu_pin(void)
{
    const char *argv[] = { "/usr/bin/nproc", NULL };
    sbx_spec s;
    sbx_spec_init(&s);
    s.argv = argv;
    s.cpu = 0;
    char buf[64];
    T_EQ_INT(run_capture(buf, sizeof(buf), &s), SBX_OK);
    T_EQ_STR(buf, "1\n");
}

typedef struct par_arg {
    int slot;
    int verdict;
} par_arg;

static void *par_run(void *arg)
{
    par_arg *pa = arg;
    const char *argv[] = { "/t/sbx_probe", "exit", "7", NULL };
    sbx_spec s;
    sbx_bind b;
    spec_probe(&s, &b, argv);
    s.slot = pa->slot;
    sbx_result r;
    pa->verdict = -1;
    for (int i = 0; i < 5; i++) {
        if (sbx_run(&r, &s, NULL) < 0 || r.exit_code != 7)
            return NULL;
    }
    pa->verdict = (int)r.verdict;
    return NULL;
}

static void test_parallel(void)
{
    pthread_t th[4];
    par_arg pa[4];
    for (int i = 0; i < 4; i++) {
        pa[i].slot = 910 + i;
        T_EQ_INT(pthread_create(&th[i], NULL, par_run, &pa[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        T_EQ_INT(pthread_join(th[i], NULL), 0);
        T_EQ_INT(pa[i].verdict, SBX_RE);
    }
}

static bool userns_available(void)
{
    long pid =
        syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | CLONE_NEWPID | SIGCHLD), 0, 0, 0, 0);
    if (pid == 0)
        _exit(0);
    if (pid < 0)
        return false;
    int st;
    waitpid((pid_t)pid, &st, 0);
    return true;
}

int main(int argc, char **argv)
{
    if (!userns_available())
        T_SKIP("user namespaces unavailable");
    snprintf(g_probe_dir, sizeof(g_probe_dir), "%s/tests/sbx", PR_BINARY_DIR);
    pr_error err = { 0 };
    T_EQ_INT(sbx_global_init(&err), 0);
    /* --loop: the same tests with every box watched by a libuv loop (as in the daemon). */
    pr_boxwatch *bw = NULL;
    if (argc > 1 && strcmp(argv[1], "--loop") == 0) {
        T_EQ_INT(pr_boxwatch_start_thread(&bw, &err), 0);
        argc--;
        argv++;
    }
    sbx_result first = run_probe("ok", NULL, NULL);
    if (first.verdict == SBX_IE && strstr(first.message, "seccomp"))
        T_SKIP("seccomp unavailable");
    const char *only = argc > 1 ? argv[1] : NULL;
#define RUN(name, call)                         \
    do {                                        \
        if (!only || strcmp(only, name) == 0) { \
            fprintf(stderr, "-- %s\n", name);   \
            call;                               \
        }                                       \
    } while (0)
    /* Without root the box maps only our own id and gets no cgroups: limits and identities
     * differ, so only the behaviour that does not depend on them runs. */
    const bool root = geteuid() == 0;
    if (!root)
        fprintf(stderr, "  (not root: unprivileged mode, limit and identity tests skipped)\n");
    RUN("ok", test_ok_and_isolation());
    RUN("re", test_runtime_errors());
    if (root)
        RUN("limits", test_cpu_and_wall());
    RUN("memory", test_memory(first.isolation.cgroup));
    RUN("output", test_output_limits());
    RUN("violations", test_violations());
    RUN("stdio", test_stdio());
    if (root)
        RUN("binds", test_binds_and_chdir());
    if (root)
        RUN("network", test_network()); /* joining a netns needs CAP_SYS_ADMIN */
    if (root)
        RUN("daemon", test_daemon_dies());
    RUN("runtimes", test_runtimes());
    if (root)
        RUN("build", test_build_profiles());
    if (root)
        RUN("server", test_spawn_server());
    RUN("parallel", test_parallel());
    RUN("filters", test_filters_current());
    if (root)
        RUN("cpupin", test_cpu_pin());
    RUN("cgroups", test_no_cgroup_left());
    if (bw) {
        pr_boxwatch_stats st;
        pr_boxwatch_get_stats(bw, &st);
        fprintf(stderr, "  loop watched %llu boxes (%llu limit timers, %llu wake-ups)\n",
                (unsigned long long)st.watched, (unsigned long long)st.limit_checks,
                (unsigned long long)st.wakeups);
        T_TRUE(st.watched >= (only ? 1u : 10u));
        T_TRUE(st.wakeups >= st.watched);
        T_EQ_INT((int)st.active, 0);
        pr_boxwatch_stop(bw);
    }
    sbx_global_cleanup();
    return 0;
}
