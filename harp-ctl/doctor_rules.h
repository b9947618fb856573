/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* `harp-ctl doctor`'s verdicts (pure): what a check's findings mean and the fix to name. Each
 * returns one check, {"check": name, "ok": bool, "detail": text, "fix": text (when not ok)}. */
#ifndef HARP_CTL_DOCTOR_RULES_H
#define HARP_CTL_DOCTOR_RULES_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "nextcloud.h"

/* The oldest Docker Engine API harp's calls work with (Docker 20.10). */
#define DOCTOR_MIN_DOCKER_API "1.41"
/* A certificate with fewer days left than this fails the check. */
#define DOCTOR_CERT_DAYS 30

json_t *doctor_check(const char *name, bool ok, const char *detail, const char *fix);

/* The state directory's <mode> and the database file's <db_mode>. */
json_t *doctor_state_dir(const char *dir, mode_t mode, mode_t db_mode);

/* exapp-meta for <app> at <url> answered <p>; <app_known>: harp holds <app> registered, so a
 * refusal is about the key, not the app. */
json_t *doctor_nextcloud(const char *url, const char *app, bool app_known,
                         const struct nc_probe *p);

/* One entry of engines_report(): reachable, API version, error. */
json_t *doctor_engine(const json_t *engine);

/* publish_dataplanes() taken twice, <first> and <last>, some time apart: a data plane behind
 * the version current at <first> in both is on a stale table. */
json_t *doctor_dataplanes(const json_t *first, const json_t *last);

/* A certificate <what> valid until <not_after> (Unix time), at <now>. */
json_t *doctor_cert(const char *what, int64_t not_after, int64_t now);

/* Compares "1.41"-style API versions: <0, 0, >0. Unparseable parts compare as 0. */
int doctor_api_cmp(const char *a, const char *b);

#endif
