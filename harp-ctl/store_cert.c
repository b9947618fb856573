/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The certificates table. Every function takes the store's mutex. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "log.h"
#include "secret.h"
#include "store.h"
#include "xmalloc.h"

static const char *const names[3] = {"ca", "server", "client"};

/* The effect of a generation or rotation: each certificate's SHA-256, never a key. */
static json_t *
certs_effect(const struct cert_rec recs[3])
{
    json_t *o = json_object();
    char h[CANON_HASH_HEX];
    int i;

    for (i = 0; i < 3; i++) {
        canon_sha256(recs[i].cert_pem, strlen(recs[i].cert_pem), h);
        json_object_set_new(o, names[i], json_string(h));
    }
    return o;
}

int
store_cert_put_all(struct store *st, const struct cert_rec recs[3], struct hp_err *err)
{
    sqlite3_stmt *s = NULL;
    int i, rc = -1;

    pthread_mutex_lock(&st->mtx);
    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        goto out;
    }
    if (sqlite3_prepare_v2(st->db,
                           "INSERT INTO certificates (name, cert_pem, key_pem, created_at) "
                           "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO UPDATE SET "
                           "cert_pem = excluded.cert_pem, key_pem = excluded.key_pem, "
                           "created_at = excluded.created_at",
                           -1, &s, NULL) != SQLITE_OK) {
        goto rollback;
    }
    for (i = 0; i < 3; i++) {
        sqlite3_reset(s);
        sqlite3_bind_text(s, 1, names[i], -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, recs[i].cert_pem, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, recs[i].key_pem, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, recs[i].created_at);
        if (sqlite3_step(s) != SQLITE_DONE) {
            goto rollback;
        }
    }
    if (audit_append(st->db, "certs.put", "", certs_effect(recs)) == 0 &&
        sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) {
        rc = 0;
        goto out;
    }
rollback:
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
out:
    if (rc == -1) {
        err_set(err, "database: write certificates: %s", sqlite3_errmsg(st->db));
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mtx);
    return rc;
}

int
store_cert_get_all(struct store *st, struct cert_rec recs[3])
{
    sqlite3_stmt *s;
    int i, found = 0, rc = -1;

    memset(recs, 0, 3 * sizeof(*recs));
    pthread_mutex_lock(&st->mtx);
    if (sqlite3_prepare_v2(st->db, "SELECT name, cert_pem, key_pem, created_at FROM certificates",
                           -1, &s, NULL) == SQLITE_OK) {
        while (sqlite3_step(s) == SQLITE_ROW) {
            for (i = 0; i < 3; i++) {
                if (strcmp((const char *)sqlite3_column_text(s, 0), names[i]) == 0 &&
                    recs[i].cert_pem == NULL) {
                    recs[i].cert_pem = xstrdup((const char *)sqlite3_column_text(s, 1));
                    recs[i].key_pem = xstrdup((const char *)sqlite3_column_text(s, 2));
                    recs[i].created_at = sqlite3_column_int64(s, 3);
                    found++;
                }
            }
        }
        sqlite3_finalize(s);
        rc = found == 3 ? 1 : 0;
    }
    pthread_mutex_unlock(&st->mtx);
    if (rc != 1) {
        store_cert_free(recs);
    }
    return rc;
}

void
store_cert_free(struct cert_rec recs[3])
{
    int i;

    for (i = 0; i < 3; i++) {
        if (recs[i].key_pem != NULL) {
            secret_wipe(recs[i].key_pem, strlen(recs[i].key_pem));
        }
        free(recs[i].cert_pem);
        free(recs[i].key_pem);
        recs[i].cert_pem = recs[i].key_pem = NULL;
    }
}

/* --- the lifecycle's state and the containers holding client files (schema 0010) ---------- */

char *
store_cert_state_get(struct store *st, const char *name)
{
    sqlite3_stmt *s;
    char *v = NULL;

    pthread_mutex_lock(&st->mtx);
    if (sqlite3_prepare_v2(st->db, "SELECT value FROM cert_state WHERE name = ?1", -1, &s, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
        if (sqlite3_step(s) == SQLITE_ROW) {
            v = xstrdup((const char *)sqlite3_column_text(s, 0));
        }
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&st->mtx);
    return v;
}

/* One statement with up to three text parameters (NULL: SQL NULL is never needed). */
static int
exec3(struct store *st, const char *sql, const char *a, const char *b, const char *c, int64_t n)
{
    sqlite3_stmt *s;
    int rc = -1;

    pthread_mutex_lock(&st->mtx);
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, a, -1, SQLITE_STATIC);
        if (b != NULL) {
            sqlite3_bind_text(s, 2, b, -1, SQLITE_STATIC);
        }
        if (c != NULL) {
            sqlite3_bind_text(s, 3, c, -1, SQLITE_STATIC);
        }
        sqlite3_bind_int64(s, 4, n);
        rc = sqlite3_step(s) == SQLITE_DONE ? 0 : -1;
        sqlite3_finalize(s);
    }
    if (rc == -1) {
        log_warnx("store: %s", sqlite3_errmsg(st->db));
    }
    pthread_mutex_unlock(&st->mtx);
    return rc;
}

int
store_cert_state_set(struct store *st, const char *name, const char *value)
{
    return exec3(st,
                 "INSERT INTO cert_state (name, value) VALUES (?1, ?2) ON CONFLICT (name) "
                 "DO UPDATE SET value = excluded.value",
                 name, value, NULL, 0);
}

int
store_cert_state_del(struct store *st, const char *name)
{
    return exec3(st, "DELETE FROM cert_state WHERE name = ?1", name, NULL, NULL, 0);
}

int
store_cert_install_put(struct store *st, unsigned port, const char *container, const char *sha)
{
    char p[16];

    snprintf(p, sizeof(p), "%u", port);
    return exec3(st,
                 "INSERT INTO cert_installs (port, container, installed_at, delivered) VALUES "
                 "(CAST(?1 AS INTEGER), ?2, ?4, ?3) ON CONFLICT (port, container) DO UPDATE SET "
                 "delivered = excluded.delivered",
                 p, container, sha, (int64_t)time(NULL));
}

int
store_cert_install_delete(struct store *st, unsigned port, const char *container)
{
    char p[16];

    snprintf(p, sizeof(p), "%u", port);
    return exec3(st,
                 "DELETE FROM cert_installs WHERE port = CAST(?1 AS INTEGER) AND container = ?2", p,
                 container, NULL, 0);
}

json_t *
store_cert_install_list(struct store *st)
{
    json_t *a = json_array();
    sqlite3_stmt *s;

    pthread_mutex_lock(&st->mtx);
    if (sqlite3_prepare_v2(st->db,
                           "SELECT port, container, installed_at, delivered FROM cert_installs "
                           "ORDER BY port, container",
                           -1, &s, NULL) == SQLITE_OK) {
        while (sqlite3_step(s) == SQLITE_ROW) {
            json_array_append_new(
                a, json_pack("{s:I,s:s,s:I,s:s}", "port", (json_int_t)sqlite3_column_int64(s, 0),
                             "container", (const char *)sqlite3_column_text(s, 1), "installed_at",
                             (json_int_t)sqlite3_column_int64(s, 2), "delivered",
                             (const char *)sqlite3_column_text(s, 3)));
        }
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&st->mtx);
    return a;
}
