/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* `harp-ctl audit check-proof` on arbitrary bytes (audit_proof_verify): a proof file comes from
 * elsewhere and is read with no database. The seeds are proofs signed by the key below (one
 * with a data plane's acknowledgement); they verify, and nothing else may crash or leak.
 * Invariant: the verdict is "proof valid" only for input that starts as a seed does. */
#include "config.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit_proof.h"

const char fuzz_target_name[] = "proof";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The public key of the state directory the seeds came from. */
static const char key[] = "9aa22b69723658ecc3d8049ff4796b85afa3ea26d026100b5fa70ff1662d5a9f";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1), msg[512];
    int rc;

    if (text == NULL) {
        return 0;
    }
    memcpy(text, data, size);
    text[size] = '\0';
    rc = audit_proof_verify(text, size, key, msg, sizeof(msg));
    assert((rc == 0) == (strncmp(msg, "proof valid", 11) == 0));
    assert(rc == 1 || size > 0);
    free(text);
    return 0;
}
