/* Looks around /proc: which pids are visible (with comm and cmdline), what other processes'
 * environ and cmdline reveal, and the box's mountinfo. The table checks that no host process is
 * visible and no host path outside the binds appears. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include "sec.h"

static void cat_file(const char *label, const char *path)
{
    char buf[8192];
    ssize_t n, i;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        printf("%s: ERR %s\n", label, sec_errname(errno));
        return;
    }
    printf("%s:\n", label);
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        for (i = 0; i < n; i++)
            if (buf[i] == '\0')
                buf[i] = ' ';
        fwrite(buf, 1, (size_t)n, stdout);
    }
    if (n < 0)
        printf("(read ERR %s)", sec_errname(errno));
    printf("\n");
    (void)close(fd);
}

int main(void)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int npids = 0;
    char path[300], label[300];
    if (!d) {
        printf("opendir /proc: ERR %s\n", sec_errname(errno));
        return 0;
    }
    while ((e = readdir(d))) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        npids++;
        (void)snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        (void)snprintf(label, sizeof label, "pid %s cmdline", e->d_name);
        cat_file(label, path);
        if (atoi(e->d_name) != getpid()) {
            (void)snprintf(path, sizeof path, "/proc/%s/environ", e->d_name);
            (void)snprintf(label, sizeof label, "pid %s environ", e->d_name);
            cat_file(label, path);
        }
    }
    (void)closedir(d);
    printf("visible pids: %d\n", npids);
    printf("my pid: %d\n", (int)getpid());
    cat_file("mountinfo", "/proc/self/mountinfo");
    cat_file("uid_map", "/proc/self/uid_map");
    cat_file("cgroup", "/proc/self/cgroup");
    return 0;
}
