/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The parts of the message codec: msg.c (the type table, dispatch, field readers),
 * msg_dp.c (messages a data plane sends), msg_ctl.c (messages harp-ctl sends). */
#ifndef HARP_PROTO_MSG_INT_H
#define HARP_PROTO_MSG_INT_H

#include "msg.h"

/* Field readers of the decoders. <what> names the message or element in errors ("hello",
 * "bans[3]"); a value is never quoted. Each returns 0, or -1 with <err>. A missing optional
 * field leaves *<out> as it is. */
int msg_get_int(const json_t *o, const char *what, const char *key, bool required, int64_t min,
                int64_t max, int64_t *out, struct hp_err *err);
/* A string of at most <max> bytes without NUL, copied into <out> (<max> + 1 bytes). */
int msg_get_str(const json_t *o, const char *what, const char *key, bool required, size_t max,
                char *out, struct hp_err *err);
/* The same into a new string (NULL when absent and optional). */
int msg_get_strdup(const json_t *o, const char *what, const char *key, bool required, size_t max,
                   char **out, struct hp_err *err);
int msg_get_bool(const json_t *o, const char *what, const char *key, bool required, bool *out,
                 struct hp_err *err);
/* Exactly <len> lower-case hex digits into <out> (<len> + 1 bytes). */
int msg_get_hex(const json_t *o, const char *what, const char *key, bool required, size_t len,
                char *out, struct hp_err *err);
/* The optional "audit" object of snapshot and delta. */
int msg_audit_decode(const json_t *o, const char *what, struct msg_table_audit *a,
                     struct hp_err *err);
void msg_audit_encode(const struct msg_table_audit *a, json_t *o);
/* The array <key> of at most <max> elements, NULL (with <err> when it is an error). */
const json_t *msg_get_array(const json_t *o, const char *what, const char *key, size_t max,
                            struct hp_err *err);
/* A list of ExApp records into a new array of *<n>; app ids distinct. */
int msg_get_exapps(const json_t *o, const char *what, const char *key, struct exapp **apps,
                   size_t *n, struct hp_err *err);
json_t *msg_exapps_encode(const struct exapp *apps, size_t n);
/* The bytes of a msg_bytes() string in a new NUL-terminated buffer of *<n> bytes (+1), or
 * NULL if <v> is not one. */
char *msg_bytes_get(const json_t *v, size_t *n);
void msg_exapps_free(struct exapp *apps, size_t n);

/* One decoder and encoder per type: the decoders fill m->(member) from <o> (a JSON object of
 * that type), the encoders add the fields of <m> to <o>. */
int msg_hello_decode(const json_t *o, struct msg *m, struct hp_err *err);
void msg_hello_encode(const struct msg *m, json_t *o);
int msg_ack_decode(const json_t *o, struct msg *m, struct hp_err *err);
void msg_ack_encode(const struct msg *m, json_t *o);
int msg_table_ack_decode(const json_t *o, struct msg *m, struct hp_err *err);
void msg_table_ack_encode(const struct msg *m, json_t *o);
int msg_lookup_decode(const json_t *o, struct msg *m, struct hp_err *err);
void msg_lookup_encode(const struct msg *m, json_t *o);
int msg_auth_decode(const json_t *o, struct msg *m, struct hp_err *err);
void msg_auth_encode(const struct msg *m, json_t *o);
int msg_event_decode(const json_t *o, struct msg *m, struct hp_err *err);
void msg_event_encode(const struct msg *m, json_t *o);
int msg_metrics_decode(const json_t *o, struct msg *m, struct hp_err *err);
void msg_metrics_encode(const struct msg *m, json_t *o);
void msg_dp_free(struct msg *m);

int msg_welcome_decode(const json_t *o, struct msg *m, struct hp_err *err);
void msg_welcome_encode(const struct msg *m, json_t *o);
int msg_snapshot_decode(const json_t *o, struct msg *m, struct hp_err *err);
void msg_snapshot_encode(const struct msg *m, json_t *o);
int msg_delta_decode(const json_t *o, struct msg *m, struct hp_err *err);
void msg_delta_encode(const struct msg *m, json_t *o);
int msg_lookup_reply_decode(const json_t *o, struct msg *m, struct hp_err *err);
void msg_lookup_reply_encode(const struct msg *m, json_t *o);
int msg_auth_reply_decode(const json_t *o, struct msg *m, struct hp_err *err);
void msg_auth_reply_encode(const struct msg *m, json_t *o);
int msg_bans_decode(const json_t *o, struct msg *m, struct hp_err *err);
void msg_bans_encode(const struct msg *m, json_t *o);
int msg_engines_decode(const json_t *o, struct msg *m, struct hp_err *err);
void msg_engines_encode(const struct msg *m, json_t *o);
int msg_text_decode(const json_t *o, struct msg *m, struct hp_err *err);
void msg_text_encode(const struct msg *m, json_t *o);
void msg_ctl_free(struct msg *m);
int msg_settings_decode(const json_t *o, struct msg *m, struct hp_err *err);
void msg_settings_encode(const struct msg *m, json_t *o);

#endif
