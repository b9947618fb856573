/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Base64 encoding and strict decoding. Pure. */
#include "config.h"

#include <stdbool.h>

#include "b64.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t
b64_encode(const void *src, size_t n, char *dst)
{
    const unsigned char *s = src;
    size_t i, o = 0;
    unsigned v;

    for (i = 0; i + 2 < n; i += 3) {
        v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
        dst[o++] = alphabet[v >> 18];
        dst[o++] = alphabet[(v >> 12) & 63];
        dst[o++] = alphabet[(v >> 6) & 63];
        dst[o++] = alphabet[v & 63];
    }
    if (i < n) {
        v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0);
        dst[o++] = alphabet[v >> 18];
        dst[o++] = alphabet[(v >> 12) & 63];
        dst[o++] = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
        dst[o++] = '=';
    }
    dst[o] = '\0';
    return o;
}

static int
value(char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

long
b64_decode(const char *src, size_t n, unsigned char *dst)
{
    size_t i, o = 0, pad = 0;
    int q[4], k;
    unsigned v;

    if (n % 4 != 0) {
        return -1;
    }
    if (n > 0 && src[n - 1] == '=') {
        pad = n > 1 && src[n - 2] == '=' ? 2 : 1;
    }
    for (i = 0; i < n; i += 4) {
        for (k = 0; k < 4; k++) {
            bool padded = i + 4 == n && k >= 4 - (int)pad;

            q[k] = padded ? 0 : value(src[i + k]);
            if (q[k] < 0) {
                return -1;
            }
        }
        v = (unsigned)q[0] << 18 | (unsigned)q[1] << 12 | (unsigned)q[2] << 6 | (unsigned)q[3];
        dst[o++] = (unsigned char)(v >> 16);
        if (i + 4 < n || pad < 2) {
            dst[o++] = (unsigned char)(v >> 8);
        } else if (v & 0xffff) {
            return -1; /* bits set under the padding */
        }
        if (i + 4 < n || pad < 1) {
            dst[o++] = (unsigned char)v;
        } else if (v & 0xff) {
            return -1;
        }
    }
    return (long)o;
}
