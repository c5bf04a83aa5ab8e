/* paths MODE PATH...: for every PATH, MODE r opens it for reading (and reads a byte), d lists the
 * directory, w creates/truncates it for writing, a appends a line to an existing file, c prints
 * its first line, x executes nothing but stats it. Prints
 * "PATH: OK" or "PATH: ERR ENAME" per path. Used for host secrets, devices, read-only binds. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sec.h"

int main(int argc, char **argv)
{
    int i;
    if (argc < 3)
        return 2;
    for (i = 2; i < argc; i++) {
        const char *p = argv[i];
        int fd;
        char c;
        switch (argv[1][0]) {
        case 'r':
            fd = open(p, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
            if (fd >= 0 && read(fd, &c, 1) < 0 && errno != EAGAIN && errno != EISDIR) {
                printf("%s: OPENED, read ERR %s\n", p, sec_errname(errno));
                continue;
            }
            sec_report(p, fd);
            break;
        case 'd': {
            DIR *d = opendir(p);
            struct dirent *e;
            int n = 0;
            if (!d) {
                sec_report(p, -1);
                break;
            }
            while ((e = readdir(d)))
                if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                    n++;
            printf("%s: OK %d entries\n", p, n);
            (void)closedir(d);
            break;
        }
        case 'w':
            fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_NOCTTY | O_CLOEXEC, 0644);
            sec_report(p, fd < 0 ? -1 : write(fd, "x", 1));
            break;
        case 'a':
            fd = open(p, O_WRONLY | O_APPEND | O_NOCTTY | O_CLOEXEC);
            sec_report(p, fd < 0 ? -1 : write(fd, "written from the box\n", 21));
            break;
        case 'c': {
            char line[128];
            ssize_t n;
            fd = open(p, O_RDONLY | O_NOCTTY | O_CLOEXEC);
            if (fd < 0) {
                sec_report(p, -1);
                break;
            }
            n = read(fd, line, sizeof line - 1);
            line[n > 0 ? n : 0] = '\0';
            line[strcspn(line, "\n")] = '\0';
            printf("%s: OK %s\n", p, line);
            break;
        }
        case 'x': {
            struct stat st;
            sec_report(p, stat(p, &st));
            break;
        }
        default:
            return 2;
        }
    }
    return 0;
}
