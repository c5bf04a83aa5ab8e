/* JWT creation for test scenarios (RFC 7519 compact form, RFC 7515 HMAC signatures). */
#include "jwt.h"

#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "proctor/common.h"

static const char b64url_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int pr_b64url_put(pr_buf *out, const unsigned char *data, size_t len)
{
    char quad[4];
    size_t i = 0;
    int rc = 0;
    for (; i + 3 <= len && rc == 0; i += 3) {
        unsigned v = (unsigned)data[i] << 16 | (unsigned)data[i + 1] << 8 | data[i + 2];
        quad[0] = b64url_chars[v >> 18 & 63];
        quad[1] = b64url_chars[v >> 12 & 63];
        quad[2] = b64url_chars[v >> 6 & 63];
        quad[3] = b64url_chars[v & 63];
        rc = pr_buf_put(out, quad, 4);
    }
    if (rc < 0)
        return rc;
    size_t rest = len - i;
    if (rest == 1) {
        unsigned v = (unsigned)data[i] << 16;
        quad[0] = b64url_chars[v >> 18 & 63];
        quad[1] = b64url_chars[v >> 12 & 63];
        rc = pr_buf_put(out, quad, 2);
    } else if (rest == 2) {
        unsigned v = (unsigned)data[i] << 16 | (unsigned)data[i + 1] << 8;
        quad[0] = b64url_chars[v >> 18 & 63];
        quad[1] = b64url_chars[v >> 12 & 63];
        quad[2] = b64url_chars[v >> 6 & 63];
        rc = pr_buf_put(out, quad, 3);
    }
    return rc;
}

static int b64url_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-' || c == '+')
        return 62;
    if (c == '_' || c == '/')
        return 63;
    return -1;
}

int pr_b64url_decode(pr_buf *out, const char *text, size_t len)
{
    unsigned acc = 0;
    int bits = 0;
    while (len > 0 && text[len - 1] == '=')
        len--;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value(text[i]);
        if (v < 0)
            return PR_EINVAL;
        acc = (acc << 6 | (unsigned)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            unsigned char byte = (unsigned char)(acc >> bits & 0xff);
            int rc = pr_buf_put(out, &byte, 1);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

static const EVP_MD *alg_md(const char *alg)
{
    if (strcmp(alg, "HS256") == 0)
        return EVP_sha256();
    if (strcmp(alg, "HS384") == 0)
        return EVP_sha384();
    if (strcmp(alg, "HS512") == 0)
        return EVP_sha512();
    return NULL;
}

int pr_jwt_sign_raw(char **out, const char *alg, const char *header, size_t header_len,
                    const char *payload, size_t payload_len, const unsigned char *key,
                    size_t key_len, pr_error *err)
{
    pr_buf tok = PR_BUF_INIT(1 << 20);
    int rc;
    *out = NULL;
    const EVP_MD *md = NULL;
    if (strcmp(alg, "none") != 0) {
        md = alg_md(alg);
        if (!md)
            return pr_error_set(err, PR_EINVAL, "jwt: unsupported alg '%s'", alg);
    }
    rc = pr_b64url_put(&tok, (const unsigned char *)header, header_len);
    if (rc == 0)
        rc = pr_buf_put(&tok, ".", 1);
    if (rc == 0)
        rc = pr_b64url_put(&tok, (const unsigned char *)payload, payload_len);
    if (rc == 0)
        rc = pr_buf_put(&tok, ".", 1);
    if (rc < 0)
        goto cleanup;
    if (md) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int mac_len = 0;
        static const unsigned char empty_key[1] = { 0 };
        if (!HMAC(md, key_len ? key : empty_key, (int)key_len, (const unsigned char *)tok.ptr,
                  tok.len - 1, mac, &mac_len)) {
            rc = pr_error_set(err, PR_EINTERNAL, "jwt: HMAC failed");
            goto cleanup;
        }
        rc = pr_b64url_put(&tok, mac, mac_len);
        if (rc < 0)
            goto cleanup;
    }
    *out = pr_buf_detach(&tok);
    if (!*out)
        rc = PR_ENOMEM;
cleanup:
    if (rc < 0 && err && err->code == 0)
        (void)pr_error_set(err, rc, "jwt: cannot build token");
    pr_buf_free(&tok);
    return rc;
}

int pr_jwt_make(char **out, const char *alg, const json_t *claims, const char *secret,
                pr_error *err)
{
    char *payload = NULL;
    char header[64];
    int rc;
    *out = NULL;
    int n = snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
    if (n < 0 || (size_t)n >= sizeof(header))
        return pr_error_set(err, PR_EINVAL, "jwt: alg too long");
    payload = json_dumps(claims, JSON_COMPACT | JSON_SORT_KEYS);
    if (!payload)
        return pr_error_set(err, PR_ENOMEM, "jwt: cannot encode claims");
    rc = pr_jwt_sign_raw(out, alg, header, (size_t)n, payload, strlen(payload),
                         (const unsigned char *)(secret ? secret : ""), secret ? strlen(secret) : 0,
                         err);
    pr_free(payload); /* json_dumps memory (jansson uses malloc or pr_malloc) */
    return rc;
}
