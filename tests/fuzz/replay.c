/* Replays fuzz corpora without libFuzzer: every file named on the command line, or every file in
 * a directory named there, goes once through LLVMFuzzerTestOneInput. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rbe");
    if (!f)
        return -1;
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf), f);
    (void)fclose(f);
    (void)LLVMFuzzerTestOneInput(buf, n);
    return 0;
}

int main(int argc, char **argv)
{
    int count = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0)
            return 1;
        if (!S_ISDIR(st.st_mode)) {
            if (run_file(argv[i]) != 0)
                return 1;
            count++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        if (!d)
            return 1;
        const struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            char p[4096];
            if (de->d_name[0] == '.')
                continue;
            (void)snprintf(p, sizeof(p), "%s/%s", argv[i], de->d_name);
            if (run_file(p) != 0)
                return 1;
            count++;
        }
        (void)closedir(d);
    }
    fprintf(stderr, "replayed %d inputs\n", count);
    return count > 0 ? 0 : 1;
}
