/* Bounded buffers, UTF-8 cleaning, error formatting and the allocation-failure hook. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>

#include "proctor/buf.h"
#include "proctor/common.h"
#include "proctor/error.h"
#include "t.h"

static void test_buf_respects_max(void)
{
    pr_buf b = PR_BUF_INIT(8);
    T_EQ_INT(pr_buf_puts(&b, "abcd"), 0);
    T_EQ_INT(pr_buf_printf(&b, "%d", 1234), 0);
    T_EQ_STR(b.ptr, "abcd1234");
    /* One byte past the cap is refused and leaves the contents intact. */
    T_EQ_INT(pr_buf_puts(&b, "x"), PR_ELIMIT);
    T_EQ_INT(b.len, 8);
    T_EQ_STR(b.ptr, "abcd1234");
    pr_buf_clear(&b);
    T_EQ_INT(b.len, 0);
    T_EQ_STR(b.ptr, "");
    char *s = pr_buf_detach(&b);
    T_EQ_STR(s, "");
    pr_free(s);
    T_NULL(b.ptr);
    pr_buf_free(&b);
}

static void test_text_clean_replaces_invalid_utf8(void)
{
    static const char in[] = "ok \xff\xfe end \xc3\xa9"; /* two bad bytes, then a valid e-acute */
    bool cut = true;
    char *s = pr_text_clean(in, sizeof(in) - 1, 100, &cut);
    T_NOT_NULL(s);
    T_TRUE(!cut);
    T_EQ_STR(s, "ok \xEF\xBF\xBD\xEF\xBF\xBD end \xc3\xa9");
    pr_free(s);

    /* NUL bytes, overlong encodings and surrogates are not valid text either. */
    static const char bad[] = { 'a',        '\0',       (char)0xC0, (char)0xAF,
                                (char)0xED, (char)0xA0, (char)0x80 };
    s = pr_text_clean(bad, sizeof(bad), 100, &cut);
    T_NOT_NULL(s);
    T_EQ_INT(strncmp(s, "a\xEF\xBF\xBD", 4), 0);
    T_TRUE(strchr(s, (char)0xC0) == NULL);
    pr_free(s);
}

static void test_text_clean_never_splits_a_character(void)
{
    static const char in[] = "\xc3\xa9\xc3\xa9\xc3\xa9"; /* three 2-byte characters */
    bool cut = false;
    char *s = pr_text_clean(in, sizeof(in) - 1, 5, &cut);
    T_NOT_NULL(s);
    T_TRUE(cut);
    T_EQ_STR(s, "\xc3\xa9\xc3\xa9");
    pr_free(s);
}

static void test_error_helpers(void)
{
    pr_error err = { 0 };
    T_EQ_INT(pr_error_set(&err, PR_EINVAL, "field %s", "x"), PR_EINVAL);
    T_EQ_STR(err.msg, "field x");
    T_EQ_INT(pr_error_wrap(&err, "file %s", "a.json"), PR_EINVAL);
    T_EQ_STR(err.msg, "file a.json: field x");
    errno = ENOENT;
    T_EQ_INT(pr_error_sys(&err, "open %s", "/nope"), PR_ESYS);
    T_EQ_INT(err.sys_errno, ENOENT);
    T_CONTAINS(err.msg, "open /nope: ");
    T_EQ_INT(pr_error_set(NULL, PR_ENOMEM, "ignored"), PR_ENOMEM);
    T_EQ_STR(pr_errcode_name(PR_ELIMIT), "ELIMIT");
}

static void test_alloc_fail_hook(void)
{
    pr_alloc_fail_after(1);
    void *a = pr_malloc(8);
    void *b = pr_malloc(8);
    pr_alloc_fail_after(-1);
    T_NOT_NULL(a);
    T_NULL(b);
    pr_free(a);
    /* A buffer that cannot grow reports it and keeps its old contents. */
    pr_buf buf = PR_BUF_INIT(1 << 20);
    T_EQ_INT(pr_buf_puts(&buf, "keep"), 0);
    pr_alloc_fail_after(0);
    char big[512];
    memset(big, 'x', sizeof(big));
    T_EQ_INT(pr_buf_put(&buf, big, sizeof(big)), PR_ENOMEM);
    pr_alloc_fail_after(-1);
    T_EQ_STR(buf.ptr, "keep");
    pr_buf_free(&buf);
}

static void test_time_and_fs(void)
{
    char ts[32];
    pr_time_rfc3339(ts, sizeof(ts), 0);
    T_EQ_STR(ts, "1970-01-01T00:00:00Z");
    pr_time_rfc3339(ts, sizeof(ts), 1764072000LL);
    T_EQ_STR(ts, "2025-11-25T12:00:00Z");

    char dir[] = "/tmp/pr-fs-XXXXXX";
    T_NOT_NULL(mkdtemp(dir));
    char deep[256];
    (void)snprintf(deep, sizeof(deep), "%s/a/b/c", dir);
    T_EQ_INT(pr_mkdir_p(deep), 0);
    T_EQ_INT(pr_mkdir_p(deep), 0); /* existing is fine */
    T_EQ_INT(pr_rm_rf(dir), 0);
    T_EQ_INT(pr_rm_rf(dir), 0); /* missing is fine */
}

int main(void)
{
    test_buf_respects_max();
    test_text_clean_replaces_invalid_utf8();
    test_text_clean_never_splits_a_character();
    test_error_helpers();
    test_alloc_fail_hook();
    test_time_and_fs();
    return 0;
}
