/* proctor report REPORT.json --format html|junit|markdown: reviewer-facing renderings. They come
 * after the core; until then the arguments and the report are checked and the command says so. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "proctor/report.h"

static void usage(FILE *f)
{
    fputs("usage: proctor report REPORT.json --format html|junit|markdown\n"
          "\n"
          "Render a report written by 'proctor grade' for reviewers.\n"
          "\n"
          "examples:\n"
          "  proctor report ann.json --format markdown\n"
          "  proctor report ann.json --format junit > ann.xml\n"
          "\n"
          "Reviewer-facing reports are not built yet: this command checks its arguments and the\n"
          "report, then exits 2.\n",
          f);
}

int pr_cli_report(int argc, char **argv)
{
    static const struct option opts[] = {
        { "format", required_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *format = NULL;

    optind = 1;
    opterr = 0;
    for (;;) {
        int o = getopt_long(argc, argv, "f:h", opts, NULL);
        if (o == -1)
            break;
        if (o == 'f') {
            format = optarg;
        } else if (o == 'h') {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "proctor report: unknown or incomplete option '%s'\n\n",
                    argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (argc - optind != 1 || !format) {
        fprintf(stderr, "proctor report: expected REPORT.json and --format\n\n");
        usage(stderr);
        return 2;
    }
    if (strcmp(format, "html") != 0 && strcmp(format, "junit") != 0 &&
        strcmp(format, "markdown") != 0) {
        fprintf(stderr, "proctor report: --format: expected html, junit or markdown, got '%s'\n",
                format);
        return 2;
    }
    const char *path = argv[optind];
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "proctor report: %s: %s\n", path, strerror(errno));
        return 2;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > (off_t)64 * 1024 * 1024) {
        fprintf(stderr, "proctor report: %s: not a regular file of at most 64 MiB\n", path);
        return 2;
    }
    json_error_t jerr;
    pr_error err = { 0 };
    json_t *r = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!r) {
        fprintf(stderr, "proctor report: %s: line %d: %s\n", path, jerr.line, jerr.text);
        return 2;
    }
    int rc = pr_report_validate(r, &err);
    json_decref(r);
    if (rc < 0) {
        fprintf(stderr, "proctor report: %s: %s\n", path, err.msg);
        return 2;
    }
    fprintf(stderr, "proctor report: --format %s: reviewer-facing reports are not built yet\n",
            format);
    return 2;
}
