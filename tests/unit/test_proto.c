/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* proto framing and the message table: frames split anywhere reassemble, oversized and
 * malformed frames are errors, each side may send only its own message types. */
#include "config.h"

#include <stdlib.h>

#include "frame.h"
#include "msg.h"
#include "tap.h"

static void
test_roundtrip_split_anywhere(void)
{
    struct frame_reader r = {0};
    struct hp_err err;
    json_t *m = msg_new(MSG_HELLO), *got;
    char *f1, *f2, *all;
    size_t n1, n2, cut, i;
    int ok = 1;

    json_object_set_new(m, "proto", json_integer(PROTO_VERSION));
    json_object_set_new(m, "dp_id", json_string("dp-1"));
    json_object_set_new(m, "version", json_integer(7));
    f1 = frame_encode(m, &n1);
    f2 = frame_encode(m, &n2);
    all = malloc(n1 + n2);
    memcpy(all, f1, n1);
    memcpy(all + n1, f2, n2);
    for (cut = 0; cut <= n1 + n2; cut++) {
        int frames = 0;

        frame_feed(&r, all, cut);
        while (frame_next(&r, &got, &err) == 1) {
            ok &= json_equal(got, m);
            json_decref(got);
            frames++;
        }
        frame_feed(&r, all + cut, n1 + n2 - cut);
        while (frame_next(&r, &got, &err) == 1) {
            ok &= json_equal(got, m);
            json_decref(got);
            frames++;
        }
        ok &= frames == 2 && r.len == 0;
    }
    OK(ok, "two frames reassemble whatever the split point");
    for (i = 0; i < n1; i++) {
        frame_feed(&r, f1 + i, 1);
    }
    IS_INT(frame_next(&r, &got, &err), 1, "byte-by-byte feed gives the frame");
    json_decref(got);
    IS_INT(msg_check(m, MSG_FROM_DP, &err), MSG_HELLO, "hello from a dp is valid");
    IS_INT(msg_check(m, MSG_FROM_CTL, &err), -1, "hello from ctl is refused");
    free(f1);
    free(f2);
    free(all);
    json_decref(m);
    frame_reader_free(&r);
}

static void
feed_raw(struct frame_reader *r, const char *body, size_t n)
{
    unsigned char h[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
                          (unsigned char)(n >> 8), (unsigned char)n};

    frame_feed(r, h, 4);
    frame_feed(r, body, n);
}

static void
test_errors(void)
{
    struct frame_reader r = {0};
    struct hp_err err;
    unsigned char big[4] = {0x01, 0x00, 0x00, 0x01};
    json_t *got, *m;

    frame_feed(&r, big, 4);
    IS_INT(frame_next(&r, &got, &err), -1, "a frame above 16 MiB is refused before it arrives");
    OK(strstr(err.msg, "exceeds") != NULL, "the error says why");
    frame_reader_free(&r);
    feed_raw(&r, "{\"type\":", 8);
    IS_INT(frame_next(&r, &got, &err), -1, "truncated JSON is an error");
    frame_reader_free(&r);
    feed_raw(&r, "[1]", 3);
    IS_INT(frame_next(&r, &got, &err), -1, "a non-object is an error");
    frame_reader_free(&r);
    feed_raw(&r, "{\"type\":1}", 10);
    IS_INT(frame_next(&r, &got, &err), -1, "a non-string type is an error");
    frame_reader_free(&r);
    feed_raw(&r, "{\"type\":\"a\",\"type\":\"b\"}", 23);
    IS_INT(frame_next(&r, &got, &err), -1, "duplicate keys are an error");
    frame_reader_free(&r);

    m = json_pack("{s:s}", "type", "launch");
    IS_INT(msg_check(m, MSG_FROM_CTL, &err), -1, "an unknown type is refused");
    json_decref(m);
    m = json_pack("{s:s,s:i}", "type", "snapshot", "version", 3);
    IS_INT(msg_check(m, MSG_FROM_CTL, &err), -1, "a snapshot without exapps is refused");
    OK(strstr(err.msg, "exapps") != NULL, "the error names the field");
    json_decref(m);
    m = json_pack("{s:s,s:i,s:[],s:{}}", "type", "snapshot", "version", 3, "exapps", "settings");
    IS_INT(msg_check(m, MSG_FROM_CTL, &err), MSG_SNAPSHOT, "a whole snapshot is accepted");
    IS_INT(msg_check(m, MSG_FROM_DP, &err), -1, "but not from a data plane");
    json_decref(m);
    m = msg_new(MSG_PING);
    IS_INT(msg_check(m, MSG_FROM_DP, &err), MSG_PING, "ping goes both ways");
    IS_INT(msg_check(m, MSG_FROM_CTL, &err), MSG_PING, "ping goes both ways (ctl)");
    json_decref(m);
}

int
main(void)
{
    test_roundtrip_split_anywhere();
    test_errors();
    return tap_done();
}
