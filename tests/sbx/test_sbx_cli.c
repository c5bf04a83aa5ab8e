/* `proctor sandbox` through the real binary: exit statuses, the result object on stderr or in
 * --result, stdin/stdout passthrough, binds, usage errors. */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "t.h"

static const char *g_proctor;
static char g_probe[4096];

typedef struct out {
    int status; /* exit status of proctor */
    char out[8192];
    char err[16384];
} out;

static void slurp(int fd, char *buf, size_t size)
{
    size_t off = 0;
    ssize_t n;
    while (off + 1 < size && (n = read(fd, buf + off, size - 1 - off)) > 0)
        off += (size_t)n;
    buf[off] = '\0';
}

/* Runs proctor with argv (NULL-terminated, without argv[0]); input goes to its stdin. */
static void run(out *o, const char *input, const char *const *args)
{
    const char *argv[64];
    size_t n = 0;
    argv[n++] = g_proctor;
    for (size_t i = 0; args[i] && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    int in[2], po[2], pe[2];
    T_EQ_INT(pipe(in), 0);
    T_EQ_INT(pipe(po), 0);
    T_EQ_INT(pipe(pe), 0);
    pid_t pid = fork();
    T_TRUE(pid >= 0);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(in[1]);
        close(po[0]);
        close(pe[0]);
        execv(g_proctor, (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    close(po[1]);
    close(pe[1]);
    if (input)
        T_EQ_INT(write(in[1], input, strlen(input)), (long long)strlen(input));
    close(in[1]);
    /* Small outputs: read stdout fully, then stderr. */
    slurp(po[0], o->out, sizeof(o->out));
    slurp(pe[0], o->err, sizeof(o->err));
    close(po[0]);
    close(pe[0]);
    int st;
    T_EQ_INT(waitpid(pid, &st, 0), pid);
    T_TRUE(WIFEXITED(st));
    o->status = WEXITSTATUS(st);
}

/* The result object: the last line on stderr. */
static json_t *last_line_json(const char *err)
{
    size_t len = strlen(err);
    while (len > 0 && err[len - 1] == '\n')
        len--;
    const char *start = err + len;
    while (start > err && start[-1] != '\n')
        start--;
    json_error_t je;
    json_t *j = json_loadb(start, (size_t)(err + len - start), 0, &je);
    if (!j)
        T_FAIL("last stderr line is not JSON (%s): %.*s", je.text, (int)(err + len - start), start);
    return j;
}

static const char *verdict(json_t *j)
{
    return json_string_value(json_object_get(j, "verdict"));
}

static void test_ok_and_shape(void)
{
    out o;
    const char *args[] = { "sandbox", "--ro", g_probe, "--", "/t/sbx_probe", "ok", NULL };
    char bind[4200];
    snprintf(bind, sizeof(bind), "%s:/t", g_probe);
    args[2] = bind;
    run(&o, NULL, args);
    T_EQ_INT(o.status, 0);
    json_t *j = last_line_json(o.err);
    T_EQ_STR(verdict(j), "OK");
    T_EQ_INT(json_integer_value(json_object_get(j, "exit_code")), 0);
    T_TRUE(json_is_null(json_object_get(j, "signal")));
    T_TRUE(json_is_integer(json_object_get(j, "cpu_ms")));
    T_TRUE(json_is_integer(json_object_get(j, "wall_ms")));
    T_TRUE(json_is_integer(json_object_get(j, "max_rss_kb")));
    T_TRUE(json_is_null(json_object_get(j, "violation")));
    json_t *iso = json_object_get(j, "isolation");
    T_TRUE(json_is_true(json_object_get(iso, "userns")));
    T_TRUE(json_is_true(json_object_get(iso, "pidns")));
    T_TRUE(json_is_true(json_object_get(iso, "netns")));
    T_TRUE(json_is_true(json_object_get(iso, "mntns")));
    T_TRUE(json_is_true(json_object_get(iso, "seccomp")));
    T_TRUE(json_is_true(json_object_get(iso, "no_new_privs")));
    const char *cg = json_string_value(json_object_get(iso, "cgroup"));
    T_TRUE(cg && (!strcmp(cg, "v1") || !strcmp(cg, "v2") || !strcmp(cg, "none")));
    json_decref(j);
}

static void test_passthrough_and_result_file(void)
{
    char bind[4200], result[] = "/tmp/sbx_cli_result_XXXXXX";
    snprintf(bind, sizeof(bind), "%s:/t", g_probe);
    int fd = mkstemp(result);
    T_TRUE(fd >= 0);
    close(fd);
    const char *args[] = { "sandbox", "--ro",         bind,  "--result", result,
                           "--",      "/t/sbx_probe", "cat", NULL };
    out o;
    run(&o, "line one\nline two\n", args);
    T_EQ_INT(o.status, 0);
    T_EQ_STR(o.out, "line one\nline two\n");
    T_EQ_STR(o.err, ""); /* nothing on stderr: the result went to the file */
    json_error_t je;
    json_t *j = json_load_file(result, 0, &je);
    T_TRUE(j != NULL);
    T_EQ_STR(verdict(j), "OK");
    json_decref(j);
    unlink(result);

    /* The program's own stderr comes first, the result object is the last line. */
    const char *sh[] = { "sandbox", "--", "/bin/sh", "-c", "echo to-err >&2; echo to-out; exit 4",
                         NULL };
    run(&o, NULL, sh);
    T_EQ_INT(o.status, 0);
    T_EQ_STR(o.out, "to-out\n");
    T_TRUE(strncmp(o.err, "to-err\n", 7) == 0);
    j = last_line_json(o.err);
    T_EQ_STR(verdict(j), "RE");
    T_EQ_INT(json_integer_value(json_object_get(j, "exit_code")), 4);
    json_decref(j);
}

static void test_limits_and_violation(void)
{
    char bind[4200];
    snprintf(bind, sizeof(bind), "%s:/t", g_probe);
    out o;
    const bool root = geteuid() == 0; /* without root: no cgroups, CPU limit by rlimit only */
    const char *tle[] = { "sandbox", "--ro",         bind,   "--cpu-ms", "200",
                          "--",      "/t/sbx_probe", "spin", NULL };
    json_t *j = NULL;
    if (root) {
        run(&o, NULL, tle);
        T_EQ_INT(o.status, 0);
        j = last_line_json(o.err);
        T_EQ_STR(verdict(j), "TLE");
        json_int_t cpu = json_integer_value(json_object_get(j, "cpu_ms"));
        T_TRUE(cpu >= 200 && cpu <= 300);
        json_decref(j);
    }

    const char *wle[] = { "sandbox", "--ro",         bind,    "--wall-ms", "200",
                          "--",      "/t/sbx_probe", "sleep", "3000",      NULL };
    run(&o, NULL, wle);
    j = last_line_json(o.err);
    T_EQ_STR(verdict(j), "WLE");
    json_decref(j);

    const char *sv[] = { "sandbox", "--ro", bind, "--", "/t/sbx_probe", "mount", NULL };
    run(&o, NULL, sv);
    T_EQ_INT(o.status, 0);
    j = last_line_json(o.err);
    T_EQ_STR(verdict(j), "SV");
    T_EQ_STR(json_string_value(json_object_get(json_object_get(j, "violation"), "syscall")),
             "mount");
    json_decref(j);

    const char *py[] = { "sandbox",
                         "--profile",
                         "python",
                         "--mem-mb",
                         "64",
                         "--",
                         "/usr/bin/python3",
                         "-c",
                         "b = bytearray(256 << 20); print(len(b))",
                         NULL };
    if (root) {
        run(&o, NULL, py);
        j = last_line_json(o.err);
        T_EQ_STR(verdict(j), "MLE");
        json_decref(j);
    }
}

static void test_binds_chdir_env(void)
{
    char dir[] = "/tmp/sbx_cli_XXXXXX";
    T_TRUE(mkdtemp(dir) != NULL);
    T_EQ_INT(chmod(dir, 0777), 0);
    char bind_t[4200], bind_w[4200];
    snprintf(bind_t, sizeof(bind_t), "%s:/t", g_probe);
    snprintf(bind_w, sizeof(bind_w), "%s:/work/box", dir);
    const char *args[] = { "sandbox",
                           "--ro",
                           bind_t,
                           "--rw",
                           bind_w,
                           "--chdir",
                           "/work/box",
                           "--env",
                           "GREETING=hi there",
                           "--",
                           "/bin/sh",
                           "-c",
                           "pwd; echo \"$GREETING\" > note.txt; echo \"$HOME\"; cat note.txt",
                           NULL };
    out o;
    run(&o, NULL, args);
    T_EQ_INT(o.status, 0);
    T_EQ_STR(o.out, "/work/box\n/tmp\nhi there\n");
    char path[4200];
    snprintf(path, sizeof(path), "%s/note.txt", dir);
    T_EQ_INT(access(path, F_OK), 0);
    unlink(path);
    rmdir(dir);
}

/* --result never replaces or follows what is already at the path: a device stays a device, a
 * symlink is refused and its target untouched. */
static void test_result_path_safety(void)
{
    out o;
    const char *devnull[] = { "sandbox", "--result", "/dev/null", "--", "/bin/true", NULL };
    run(&o, NULL, devnull);
    T_EQ_INT(o.status, 0);
    struct stat st;
    T_EQ_INT(stat("/dev/null", &st), 0);
    T_TRUE(S_ISCHR(st.st_mode));

    char dir[] = "/tmp/sbx_cli_res_XXXXXX";
    T_TRUE(mkdtemp(dir) != NULL);
    char canary[4200], link[4200];
    snprintf(canary, sizeof(canary), "%s/canary", dir);
    snprintf(link, sizeof(link), "%s/result.json", dir);
    FILE *f = fopen(canary, "w");
    fputs("canary\n", f);
    fclose(f);
    T_EQ_INT(symlink(canary, link), 0);
    const char *viasym[] = { "sandbox", "--result", link, "--", "/bin/true", NULL };
    run(&o, NULL, viasym);
    T_EQ_INT(o.status, 1);
    char buf[64] = { 0 };
    f = fopen(canary, "r");
    T_TRUE(fgets(buf, sizeof(buf), f) != NULL);
    fclose(f);
    T_EQ_STR(buf, "canary\n");
    unlink(link);
    unlink(canary);

    /* A bind source with a symbolic link in it is refused (a planted work/link -> /root). */
    T_EQ_INT(symlink("/root", link), 0);
    char bind[4300];
    snprintf(bind, sizeof(bind), "%s:/data", link);
    const char *sym[] = { "sandbox", "--ro", bind, "--", "/bin/ls", "/data", NULL };
    run(&o, NULL, sym);
    T_NE_INT(o.status, 0);
    T_EQ_STR(o.out, "");
    unlink(link);
    rmdir(dir);
}

static void test_usage(void)
{
    out o;
    const char *help[] = { "sandbox", "--help", NULL };
    run(&o, NULL, help);
    T_EQ_INT(o.status, 0);
    T_CONTAINS(o.out, "--cpu-ms");
    T_CONTAINS(o.out, "--profile");
    T_CONTAINS(o.out, "--result");
    const char *noprog[] = { "sandbox", "--cpu-ms", "100", NULL };
    run(&o, NULL, noprog);
    T_EQ_INT(o.status, 2);
    T_CONTAINS(o.err, "no program");
    const char *badnum[] = { "sandbox", "--cpu-ms", "lots", "--", "/bin/true", NULL };
    run(&o, NULL, badnum);
    T_EQ_INT(o.status, 2);
    T_CONTAINS(o.err, "--cpu-ms");
    const char *badopt[] = { "sandbox", "--frobnicate", "--", "/bin/true", NULL };
    run(&o, NULL, badopt);
    T_EQ_INT(o.status, 2);
    T_CONTAINS(o.err, "--help");
    const char *badnet[] = { "sandbox", "--net", "internet", "--", "/bin/true", NULL };
    run(&o, NULL, badnet);
    T_EQ_INT(o.status, 2);
    const char *badprof[] = { "sandbox", "--profile", "java", "--", "/bin/true", NULL };
    run(&o, NULL, badprof);
    T_EQ_INT(o.status, 2);
    const char *nobind[] = { "sandbox", "--ro", "/nonexistent/dir", "--", "/bin/true", NULL };
    run(&o, NULL, nobind);
    T_EQ_INT(o.status, 2);
    /* A program that does not exist is the sandbox failing to run it: IE, status 1. */
    const char *noexe[] = { "sandbox", "--", "/no/such/program", NULL };
    run(&o, NULL, noexe);
    T_EQ_INT(o.status, 1);
    json_t *j = last_line_json(o.err);
    T_EQ_STR(verdict(j), "IE");
    T_CONTAINS(json_string_value(json_object_get(j, "message")), "No such file");
    json_decref(j);
}

int main(void)
{
    g_proctor = getenv("PROCTOR");
    if (!g_proctor)
        T_SKIP("PROCTOR not set");
    long pid =
        syscall(SYS_clone, (unsigned long)(0x10000000 /* CLONE_NEWUSER */ | SIGCHLD), 0, 0, 0, 0);
    if (pid == 0)
        _exit(0);
    if (pid < 0)
        T_SKIP("user namespaces unavailable");
    waitpid((pid_t)pid, NULL, 0);
    snprintf(g_probe, sizeof(g_probe), "%s/tests/sbx", PR_BINARY_DIR);
    test_ok_and_shape();
    test_passthrough_and_result_file();
    test_limits_and_violation();
    test_binds_chdir_env();
    test_usage();
    test_result_path_safety();
    return 0;
}
