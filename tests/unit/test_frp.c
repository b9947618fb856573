/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The frp codec against frp's own output: the known-answer vectors of kat.txt (privilege
 * keys, PBKDF2 keys, Go-encoded messages, AES-CFB, a client's exact flight, yamux frames) and
 * every message and encrypted control stream of the decoded transcripts of real sessions. */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

#include "frp_msg.h"
#include "tap.h"
#include "yamux.h"

static size_t
unhex(const char *h, uint8_t *out, size_t max)
{
    size_t n = 0;
    unsigned v;

    while (h[0] != '\0' && h[1] != '\0' && n < max && sscanf(h, "%2x", &v) == 1) {
        out[n++] = (uint8_t)v;
        h += 2;
    }
    return n;
}

static char *
value_after(const char *line, const char *key)
{
    const char *p = strstr(line, key);
    static char buf[8192];
    size_t n = 0;

    if (p == NULL) {
        return NULL;
    }
    p += strlen(key);
    while (*p == ' ') {
        p++;
    }
    while (p[n] != '\0' && p[n] != ' ' && p[n] != '\n' && p[n] != ';' && n + 1 < sizeof(buf)) {
        n++;
    }
    memcpy(buf, p, n);
    buf[n] = '\0';
    return buf;
}

/* A Go-encoded message decodes whole, and encodes back to the same bytes. */
static void
roundtrip(const char *what, const uint8_t *m, size_t n)
{
    json_t *body = NULL;
    uint8_t *again;
    size_t used = 0, len = 0;
    int type = 0;

    OK(frp_msg_decode(m, n, &type, &body, &used) == FRP_OK && used == n && type == m[0],
       "%s decodes", what);
    again = body != NULL ? frp_msg_encode(type, body, &len) : NULL;
    OK(again != NULL && len == n && memcmp(again, m, n) == 0, "%s encodes to frp's bytes", what);
    OK(n < 2 || frp_msg_decode(m, n - 1, &type, &body, &used) == FRP_MORE,
       "%s minus a byte wants more", what);
    free(again);
    json_decref(body);
}

static void
test_kat(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[8192], name[128], hex[8000];
    uint8_t b[4096], want[4096], out[4200], key[16], plain[512];
    size_t n, k, plain_n = 0;
    struct frp_cfb c;
    struct ymx_hdr h;
    int nmsg = 0, nframes = 0;
    bool in_frames = false;

    OK(f != NULL, "kat.txt at %s", path);
    if (f == NULL) {
        return;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "authkey_empty_1700000000 %64s", hex) == 1) {
            char pk[33];

            frp_privilege_key("", 1700000000, pk);
            IS_STR(pk, hex, "privilege key, empty token");
        } else if (sscanf(line, "authkey_sekrit_1700000000 %64s", hex) == 1) {
            char pk[33];

            frp_privilege_key("sekrit", 1700000000, pk);
            IS_STR(pk, hex, "privilege key, token sekrit");
        } else if (strncmp(line, "key_token='", 11) == 0) {
            char tok[64] = "";
            uint8_t w[16];

            sscanf(line, "key_token='%63[^']' %64s", tok, hex);
            if (line[11] == '\'') {
                tok[0] = '\0';
                sscanf(line, "key_token='' %64s", hex);
            }
            frp_stream_key(tok, key);
            unhex(hex, w, 16);
            OK(memcmp(key, w, 16) == 0, "PBKDF2 key for token '%s'", tok);
        } else if (strncmp(line, "plaintext ", 10) == 0) {
            plain_n = unhex(line + 10, plain, sizeof(plain));
        } else if (strncmp(line, "wire(iv||ciphertext) ", 21) == 0) {
            size_t wn, i, got = 0;

            wn = unhex(line + 21, want, sizeof(want));
            frp_stream_key("", key);
            frp_cfb_init(&c, key, true);
            n = frp_cfb_encrypt(&c, want, plain, plain_n, out);
            frp_cfb_free(&c);
            OK(n == wn && memcmp(out, want, wn) == 0, "AES-128-CFB with a fixed IV: frp's bytes");
            frp_cfb_init(&c, key, false);
            for (i = 0; i < wn; i++) { /* byte at a time, IV included */
                got += frp_cfb_decrypt(&c, want + i, 1, out + got);
            }
            frp_cfb_free(&c);
            OK(got == plain_n && memcmp(out, plain, plain_n) == 0,
               "AES-128-CFB decrypts byte by byte");
        } else if (sscanf(line, "%127[A-Za-z] %7999[0-9a-f]", name, hex) == 2 && strlen(hex) > 18) {
            n = unhex(hex, b, sizeof(b));
            roundtrip(name, b, n);
            nmsg++;
        } else if (strncmp(line, "flight1 ", 8) == 0 || strncmp(line, "flight2 ", 8) == 0) {
            bool one = line[6] == '1';
            size_t off = 0;
            int frames = 0;

            n = unhex(line + 8, b, sizeof(b));
            frp_stream_key("", key);
            frp_cfb_init(&c, key, false);
            while (off + YMX_HEAD <= n && ymx_parse(b + off, &h)) {
                off += YMX_HEAD;
                frames++;
                if (h.type == YMX_DATA && one) {
                    roundtrip("flight 1 Login", b + off, h.length);
                } else if (h.type == YMX_DATA) {
                    k = frp_cfb_decrypt(&c, b + off, h.length, out);
                    if (k > 0) {
                        int type = 0;
                        json_t *body = NULL;
                        size_t used;

                        OK(frp_msg_decode(out, k, &type, &body, &used) == FRP_OK &&
                               type == FRP_NEW_PROXY &&
                               json_integer_value(json_object_get(body, "remote_port")) == 23000,
                           "flight 2: the client's NewProxy decrypted");
                        json_decref(body);
                    }
                }
                if (h.type == YMX_DATA) {
                    off += h.length;
                }
            }
            frp_cfb_free(&c);
            OK(off == n && frames == 2, "flight %c: two yamux frames, all bytes", one ? '1' : '2');
        } else if (strncmp(line, "[yamux-frames]", 14) == 0) {
            in_frames = true;
        } else if (line[0] == '[') {
            in_frames = false;
        } else if (in_frames && sscanf(line, "%127s %24[0-9a-f]", name, hex) == 2 &&
                   strlen(hex) == 24) {
            uint8_t again[YMX_HEAD];

            unhex(hex, b, YMX_HEAD);
            OK(ymx_parse(b, &h), "yamux %s parses", name);
            ymx_write(again, &h);
            OK(memcmp(again, b, YMX_HEAD) == 0, "yamux %s writes back the same", name);
            nframes++;
        }
    }
    fclose(f);
    IS_INT(nmsg, 14, "every Go-encoded message checked");
    IS_INT(nframes, 8, "every yamux example checked");
}

/* In a transcript: every plain and decrypted message round-trips, and each encrypted tail's
 * first 48 ciphertext bytes decrypt to the first 48 bytes of the messages decoded from it. */
static bool
test_transcript(const char *path, const char *file)
{
    FILE *f = fopen(path, "r");
    char line[16384], *v, what[300];
    uint8_t key[16], want_key[16], ct[64], b[12000], tail_plain[64], out[64];
    size_t ctn = 0, have = 0, n;
    bool in_tail = false, key_ok = true;
    char pass[64];
    struct frp_cfb c;
    int msgs = 0, tails = 0;

    memset(key, 0, sizeof(key));
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "# control key = PBKDF2-HMAC-SHA1(password='%63[^']'", pass) == 1 ||
            strstr(line, "password=''") != NULL) {
            if (strstr(line, "password=''") != NULL) {
                pass[0] = '\0';
            }
            frp_stream_key(pass, key);
            unhex(strrchr(line, '=') + 2, want_key, 16);
            key_ok = key_ok && memcmp(key, want_key, 16) == 0;
        }
        if ((strncmp(line, "###", 3) == 0 || feof(f)) && in_tail) {
            in_tail = false;
        }
        if ((v = strstr(line, "encrypted tail:")) != NULL) {
            uint8_t iv[16];
            size_t got;

            unhex(value_after(line, "IV="), iv, 16);
            ctn = unhex(value_after(line, "ciphertext[0:48]="), ct, sizeof(ct));
            frp_cfb_init(&c, key, false);
            got = frp_cfb_decrypt(&c, iv, 16, out);
            got += frp_cfb_decrypt(&c, ct, ctn, tail_plain);
            frp_cfb_free(&c);
            (void)got;
            in_tail = true;
            have = 0;
            tails++;
        }
        if ((v = value_after(line, "raw=")) != NULL && strstr(line, " msg @") != NULL) {
            n = unhex(v, b, sizeof(b));
            snprintf(what, sizeof(what), "%s: %.40s", file, strstr(line, "msg @"));
            roundtrip(what, b, n);
            msgs++;
            if (in_tail && strstr(line, "decrypted msg") != NULL && have < ctn) {
                size_t take = n < ctn - have ? n : ctn - have;

                OK(memcmp(tail_plain + have, b, take) == 0,
                   "%s: the encrypted stream decrypts to it", what);
                have += take;
            }
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    OK(f != NULL, "%s: %d messages, %d encrypted tails", file, msgs, tails);
    OK(key_ok, "%s: the control key is PBKDF2 of the token", file);
    return msgs > 0;
}

/* The verdict on one frame from the client, with what the session knows of its stream. */
static enum ymx_verdict
judge(uint8_t type, uint16_t flags, uint32_t stream, uint32_t length, bool open, uint32_t recv,
      uint32_t send, unsigned nstreams, unsigned max, const char **why)
{
    struct ymx_hdr h = {type, flags, stream, length};
    struct ymx_stream_state st = {open, recv, send};

    return ymx_check(&h, &st, nstreams, max, why);
}

static void
test_check(void)
{
    const char *why = NULL;
    const uint32_t W = YMX_INITIAL_WINDOW;

    /* What frpc does: SYN with its 6 MiB delta, Login on it, 16 KiB frames, updates. */
    OK(judge(YMX_WINDOW_UPDATE, YMX_SYN, 1, 6029312, false, 0, 0, 0, 4, &why) == YMX_OK,
       "SYN with frpc's window delta: ok");
    OK(judge(YMX_DATA, 0, 1, 190, true, W, W, 1, 4, &why) == YMX_OK, "a Login frame: ok");
    OK(judge(YMX_DATA, YMX_SYN, 3, 16384, false, 0, 0, 1, 4, &why) == YMX_OK,
       "DATA with SYN within the initial window: ok");
    OK(judge(YMX_DATA, 0, 3, W, true, W, W, 1, 4, &why) == YMX_OK, "DATA of the whole window: ok");
    OK(judge(YMX_DATA, YMX_FIN, 5, 0, true, 0, W, 1, 4, &why) == YMX_OK,
       "an empty DATA with FIN on a full window: ok");
    OK(judge(YMX_DATA, 0, 7, 16384, false, 0, 0, 1, 4, &why) == YMX_OK,
       "DATA on a stream closed here: ok (drained)");
    OK(judge(YMX_WINDOW_UPDATE, 0, 1, 3145728, true, W, 6291456, 1, 4, &why) == YMX_OK,
       "a window update: ok");
    OK(judge(YMX_PING, YMX_SYN, 0, 7, false, 0, 0, 4, 4, &why) == YMX_OK, "PING: ok");
    OK(judge(YMX_GO_AWAY, 0, 0, YMX_GOAWAY_NORMAL, false, 0, 0, 1, 4, &why) == YMX_OK,
       "GO_AWAY normal: ok");
    OK(judge(YMX_GO_AWAY, 0, 0, YMX_GOAWAY_PROTOCOL, false, 0, 0, 1, 4, &why) == YMX_END,
       "GO_AWAY with an error: the end");

    /* Lengths, at the header. */
    OK(judge(YMX_DATA, 0, 1, 1u << 30, true, W, W, 1, 4, &why) == YMX_BAD && why != NULL &&
           strstr(why, "maximum") != NULL,
       "DATA declaring 1 GiB: protocol error (%s)", why);
    OK(judge(YMX_DATA, 0, 9, W + 1, false, 0, 0, 1, 4, &why) == YMX_BAD,
       "over the maximum on an unknown stream too");
    OK(judge(YMX_DATA, 0, 1, 1001, true, 1000, W, 1, 4, &why) == YMX_BAD &&
           strstr(why, "window") != NULL,
       "DATA one byte past the stream's window: protocol error");
    OK(judge(YMX_DATA, 0, 1, 1000, true, 1000, W, 1, 4, &why) == YMX_OK,
       "DATA up to the stream's window: ok");
    OK(judge(YMX_DATA, YMX_SYN, 3, W + 1, false, 0, 0, 1, 4, &why) == YMX_BAD,
       "SYN with DATA past the initial window: protocol error");

    /* Stream ids and flags. */
    OK(judge(YMX_WINDOW_UPDATE, YMX_SYN, 2, 0, false, 0, 0, 0, 4, &why) == YMX_BAD,
       "SYN on an even id: protocol error");
    OK(judge(YMX_DATA, YMX_SYN, 1, 0, true, W, W, 1, 4, &why) == YMX_BAD &&
           strstr(why, "open") != NULL,
       "SYN on an open stream: protocol error");
    OK(judge(YMX_WINDOW_UPDATE, YMX_SYN, 9, 0, false, 0, 0, 4, 4, &why) == YMX_REFUSE,
       "SYN over the stream cap: refused");
    OK(judge(YMX_WINDOW_UPDATE, YMX_SYN, 9, 0, false, 0, 0, 3, 4, &why) == YMX_OK,
       "SYN under the cap: ok");

    /* Window updates. */
    OK(judge(YMX_WINDOW_UPDATE, 0, 1, UINT32_MAX - W, true, W, W, 1, 4, &why) == YMX_OK,
       "window update to exactly 2^32-1: ok");
    OK(judge(YMX_WINDOW_UPDATE, 0, 1, UINT32_MAX - W + 1, true, W, W, 1, 4, &why) == YMX_BAD,
       "window update past 2^32-1: protocol error");
    OK(judge(YMX_WINDOW_UPDATE, YMX_SYN, 3, UINT32_MAX, false, 0, 0, 1, 4, &why) == YMX_BAD,
       "SYN whose delta overflows the initial window: protocol error");
    OK(judge(YMX_WINDOW_UPDATE, 0, 5, UINT32_MAX, false, 0, 0, 1, 4, &why) == YMX_OK,
       "window update for a stream closed here: ignored");
}

int
main(void)
{
    const char *dir = getenv("FRP_VECTORS");
    char path[4096];
    struct dirent *e;
    DIR *d;
    uint8_t bad[32];
    json_t *body = NULL;
    size_t used;
    int type, with_msgs = 0;

    if (dir == NULL) {
        dir = "tests/fixtures/frp-vectors";
    }
    snprintf(path, sizeof(path), "%s/kat.txt", dir);
    test_kat(path);
    snprintf(path, sizeof(path), "%s/decoded", dir);
    if ((d = opendir(path)) != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (strstr(e->d_name, ".txt") != NULL) {
                snprintf(path, sizeof(path), "%s/decoded/%s", dir, e->d_name);
                with_msgs += test_transcript(path, e->d_name);
            }
        }
        closedir(d);
    }
    OK(with_msgs >= 12, "%d transcripts of real sessions with frp messages checked", with_msgs);

    memcpy(bad, "x\0\0\0\0\0\0\0\x02{}", 11);
    OK(frp_msg_decode(bad, 11, &type, &body, &used) == FRP_BAD, "unknown type byte: bad");
    memcpy(bad, "r\xff\xff\xff\xff\xff\xff\xff\xfe{}", 11);
    OK(frp_msg_decode(bad, 11, &type, &body, &used) == FRP_BAD, "negative length: bad");
    memcpy(bad, "r\0\0\0\0\0\0\x28\x01{}", 11);
    OK(frp_msg_decode(bad, 11, &type, &body, &used) == FRP_BAD, "10241 bytes: bad");
    memcpy(bad, "r\0\0\0\0\0\0\0\x02[]", 11);
    OK(frp_msg_decode(bad, 11, &type, &body, &used) == FRP_BAD, "not an object: bad");
    memcpy(bad, "r\0\0\0\0\0\0\0\x03{}}", 12);
    OK(frp_msg_decode(bad, 12, &type, &body, &used) == FRP_BAD, "trailing bytes: bad");
    memcpy(bad, "r\0\0\0\0\0\0\0\x02{}", 11);
    OK(frp_msg_decode(bad, 5, &type, &body, &used) == FRP_MORE, "half a head: more");
    OK(frp_msg_decode(bad, 0, &type, &body, &used) == FRP_MORE, "nothing: more");
    memcpy(bad, "\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 12);
    OK(!ymx_parse(bad, &(struct ymx_hdr){0}), "yamux version 1: refused");
    memcpy(bad, "\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 12);
    OK(!ymx_parse(bad, &(struct ymx_hdr){0}), "yamux type 4: refused");
    memcpy(bad, "\x00\x02\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00", 12);
    OK(!ymx_parse(bad, &(struct ymx_hdr){0}), "a PING on a stream: refused");
    memcpy(bad, "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x05", 12);
    OK(!ymx_parse(bad, &(struct ymx_hdr){0}), "DATA on stream 0: refused");
    test_check();
    return tap_done();
}
