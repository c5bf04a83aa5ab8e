/* Fuzz target for the stdio comparators and the checker protocol parser. Input: one mode byte
 * (exact, tokens, float), then the expected text, a NUL byte, and the output text. Checks the
 * invariants: a text always equals itself, a difference has a place and bounded excerpts, and
 * the checker parser either fails or returns a score in 0..1 consistent with its verdict. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../runner/compare.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pr_cmp_result r;
    pr_checker_verdict v;

    if (size < 1)
        return 0;
    pr_cmp_spec spec = { (pr_cmp_mode)(data[0] % 3), 1e-6, 1e-6 };
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    const char *sep = memchr(text, '\0', len);
    size_t elen = sep ? (size_t)(sep - text) : len;
    const char *got = sep ? sep + 1 : text;
    size_t glen = sep ? len - elen - 1 : len;

    pr_compare_mem(&r, text, elen, text, elen, &spec);
    if (!r.equal)
        abort();
    pr_compare_mem(&r, text, elen, got, glen, &spec);
    if (!r.equal) {
        if (r.line < 1 || r.exp_line < 1 || r.expected_len > sizeof(r.expected) ||
            r.got_len > sizeof(r.got) || r.reason[0] == '\0')
            abort();
    }
    if (pr_checker_parse(&v, (const char *)data, size, NULL) == 0) {
        if (!(v.score >= 0 && v.score <= 1) || (v.accepted && v.score != 1) ||
            (!v.accepted && v.score >= 1))
            abort();
    }
    return 0;
}
