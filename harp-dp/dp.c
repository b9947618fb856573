/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The process-wide state of a data plane (dp.h), set up by main(). */
#include "config.h"

#include "dp.h"

struct dp *dp;
