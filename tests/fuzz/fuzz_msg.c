/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The control-link message decoder on arbitrary JSON, as each side receives it. Invariants:
 * a message accepted from either side re-encodes to one that decodes again, equal; a refused
 * one has an error text and a known or unknown type, never a crash or a leak. */
#include "config.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>

#include "frame.h"
#include "msg.h"

const char fuzz_target_name[] = "msg";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const json_t *j, enum msg_dir from)
{
    struct frame_reader r = {0};
    struct hp_err err = {""};
    struct msg m, m2;
    json_t *e1, *e2, *back;
    size_t n;
    char *f;

    if (msg_decode(j, from, &m, &err) == -1) {
        assert(err.msg[0] != '\0');
        assert(m.type <= MSG_NTYPES);
        msg_free(&m);
        return;
    }
    assert(m.type < MSG_NTYPES);
    e1 = msg_encode(&m);
    f = msg_frame(&m, &n);
    msg_free(&m);
    assert(f != NULL);
    frame_feed(&r, f, n);
    assert(frame_next(&r, &back, &err) == 1);
    assert(msg_decode(back, from, &m2, &err) == 0);
    e2 = msg_encode(&m2);
    assert(json_equal(e1, e2));
    msg_free(&m2);
    json_decref(e1);
    json_decref(e2);
    json_decref(back);
    frame_reader_free(&r);
    free(f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);

    if (j == NULL) {
        return 0;
    }
    check(j, MSG_FROM_DP);
    check(j, MSG_FROM_CTL);
    json_decref(j);
    return 0;
}
