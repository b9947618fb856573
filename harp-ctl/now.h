/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Seconds as doubles: monotonic for intervals, wall clock for what is stored. */
#ifndef HARP_CTL_NOW_H
#define HARP_CTL_NOW_H

#include <time.h>

static inline double
now_mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline double
now_wall(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
