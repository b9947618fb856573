/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The header rules of harp-dp: hop-by-hop headers go, no client spelling of the injected
 * headers or the shared key reaches an ExApp (spec 2.4), the control API still gets the key,
 * the Docker engine never does, and user-info gets the client's headers but a few. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "headers.h"
#include "msg.h"
#include "tap.h"

static struct span
sp(const char *s)
{
    return (struct span){s, strlen(s)};
}

/* The head forwarded for <raw> to <dest>, NUL-terminated in a static buffer. */
static const char *
forwarded(const char *raw, enum headers_dest dest, bool upgrade)
{
    static char out[HTTP1_MAX_HEAD + HEADERS_ADDED_MAX + 1];
    struct http1_head h;
    struct headers_inject in;
    size_t n;

    if (http1_parse_request(raw, strlen(raw), &h) != HTTP1_OK) {
        return "(unparsed)";
    }
    memset(&in, 0, sizeof(in));
    in.dest = dest;
    in.target = sp("/t");
    in.host = "10.0.0.7";
    in.port = 23000;
    in.upgrade = upgrade;
    in.app_id = sp("app");
    in.version = sp("1.0");
    in.auth = "QUJD";
    in.client = "192.0.2.9";
    n = headers_request(&h, &in, out, sizeof(out) - 1);
    out[n < sizeof(out) ? n : sizeof(out) - 1] = '\0';
    return out;
}

static void
test_rules(void)
{
    struct span conn = sp("close, X-Drop"), cl = sp("content-length");

    OK(headers_hop_by_hop(sp("Keep-Alive"), NULL), "keep-alive is hop-by-hop");
    OK(headers_hop_by_hop(sp("TE"), NULL), "te is hop-by-hop");
    OK(headers_hop_by_hop(sp("x-drop"), &conn), "a header named in Connection is hop-by-hop");
    OK(!headers_hop_by_hop(sp("x-keep"), &conn), "one not named is not");
    OK(!headers_hop_by_hop(sp("content-length"), &cl),
       "Content-Length stays even when Connection names it");
    OK(headers_injected(sp("EX-APP-ID")), "EX-APP-ID");
    OK(headers_injected(sp("ex_app_id")), "ex_app_id (CGI spelling)");
    OK(headers_injected(sp("Ex.App.Version")), "Ex.App.Version (PHP spelling)");
    OK(headers_injected(sp("Authorization_App_Api")), "Authorization_App_Api");
    OK(headers_injected(sp("harp_shared_key")), "harp_shared_key");
    OK(!headers_injected(sp("ex-app-idx")), "a longer name is not");
    OK(!headers_injected(sp("authorization")), "Authorization is not");
    OK(headers_dropped(HEADERS_TO_EXAPP, sp("AA-Version"), NULL, false),
       "AA-Version from a client never reaches the ExApp");
    OK(!headers_dropped(HEADERS_TO_CONTROL, sp("harp-shared-key"), NULL, false),
       "the control API gets the key");
    OK(headers_dropped(HEADERS_TO_DOCKER, sp("Harp-Shared-Key"), NULL, false),
       "the Docker engine does not");
    OK(!headers_dropped(HEADERS_TO_DOCKER, sp("EX-APP-ID"), NULL, false),
       "the Docker engine gets other headers as sent");
    OK(headers_dropped(HEADERS_TO_EXAPP, sp("Upgrade"), NULL, false), "Upgrade goes");
    OK(!headers_dropped(HEADERS_TO_EXAPP, sp("Upgrade"), NULL, true),
       "unless the request upgrades");
}

static void
test_request(void)
{
    IS_STR(forwarded("GET /x?q=1 HTTP/1.1\r\nHost: h\r\nEX_APP_ID: evil\r\nConnection: "
                     "keep-alive\r\nX-A: 1\r\n\r\n",
                     HEADERS_TO_EXAPP, false),
           "GET /t?q=1 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nEX-APP-ID: app\r\nEX-APP-VERSION: "
           "1.0\r\nAUTHORIZATION-APP-API: QUJD\r\nAA-VERSION: 32\r\n\r\n",
           "to an ExApp: spoofed and hop-by-hop headers go, harp's are added");
    IS_STR(forwarded("POST /x HTTP/1.0\r\nharp-shared-key: k\r\nContent-Length: 0\r\n"
                     "Harp_Via.Dataplane: 6.6.6.6\r\nharp-via-dataplane: 6.6.6.6\r\n\r\n",
                     HEADERS_TO_CONTROL, false),
           "POST /t HTTP/1.1\r\nharp-shared-key: k\r\nContent-Length: 0\r\nHost: "
           "10.0.0.7:23000\r\nharp-via-dataplane: 192.0.2.9\r\n\r\n",
           "to the control API: the key stays, a missing Host is the upstream's, the client's "
           "copies of harp-via-dataplane go and harp's names the client");
    IS_STR(forwarded("GET /x HTTP/1.1\r\nHost: h\r\nHarp-Shared-Key: k\r\n\r\n", HEADERS_TO_DOCKER,
                     false),
           "GET /t HTTP/1.1\r\nHost: h\r\n\r\n", "to a Docker engine: no key");
    IS_STR(forwarded("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: "
                     "websocket\r\n\r\n",
                     HEADERS_TO_EXAPP, true),
           "GET /t HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "EX-APP-ID: app\r\nEX-APP-VERSION: 1.0\r\nAUTHORIZATION-APP-API: QUJD\r\n"
           "AA-VERSION: 32\r\n\r\n",
           "an upgrade keeps Upgrade and says Connection: Upgrade");
}

static void
test_cut(void)
{
    const char *raw = "GET /x HTTP/1.1\r\nHost: h\r\n\r\n";
    struct http1_head h;
    struct headers_inject in;
    char small[8];

    http1_parse_request(raw, strlen(raw), &h);
    memset(&in, 0, sizeof(in));
    in.dest = HEADERS_TO_CONTROL;
    in.target = sp("/t");
    in.host = "x";
    OK(headers_request(&h, &in, small, sizeof(small)) > sizeof(small),
       "a buffer too small is reported by the length");
}

static void
test_auth(void)
{
    const char *raw = "GET /x HTTP/1.1\r\nHost: h\r\nCookie: a=1\r\nX-Two: 1\r\nharp-shared-key: "
                      "k\r\nConnection: x-hop\r\nX-Hop: 1\r\nx-two: 2\r\nContent-Length: 0\r\n\r\n";
    struct http1_head h;
    struct msg_header *a;
    size_t i, n;

    IS_INT(http1_parse_request(raw, strlen(raw), &h), HTTP1_OK, "parses");
    a = headers_for_auth(&h, &n);
    IS_INT(n, 2, "cookie and the last x-two only");
    IS_STR(a[0].name, "cookie", "lower case");
    IS_STR(a[1].name, "x-two", "the later line");
    IS_STR(a[1].value, "2", "with its value");
    IS_INT(a[1].value_len, 1, "and its length");
    for (i = 0; i < n; i++) {
        free(a[i].value);
    }
    free(a);
}

int
main(void)
{
    test_rules();
    test_request();
    test_cut();
    test_auth();
    return tap_done();
}
