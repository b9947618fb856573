/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "config.h"

#include <sys/resource.h>

#include "fdlimit.h"

unsigned long
fdlimit_raise(void)
{
    struct rlimit rl;
    rlim_t want;

    if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
        return 1024;
    }
    want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > FDLIMIT_CEILING ? FDLIMIT_CEILING
                                                                         : rl.rlim_max;
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur < want) {
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
            getrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    return rl.rlim_cur == RLIM_INFINITY ? FDLIMIT_CEILING : (unsigned long)rl.rlim_cur;
}
