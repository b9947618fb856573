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
/* Returned by frame_next() for a whole frame that is not a JSON object with a string "type":
 * it is consumed, the stream stays in step, the link may go on. */
#define FRAME_BAD (-2)

/* 1 with *<out> a new reference to the next whole frame's object, 0 when more bytes are
 * needed, FRAME_BAD with <err> for a frame that is not a message, -1 with <err> when the
 * stream cannot be followed (a length over FRAME_MAX): the link must close. */
int frame_next(struct frame_reader *r, json_t **out, struct hp_err *err);
void frame_reader_free(struct frame_reader *r);

/* The frame for <msg> (not stolen), in a new buffer of *<len> bytes; NULL if it would exceed
 * FRAME_MAX. */
char *frame_encode(const json_t *msg, size_t *len);

#endif
