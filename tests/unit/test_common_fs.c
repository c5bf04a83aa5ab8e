/* File-system helpers of sandbox/common: the user cache directory ladder, the lock file, and
 * writing everything. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "proctor/common.h"
#include "proctor/error.h"
#include "t.h"

static void test_cache_home(void)
{
    char out[64];
    T_EQ_INT(setenv("XDG_CACHE_HOME", "/x/cache", 1), 0);
    T_EQ_INT(setenv("HOME", "/home/u", 1), 0);
    T_EQ_INT(pr_cache_home(out, sizeof(out), "sql", "/fb"), 0);
    T_EQ_STR(out, "/x/cache/proctor/sql");
    T_EQ_INT(pr_cache_home(out, sizeof(out), "", "/fb"), 0);
    T_EQ_STR(out, "/x/cache/proctor");
    /* Relative values are not trusted. */
    T_EQ_INT(setenv("XDG_CACHE_HOME", "rel", 1), 0);
    T_EQ_INT(pr_cache_home(out, sizeof(out), "stdio", "/fb"), 0);
    T_EQ_STR(out, "/home/u/.cache/proctor/stdio");
    T_EQ_INT(unsetenv("XDG_CACHE_HOME"), 0);
    T_EQ_INT(unsetenv("HOME"), 0);
    T_EQ_INT(pr_cache_home(out, sizeof(out), "stdio", "/var/tmp/proctor-stdio"), 0);
    T_EQ_STR(out, "/var/tmp/proctor-stdio");
    char small[8];
    T_EQ_INT(pr_cache_home(small, sizeof(small), "stdio", "/var/tmp/proctor-stdio"), PR_ELIMIT);
}

static void test_lock_and_write(void)
{
    char dir[] = "/tmp/pr-fs-test-XXXXXX";
    T_NOT_NULL(mkdtemp(dir));
    char path[64], link[64];
    (void)snprintf(path, sizeof(path), "%s/a.lock", dir);
    int fd = pr_lock_file(path, 0600);
    T_TRUE(fd >= 0);
    /* Held: another open description cannot take it. */
    int other = open(path, O_RDWR | O_CLOEXEC);
    T_TRUE(other >= 0);
    T_TRUE(flock(other, LOCK_EX | LOCK_NB) != 0);
    T_EQ_INT(pr_write_all(fd, "hello", 5), 0);
    close(fd);
    T_EQ_INT(flock(other, LOCK_EX | LOCK_NB), 0);
    char buf[8] = { 0 };
    T_EQ_INT((int)pread(other, buf, sizeof(buf) - 1, 0), 5);
    T_EQ_STR(buf, "hello");
    close(other);
    /* Never through a symlink. */
    (void)snprintf(link, sizeof(link), "%s/l.lock", dir);
    T_EQ_INT(symlink(path, link), 0);
    T_EQ_INT(pr_lock_file(link, 0600), -1);
    T_EQ_INT(pr_rm_rf(dir), 0);
}

int main(void)
{
    test_cache_home();
    test_lock_and_write();
    return 0;
}
