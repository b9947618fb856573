/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* frp messages, keys and AES-CFB streams (frp-protocol.md sections 3-5). */
#include "config.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frp_msg.h"
#include "xmalloc.h"

bool
frp_type_known(int t)
{
    return t != 0 && strchr("o1p2cwrsh4v3uinm56", t) != NULL;
}

enum frp_decode
frp_msg_decode(const uint8_t *buf, size_t len, int *type, json_t **body, size_t *used)
{
    uint64_t n = 0;
    size_t i;

    if (len < 1) {
        return FRP_MORE;
    }
    if (!frp_type_known(buf[0])) {
        return FRP_BAD;
    }
    if (len < FRP_MSG_HEAD) {
        return FRP_MORE;
    }
    for (i = 1; i < FRP_MSG_HEAD; i++) {
        n = n << 8 | buf[i];
    }
    if (n > FRP_MSG_MAX_BODY) { /* also every negative length */
        return FRP_BAD;
    }
    if (len - FRP_MSG_HEAD < n) {
        return FRP_MORE;
    }
    *body = json_loadb((const char *)buf + FRP_MSG_HEAD, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    if (*body == NULL || !json_is_object(*body)) {
        json_decref(*body);
        *body = NULL;
        return FRP_BAD;
    }
    *type = buf[0];
    *used = FRP_MSG_HEAD + (size_t)n;
    return FRP_OK;
}

uint8_t *
frp_msg_encode(int type, const json_t *body, size_t *len)
{
    char *j = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    size_t n = j != NULL ? strlen(j) : 0, i;
    uint8_t *out;

    if (j == NULL || n > FRP_MSG_MAX_BODY) {
        free(j);
        return NULL;
    }
    out = xmalloc(FRP_MSG_HEAD + n);
    out[0] = (uint8_t)type;
    for (i = 0; i < 8; i++) {
        out[1 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
    }
    memcpy(out + FRP_MSG_HEAD, j, n);
    free(j);
    *len = FRP_MSG_HEAD + n;
    return out;
}

bool
frp_privilege_key(const char *token, long long timestamp, char out[33])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0, i;
    char ts[24];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok;

    out[0] = '\0';
    snprintf(ts, sizeof(ts), "%lld", timestamp);
    ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 &&
         EVP_DigestUpdate(ctx, token, strlen(token)) == 1 &&
         EVP_DigestUpdate(ctx, ts, strlen(ts)) == 1 && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 &&
         mdlen >= 16;
    EVP_MD_CTX_free(ctx);
    for (i = 0; ok && i < 16; i++) {
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    }
    return ok;
}

bool
frp_stream_key(const char *token, uint8_t key[16])
{
    return PKCS5_PBKDF2_HMAC(token, (int)strlen(token), (const unsigned char *)"frp", 3, 64,
                             EVP_sha1(), 16, key) == 1;
}

bool
frp_cfb_init(struct frp_cfb *c, const uint8_t key[16], bool encrypt)
{
    memset(c, 0, sizeof(*c));
    memcpy(c->key, key, 16);
    c->encrypt = encrypt;
    c->ctx = EVP_CIPHER_CTX_new();
    return c->ctx != NULL;
}

void
frp_cfb_free(struct frp_cfb *c)
{
    EVP_CIPHER_CTX_free(c->ctx);
    c->ctx = NULL;
}

static bool
start(struct frp_cfb *c)
{
    c->started = true;
    return c->ctx != NULL && EVP_CipherInit_ex(c->ctx, EVP_aes_128_cfb128(), NULL, c->key, c->iv,
                                               c->encrypt ? 1 : 0) == 1;
}

size_t
frp_cfb_encrypt(struct frp_cfb *c, const uint8_t *iv, const uint8_t *in, size_t len, uint8_t *out)
{
    size_t off = 0;
    int n = 0;

    if (!c->started) {
        if (iv != NULL) {
            memcpy(c->iv, iv, 16);
        } else if (RAND_bytes(c->iv, 16) != 1) {
            return FRP_CFB_ERROR;
        }
        memcpy(out, c->iv, 16);
        off = 16;
        if (!start(c)) {
            return FRP_CFB_ERROR;
        }
    }
    if (len > 0 && EVP_CipherUpdate(c->ctx, out + off, &n, in, (int)len) != 1) {
        return FRP_CFB_ERROR;
    }
    return off + (size_t)n;
}

size_t
frp_cfb_decrypt(struct frp_cfb *c, const uint8_t *in, size_t len, uint8_t *out)
{
    size_t take;
    int n = 0;

    if (!c->started) {
        take = 16 - c->iv_have < len ? 16 - c->iv_have : len;
        memcpy(c->iv + c->iv_have, in, take);
        c->iv_have += take;
        in += take;
        len -= take;
        if (c->iv_have < 16) {
            return 0;
        }
        if (!start(c)) {
            return FRP_CFB_ERROR;
        }
    }
    if (len > 0 && EVP_CipherUpdate(c->ctx, out, &n, in, (int)len) != 1) {
        return FRP_CFB_ERROR;
    }
    return (size_t)n;
}
