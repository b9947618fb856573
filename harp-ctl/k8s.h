/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The Kubernetes API client. */
#ifndef HARP_CTL_K8S_H
#define HARP_CTL_K8S_H

#include <stdbool.h>

#include "env.h"

/* True when the API server and a bearer token are configured and GET <api>/api answers 200
 * (HaRP's "reachable" in /info); false too when all outbound calls stay busy (outbound.h).
 * Blocks up to 70 s. */
bool k8s_reachable(const struct hp_config *cfg);

#endif
