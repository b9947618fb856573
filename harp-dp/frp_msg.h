/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* frp 0.61 messages and their crypto (frp-protocol.md sections 3-5): framing (type byte,
 * int64 big-endian length, JSON of at most 10240 bytes), the token's privilege key, the
 * PBKDF2 stream key, and AES-128-CFB streams whose IV travels with the first bytes. Pure. */
#ifndef HARP_DP_FRP_MSG_H
#define HARP_DP_FRP_MSG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FRP_MSG_MAX_BODY 10240
#define FRP_MSG_HEAD 9
#define FRP_VERSION "0.61.1"

enum frp_type {
    FRP_LOGIN = 'o',
    FRP_LOGIN_RESP = '1',
    FRP_NEW_PROXY = 'p',
    FRP_NEW_PROXY_RESP = '2',
    FRP_CLOSE_PROXY = 'c',
    FRP_NEW_WORK_CONN = 'w',
    FRP_REQ_WORK_CONN = 'r',
    FRP_START_WORK_CONN = 's',
    FRP_PING = 'h',
    FRP_PONG = '4',
    FRP_NEW_VISITOR_CONN = 'v',
    FRP_NEW_VISITOR_CONN_RESP = '3',
};

enum frp_decode { FRP_MORE = 0, FRP_OK = 1, FRP_BAD = -1 };

/* True for every type byte frp 0.61 knows (including those harp only refuses). */
bool frp_type_known(int type);
/* Decodes one message from <buf>: FRP_OK with *<type>, *<body> (a JSON object, the caller's)
 * and *<used>; FRP_MORE when <buf> holds only part of one; FRP_BAD for an unknown type, a
 * length out of range, or a body that is not a JSON object. */
enum frp_decode frp_msg_decode(const uint8_t *buf, size_t len, int *type, json_t **body,
                               size_t *used);
/* Encodes <body> (compact JSON) as a message of <type>; *<len> bytes, the caller frees. NULL
 * when the body is over FRP_MSG_MAX_BODY. */
uint8_t *frp_msg_encode(int type, const json_t *body, size_t *len);

/* lowercase hex MD5(token || decimal(timestamp)): 32 characters and a NUL. False (and "")
 * when OpenSSL fails. */
bool frp_privilege_key(const char *token, long long timestamp, char out[33]);
/* PBKDF2-HMAC-SHA1(token, "frp", 64 iterations, 16 bytes). False when OpenSSL fails. */
bool frp_stream_key(const char *token, uint8_t key[16]);

/* One direction of an AES-128-CFB stream: the writer sends its IV before its first byte,
 * the reader takes the first 16 bytes it gets as the IV. */
struct frp_cfb {
    void *ctx; /* EVP_CIPHER_CTX */
    uint8_t key[16];
    uint8_t iv[16];
    size_t iv_have;
    bool encrypt, started;
};

/* What encrypt and decrypt return when OpenSSL fails (no random IV, no cipher). */
#define FRP_CFB_ERROR SIZE_MAX

/* False when no cipher context could be made (frp_cfb_free it all the same). */
bool frp_cfb_init(struct frp_cfb *c, const uint8_t key[16], bool encrypt);
void frp_cfb_free(struct frp_cfb *c);
/* Writer: ciphertext of <in> into <out> (room for len + 16); with the IV first the first
 * time, from <iv> (random when NULL). Returns the bytes written to <out>, or FRP_CFB_ERROR. */
size_t frp_cfb_encrypt(struct frp_cfb *c, const uint8_t *iv, const uint8_t *in, size_t len,
                       uint8_t *out);
/* Reader: plaintext of <in> into <out> (room for len), the IV bytes consumed first. Returns
 * the plaintext length, or FRP_CFB_ERROR. */
size_t frp_cfb_decrypt(struct frp_cfb *c, const uint8_t *in, size_t len, uint8_t *out);

#endif
