/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * What every handler of the control REST API answers with and reads from: the one error
 * answer (api_error), JSON, text and empty answers, request headers, query and JSON body.
 * Calls nothing of the API's own: the daemon (api_server.c) and the handlers call these.
 */
#include "config.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "xmalloc.h"

static const char *
reason(unsigned status)
{
    const char *r = MHD_get_reason_phrase_for(status);

    return r != NULL && r[0] != '\0' ? r : "Unknown";
}

void
api_json(struct api_resp *resp, unsigned status, json_t *obj)
{
    resp->status = status;
    resp->content_type = "application/json; charset=utf-8";
    free(resp->body);
    resp->body = json_dumps(obj, JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
    json_decref(obj);
}

void
api_error(struct api_resp *resp, unsigned status, const char *msg)
{
    resp->status = status;
    resp->content_type = "text/plain; charset=utf-8";
    free(resp->body);
    resp->body = msg != NULL ? xasprintf("%u: %s: %s", status, reason(status), msg)
                             : xasprintf("%u: %s", status, reason(status));
}

void
api_empty(struct api_resp *resp, unsigned status)
{
    resp->status = status;
    resp->content_type = NULL;
    free(resp->body);
    resp->body = NULL;
}

void
api_text(struct api_resp *resp, unsigned status, const char *text)
{
    resp->status = status;
    resp->content_type = "text/plain; charset=utf-8";
    free(resp->body);
    resp->body = xstrdup(text);
}

const char *
api_header(struct api_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *
api_query(struct api_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

json_t *
api_body_json(struct api_req *req, struct api_resp *resp)
{
    json_error_t jerr;
    json_t *j;
    char msg[300];

    j = json_loadb(req->body != NULL ? req->body : "", req->body_len,
                   JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL) {
        snprintf(msg, sizeof(msg), "invalid JSON body: %s (line %d, column %d)", jerr.text,
                 jerr.line, jerr.column);
        api_error(resp, 400, msg);
    }
    return j;
}
