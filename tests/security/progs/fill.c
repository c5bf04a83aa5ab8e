/* fill bytes DIR | fill inodes DIR [MAX] | fill onefile PATH [ignore] | fill many DIR KB MAXMB:
 * fills a file system until it refuses, prints what stopped it. "onefile" grows a single file
 * (RLIMIT_FSIZE: SIGXFSZ, or EFBIG when "ignore" ignores the signal); "many" writes files of KB
 * KiB each (under the file size limit) up to MAXMB MiB in total. Stops by itself at 2 GiB, 2M
 * files, or the given caps, printing NOT STOPPED. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sec.h"

static char block[1 << 16];

int main(int argc, char **argv)
{
    char path[4096];
    long i, total = 0;
    int fd;
    if (argc < 3)
        return 2;
    memset(block, 'x', sizeof block);
    if (argc > 3 && !strcmp(argv[3], "ignore"))
        (void)signal(SIGXFSZ, SIG_IGN);
    if (!strcmp(argv[1], "onefile") || !strcmp(argv[1], "bytes")) {
        if (!strcmp(argv[1], "bytes"))
            (void)snprintf(path, sizeof path, "%s/fill.bin", argv[2]);
        else
            (void)snprintf(path, sizeof path, "%s", argv[2]);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
            printf("open %s: ERR %s\n", path, sec_errname(errno));
            return 0;
        }
        while (total < (2L << 30)) {
            ssize_t n = write(fd, block, sizeof block);
            if (n <= 0) {
                printf("stopped after %ld KiB: ERR %s\n", total >> 10, sec_errname(errno));
                return 0;
            }
            total += n;
        }
        printf("wrote 2 GiB: NOT STOPPED\n");
        return 0;
    }
    if (!strcmp(argv[1], "many") && argc == 5) {
        long kb = atol(argv[3]), max = atol(argv[4]) << 20;
        for (i = 0; total < max; i++) {
            long left = kb << 10;
            (void)snprintf(path, sizeof path, "%s/m%ld", argv[2], i);
            fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd < 0) {
                printf("stopped after %ld files (%ld KiB): ERR %s\n", i, total >> 10,
                       sec_errname(errno));
                return 0;
            }
            while (left > 0) {
                ssize_t n = write(fd, block,
                                  (size_t)(left < (long)sizeof block ? left : (long)sizeof block));
                if (n <= 0) {
                    printf("stopped after %ld files (%ld KiB): ERR %s\n", i, total >> 10,
                           sec_errname(errno));
                    return 0;
                }
                left -= n;
                total += n;
            }
            (void)close(fd);
        }
        printf("wrote %ld MiB in %ld files: NOT STOPPED\n", total >> 20, i);
        return 0;
    }
    if (!strcmp(argv[1], "inodes")) {
        long maxf = argc > 3 ? atol(argv[3]) : 2000000;
        for (i = 0; i < maxf; i++) {
            (void)snprintf(path, sizeof path, "%s/i%ld", argv[2], i);
            fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
            if (fd < 0) {
                printf("stopped after %ld files: ERR %s\n", i, sec_errname(errno));
                return 0;
            }
            (void)close(fd);
        }
        printf("created %ld files: NOT STOPPED\n", maxf);
        return 0;
    }
    return 2;
}
