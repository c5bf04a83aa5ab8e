#ifndef PROCTOR_RUNNER_JWT_H
#define PROCTOR_RUNNER_JWT_H
/* JSON Web Tokens for the http kind's scenarios: made at grading time, signed with HMAC-SHA2
 * (OpenSSL libcrypto) or unsigned (alg "none"). Private to the runner. */

#include <jansson.h>
#include <stddef.h>

#include "proctor/buf.h"
#include "proctor/error.h"

/** Appends the base64url encoding (no padding) of data to out. 0, PR_ELIMIT or PR_ENOMEM. */
int pr_b64url_put(pr_buf *out, const unsigned char *data, size_t len);
/** Decodes base64url (padding optional) into out (raw bytes). PR_EINVAL on a bad character. */
int pr_b64url_decode(pr_buf *out, const char *text, size_t len);

/** Builds "b64url(header).b64url(payload).b64url(sig)" from the exact header and payload bytes.
 * alg: "HS256", "HS384", "HS512" (HMAC with key) or "none" (empty signature). The caller owns
 * *out (pr_free). */
int pr_jwt_sign_raw(char **out, const char *alg, const char *header, size_t header_len,
                    const char *payload, size_t payload_len, const unsigned char *key,
                    size_t key_len, pr_error *err);

/** Builds a token with header {"alg": alg, "typ": "JWT"} and the compact JSON of claims. */
int pr_jwt_make(char **out, const char *alg, const json_t *claims, const char *secret,
                pr_error *err);

#endif
