/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* What harp reads from a Kubernetes API server's answers: a Service as each expose type's
 * upstream (k8s_upstream_from_service), and object names (k8s_sanitize) on arbitrary bytes.
 * Invariants: an upstream found has a non-empty host; a sanitized name is 1-63 characters
 * of [a-z0-9-] with no '-' at either end and no "--". No API server is configured, so node
 * look-ups fail without a call. */
#include "config.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "k8s.h"
#include "k8s_upstream.h"

const char fuzz_target_name[] = "k8s";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_name(const char *s)
{
    size_t i, n = strlen(s);

    assert(n >= 1 && n <= 63 && s[0] != '-' && s[n - 1] != '-');
    for (i = 0; i < n; i++) {
        assert((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-');
        assert(i == 0 || s[i] != '-' || s[i - 1] != '-');
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const kinds[] = {"nodeport", "clusterip", "loadbalancer"};
    struct hp_config cfg;
    struct k8s_expose o;
    struct k8s_upstream up;
    const char *why;
    char *s = malloc(size + 1), name[64];
    json_t *svc;
    size_t i;

    memcpy(s, data, size);
    s[size] = '\0';
    k8s_sanitize(s, name);
    check_name(name);
    free(s);
    if ((svc = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL)) == NULL) {
        return 0;
    }
    memset(&cfg, 0, sizeof(cfg));
    cfg.k8s_namespace = "ns";
    for (i = 0; i < 3; i++) {
        memset(&o, 0, sizeof(o));
        memset(&up, 0, sizeof(up));
        strcpy(o.kind, kinds[i]);
        if (k8s_upstream_from_service(&cfg, svc, &o, &up, &why) == 1) {
            assert(up.host[0] != '\0' || i == 1);
        } else {
            assert(why != NULL);
        }
    }
    json_decref(svc);
    return 0;
}
