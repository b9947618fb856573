/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* A fixed error buffer a callee fills with a message a person will read; no allocation. */
#ifndef HARP_PROTO_ERR_H
#define HARP_PROTO_ERR_H

struct hp_err {
    char msg[512];
};

void err_set(struct hp_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
