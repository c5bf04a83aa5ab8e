/* JWT signing against published HS256 vectors, and base64url. */
#include "t.h"

#include "proctor/common.h"
#include "jwt.h"

int main(void)
{
    pr_error err = { 0 };
    char *tok = NULL;

    /* RFC 7515 appendix A.1: exact header and payload bytes, the JWK "k" as the key. */
    static const char hdr[] = "{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}";
    static const char pl[] = "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n "
                             "\"http://example.com/is_root\":true}";
    static const char k[] =
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgU"
        "uTwjAzZr1Z9CAow";
    pr_buf key = PR_BUF_INIT(1024);
    T_EQ_INT(pr_b64url_decode(&key, k, sizeof(k) - 1), 0);
    T_EQ_INT(key.len, 64);
    T_EQ_INT(pr_jwt_sign_raw(&tok, "HS256", hdr, sizeof(hdr) - 1, pl, sizeof(pl) - 1,
                             (const unsigned char *)key.ptr, key.len, &err),
             0);
    T_EQ_STR(tok, "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
                  "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9p"
                  "c19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
    pr_free(tok);
    pr_buf_free(&key);

    /* The jwt.io example: secret "your-256-bit-secret". */
    static const char h2[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    static const char p2[] = "{\"sub\":\"1234567890\",\"name\":\"John Doe\",\"iat\":1516239022}";
    T_EQ_INT(pr_jwt_sign_raw(&tok, "HS256", h2, sizeof(h2) - 1, p2, sizeof(p2) - 1,
                             (const unsigned char *)"your-256-bit-secret", 19, &err),
             0);
    T_EQ_STR(tok, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
                  "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
                  "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c");
    pr_free(tok);

    /* alg none: empty signature, trailing dot. */
    json_t *claims = json_pack("{s:s, s:s, s:i}", "sub", "u1", "role", "admin", "exp", 99);
    T_EQ_INT(pr_jwt_make(&tok, "none", claims, "x", &err), 0);
    T_EQ_STR(tok, "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
                  "eyJleHAiOjk5LCJyb2xlIjoiYWRtaW4iLCJzdWIiOiJ1MSJ9.");
    pr_free(tok);
    T_EQ_INT(pr_jwt_make(&tok, "RS256", claims, "x", &err), PR_EINVAL);
    T_CONTAINS(err.msg, "RS256");
    T_NULL(tok);
    json_decref(claims);

    /* base64url round trip of every length 0..5 with the bytes that need '-' and '_'. */
    static const unsigned char raw[] = { 0xfb, 0xff, 0xfe, 0x00, 0x3e };
    for (size_t n = 0; n <= sizeof(raw); n++) {
        pr_buf enc = PR_BUF_INIT(64), dec = PR_BUF_INIT(64);
        T_EQ_INT(pr_b64url_put(&enc, raw, n), 0);
        T_TRUE(!enc.ptr ||
               (!strchr(enc.ptr, '+') && !strchr(enc.ptr, '/') && !strchr(enc.ptr, '=')));
        T_EQ_INT(pr_b64url_decode(&dec, enc.ptr ? enc.ptr : "", enc.len), 0);
        T_EQ_INT(dec.len, n);
        T_TRUE(n == 0 || memcmp(dec.ptr, raw, n) == 0);
        pr_buf_free(&enc);
        pr_buf_free(&dec);
    }
    pr_buf bad = PR_BUF_INIT(64);
    T_EQ_INT(pr_b64url_decode(&bad, "ab$d", 4), PR_EINVAL);
    pr_buf_free(&bad);
    return 0;
}
