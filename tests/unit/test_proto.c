/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* proto framing and messages: frames split anywhere reassemble, oversized and malformed
 * frames are errors, each side may send only its own message types, and every fixture of
 * tests/fixtures/proto/ decodes (and re-encodes to the same message) or is refused with its
 * expected error. */
#include "config.h"

#include <dirent.h>
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
    m = json_pack("{s:s,s:i,s:[]}", "type", "snapshot", "version", 3, "exapps");
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
    struct msg d;
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
    IS_INT(msg_decode(m, MSG_FROM_DP, &d, &err), 0, "and decodes");
    OK(d.auth.cookie_len == 4 && memcmp(d.auth.cookie, cookie, 4) == 0,
       "the cookie bytes are exact");
    h = msg_auth_header(&d.auth, "authorization");
    OK(h != NULL && h->value_len == sizeof(auth) - 1 && memcmp(h->value, auth, h->value_len) == 0,
       "the Authorization bytes are exact");
    IS_INT(d.id, 7, "the request id is kept");
    msg_free(&d);
    json_decref(m);

    m = auth_msg("", 0, json_pack("[[s,s]]", "cookie", "not base64!"));
    IS_INT(msg_decode(m, MSG_FROM_DP, &d, &err), -1,
           "a header value that is not base64 is refused");
    OK(strstr(err.msg, "not base64!") == NULL, "the error does not quote the value");
    msg_free(&d);
    json_decref(m);
    m = auth_msg("", 0, json_pack("[[s,s]]", "bad name", "eA=="));
    IS_INT(msg_decode(m, MSG_FROM_DP, &d, &err), -1,
           "a header name that is not a token is refused");
    msg_free(&d);
    json_decref(m);
    m = auth_msg("", 0, json_pack("[s]", "x"));
    IS_INT(msg_decode(m, MSG_FROM_DP, &d, &err), -1, "a header that is not a pair is refused");
    msg_free(&d);
    json_decref(m);
    m = auth_msg("a\0b", 3, json_array());
    IS_INT(msg_decode(m, MSG_FROM_DP, &d, &err), -1, "a cookie with a NUL is refused");
    msg_free(&d);
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

/* Decodes <j> from <from>, encodes it, decodes that again (through a frame) and re-encodes:
 * both encodings must be equal. NULL with <err> when the first decode refuses it. */
static json_t *
roundtrip(const json_t *j, enum msg_dir from, bool *same, struct hp_err *err)
{
    struct frame_reader r = {0};
    struct msg m, m2;
    json_t *e1, *e2 = NULL, *back = NULL;
    struct hp_err err2;
    size_t n;
    char *f;

    *same = false;
    memset(&m2, 0, sizeof(m2));
    if (msg_decode(j, from, &m, err) == -1) {
        msg_free(&m);
        return NULL;
    }
    e1 = msg_encode(&m);
    f = msg_frame(&m, &n);
    msg_free(&m);
    if (f != NULL) {
        frame_feed(&r, f, n);
        if (frame_next(&r, &back, &err2) == 1 && msg_decode(back, from, &m2, &err2) == 0) {
            e2 = msg_encode(&m2);
        }
        msg_free(&m2);
    }
    *same = e2 != NULL && json_equal(e1, e2);
    json_decref(e2);
    json_decref(back);
    frame_reader_free(&r);
    free(f);
    return e1;
}

static void
test_fixtures(void)
{
    const char *dir = getenv("PROTO_FIXTURES");
    int nvalid = 0, ninvalid = 0;
    struct dirent *de;
    char path[4096];
    DIR *d;

    if (dir == NULL) {
        dir = "fixtures/proto";
    }
    d = opendir(dir);
    OK(d != NULL, "the fixtures directory %s opens", dir);
    while (d != NULL && (de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        const char *expect, *fromname;
        json_error_t jerr;
        struct hp_err err;
        json_t *c, *enc;
        enum msg_dir from;
        bool same;

        if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        c = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
        fromname = json_string_value(json_object_get(c, "from"));
        if (c == NULL || fromname == NULL || json_object_get(c, "message") == NULL) {
            OK(0, "%s: a fixture (from, message[, error])", de->d_name);
            json_decref(c);
            continue;
        }
        from = strcmp(fromname, "dp") == 0 ? MSG_FROM_DP : MSG_FROM_CTL;
        expect = json_string_value(json_object_get(c, "error"));
        memset(&err, 0, sizeof(err));
        enc = roundtrip(json_object_get(c, "message"), from, &same, &err);
        if (expect == NULL) {
            nvalid++;
            OK(enc != NULL && same, "%s: decodes, and re-encodes to the same message%s%s",
               de->d_name, enc == NULL ? ": " : "", enc == NULL ? err.msg : "");
        } else {
            ninvalid++;
            OK(enc == NULL && strstr(err.msg, expect) != NULL, "%s: refused with \"%s\" (%s)",
               de->d_name, expect, enc == NULL ? err.msg : "accepted");
        }
        json_decref(enc);
        json_decref(c);
    }
    if (d != NULL) {
        closedir(d);
    }
    OK(nvalid >= 20 && ninvalid >= 20, "%d valid and %d invalid fixtures", nvalid, ninvalid);
}

/* What a sender fills encodes to the wire form the receiver decodes back. */
static void
test_typed(void)
{
    struct msg_header h = {.name = "cookie", .value = "a\xff", .value_len = 2};
    struct msg m = {.type = MSG_HELLO}, got;
    struct hp_err err;
    json_t *j;

    m.hello.proto = PROTO_VERSION;
    snprintf(m.hello.dp_id, sizeof(m.hello.dp_id), "dp-1");
    m.hello.pid = 99;
    m.hello.version = -1;
    j = msg_encode(&m);
    IS_INT(msg_decode(j, MSG_FROM_DP, &got, &err), 0, "an encoded hello decodes");
    OK(got.type == MSG_HELLO && strcmp(got.hello.dp_id, "dp-1") == 0 && got.hello.pid == 99 &&
           got.hello.version == -1,
       "with its fields");
    msg_free(&got);
    json_decref(j);

    j = json_pack("{s:s,s:i,s:i}", "type", "hello", "proto", PROTO_VERSION + 1, "dp_id", 7);
    IS_INT(msg_decode(j, MSG_FROM_DP, &got, &err), 0, "a hello of another version decodes");
    OK(got.hello.proto == PROTO_VERSION + 1 && got.hello.dp_id[0] == '\0',
       "to its version alone, for the receiver to refuse");
    msg_free(&got);
    json_decref(j);

    memset(&m, 0, sizeof(m));
    m.type = MSG_AUTH;
    m.has_id = true;
    m.id = 12;
    snprintf(m.auth.app_id, sizeof(m.auth.app_id), "%s", "testapp");
    m.auth.cookie = "";
    m.auth.headers = &h;
    m.auth.nheaders = 1;
    j = msg_encode(&m);
    IS_INT(msg_decode(j, MSG_FROM_DP, &got, &err), 0, "an encoded auth decodes");
    OK(got.has_id && got.id == 12 && got.auth.id == 12 && strcmp(got.auth.app_id, "testapp") == 0,
       "with its id and app id");
    OK(got.auth.nheaders == 1 && got.auth.headers[0].value_len == 2 &&
           memcmp(got.auth.headers[0].value, "a\xff", 2) == 0,
       "and the header bytes exact");
    msg_free(&got);
    json_decref(j);

    j = json_pack("{s:s,s:i,s:s}", "type", "auth", "id", 31, "app_id", "x");
    IS_INT(msg_decode(j, MSG_FROM_DP, &got, &err), -1, "a malformed auth is refused");
    OK(got.type == MSG_AUTH && got.has_id && got.id == 31,
       "with its type and request id known, to fail that request alone");
    msg_free(&got);
    json_decref(j);
    j = json_pack("{s:s,s:i}", "type", "nonsense", "id", 32);
    IS_INT(msg_decode(j, MSG_FROM_DP, &got, &err), -1, "an unknown type is refused");
    OK(got.type == MSG_NTYPES && got.has_id && got.id == 32, "its id is known too");
    msg_free(&got);
    json_decref(j);

    memset(&m, 0, sizeof(m));
    m.type = MSG_AUTH_REPLY;
    m.has_id = true;
    m.auth_reply.result = MSG_AUTH_USER;
    m.auth_reply.access_level = ACCESS_ADMIN;
    snprintf(m.auth_reply.user_id, sizeof(m.auth_reply.user_id), "admin");
    m.auth_reply.ttl_ms = 1000;
    j = msg_encode(&m);
    IS_INT(json_integer_value(json_object_get(j, "access_level")), ACCESS_ADMIN,
           "access levels go as AppAPI numbers them");
    IS_INT(msg_decode(j, MSG_FROM_DP, &got, &err), -1, "auth_reply comes from harp-ctl only");
    msg_free(&got);
    IS_INT(msg_decode(j, MSG_FROM_CTL, &got, &err), 0, "and decodes there");
    OK(got.auth_reply.access_level == ACCESS_ADMIN && got.auth_reply.ttl_ms == 1000,
       "with its level and lifetime");
    msg_free(&got);
    json_decref(j);
}

/* settings: HP_TRUSTED_PROXY_IPS up to MSG_TRUSTED_PROXIES_MAX bytes, one more refused; the
 * encoder gives back what was decoded. */
static void
test_settings_limits(void)
{
    char *big = malloc(MSG_TRUSTED_PROXIES_MAX + 2);
    struct msg d;
    struct hp_err err;
    json_t *m, *again, *want;

    memset(big, '1', MSG_TRUSTED_PROXIES_MAX + 1);
    big[MSG_TRUSTED_PROXIES_MAX] = '\0';
    m = json_pack("{s:s,s:s,s:i,s:i,s:i,s:i,s:i,s:s,s:b}", "type", "settings", "log_level", "WARN",
                  "timeout_connect_ms", 0, "timeout_client_ms", 1, "timeout_server_ms", 2,
                  "timeout_tunnel_ms", 3, "timeout_head_ms", 4, "trusted_proxy_ips", big,
                  "ban_reply_429", 0);
    IS_INT(msg_decode(m, MSG_FROM_CTL, &d, &err), 0, "trusted proxies of the largest size");
    OK(d.settings.log_level == LOG_LVL_WARNING && d.settings.timeout_head_ms == 4 &&
           strlen(d.settings.trusted_proxy_ips) == MSG_TRUSTED_PROXIES_MAX,
       "decoded as sent (a level's alias accepted)");
    again = msg_encode(&d);
    want = json_string(big);
    OK(json_equal(json_object_get(again, "trusted_proxy_ips"), want) &&
           strcmp(json_string_value(json_object_get(again, "log_level")), "warning") == 0,
       "re-encoded, the level by its name");
    json_decref(again);
    json_decref(want);
    msg_free(&d);
    big[MSG_TRUSTED_PROXIES_MAX] = '1';
    big[MSG_TRUSTED_PROXIES_MAX + 1] = '\0';
    json_object_set_new(m, "trusted_proxy_ips", json_string(big));
    IS_INT(msg_decode(m, MSG_FROM_CTL, &d, &err), -1, "one byte more is refused");
    OK(strstr(err.msg, "trusted_proxy_ips") != NULL, "naming the field: %s", err.msg);
    msg_free(&d);
    json_decref(m);
    free(big);
}

int
main(void)
{
    test_roundtrip_split_anywhere();
    test_errors();
    test_b64();
    test_auth_bytes();
    test_fixtures();
    test_typed();
    test_settings_limits();
    return tap_done();
}
