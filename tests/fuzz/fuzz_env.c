/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* env_load on arbitrary variable values. The input is NUL-separated values for a fixed list
 * of variables. Invariants: load succeeds or says why; the summary does not depend on the
 * shared key. */
#include "config.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"

const char fuzz_target_name[] = "env";

static const char *const names[] = {
    "HP_SHARED_KEY",      "NC_INSTANCE_URL",     "HP_EXAPPS_ADDRESS",  "HP_TIMEOUT_CLIENT",
    "HP_TIMEOUT_TUNNEL",  "HP_SESSION_LIFETIME", "HP_BLACKLIST_COUNT", "HP_LOG_LEVEL",
    "HP_FRP_DISABLE_TLS", "HP_K8S_ENABLED",      "HP_CONTROL_ADDRESS", "HP_STATE_DIR",
};
#define NNAMES (sizeof(names) / sizeof(names[0]))

struct vals {
    const char *v[NNAMES];
};

static const char *
lookup(const char *name, void *arg)
{
    struct vals *vals = arg;
    size_t i;

    for (i = 0; i < NNAMES; i++) {
        if (strcmp(names[i], name) == 0) {
            return vals->v[i];
        }
    }
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hp_config cfg;
    struct hp_err err = {""};
    struct vals vals = {{0}};
    char *buf = malloc(size + 1), *p, *s, *s2, *key, other[] = "another-key";
    size_t i = 0;

    memcpy(buf, data, size);
    buf[size] = '\0';
    for (p = buf; i < NNAMES && p <= buf + size; p += strlen(p) + 1) {
        vals.v[i++] = p;
    }
    if (env_load(&cfg, ENV_SERVE, lookup, &vals, &err) == 0) {
        assert(cfg.shared_key != NULL && cfg.shared_key[0] != '\0');
        /* The summary does not depend on the key: it cannot reveal it. */
        s = env_summary(&cfg);
        key = cfg.shared_key;
        cfg.shared_key = other;
        s2 = env_summary(&cfg);
        cfg.shared_key = key;
        assert(strcmp(s, s2) == 0);
        free(s);
        free(s2);
        env_free(&cfg);
    } else {
        assert(err.msg[0] != '\0');
    }
    free(buf);
    return 0;
}
