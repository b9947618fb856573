/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The shared-key comparison: equal only for the exact bytes, whatever the lengths. */
#include "config.h"

#include "secret.h"
#include "tap.h"

int
main(void)
{
    char hex[65];

    OK(secret_equal("abc", 3, "abc"), "same key matches");
    OK(!secret_equal("abd", 3, "abc"), "last byte differs");
    OK(!secret_equal("ab", 2, "abc"), "prefix does not match");
    OK(!secret_equal("abcd", 4, "abc"), "longer value does not match");
    OK(!secret_equal("abcabc", 6, "abc"), "repetition does not match");
    OK(!secret_equal("ABC", 3, "abc"), "comparison is case-sensitive");
    OK(!secret_equal("", 0, "abc"), "empty value does not match");
    OK(!secret_equal(NULL, 0, "abc"), "absent value does not match");
    OK(!secret_equal("ab\0", 3, "ab"), "embedded NUL does not match");
    IS_INT(secret_generate_hex(hex, 32), 0, "32 random bytes");
    IS_INT(strlen(hex), 64, "as 64 hex digits");
    OK(strspn(hex, "0123456789abcdef") == 64, "only hex digits");
    return tap_done();
}
