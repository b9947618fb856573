/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The proto frame reader and message checks on arbitrary bytes. Invariants: every frame
 * accepted re-encodes to a frame that decodes to an equal object; a message that passes
 * msg_check for one side is a known type. */
#include "config.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>

#include "frame.h"
#include "msg.h"

const char fuzz_target_name[] = "frame";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct frame_reader r = {0}, r2 = {0};
    struct hp_err err;
    json_t *m, *m2;
    char *enc;
    size_t n;
    int t;

    /* Feed in two pieces to exercise reassembly. */
    frame_feed(&r, data, size / 2);
    frame_feed(&r, data + size / 2, size - size / 2);
    while ((t = frame_next(&r, &m, &err)) == 1 || t == FRAME_BAD) {
        if (t == FRAME_BAD) {
            continue; /* skipped: the stream stays in step */
        }
        enc = frame_encode(m, &n);
        assert(enc != NULL);
        frame_feed(&r2, enc, n);
        assert(frame_next(&r2, &m2, &err) == 1);
        assert(json_equal(m, m2));
        json_decref(m2);
        free(enc);
        t = msg_check(m, MSG_FROM_DP, &err);
        assert(t == -1 || (t >= 0 && t < MSG_NTYPES));
        t = msg_check(m, MSG_FROM_CTL, &err);
        assert(t == -1 || (t >= 0 && t < MSG_NTYPES));
        json_decref(m);
    }
    frame_reader_free(&r);
    frame_reader_free(&r2);
    return 0;
}
