/* Runtimes: the shipped runner/runtimes.json loads, detection by files and by proctor.json, a
 * symlinked or oversized proctor.json is refused, bad configuration names file and field. */
#include "proctor/runtime.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "proctor/common.h"
#include "t.h"

static void write_file(const char *dir, const char *name, const char *text)
{
    char p[512];
    (void)snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "we");
    T_NOT_NULL(f);
    T_TRUE(fputs(text, f) >= 0);
    T_EQ_INT(fclose(f), 0);
}

static void fresh_dir(char *dir, size_t dirsz)
{
    (void)snprintf(dir, dirsz, "/tmp/pr-test-rt-XXXXXX");
    T_NOT_NULL(mkdtemp(dir));
}

static const char *detect_name(const pr_runtimes *rts, const char *dir, pr_error *err)
{
    const pr_runtime *rt = NULL;
    int rc = pr_runtimes_detect(&rt, rts, dir, err);
    if (rc < 0) {
        T_NULL(rt);
        return NULL;
    }
    T_NOT_NULL(rt);
    return rt->name;
}

static void test_shipped(pr_runtimes *rts)
{
    const char *names[] = { "c", "python", "node", "go" };
    for (size_t i = 0; i < 4; i++) {
        const pr_runtime *rt = pr_runtimes_find(rts, names[i]);
        T_NOT_NULL(rt);
        T_NOT_NULL(rt->run_argv);
        T_NOT_NULL(rt->build_argv);
        T_EQ_STR(rt->build_profile, "build");
        T_TRUE(rt->build_cpu_ms > 0 && rt->build_wall_ms > 0 && rt->build_mem_mb > 0);
    }
    T_EQ_STR(pr_runtimes_find(rts, "python")->run_argv[0], "/usr/bin/python3");
    T_EQ_STR(pr_runtimes_find(rts, "python")->profile, "python");
    T_EQ_STR(pr_runtimes_find(rts, "node")->profile, "node");
    T_EQ_STR(pr_runtimes_find(rts, "go")->profile, "go");
    T_EQ_STR(pr_runtimes_find(rts, "c")->profile, "default");
    T_EQ_STR(pr_runtimes_find(rts, "c")->run_argv[0], "/box/main");
    T_TRUE(pr_runtimes_find(rts, "python")->available == (access("/usr/bin/python3", X_OK) == 0));
    T_TRUE(pr_runtimes_find(rts, "go")->available ==
           (access("/usr/bin/go", X_OK) == 0 || access("/usr/lib/go/bin/go", X_OK) == 0));
    T_NULL(pr_runtimes_find(rts, "cobol"));
}

static void test_detect(const pr_runtimes *rts)
{
    pr_error err = { 0 };
    char dir[64];
    fresh_dir(dir, sizeof(dir));

    T_NULL(detect_name(rts, dir, &err));
    T_CONTAINS(err.msg, "cannot tell the runtime");
    write_file(dir, "main.c", "int main(void){return 0;}\n");
    T_EQ_STR(detect_name(rts, dir, &err), "c");
    write_file(dir, "main.py", "print(1)\n");
    T_EQ_STR(detect_name(rts, dir, &err), "python");
    write_file(dir, "package.json", "{}\n");
    T_EQ_STR(detect_name(rts, dir, &err), "node");
    write_file(dir, "go.mod", "module x\n");
    T_EQ_STR(detect_name(rts, dir, &err), "go");

    /* proctor.json wins over detection. */
    write_file(dir, "proctor.json", "{\"runtime\": \"c\"}\n");
    T_EQ_STR(detect_name(rts, dir, &err), "c");
    write_file(dir, "proctor.json", "{\"runtime\": \"cobol\"}\n");
    T_NULL(detect_name(rts, dir, &err));
    T_CONTAINS(err.msg, "proctor.json: runtime: expected one of");
    T_CONTAINS(err.msg, "got \"cobol\"");
    write_file(dir, "proctor.json", "{\"runtime\": 3}\n");
    T_NULL(detect_name(rts, dir, &err));
    T_CONTAINS(err.msg, "proctor.json: runtime: expected a string");
    write_file(dir, "proctor.json", "{\"runtime\": \"c\", \"runtime\": \"go\"}\n");
    T_NULL(detect_name(rts, dir, &err));
    T_CONTAINS(err.msg, "duplicate");

    /* A symlinked proctor.json is refused, even when it points at a good file. */
    char p[256];
    (void)snprintf(p, sizeof(p), "%s/proctor.json", dir);
    T_EQ_INT(unlink(p), 0);
    write_file(dir, "real.json", "{\"runtime\": \"python\"}\n");
    T_EQ_INT(symlink("real.json", p), 0);
    const pr_runtime *rt = NULL;
    T_EQ_INT(pr_runtimes_detect(&rt, rts, dir, &err), PR_EUNSAFE);
    T_NULL(rt);
    T_CONTAINS(err.msg, "symlink");
    T_EQ_INT(unlink(p), 0);
    T_EQ_INT(symlink("/etc/shadow", p), 0);
    T_EQ_INT(pr_runtimes_detect(&rt, rts, dir, &err), PR_EUNSAFE);
    T_EQ_INT(unlink(p), 0);

    /* A huge proctor.json is refused before it is parsed. */
    FILE *f = fopen(p, "we");
    T_NOT_NULL(f);
    for (int i = 0; i < 100000; i++)
        T_TRUE(fputs("          ", f) >= 0);
    T_EQ_INT(fclose(f), 0);
    T_EQ_INT(pr_runtimes_detect(&rt, rts, dir, &err), PR_ELIMIT);
    T_EQ_INT(unlink(p), 0);

    /* A detect file that is a symlink still selects (it is never read by the runner). */
    char d2[64];
    fresh_dir(d2, sizeof(d2));
    char q[256];
    (void)snprintf(q, sizeof(q), "%s/main.py", d2);
    T_EQ_INT(symlink("/etc/shadow", q), 0);
    T_EQ_STR(detect_name(rts, d2, &err), "python");
    T_EQ_INT(pr_rm_rf(d2), 0);
    T_EQ_INT(pr_rm_rf(dir), 0);
}

static void test_bad_config(void)
{
    pr_error err = { 0 };
    pr_runtimes *rts = NULL;
    char dir[64];
    fresh_dir(dir, sizeof(dir));
    char p[256];
    (void)snprintf(p, sizeof(p), "%s/rt.json", dir);

    write_file(dir, "rt.json", "{\"runtimes\": [{\"name\": \"x\"}]}");
    T_EQ_INT(pr_runtimes_load(&rts, p, &err), PR_EINVAL);
    T_CONTAINS(err.msg, "rt.json: runtimes[0].run: expected a non-empty array");
    write_file(
        dir, "rt.json",
        "{\"runtimes\": [{\"name\": \"x\", \"run\": [\"/bin/true\"], \"env\": [\"NOEQ\"]}]}");
    T_EQ_INT(pr_runtimes_load(&rts, p, &err), PR_EINVAL);
    T_CONTAINS(err.msg, "runtimes[0].env[0]: expected \"KEY=VALUE\"");
    write_file(dir, "rt.json",
               "{\"runtimes\": [{\"name\": \"x\", \"run\": [\"/bin/true\"]},"
               " {\"name\": \"x\", \"run\": [\"/bin/true\"]}]}");
    T_EQ_INT(pr_runtimes_load(&rts, p, &err), PR_EINVAL);
    T_CONTAINS(err.msg, "runtimes[1].name: \"x\" appears twice");
    write_file(dir, "rt.json",
               "{\"runtimes\": [{\"name\": \"x\", \"run\": [\"/nope/x\"],"
               " \"build_limits\": {\"cpu_ms\": 0}}]}");
    T_EQ_INT(pr_runtimes_load(&rts, p, &err), PR_EINVAL);
    T_CONTAINS(err.msg, "runtimes[0].build_limits.cpu_ms");
    write_file(dir, "rt.json", "{\"runtimes\": [{\"name\": \"x\", \"run\": [\"/nope/x\"]}]}");
    T_EQ_INT(pr_runtimes_load(&rts, p, &err), 0);
    T_TRUE(!pr_runtimes_find(rts, "x")->available);
    T_TRUE(pr_runtimes_find(rts, "x")->time_multiplier == 1.0);
    pr_runtimes_free(rts);
    T_EQ_INT(pr_runtimes_load(&rts, "/nonexistent/rt.json", &err), PR_ENOTFOUND);
    T_CONTAINS(err.msg, "/nonexistent/rt.json");
    T_EQ_INT(pr_rm_rf(dir), 0);
}

int main(void)
{
    json_set_alloc_funcs(pr_malloc, pr_free);
    pr_runtimes *rts = NULL;
    pr_error err = { 0 };
    char path[512];
    (void)snprintf(path, sizeof(path), "%s/runner/runtimes.json", PR_SOURCE_DIR);
    T_EQ_INT(pr_runtimes_load(&rts, path, &err), 0);
    test_shipped(rts);
    test_detect(rts);
    pr_runtimes_free(rts);
    /* The default path (no argument) finds the shipped file from the source tree. */
    T_EQ_INT(pr_runtimes_load(&rts, NULL, &err), 0);
    T_NOT_NULL(pr_runtimes_find(rts, "python"));
    pr_runtimes_free(rts);
    test_bad_config();

    /* alloc-fail-Nth over loading the shipped file. */
    int n;
    for (n = 0; n < 5000; n++) {
        pr_alloc_fail_after(n);
        int rc = pr_runtimes_load(&rts, path, &err);
        pr_alloc_fail_after(-1);
        if (rc == 0) {
            pr_runtimes_free(rts);
            break;
        }
        T_NULL(rts);
    }
    T_TRUE(n > 10 && n < 5000);
    return 0;
}
