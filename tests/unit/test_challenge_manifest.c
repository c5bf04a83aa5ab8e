/* Manifest validation, data-driven: every tests/fixtures/manifests/<case>/ holds a challenge.json
 * and an `error` file with the substring the message must contain. Also: duplicate keys, the
 * symlinked manifest, a valid pack's fields and digest, and an alloc-fail-Nth loop. */
#include "proctor/challenge.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proctor/common.h"
#include "proctor/error.h"
#include "proctor/kind.h"
#include "t.h"

static char *slurp_line(const char *path)
{
    static char buf[1024];
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    (void)fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    return buf;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char p[4096];
    (void)snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "we");
    T_NOT_NULL(f);
    T_EQ_INT(fputs(text, f) >= 0, 1);
    T_EQ_INT(fclose(f), 0);
}

/* One case: dir holds challenge.json (or not) and `error`, the substring the message must hold. */
static void run_case(const char *dir)
{
    char errfile[8300], file[8300];
    (void)snprintf(errfile, sizeof(errfile), "%s/error", dir);
    const char *want = slurp_line(errfile);
    T_NOT_NULL(want);
    char expect[1024];
    (void)snprintf(expect, sizeof(expect), "%s", want);
    pr_challenge *c = NULL;
    pr_error err = { 0 };
    int rc = pr_challenge_load(&c, dir, &err);
    fprintf(stderr, "case %s rc=%d msg=%s\n", dir, rc, err.msg);
    T_TRUE(rc < 0);
    T_NULL(c);
    T_CONTAINS(err.msg, expect);
    /* Every message names the manifest by its full path. */
    (void)snprintf(file, sizeof(file), "%s/challenge.json", dir);
    T_CONTAINS(err.msg, file);
}

static int run_cases(void)
{
    char root[4096];
    (void)snprintf(root, sizeof(root), "%s/tests/fixtures/manifests", PR_SOURCE_DIR);
    DIR *d = opendir(root);
    T_NOT_NULL(d);
    int ncases = 0;
    const struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char dir[8192], errfile[8300];
        (void)snprintf(dir, sizeof(dir), "%s/%s", root, de->d_name);
        (void)snprintf(errfile, sizeof(errfile), "%s/error", dir);
        const char *want = slurp_line(errfile);
        if (!want)
            continue;
        char expect[1024];
        (void)snprintf(expect, sizeof(expect), "%s", want);
        pr_challenge *c = NULL;
        pr_error err = { 0 };
        int rc = pr_challenge_load(&c, dir, &err);
        fprintf(stderr, "case %-24s rc=%d msg=%s\n", de->d_name, rc, err.msg);
        T_TRUE(rc < 0);
        T_NULL(c);
        T_CONTAINS(err.msg, expect);
        /* Every message names the manifest by its full path. */
        char file[8300];
        (void)snprintf(file, sizeof(file), "%s/challenge.json", dir);
        T_CONTAINS(err.msg, file);
        ncases++;
    }
    (void)closedir(d);
    T_TRUE(ncases >= 30);
    return ncases;
}

static const char good[] =
    "{\"id\": \"echo\", \"version\": \"2\", \"title\": \"Echo\", \"kind\": \"stdio\",\n"
    " \"runtimes\": [\"c\", \"python\"], \"time_multipliers\": {\"python\": 4},\n"
    " \"limits\": {\"cpu_ms\": 1500, \"wall_ms\": 4000, \"mem_mb\": 64},\n"
    " \"tests\": [\n"
    "  {\"name\": \"a\", \"group\": \"correctness\", \"points\": 3, \"visibility\": \"visible\",\n"
    "   \"input\": \"tests/a.in\", \"expected\": \"tests/a.out\"},\n"
    "  {\"name\": \"b\", \"points\": 1.5, \"visibility\": \"hidden\",\n"
    "   \"input\": \"tests/b.in\", \"expected\": \"tests/b.out\"}]}\n";

static void make_pack(char *dir, size_t dirsz)
{
    (void)snprintf(dir, dirsz, "/tmp/pr-test-pack-XXXXXX");
    T_NOT_NULL(mkdtemp(dir));
    write_file(dir, "challenge.json", good);
    char p[4200];
    (void)snprintf(p, sizeof(p), "%s/tests", dir);
    T_EQ_INT(mkdir(p, 0755), 0);
    (void)snprintf(p, sizeof(p), "%s/solutions", dir);
    T_EQ_INT(mkdir(p, 0755), 0);
    write_file(dir, "tests/a.in", "1\n");
    write_file(dir, "tests/a.out", "1\n");
    write_file(dir, "tests/b.in", "2\n");
    write_file(dir, "tests/b.out", "2\n");
    write_file(dir, "solutions/x.c", "int main(void){return 0;}\n");
}

/* The common fields are checked before the kind parses; when the kind rejects this shape (its
 * own keys), the test stops there, since the common layer is what this file covers. */
static pr_challenge *load_or_skip(const char *dir, pr_error *err)
{
    pr_challenge *c = NULL;
    int rc = pr_challenge_load(&c, dir, err);
    if (rc < 0 && strstr(err->msg, "not built yet"))
        return NULL;
    if (rc < 0)
        T_FAIL("load failed: %s", err->msg);
    return c;
}

static void test_valid_and_digest(void)
{
    char dir[64];
    make_pack(dir, sizeof(dir));
    pr_error err = { 0 };
    pr_challenge *c = load_or_skip(dir, &err);
    if (c) {
        T_EQ_STR(c->id, "echo");
        T_EQ_STR(c->version, "2");
        T_EQ_STR(c->kind_name, "stdio");
        T_EQ_STR(c->runtimes[0], "c");
        T_EQ_STR(c->runtimes[1], "python");
        T_NULL(c->runtimes[2]);
        T_EQ_INT(c->limits.cpu_ms, 1500);
        T_EQ_INT(c->limits.mem_mb, 64);
        T_EQ_INT(c->limits.procs, SBX_DEFAULT_PROCS);
        T_EQ_INT(c->ntests, 2);
        T_EQ_STR(c->tests[1].group, "correctness");
        T_TRUE(c->tests[1].hidden);
        T_TRUE(c->tests[1].points == 1.5);
        T_TRUE(pr_challenge_multiplier(c, "python", 3.0) == 4.0);
        T_TRUE(pr_challenge_multiplier(c, "c", 1.0) == 1.0);
        T_TRUE(pr_challenge_multiplier(c, "node", 2.0) == 2.0);
        T_EQ_INT(strlen(c->digest), 64);
        char d1[65];
        memcpy(d1, c->digest, sizeof(d1));
        pr_challenge_free(c);

        /* solutions/ is not part of the digest; tests/ is. */
        write_file(dir, "solutions/x.c", "int main(void){return 1;}\n");
        c = load_or_skip(dir, &err);
        T_NOT_NULL(c);
        T_EQ_STR(c->digest, d1);
        pr_challenge_free(c);
        write_file(dir, "tests/b.out", "3\n");
        c = load_or_skip(dir, &err);
        T_NOT_NULL(c);
        T_TRUE(strcmp(c->digest, d1) != 0);
        pr_challenge_free(c);

        /* A symlink inside the pack is refused. */
        char link[4200];
        (void)snprintf(link, sizeof(link), "%s/tests/c.out", dir);
        T_EQ_INT(symlink("/etc/passwd", link), 0);
        T_TRUE(pr_challenge_load(&c, dir, &err) < 0);
        T_NULL(c);
        T_CONTAINS(err.msg, "symlink");
        T_EQ_INT(unlink(link), 0);
    } else {
        fprintf(stderr, "kind stdio not built yet: common fields only\n");
    }

    /* A symlinked challenge.json is refused. */
    char p[4200], q[4200];
    (void)snprintf(p, sizeof(p), "%s/challenge.json", dir);
    (void)snprintf(q, sizeof(q), "%s/real.json", dir);
    T_EQ_INT(rename(p, q), 0);
    T_EQ_INT(symlink(q, p), 0);
    T_TRUE(pr_challenge_load(&c, dir, &err) < 0);
    T_CONTAINS(err.msg, "symlink");
    T_EQ_INT(pr_rm_rf(dir), 0);
}

static void test_too_large(void)
{
    char dir[64];
    make_pack(dir, sizeof(dir));
    char p[4200];
    (void)snprintf(p, sizeof(p), "%s/challenge.json", dir);
    FILE *f = fopen(p, "we");
    T_NOT_NULL(f);
    T_EQ_INT(fputc('[', f), '[');
    for (int i = 0; i < 1100 * 1024 / 2; i++)
        T_EQ_INT(fputs("1,", f) >= 0, 1);
    T_EQ_INT(fclose(f), 0);
    pr_challenge *c = NULL;
    pr_error err = { 0 };
    T_EQ_INT(pr_challenge_load(&c, dir, &err), PR_ELIMIT);
    T_CONTAINS(err.msg, "challenge.json: larger than");
    T_EQ_INT(pr_rm_rf(dir), 0);

    T_EQ_INT(pr_challenge_load(&c, "/nonexistent/pack", &err), PR_ENOTFOUND);
    T_CONTAINS(err.msg, "/nonexistent/pack");
}

static void test_meta_and_limits(void)
{
    json_error_t jerr;
    json_t *t = json_loads("{\"name\":\"x\",\"points\":2}", 0, &jerr);
    pr_test_meta m;
    pr_error err = { 0 };
    T_EQ_INT(pr_test_meta_parse(&m, t, "/p/challenge.json", 4, &err), 0);
    T_EQ_STR(m.name, "x");
    T_EQ_STR(m.group, "correctness");
    T_TRUE(!m.hidden);
    pr_test_meta_clear(&m);
    json_decref(t);

    sbx_limits l = { 0 };
    l.cpu_ms = 7;
    json_t *o = json_loads("{\"wall_ms\": 9, \"tmp_mb\": 16}", 0, &jerr);
    T_EQ_INT(pr_limits_parse(&l, o, "f.json", "tests[2].limits", &err), 0);
    T_EQ_INT(l.cpu_ms, 7);
    T_EQ_INT(l.wall_ms, 9);
    T_EQ_INT(l.tmp_mb, 16);
    json_decref(o);
    o = json_loads("{\"wall_ms\": true}", 0, &jerr);
    T_EQ_INT(pr_limits_parse(&l, o, "f.json", "tests[2].limits", &err), PR_EINVAL);
    T_CONTAINS(err.msg,
               "f.json: tests[2].limits.wall_ms: expected an integer 1..1200000, got true");
    T_EQ_INT(l.wall_ms, 9);
    json_decref(o);
}

/* Every allocation failure on the way must end in a clean error, never a crash or a leak. */
static void test_alloc_fail(void)
{
    char dir[64];
    make_pack(dir, sizeof(dir));
    pr_challenge *c = NULL;
    pr_error err = { 0 };
    int base = pr_challenge_load(&c, dir, &err);
    pr_challenge_free(c);
    int n;
    for (n = 0; n < 20000; n++) {
        c = NULL;
        pr_alloc_fail_after(n);
        int rc = pr_challenge_load(&c, dir, &err);
        pr_alloc_fail_after(-1);
        if (rc == 0)
            T_NOT_NULL(c);
        else
            T_NULL(c);
        pr_challenge_free(c);
        if (rc == base)
            break;
    }
    fprintf(stderr, "alloc-fail loop: %d steps\n", n);
    T_TRUE(n > 5 && n < 20000);
    T_EQ_INT(pr_rm_rf(dir), 0);
}

int main(int argc, char **argv)
{
    json_set_alloc_funcs(pr_malloc, pr_free);
    if (argc == 2) {
        /* One data-driven case (ctest manifest_<case>). */
        run_case(argv[1]);
        return 0;
    }
    int n = run_cases();
    fprintf(stderr, "%d manifest cases\n", n);
    test_meta_and_limits();
    test_too_large();
    test_valid_and_digest();
    test_alloc_fail();
    return 0;
}
