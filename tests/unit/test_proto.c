/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* proto framing and the message table: frames split anywhere reassemble, oversized and
 * malformed frames are errors, each side may send only its own message types. */
#include "config.h"

#include <stdlib.h>

#include "b64.h"
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
    IS_INT(frame_next(&r, &got, &err), FRAME_BAD, "truncated JSON is a bad frame");
    frame_reader_free(&r);
    feed_raw(&r, "[1]", 3);
    IS_INT(frame_next(&r, &got, &err), FRAME_BAD, "a non-object is a bad frame");
    frame_reader_free(&r);
    feed_raw(&r, "{\"type\":1}", 10);
    IS_INT(frame_next(&r, &got, &err), FRAME_BAD, "a non-string type is a bad frame");
    frame_reader_free(&r);
    feed_raw(&r, "{\"type\":\"a\",\"type\":\"b\"}", 23);
    IS_INT(frame_next(&r, &got, &err), FRAME_BAD, "duplicate keys are a bad frame");
    frame_reader_free(&r);
    feed_raw(&r, "\xff\xfe", 2);
    feed_raw(&r, "{\"type\":\"ping\"}", 15);
    IS_INT(frame_next(&r, &got, &err), FRAME_BAD, "bytes that are not JSON are a bad frame");
    IS_INT(frame_next(&r, &got, &err), 1, "and the frame after it is read in step");
    json_decref(got);
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

static void
test_b64(void)
{
    static const struct {
        const char *plain, *enc;
    } v[] = {{"", ""},
             {"f", "Zg=="},
             {"fo", "Zm8="},
             {"foo", "Zm9v"},
             {"foob", "Zm9vYg=="},
             {"fooba", "Zm9vYmE="},
             {"foobar", "Zm9vYmFy"}};
    static const char *bad[] = {
        "Zg=", "Zg", "Z===", "Zh==", "Zm9=", "Zm 9v", "Zm9v\n", "Zg==Zg==", "=Zg=", "Zm-_"};
    unsigned char all[256], dec[400];
    char enc[400];
    size_t i, n;
    int ok = 1;

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        n = b64_encode(v[i].plain, strlen(v[i].plain), enc);
        ok &= n == strlen(v[i].enc) && strcmp(enc, v[i].enc) == 0;
        ok &= b64_decode(v[i].enc, strlen(v[i].enc), dec) == (long)strlen(v[i].plain) &&
              memcmp(dec, v[i].plain, strlen(v[i].plain)) == 0;
    }
    OK(ok, "RFC 4648 test vectors encode and decode");
    for (i = 0; i < 256; i++) {
        all[i] = (unsigned char)i;
    }
    for (n = 0, ok = 1; n <= 256; n++) {
        size_t len = b64_encode(all, n, enc);

        ok &= len == B64_ENCODED_LEN(n) && b64_decode(enc, len, dec) == (long)n &&
              memcmp(dec, all, n) == 0;
    }
    OK(ok, "every byte value survives the round trip, at every length");
    for (i = 0, ok = 1; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ok &= b64_decode(bad[i], strlen(bad[i]), dec) == -1;
    }
    OK(ok, "non-canonical base64 is refused");
}

static json_t *
auth_msg(const char *cookie, size_t cookie_len, json_t *headers)
{
    json_t *m = msg_new(MSG_AUTH);

    json_object_set_new(m, "id", json_integer(7));
    json_object_set_new(m, "app_id", json_string("app"));
    json_object_set_new(m, "cookie_b64", msg_bytes(cookie, cookie_len));
    json_object_set_new(m, "headers", headers);
    return m;
}

static void
test_auth_bytes(void)
{
    static const char cookie[] = "\xff\xfe\x80\x7f";
    static const char auth[] = "Basic \xc3\x28\xff";
    struct msg_auth a;
    struct hp_err err;
    const struct msg_header *h;
    json_t *m, *hs;
    size_t n;
    char *f;

    hs = json_pack("[[s,o],[s,o]]", "cookie", msg_bytes("oc_sessionPassphrase=\xff", 22),
                   "authorization", msg_bytes(auth, sizeof(auth) - 1));
    m = auth_msg(cookie, sizeof(cookie) - 1, hs);
    f = frame_encode(m, &n);
    OK(f != NULL, "an auth message with non-UTF-8 bytes encodes");
    free(f);
    IS_INT(msg_check(m, MSG_FROM_DP, &err), MSG_AUTH, "and passes the message check");
    IS_INT(msg_auth_decode(m, &a, &err), 0, "and decodes");
    OK(a.cookie_len == 4 && memcmp(a.cookie, cookie, 4) == 0, "the cookie bytes are exact");
    h = msg_auth_header(&a, "authorization");
    OK(h != NULL && h->value_len == sizeof(auth) - 1 && memcmp(h->value, auth, h->value_len) == 0,
       "the Authorization bytes are exact");
    IS_INT(a.id, 7, "the request id is kept");
    msg_auth_free(&a);
    json_decref(m);

    m = auth_msg("", 0, json_pack("[[s,s]]", "cookie", "not base64!"));
    IS_INT(msg_auth_decode(m, &a, &err), -1, "a header value that is not base64 is refused");
    OK(strstr(err.msg, "not base64!") == NULL, "the error does not quote the value");
    msg_auth_free(&a);
    json_decref(m);
    m = auth_msg("", 0, json_pack("[[s,s]]", "bad name", "eA=="));
    IS_INT(msg_auth_decode(m, &a, &err), -1, "a header name that is not a token is refused");
    msg_auth_free(&a);
    json_decref(m);
    m = auth_msg("", 0, json_pack("[s]", "x"));
    IS_INT(msg_auth_decode(m, &a, &err), -1, "a header that is not a pair is refused");
    msg_auth_free(&a);
    json_decref(m);
    m = auth_msg("a\0b", 3, json_array());
    IS_INT(msg_auth_decode(m, &a, &err), -1, "a cookie with a NUL is refused");
    msg_auth_free(&a);
    json_decref(m);
    m = json_pack("{s:s,s:i,s:s,s:s,s:[]}", "type", "auth", "id", 1, "app_id", "a", "cookie", "x",
                  "headers");
    IS_INT(msg_check(m, MSG_FROM_DP, &err), -1, "the version 2 field \"cookie\" is not enough");
    json_decref(m);
    m = json_pack("{s:s,s:i,s:s}", "type", "request_error", "id", 3, "message", "busy");
    IS_INT(msg_check(m, MSG_FROM_CTL, &err), MSG_REQUEST_ERROR, "request_error goes to the dp");
    IS_INT(msg_check(m, MSG_FROM_DP, &err), -1, "not from it");
    json_decref(m);
}

int
main(void)
{
    test_roundtrip_split_anywhere();
    test_errors();
    test_b64();
    test_auth_bytes();
    return tap_done();
}
