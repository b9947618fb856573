/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* A small TAP producer: each check is one "ok N - ..." line; failures print file:line and the
 * two values. Call tap_done() last: it prints the plan and returns the exit status. */
#ifndef HARP_TESTS_TAP_H
#define HARP_TESTS_TAP_H

#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

#define TAP_RESULT(cond, ...)                                                                      \
    do {                                                                                           \
        tap_n++;                                                                                   \
        if (!(cond)) {                                                                             \
            tap_failed++;                                                                          \
            printf("not ok %d - ", tap_n);                                                         \
        } else {                                                                                   \
            printf("ok %d - ", tap_n);                                                             \
        }                                                                                          \
        printf(__VA_ARGS__);                                                                       \
        printf("\n");                                                                              \
    } while (0)

#define OK(cond, ...)                                                                              \
    do {                                                                                           \
        int ok_ = (cond) ? 1 : 0;                                                                  \
        TAP_RESULT(ok_, __VA_ARGS__);                                                              \
        if (!ok_) {                                                                                \
            printf("#   %s:%d: %s\n", __FILE__, __LINE__, #cond);                                  \
        }                                                                                          \
    } while (0)

#define IS_INT(got, want, ...)                                                                     \
    do {                                                                                           \
        long long g_ = (long long)(got), w_ = (long long)(want);                                   \
        TAP_RESULT(g_ == w_, __VA_ARGS__);                                                         \
        if (g_ != w_) {                                                                            \
            printf("#   %s:%d: got %lld, want %lld\n", __FILE__, __LINE__, g_, w_);                \
        }                                                                                          \
    } while (0)

#define IS_STR(got, want, ...)                                                                     \
    do {                                                                                           \
        const char *g_ = (got), *w_ = (want);                                                      \
        int same_ = (g_ == NULL && w_ == NULL) || (g_ && w_ && strcmp(g_, w_) == 0);               \
        TAP_RESULT(same_, __VA_ARGS__);                                                            \
        if (!same_) {                                                                              \
            printf("#   %s:%d: got \"%s\", want \"%s\"\n", __FILE__, __LINE__, g_ ? g_ : "(null)", \
                   w_ ? w_ : "(null)");                                                            \
        }                                                                                          \
    } while (0)

static inline int
tap_done(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed == 0 ? 0 : 1;
}

#endif
