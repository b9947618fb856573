/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Canonical JSON, SHA-256, the table hash and Ed25519 for the audit chain. */
#include "config.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "xmalloc.h"

char *
canon_dump(const json_t *j)
{
    char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);

    if (s == NULL) {
        abort(); /* out of memory: jansson fails only then for valid values */
    }
    return s;
}

static void
hex(const unsigned char *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* <n> bytes from exactly 2*<n> lower-case hex digits (one spelling only); -1 otherwise. */
static int
unhex(const char *s, unsigned char *out, size_t n)
{
    size_t i;
    int k, v;

    if (s == NULL || strlen(s) != 2 * n) {
        return -1;
    }
    for (i = 0; i < 2 * n; i++) {
        k = (unsigned char)s[i];
        if (k >= '0' && k <= '9') {
            v = k - '0';
        } else if (k >= 'a' && k <= 'f') {
            v = k - 'a' + 10;
        } else {
            return -1;
        }
        if (i % 2 == 0) {
            out[i / 2] = (unsigned char)(v << 4);
        } else {
            out[i / 2] |= (unsigned char)v;
        }
    }
    return 0;
}

void
canon_sha256(const void *p, size_t n, char out[CANON_HASH_HEX])
{
    unsigned char md[SHA256_DIGEST_LENGTH];

    SHA256(p, n, md);
    hex(md, sizeof(md), out);
}

void
canon_hash_json(const json_t *j, char out[CANON_HASH_HEX])
{
    char *s = canon_dump(j);

    canon_sha256(s, strlen(s), out);
    free(s);
}

json_t *
canon_app(const struct exapp *app)
{
    json_t *o = exapp_to_json(app, false);
    char h[CANON_HASH_HEX];

    canon_sha256(app->token, strlen(app->token), h);
    json_object_set_new(o, "app_id", json_string(app->app_id));
    json_object_set_new(o, "token_sha256", json_string(h));
    json_object_set_new(o, "created_at", json_integer(app->created_at));
    json_object_set_new(o, "updated_at", json_integer(app->updated_at));
    return o;
}

json_t *
canon_table(const struct exapp *apps, size_t n)
{
    json_t *t = json_object();
    size_t i;

    for (i = 0; i < n; i++) {
        json_object_set_new(t, apps[i].app_id, canon_app(&apps[i]));
    }
    return t;
}

void
canon_table_hash(const struct exapp *apps, size_t n, char out[CANON_HASH_HEX])
{
    json_t *t = canon_table(apps, n);

    canon_hash_json(t, out);
    json_decref(t);
}

json_t *
canon_ack_json(int64_t version, const char *dp_id, const char *table_hash)
{
    return json_pack("{s:s,s:I,s:s,s:s}", "type", "harp.table_ack", "version", (json_int_t)version,
                     "dp_id", dp_id, "table_hash", table_hash);
}

struct evp_pkey_st *
canon_key_new(void)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
    EVP_PKEY *k = NULL;

    if (c == NULL || EVP_PKEY_keygen_init(c) <= 0 || EVP_PKEY_keygen(c, &k) <= 0) {
        k = NULL;
    }
    EVP_PKEY_CTX_free(c);
    return k;
}

void
canon_key_free(struct evp_pkey_st *k)
{
    EVP_PKEY_free(k);
}

int
canon_key_pub(struct evp_pkey_st *k, char out[CANON_KEY_HEX])
{
    unsigned char raw[32];
    size_t len = sizeof(raw);

    if (EVP_PKEY_get_raw_public_key(k, raw, &len) <= 0 || len != sizeof(raw)) {
        return -1;
    }
    hex(raw, len, out);
    return 0;
}

int
canon_pubkey_sha256(const struct evp_pkey_st *k, char out[CANON_HASH_HEX])
{
    unsigned char *der = NULL;
    int n = k != NULL ? i2d_PUBKEY((EVP_PKEY *)k, &der) : -1;

    out[0] = '\0';
    if (n <= 0) {
        return -1;
    }
    canon_sha256(der, (size_t)n, out);
    OPENSSL_free(der);
    return 0;
}

int
canon_sign(struct evp_pkey_st *k, const json_t *j, char sig[CANON_SIG_HEX])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned char raw[64];
    size_t len = sizeof(raw);
    char *s = canon_dump(j);
    int rc = -1;

    if (c != NULL && EVP_DigestSignInit(c, NULL, NULL, NULL, k) > 0 &&
        EVP_DigestSign(c, raw, &len, (const unsigned char *)s, strlen(s)) > 0 && len == 64) {
        hex(raw, len, sig);
        rc = 0;
    }
    EVP_MD_CTX_free(c);
    free(s);
    return rc;
}

bool
canon_verify(const char *pub, const json_t *j, const char *sig)
{
    unsigned char rawpub[32], rawsig[64];
    EVP_PKEY *k;
    EVP_MD_CTX *c;
    char *s;
    bool ok = false;

    if (unhex(pub, rawpub, sizeof(rawpub)) == -1 || unhex(sig, rawsig, sizeof(rawsig)) == -1) {
        return false;
    }
    k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, rawpub, sizeof(rawpub));
    if (k == NULL) {
        return false;
    }
    c = EVP_MD_CTX_new();
    s = canon_dump(j);
    if (c != NULL && EVP_DigestVerifyInit(c, NULL, NULL, NULL, k) > 0 &&
        EVP_DigestVerify(c, rawsig, sizeof(rawsig), (const unsigned char *)s, strlen(s)) == 1) {
        ok = true;
    }
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(k);
    free(s);
    return ok;
}
