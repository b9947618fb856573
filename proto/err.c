/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>

#include "err.h"

void
err_set(struct hp_err *err, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}
