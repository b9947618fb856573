/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Log escaping: control characters and invalid UTF-8 become \xNN, printable UTF-8 stays;
 * the rate limiter lets through its quota each second and counts the rest. */
#include "config.h"

#include <string.h>

#include "log.h"
#include "tap.h"

static const char *
esc(const char *in, size_t n)
{
    static char out[256];

    log_escape(in, n, out, sizeof(out));
    return out;
}

static void
test_escape(void)
{
    char small[8];
    size_t n;

    IS_STR(esc("GET /x", 6), "GET /x", "printable ASCII is kept");
    IS_STR(esc("/x\nFORGED", 9), "/x\\x0aFORGED", "a newline cannot start a line");
    IS_STR(esc("a\rb\tc\x1b[31m", 10), "a\\x0db\\x09c\\x1b[31m", "CR, tab and ESC are escaped");
    IS_STR(esc("a\0b", 3), "a\\x00b", "a NUL is escaped, not an end");
    IS_STR(esc("\x7f", 1), "\\x7f", "DEL is escaped");
    IS_STR(esc("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14),
           "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "valid UTF-8 is kept");
    IS_STR(esc("\xff\xfe", 2), "\\xff\\xfe", "bytes that are not UTF-8 are escaped");
    IS_STR(esc("\xc2\x85\xc2\x9b", 4), "\\xc2\\x85\\xc2\\x9b",
           "C1 controls (NEL, CSI) are escaped");
    IS_STR(esc("\xc0\xaf\xe0\x80\xaf", 5), "\\xc0\\xaf\\xe0\\x80\\xaf",
           "overlong forms are escaped");
    IS_STR(esc("\xed\xa0\x80", 3), "\\xed\\xa0\\x80", "surrogates are escaped");
    IS_STR(esc("\xe2\x82", 2), "\\xe2\\x82", "a truncated sequence is escaped");
    n = log_escape("abc\ndef", 7, small, sizeof(small));
    OK(n < sizeof(small) && strlen(small) == n, "the output is cut to fit, NUL-terminated");
    IS_STR(small, "abc\\x0a", "after a whole escape");
    log_escape("abcd\ndef", 8, small, sizeof(small));
    IS_STR(small, "abcd", "never in the middle of one");
}

static void
test_rate(void)
{
    struct log_rate r = {0};
    unsigned long held = 99;
    int i, ok = 0;

    for (i = 0; i < 10; i++) {
        ok += log_rate_ok(&r, 3, &held);
    }
    IS_INT(ok, 3, "three lines a second pass");
    IS_INT((int)r.held, 7, "the rest are counted");
    r.second--; /* a second later */
    OK(log_rate_ok(&r, 3, &held) && held == 7, "the next line says how many were held back");
}

int
main(void)
{
    test_escape();
    test_rate();
    return tap_done();
}
