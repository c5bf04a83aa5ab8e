/* symlinks WORKDIR CANARY: plants malicious links in the work dir (symlinks to host secrets and
 * to the host canary file, a chain of ".." links, a hard link to a read-only bind) and follows
 * them from inside. Everything must resolve inside the box: no host file may open. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sec.h"

static void try_open(const char *label, const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC, 0644);
    char buf[64];
    ssize_t n;
    if (fd < 0) {
        printf("%s: ERR %s\n", label, sec_errname(errno));
        return;
    }
    n = (flags & O_ACCMODE) == O_RDONLY ? read(fd, buf, sizeof buf - 1) : 0;
    if (n > 0) {
        buf[n] = '\0';
        if (strstr(buf, "proctor-canary")) {
            printf("%s: OK HOST_CANARY_READ\n", label);
            return;
        }
    }
    printf("%s: OK\n", label);
    (void)close(fd);
}

int main(int argc, char **argv)
{
    char l[4096];
    int i;
    if (argc < 3)
        return 2;
    if (chdir(argv[1]) < 0)
        return 3;
    (void)symlink("/etc/shadow", "expected_output");
    (void)symlink(argv[2], "canary_link");
    (void)symlink("../../../../../../../../../..", "up");
    (void)symlink("/proc/1/root", "initroot");
    try_open("expected_output -> /etc/shadow", "expected_output", O_RDONLY);
    try_open("canary_link -> host canary", "canary_link", O_RDONLY);
    try_open("canary_link (write)", "canary_link", O_WRONLY | O_APPEND);
    (void)snprintf(l, sizeof l, "up%s", argv[2]);
    try_open("up/../..+canary", l, O_RDONLY);
    try_open("up/work/main/CMakeLists.txt", "up/work/main/CMakeLists.txt", O_RDONLY);
    (void)snprintf(l, sizeof l, "initroot%s", argv[2]);
    try_open("/proc/1/root+canary", l, O_RDONLY);
    (void)snprintf(l, sizeof l, "%s", "../../../../../../../../../../../..");
    for (i = 0; i < 3; i++)
        (void)chdir(l);
    try_open("cwd-escape/work/main", "work/main/CMakeLists.txt", O_RDONLY);
    (void)chdir(argv[1]);
    sec_report("link /sec/try_syscall hard", link("/sec/try_syscall", "hard_bin"));
    sec_report("link /etc/passwd hard", link("/etc/passwd", "hard_passwd"));
    return 0;
}
