/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* exapp_from_json on arbitrary bytes. Invariant: an accepted body re-encodes (with its token)
 * into a body that is accepted again and describes the same ExApp. */
#include "config.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "exapp.h"

const char fuzz_target_name[] = "exapp";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct exapp a, b;
    struct hp_err err;
    json_t *j, *out;
    size_t i;

    j = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (j == NULL) {
        return 0;
    }
    if (exapp_from_json(j, &a, &err) == 0) {
        out = exapp_to_json(&a, true);
        assert(exapp_from_json(out, &b, &err) == 0);
        assert(strcmp(a.token, b.token) == 0 && strcmp(a.host, b.host) == 0);
        assert(a.port == b.port && a.nroutes == b.nroutes);
        for (i = 0; i < a.nroutes; i++) {
            assert(strcmp(a.routes[i].url, b.routes[i].url) == 0);
            assert(a.routes[i].access_level == b.routes[i].access_level);
            assert(a.routes[i].nbruteforce == b.routes[i].nbruteforce);
        }
        exapp_free(&b);
        exapp_free(&a);
        json_decref(out);
    } else {
        assert(a.token == NULL && a.routes == NULL); /* left empty on failure */
        assert(err.msg[0] != '\0');
    }
    json_decref(j);
    return 0;
}
