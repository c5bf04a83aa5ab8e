#ifndef PROCTOR_TESTS_T_H
#define PROCTOR_TESTS_T_H
/* Minimal assertion macros (libuv task.h style): print both operands, never compiled out.
 * A failed check aborts; T_SKIP exits 77 (ctest SKIP_RETURN_CODE). */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T_FAIL(...)                                     \
    do {                                                \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__); \
        fprintf(stderr, __VA_ARGS__);                   \
        fputc('\n', stderr);                            \
        abort();                                        \
    } while (0)

#define T_TRUE(x)                            \
    do {                                     \
        if (!(x))                            \
            T_FAIL("expected true: %s", #x); \
    } while (0)

#define T_EQ_INT(a, b)                                            \
    do {                                                          \
        long long t_a_ = (long long)(a), t_b_ = (long long)(b);   \
        if (t_a_ != t_b_)                                         \
            T_FAIL("%s == %s: %lld != %lld", #a, #b, t_a_, t_b_); \
    } while (0)

#define T_NE_INT(a, b)                                          \
    do {                                                        \
        long long t_a_ = (long long)(a), t_b_ = (long long)(b); \
        if (t_a_ == t_b_)                                       \
            T_FAIL("%s != %s: both %lld", #a, #b, t_a_);        \
    } while (0)

#define T_EQ_STR(a, b)                                                           \
    do {                                                                         \
        const char *t_a_ = (a), *t_b_ = (b);                                     \
        if (!t_a_ || !t_b_ || strcmp(t_a_, t_b_) != 0)                           \
            T_FAIL("%s == %s: \"%s\" != \"%s\"", #a, #b, t_a_ ? t_a_ : "(null)", \
                   t_b_ ? t_b_ : "(null)");                                      \
    } while (0)

#define T_CONTAINS(hay, needle)                                                     \
    do {                                                                            \
        const char *t_h_ = (hay), *t_n_ = (needle);                                 \
        if (!t_h_ || !strstr(t_h_, t_n_))                                           \
            T_FAIL("\"%s\" does not contain \"%s\"", t_h_ ? t_h_ : "(null)", t_n_); \
    } while (0)

#define T_NULL(p)                            \
    do {                                     \
        if ((p) != NULL)                     \
            T_FAIL("expected NULL: %s", #p); \
    } while (0)

#define T_NOT_NULL(p)                            \
    do {                                         \
        if ((p) == NULL)                         \
            T_FAIL("expected non-NULL: %s", #p); \
    } while (0)

#define T_SKIP(...)                   \
    do {                              \
        fprintf(stderr, "SKIP: ");    \
        fprintf(stderr, __VA_ARGS__); \
        fputc('\n', stderr);          \
        exit(77);                     \
    } while (0)

#endif
