#ifndef PROCTOR_RUNNER_COMPARE_H
#define PROCTOR_RUNNER_COMPARE_H
/* Streaming output comparators of the stdio kind, and the parser of the checker protocol.
 *
 * Memory is bounded whatever the sizes: each side is read through a fixed 64 KiB buffer, and a
 * token is held only up to PR_CMP_TOKEN_MAX bytes (longer tokens are compared byte by byte as
 * they stream). Nothing here allocates except the checker parser (jansson). Any thread. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proctor/error.h"

typedef enum pr_cmp_mode {
    /* Line by line, byte for byte. A "\r\n" line end reads as "\n" on both sides (a lone "\r"
     * is an ordinary byte), and one final "\n" more or less at the very end is accepted. */
    PR_CMP_EXACT = 0,
    /* Whitespace-separated tokens (space, \t, \n, \v, \f, \r); the amount and kind of
     * whitespace, and line breaks, do not matter. */
    PR_CMP_TOKENS = 1,
    /* Tokens, where an expected token that is a decimal number matches a number within abs OR
     * rel tolerance (|got - exp| <= abs, or <= rel * |exp|). "nan" matches only "nan", "inf"
     * only an infinity of the same sign (case-insensitive, "infinity" too). Hexadecimal floats
     * are not numbers here. Other tokens must be equal byte for byte. */
    PR_CMP_FLOAT = 2
} pr_cmp_mode;

typedef struct pr_cmp_spec {
    pr_cmp_mode mode;
    double abs_tol; /* PR_CMP_FLOAT only */
    double rel_tol; /* PR_CMP_FLOAT only */
} pr_cmp_spec;

#define PR_CMP_TOKEN_MAX   256 /* bytes of a token held for numeric parsing */
#define PR_CMP_EXCERPT_MAX 160 /* bytes of each excerpt around the first difference */

typedef struct pr_cmp_result {
    bool equal;
    uint64_t line;     /* 1-based line of the first difference in the output (got) */
    uint64_t exp_line; /* the same place in the expected file */
    uint64_t column;   /* 1-based byte column in the output line (exact mode), else 0 */
    char expected[PR_CMP_EXCERPT_MAX + 8]; /* raw bytes (not NUL-safe: use the _len) */
    size_t expected_len;
    char got[PR_CMP_EXCERPT_MAX + 8];
    size_t got_len;
    char reason[160]; /* one line: "differs", "output ends early", "value beyond tolerance" */
} pr_cmp_result;

/** Compares the expected stream with the candidate's output, both read from the current
 * offsets of the fds to EOF. Returns 0 with out->equal set (and on a difference the place,
 * excerpts and reason), or PR_ESYS when a read fails. */
int pr_compare_fds(pr_cmp_result *out, int expected_fd, int got_fd, const pr_cmp_spec *spec,
                   pr_error *err);

/** The same on memory (tests, fuzzing). Never fails. */
void pr_compare_mem(pr_cmp_result *out, const char *expected, size_t expected_len, const char *got,
                    size_t got_len, const pr_cmp_spec *spec);

/** Parses a compare spec from the manifest text form: "exact", "tokens", "checker" (sets
 * *is_checker) or a float object is handled by the caller. Returns 0 or PR_EINVAL. */
int pr_cmp_mode_parse(const char *name, pr_cmp_mode *mode, bool *is_checker);

/* The checker protocol: the checker prints exactly one line on stdout,
 * {"verdict": "AC"|"WA", "score": 0.0..1.0, "message": "..."}; AC means score 1 (the default
 * when absent), WA a score below 1 (default 0). Whitespace around the line is allowed; any
 * other output is a protocol error. */
typedef struct pr_checker_verdict {
    bool accepted;     /* "AC" */
    double score;      /* fraction of the test's points, 0..1 */
    char message[512]; /* the checker's message, cut to fit (UTF-8 cleaned later) */
} pr_checker_verdict;

#define PR_CHECKER_OUTPUT_MAX 4096 /* bytes of checker stdout read at most */

/** Parses the checker's stdout. PR_EINVAL with a message saying how the protocol was broken.
 * Any thread. */
int pr_checker_parse(pr_checker_verdict *out, const char *text, size_t len, pr_error *err);

#endif
