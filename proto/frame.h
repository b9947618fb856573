/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* proto framing: a 4-byte big-endian length, then one JSON object with a "type" field. */
#ifndef HARP_PROTO_FRAME_H
#define HARP_PROTO_FRAME_H

#include <jansson.h>
#include <stddef.h>

#include "err.h"

/* Frames above this are a protocol error that closes the link. */
#define FRAME_MAX (16u * 1024 * 1024)

/* Reassembles frames from a byte stream. Created zeroed; freed with frame_reader_free(). */
struct frame_reader {
    char *buf;
    size_t len, cap;
};

/* Appends <n> bytes received from the peer. */
void frame_feed(struct frame_reader *r, const void *data, size_t n);
/* 1 with *<out> a new reference to the next whole frame's object, 0 when more bytes are
 * needed, -1 with <err> on a protocol error (oversized frame, bad JSON, no "type"). */
int frame_next(struct frame_reader *r, json_t **out, struct hp_err *err);
void frame_reader_free(struct frame_reader *r);

/* The frame for <msg> (not stolen), in a new buffer of *<len> bytes; NULL if it would exceed
 * FRAME_MAX. */
char *frame_encode(const json_t *msg, size_t *len);

#endif
