/* The stdio comparators: exact (trailing newline, CRLF), tokens, float tolerance, huge lines and
 * tokens, empty outputs, first-difference reporting, fd streaming; and the checker protocol. */
#include "compare.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "t.h"

static pr_cmp_result res;

static bool cmp(pr_cmp_mode mode, const char *exp, const char *got)
{
    pr_cmp_spec spec = { mode, 1e-6, 1e-6 };
    pr_compare_mem(&res, exp, strlen(exp), got, strlen(got), &spec);
    return res.equal;
}

static char *excerpt_str(const char *p, size_t n)
{
    static char buf[2][PR_CMP_EXCERPT_MAX + 16];
    static int k;
    k ^= 1;
    memcpy(buf[k], p, n);
    buf[k][n] = '\0';
    return buf[k];
}

static void test_exact(void)
{
    T_TRUE(cmp(PR_CMP_EXACT, "a\nb\n", "a\nb\n"));
    T_TRUE(cmp(PR_CMP_EXACT, "a\nb\n", "a\nb"));
    T_TRUE(cmp(PR_CMP_EXACT, "a\nb", "a\nb\n"));
    T_TRUE(cmp(PR_CMP_EXACT, "", ""));
    T_TRUE(cmp(PR_CMP_EXACT, "", "\n"));
    T_TRUE(cmp(PR_CMP_EXACT, "\n", ""));
    /* CRLF line ends read as LF on both sides; a lone CR is a byte. */
    T_TRUE(cmp(PR_CMP_EXACT, "a\nb\n", "a\r\nb\r\n"));
    T_TRUE(cmp(PR_CMP_EXACT, "a\r\nb", "a\nb\r\n"));
    T_TRUE(!cmp(PR_CMP_EXACT, "a\nb\n", "a\rb\n"));
    /* Only one final newline is forgiven. */
    T_TRUE(cmp(PR_CMP_EXACT, "a\n", "a\n\n"));
    T_TRUE(!cmp(PR_CMP_EXACT, "a\n", "a\n\n\n"));
    T_TRUE(!cmp(PR_CMP_EXACT, "a\n\n", "a"));
    T_TRUE(!cmp(PR_CMP_EXACT, "a b\n", "a  b\n"));
    T_TRUE(!cmp(PR_CMP_EXACT, "a\n", "a \n"));
    T_TRUE(!cmp(PR_CMP_EXACT, "x\n", ""));
    T_CONTAINS(res.reason, "ends early");
    T_EQ_INT(res.line, 1);

    /* First difference: line, column and both excerpts. */
    T_TRUE(!cmp(PR_CMP_EXACT, "ALLOW\nALLOW\nDENY\nALLOW\n", "ALLOW\nALLOW\nALLOW\nALLOW\n"));
    T_EQ_INT(res.line, 3);
    T_EQ_INT(res.exp_line, 3);
    T_EQ_INT(res.column, 1);
    T_EQ_STR(excerpt_str(res.expected, res.expected_len), "DENY");
    T_EQ_STR(excerpt_str(res.got, res.got_len), "ALLOW");
    T_TRUE(!cmp(PR_CMP_EXACT, "one\ntwo three\n", "one\ntwo thr33\n"));
    T_EQ_INT(res.line, 2);
    T_EQ_INT(res.column, 8);
    T_EQ_STR(excerpt_str(res.expected, res.expected_len), "two three");
    T_EQ_STR(excerpt_str(res.got, res.got_len), "two thr33");
    T_TRUE(!cmp(PR_CMP_EXACT, "a\n", "a\nextra\n"));
    T_CONTAINS(res.reason, "goes on");
    T_EQ_INT(res.line, 2);
    T_EQ_STR(excerpt_str(res.got, res.got_len), "extra");
    T_TRUE(!cmp(PR_CMP_EXACT, "abc\n", "ab\n"));
    T_CONTAINS(res.reason, "shorter");
}

static void test_tokens(void)
{
    T_TRUE(cmp(PR_CMP_TOKENS, "1 2 3\n", "1\n2\t3"));
    T_TRUE(cmp(PR_CMP_TOKENS, "  a   b ", "a b\r\n\r\n"));
    T_TRUE(cmp(PR_CMP_TOKENS, "", " \n\t"));
    T_TRUE(!cmp(PR_CMP_TOKENS, "a b", "a b c"));
    T_CONTAINS(res.reason, "more tokens");
    T_TRUE(!cmp(PR_CMP_TOKENS, "a b c", "a b"));
    T_CONTAINS(res.reason, "ends early");
    T_TRUE(!cmp(PR_CMP_TOKENS, "ab", "a b"));
    T_TRUE(!cmp(PR_CMP_TOKENS, "1.0", "1"));
    T_TRUE(!cmp(PR_CMP_TOKENS, "x\ny\nGET /a 3 1.00 7\n", "x\n\ny\nGET /a 3 1.01 7\n"));
    T_EQ_INT(res.line, 4);
    T_EQ_INT(res.exp_line, 3);
    T_CONTAINS(excerpt_str(res.expected, res.expected_len), "1.00 7");
    T_CONTAINS(excerpt_str(res.got, res.got_len), "1.01 7");
}

static void test_float(void)
{
    T_TRUE(cmp(PR_CMP_FLOAT, "1.0 2.5", "1 2.5000001"));
    T_TRUE(cmp(PR_CMP_FLOAT, "1e6", "1000000.5")); /* rel 1e-6 of 1e6 is 1 */
    T_TRUE(cmp(PR_CMP_FLOAT, "1.5E-3", "0.0015"));
    T_TRUE(cmp(PR_CMP_FLOAT, "-0", "0"));
    T_TRUE(cmp(PR_CMP_FLOAT, "+2", "2.0000000"));
    T_TRUE(!cmp(PR_CMP_FLOAT, "1.0", "1.01"));
    T_CONTAINS(res.reason, "tolerance");
    T_TRUE(!cmp(PR_CMP_FLOAT, "1.0", "one"));
    T_CONTAINS(res.reason, "expected a number");
    T_TRUE(!cmp(PR_CMP_FLOAT, "1.0", "0x1p0"));
    T_TRUE(cmp(PR_CMP_FLOAT, "nan", "NaN"));
    T_TRUE(!cmp(PR_CMP_FLOAT, "nan", "0"));
    T_TRUE(!cmp(PR_CMP_FLOAT, "1", "nan"));
    T_TRUE(cmp(PR_CMP_FLOAT, "inf -inf", "Infinity -INF"));
    T_TRUE(!cmp(PR_CMP_FLOAT, "inf", "-inf"));
    T_TRUE(!cmp(PR_CMP_FLOAT, "1e308", "inf"));
    T_TRUE(cmp(PR_CMP_FLOAT, "1e400", "inf")); /* overflow reads as infinity */
    /* Non-numeric tokens still compare exactly. */
    T_TRUE(cmp(PR_CMP_FLOAT, "ok 1.0", "ok 1"));
    T_TRUE(!cmp(PR_CMP_FLOAT, "ok 1.0", "OK 1"));
    T_TRUE(!cmp(PR_CMP_FLOAT, "1e", "1"));
    T_TRUE(cmp(PR_CMP_FLOAT, "1e", "1e"));
    pr_cmp_spec abs_only = { PR_CMP_FLOAT, 0.5, 0 };
    pr_compare_mem(&res, "10", 2, "10.4", 4, &abs_only);
    T_TRUE(res.equal);
    pr_compare_mem(&res, "10", 2, "10.6", 4, &abs_only);
    T_TRUE(!res.equal);
}

static void test_huge(void)
{
    /* A 3 MB line with one difference near its end, and a 1 MB token: bounded memory. */
    size_t n = 3 * 1024 * 1024;
    char *a = malloc(n + 2), *b = malloc(n + 2);
    T_NOT_NULL(a);
    T_NOT_NULL(b);
    memset(a, 'x', n);
    memset(b, 'x', n);
    a[n] = b[n] = '\n';
    a[n + 1] = b[n + 1] = '\0';
    T_TRUE(cmp(PR_CMP_EXACT, a, b));
    T_TRUE(cmp(PR_CMP_TOKENS, a, b));
    T_TRUE(cmp(PR_CMP_FLOAT, a, b));
    b[n - 10] = 'y';
    T_TRUE(!cmp(PR_CMP_EXACT, a, b));
    T_EQ_INT(res.column, n - 9);
    T_TRUE(res.got_len <= PR_CMP_EXCERPT_MAX + 8);
    T_TRUE(strncmp(res.got, "...", 3) == 0);
    T_TRUE(memchr(res.got, 'y', res.got_len) != NULL);
    T_TRUE(!cmp(PR_CMP_TOKENS, a, b));
    T_TRUE(!cmp(PR_CMP_FLOAT, a, b));
    b[n - 10] = 'x';
    b[n - 1] = '\0'; /* shorter by one byte at the end of the token */
    T_TRUE(!cmp(PR_CMP_TOKENS, a, b));
    free(a);
    free(b);
}

static void test_fds(void)
{
    char pe[] = "/tmp/pr_cmp_e_XXXXXX", pg[] = "/tmp/pr_cmp_g_XXXXXX";
    int fe = mkstemp(pe), fg = mkstemp(pg);
    T_TRUE(fe >= 0 && fg >= 0);
    (void)unlink(pe);
    (void)unlink(pg);
    /* 200000 lines on each side, different only at line 150001. */
    FILE *e = fdopen(dup(fe), "w"), *g = fdopen(dup(fg), "w");
    for (int i = 1; i <= 200000; i++) {
        fprintf(e, "%d ALLOW\n", i);
        fprintf(g, "%d %s\n", i, i == 150001 ? "DENY" : "ALLOW");
    }
    fclose(e);
    fclose(g);
    pr_cmp_spec spec = { PR_CMP_EXACT, 0, 0 };
    pr_error err = { 0 };
    T_TRUE(lseek(fe, 0, SEEK_SET) == 0 && lseek(fg, 0, SEEK_SET) == 0);
    T_EQ_INT(pr_compare_fds(&res, fe, fg, &spec, &err), 0);
    T_TRUE(!res.equal);
    T_EQ_INT(res.line, 150001);
    T_EQ_STR(excerpt_str(res.expected, res.expected_len), "150001 ALLOW");
    T_EQ_STR(excerpt_str(res.got, res.got_len), "150001 DENY");
    /* A read error is infrastructure, reported as PR_ESYS. */
    T_EQ_INT(pr_compare_fds(&res, 987654, fg, &spec, &err), PR_ESYS);
    close(fe);
    close(fg);
}

static void checker_ok(const char *text, bool ac, double score)
{
    pr_checker_verdict v;
    pr_error err = { 0 };
    int rc = pr_checker_parse(&v, text, strlen(text), &err);
    if (rc != 0)
        T_FAIL("checker line rejected: %s (%s)", text, err.msg);
    T_EQ_INT(v.accepted, ac);
    T_TRUE(fabs(v.score - score) < 1e-12);
}

static void checker_bad(const char *text, const char *why)
{
    pr_checker_verdict v;
    pr_error err = { 0 };
    T_EQ_INT(pr_checker_parse(&v, text, text ? strlen(text) : 0, &err), PR_EINVAL);
    T_CONTAINS(err.msg, why);
    T_EQ_INT(v.accepted, 0);
}

static void test_checker(void)
{
    pr_checker_verdict v;
    pr_error err = { 0 };
    checker_ok("{\"verdict\": \"AC\", \"score\": 1.0, \"message\": \"fine\"}\n", true, 1.0);
    checker_ok("  {\"verdict\": \"AC\"}  \n\n", true, 1.0);
    checker_ok("{\"verdict\": \"WA\"}", false, 0.0);
    checker_ok("{\"verdict\": \"WA\", \"score\": 0.25, \"extra\": [1]}", false, 0.25);
    static const char half[] = "{\"verdict\":\"WA\",\"score\":0.5,\"message\":\"half\"}";
    T_EQ_INT(pr_checker_parse(&v, half, sizeof(half) - 1, &err), 0);
    T_EQ_STR(v.message, "half");
    checker_bad("", "nothing");
    checker_bad(" \n ", "whitespace");
    checker_bad("ok", "not JSON");
    checker_bad("[1]", "not a JSON object");
    checker_bad("{\"verdict\": \"AC\"}\n{\"verdict\": \"AC\"}", "more than one line");
    checker_bad("{\"verdict\": \"PASS\"}", "verdict");
    checker_bad("{\"score\": 1}", "verdict");
    checker_bad("{\"verdict\": \"WA\", \"score\": 1.5}", "score");
    checker_bad("{\"verdict\": \"WA\", \"score\": -0.1}", "score");
    checker_bad("{\"verdict\": \"WA\", \"score\": \"0.5\"}", "score");
    checker_bad("{\"verdict\": \"AC\", \"score\": 0.5}", "AC with a score below 1");
    checker_bad("{\"verdict\": \"WA\", \"score\": 1}", "WA with a score of 1");
    checker_bad("{\"verdict\": \"AC\", \"message\": 3}", "message");
    checker_bad("{\"verdict\": \"AC\", \"verdict\": \"WA\"}", "not JSON");
    char big[PR_CHECKER_OUTPUT_MAX + 10];
    memset(big, ' ', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    checker_bad(big, "more than");
}

int main(void)
{
    test_exact();
    test_tokens();
    test_float();
    test_huge();
    test_fds();
    test_checker();
    return 0;
}
