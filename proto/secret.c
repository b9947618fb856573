/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "secret.h"

bool
secret_equal(const char *a, size_t alen, const char *key)
{
    size_t klen, i;
    unsigned char diff;

    if (a == NULL || key == NULL) {
        return false;
    }
    klen = strlen(key);
    diff = (unsigned char)(alen != klen);
    /* Walk the presented value in full so the time does not reveal the key's length
     * through an early exit; the index into <key> wraps when lengths differ. */
    for (i = 0; i < alen; i++) {
        diff |= (unsigned char)a[i] ^ (unsigned char)key[klen == 0 ? 0 : i % klen];
    }
    return diff == 0;
}

void
secret_wipe(void *p, size_t n)
{
    if (p != NULL) {
        explicit_bzero(p, n);
    }
}

void
secret_free(char *s)
{
    if (s != NULL) {
        secret_wipe(s, strlen(s));
        free(s);
    }
}

int
secret_generate_hex(char *out, size_t nbytes)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char buf[64];
    size_t i;

    if (nbytes > sizeof(buf) || getrandom(buf, nbytes, 0) != (ssize_t)nbytes) {
        return -1;
    }
    for (i = 0; i < nbytes; i++) {
        out[2 * i] = hex[buf[i] >> 4];
        out[2 * i + 1] = hex[buf[i] & 15];
    }
    out[2 * nbytes] = '\0';
    secret_wipe(buf, sizeof(buf));
    return 0;
}
