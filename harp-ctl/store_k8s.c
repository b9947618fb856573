/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The k8s_expose table (schema 0008). Every function takes the store's mutex; each change
 * appends its audit entry in its transaction. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "log.h"
#include "store.h"

int
store_k8s_put(struct store *st, const char *app_id, const struct k8s_expose *e)
{
    sqlite3_stmt *s = NULL;
    int rc = -1;

    pthread_mutex_lock(&st->mtx);
    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(st->db,
                           "INSERT OR REPLACE INTO k8s_expose (app_id, kind, upstream_host, "
                           "upstream_port, node_name, node_selector, address_type, service, "
                           "updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, unixepoch())",
                           -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, app_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, e->kind, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, e->upstream_host, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 4, (int)e->upstream_port);
        sqlite3_bind_text(s, 5, e->node_name, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 6, e->node_selector, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 7, e->address_type[0] ? e->address_type : "InternalIP", -1,
                          SQLITE_STATIC);
        sqlite3_bind_text(s, 8, e->service, -1, SQLITE_STATIC);
        if (sqlite3_step(s) == SQLITE_DONE &&
            audit_append(st->db, "k8s.expose", app_id,
                         json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:s,s:s}", "app_id", app_id, "kind",
                                   e->kind, "upstream_host", e->upstream_host, "upstream_port",
                                   (int)e->upstream_port, "node_name", e->node_name,
                                   "node_selector", e->node_selector, "address_type",
                                   e->address_type, "service", e->service)) == 0 &&
            sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) {
            rc = 0;
        }
    }
    if (rc == -1) {
        log_warnx("store: write k8s expose of %s: %s", app_id, sqlite3_errmsg(st->db));
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mtx);
    return rc;
}

static void
col(sqlite3_stmt *s, int i, char *out, size_t len)
{
    const unsigned char *v = sqlite3_column_text(s, i);

    snprintf(out, len, "%s", v != NULL ? (const char *)v : "");
}

int
store_k8s_get(struct store *st, const char *app_id, struct k8s_expose *e)
{
    sqlite3_stmt *s = NULL;
    int rc = -1, step;

    memset(e, 0, sizeof(*e));
    pthread_mutex_lock(&st->mtx);
    if (sqlite3_prepare_v2(st->db,
                           "SELECT kind, upstream_host, upstream_port, node_name, node_selector, "
                           "address_type, service FROM k8s_expose WHERE app_id = ?1",
                           -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, app_id, -1, SQLITE_STATIC);
        step = sqlite3_step(s);
        if (step == SQLITE_ROW) {
            col(s, 0, e->kind, sizeof(e->kind));
            col(s, 1, e->upstream_host, sizeof(e->upstream_host));
            e->upstream_port = (unsigned)sqlite3_column_int(s, 2);
            col(s, 3, e->node_name, sizeof(e->node_name));
            col(s, 4, e->node_selector, sizeof(e->node_selector));
            col(s, 5, e->address_type, sizeof(e->address_type));
            col(s, 6, e->service, sizeof(e->service));
            rc = 1;
        } else if (step == SQLITE_DONE) {
            rc = 0;
        }
    }
    if (rc == -1) {
        log_warnx("store: read k8s expose of %s: %s", app_id, sqlite3_errmsg(st->db));
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mtx);
    return rc;
}

int
store_k8s_delete(struct store *st, const char *app_id)
{
    sqlite3_stmt *s = NULL;
    int rc = -1;

    pthread_mutex_lock(&st->mtx);
    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(st->db, "DELETE FROM k8s_expose WHERE app_id = ?1", -1, &s, NULL) ==
            SQLITE_OK) {
        sqlite3_bind_text(s, 1, app_id, -1, SQLITE_STATIC);
        if (sqlite3_step(s) == SQLITE_DONE &&
            (sqlite3_changes(st->db) == 0 ||
             audit_append(st->db, "k8s.delete", app_id, json_pack("{s:s}", "app_id", app_id)) ==
                 0) &&
            sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) {
            rc = 0;
        }
    }
    if (rc == -1) {
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mtx);
    return rc;
}

void
store_k8s_docker(struct store *st, const char *name)
{
    struct k8s_expose e;
    char id[128];
    size_t i;

    for (i = 0; name[i] != '\0' && i + 1 < sizeof(id); i++) {
        id[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
    }
    id[i] = '\0';
    memset(&e, 0, sizeof(e));
    snprintf(e.kind, sizeof(e.kind), "docker");
    store_k8s_put(st, id, &e);
}
