/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The frp message decoder and the yamux header parser on arbitrary bytes, as a server reads
 * them from an unauthenticated client. Invariants: a decoded message is a known type with a
 * body within the limit that re-encodes to a message decoding to an equal object; a prefix of
 * a decodable message never decodes; a parsed yamux header writes back to the same bytes. */
#include "config.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frp_msg.h"
#include "yamux.h"

const char fuzz_target_name[] = "frp";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *body = NULL, *body2 = NULL;
    struct ymx_hdr h;
    uint8_t again[YMX_HEAD], *enc;
    size_t used = 0, used2, len, off = 0;
    int type = 0, type2;

    while (off < size) {
        enum frp_decode r = frp_msg_decode(data + off, size - off, &type, &body, &used);

        if (r != FRP_OK) {
            break;
        }
        assert(frp_type_known(type) && used >= FRP_MSG_HEAD &&
               used - FRP_MSG_HEAD <= FRP_MSG_MAX_BODY && json_is_object(body));
        assert(frp_msg_decode(data + off, used - 1, &type2, &body2, &used2) == FRP_MORE);
        enc = frp_msg_encode(type, body, &len);
        if (enc != NULL) {
            assert(frp_msg_decode(enc, len, &type2, &body2, &used2) == FRP_OK);
            assert(type2 == type && used2 == len && json_equal(body, body2));
            json_decref(body2);
            free(enc);
        }
        json_decref(body);
        off += used;
    }
    for (off = 0; off + YMX_HEAD <= size; off += YMX_HEAD) {
        if (ymx_parse(data + off, &h)) {
            ymx_write(again, &h);
            assert(memcmp(again, data + off, YMX_HEAD) == 0);
        }
    }
    return 0;
}
