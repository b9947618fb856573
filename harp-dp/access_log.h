/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The access log (HP_ACCESS_LOG=off|text|json): one line per request on standard output,
 * buffered and written at least once a second; and the request ids (X-Request-ID) it shares
 * with the ExApps. Loop thread only. */
#ifndef HARP_DP_ACCESS_LOG_H
#define HARP_DP_ACCESS_LOG_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stdint.h>

#include "http1.h"
#include "refusal.h"

enum access_log_mode { ACCESS_LOG_OFF, ACCESS_LOG_TEXT, ACCESS_LOG_JSON };

/* A request id: a client's X-Request-ID of at most this many characters of
 * [A-Za-z0-9._~:+/=-] is kept, any other is replaced by a generated one (32 hex digits). */
#define REQUEST_ID_MAX 128

/* What one line says. */
struct access_entry {
    const char *client, *app, *method, *path, *upstream, *request_id; /* "" when unknown */
    unsigned status;                                                  /* 0: none, closed */
    enum refusal_reason reason;
    uint64_t bytes; /* sent to the client for the request */
    double seconds;
};

/* "off", "text" or "json" (any case) into *<out>: 0, or -1. */
int access_log_parse(const char *s, enum access_log_mode *out);
/* Starts writing in <mode> (off: nothing) for data plane <dp_id>; the flush timer runs on
 * <ctx>. */
void access_log_start(struct lws_context *ctx, enum access_log_mode mode, const char *dp_id);
bool access_log_on(void);
void access_log_write(const struct access_entry *e);
/* Writes what is buffered (at exit). */
void access_log_flush(void);
void access_log_stop(void);
/* The request id of request <h> into <out> (REQUEST_ID_MAX + 1 bytes): the client's single,
 * valid X-Request-ID, or a new one. */
void request_id_pick(const struct http1_head *h, char out[REQUEST_ID_MAX + 1]);

#endif
