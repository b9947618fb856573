/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The SQLite store of harp-ctl: one database, WAL mode, migrations at open. */
#ifndef HARP_CTL_STORE_H
#define HARP_CTL_STORE_H

#include <pthread.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "exapp.h"

/* Created by store_open(), freed by store_close(). One connection shared by the API threads
 * under <mtx>: writes are serialised anyway, and reads are short. */
struct store {
    sqlite3 *db;
    pthread_mutex_t mtx;
    char *path;
    /* The published table's size: the sum of exapp_record_size() over the apps, and their
     * number; read at the first write of an app, -1 until then and after a delete. */
    int64_t table_bytes;
    size_t table_apps;
};

struct store *store_open(const char *path, struct hp_err *err);
void store_close(struct store *st);
/* The schema version the database is at (PRAGMA user_version). */
int store_schema_version(struct store *st);
int64_t store_table_version(struct store *st);

/* Inserts or replaces <app> (keyed by app->app_id) with its routes, in one transaction that is
 * durable when this returns 0. Sets created_at/updated_at. -1 with <err> on a database failure;
 * -2 with <err> when the app does not fit the published table (EXAPP_MAX_RECORD,
 * EXAPP_MAX_APPS, EXAPP_MAX_TABLE): nothing is stored then. */
int store_exapp_put(struct store *st, struct exapp *app, struct hp_err *err);
/* 1 and fills <app> when found, 0 when absent, -1 on error. */
int store_exapp_get(struct store *st, const char *app_id, struct exapp *app, struct hp_err *err);
/* All ExApps ordered by id; *<apps> freed with store_exapp_list_free(). -1 on error. */
int store_exapp_list(struct store *st, struct exapp **apps, size_t *n, struct hp_err *err);
void store_exapp_list_free(struct exapp *apps, size_t n);
/* All ExApps and the table version they make up, read together. A stored app a data plane
 * would refuse (stored before a check existed) is left out, with a warning. */
int store_exapp_snapshot(struct store *st, struct exapp **apps, size_t *n, int64_t *version,
                         struct hp_err *err);
/* When <app_id> was last removed by DELETE (Unix time), or 0 when it was not, or was
 * registered again since. */
int64_t store_exapp_removed_at(struct store *st, const char *app_id);
/* store_exapp_get() for a caller that holds mtx. */
int store_exapp_get_locked(struct store *st, const char *app_id, struct exapp *app,
                           struct hp_err *err);
/* 1 when removed, 0 when absent, -1 on error. Either way the id is marked removed. */
int store_exapp_delete(struct store *st, const char *app_id, struct hp_err *err);
size_t store_exapp_count(struct store *st);

/* Operator timeouts of <app_id> (<route> "" for the app, else a route's url pattern): each
 * kind with <change> set becomes <ms> (0: back to the default), in one transaction that also
 * bumps the table version and appends the audit entry "exapp.timeouts" (the app as published
 * after it, when it is registered). 0, or -1 with <err>. */
int store_timeouts_set(struct store *st, const char *app_id, const char *route,
                       const uint32_t ms[EXAPP_NTIMEOUTS], const bool change[EXAPP_NTIMEOUTS],
                       struct hp_err *err);
/* Fills the timeouts of <apps> (sorted by id; only <only> when not NULL) from the table; the
 * caller holds mtx. -1 on a database failure. */
int store_timeouts_load(struct store *st, struct exapp *apps, size_t n, const char *only);
/* Runs <sql> (its ?1: <only>, or NULL for every app; rows ordered by app id in column 0) and
 * calls <row> with each row and the app of <apps> (sorted by id) it belongs to; rows of other
 * apps are skipped. 0, or -1 on a database error. */
int store_app_rows(struct store *st, const char *sql, struct exapp *apps, size_t n,
                   const char *only, void (*row)(sqlite3_stmt *s, struct exapp *app));

/* Bans by client IP (canonical text). <reason> is "failures" or "operator". */
int store_ban_put(struct store *st, const char *ip, int failures, const char *reason,
                  int64_t expires_at, struct hp_err *err);
/* 1 when removed, 0 when absent, -1 on error. */
int store_ban_delete(struct store *st, const char *ip, struct hp_err *err);
/* The bans still in force at <now>: [{ip, failures, reason, created_at, expires_at}]. */
json_t *store_ban_list(struct store *st, int64_t now);
/* Deletes bans expired at <now>; returns how many. */
int store_ban_prune(struct store *st, int64_t now);

/* Docker engines (schema 0004). <address> is "" (127.0.0.1:<port>, an FRP tunnel),
 * unix:///path or tcp://host:port. */
struct engine_rec {
    unsigned port;
    char name[64];
    char address[256];
    int64_t created_at;
};

/* 0 when added; -1 with <err> on failure, *<conflict> set when the name or port is taken. */
int store_engine_add(struct store *st, const struct engine_rec *e, bool *conflict,
                     struct hp_err *err);
/* 1 and fills <e> when found, 0 when absent. By name when <name> is set, else by <port>. */
int store_engine_get(struct store *st, const char *name, unsigned port, struct engine_rec *e);
/* 1 when removed (its port then refused to FRP tunnels until an engine takes it again),
 * 0 when absent, -1 on error. */
int store_engine_delete(struct store *st, const char *name, struct hp_err *err);
/* All engines by port; *<list> freed with free(). -1 on error. */
int store_engine_list(struct store *st, struct engine_rec **list, size_t *n, struct hp_err *err);
/* The ports refused to tunnels: [port, ...]. */
json_t *store_engine_refusals(struct store *st);

/* The FRP certificates (schema 0005): "ca", "server", "client". */
struct cert_rec {
    char *cert_pem, *key_pem;
    int64_t created_at;
};

/* Replaces all three in one transaction. 0, or -1 with <err>. */
int store_cert_put_all(struct store *st, const struct cert_rec recs[3], struct hp_err *err);
/* 1 and fills <recs> (ca, server, client; free with store_cert_free) when all three are
 * stored, 0 when none or some are, -1 on error. */
int store_cert_get_all(struct store *st, struct cert_rec recs[3]);
void store_cert_free(struct cert_rec recs[3]);
/* The lifecycle's state by name (schema 0010): the value (the caller frees it) or NULL. */
char *store_cert_state_get(struct store *st, const char *name);
int store_cert_state_set(struct store *st, const char *name, const char *value);
int store_cert_state_del(struct store *st, const char *name);
/* Containers holding the FRP client files, with the sha256 of the client certificate last
 * written: [{port, container, installed_at, delivered}]. */
int store_cert_install_put(struct store *st, unsigned port, const char *container, const char *sha);
int store_cert_install_delete(struct store *st, unsigned port, const char *container);
json_t *store_cert_install_list(struct store *st);

/* How an ExApp is reached on Kubernetes (schema 0008): its last expose, or kind "docker". */
struct k8s_expose {
    char kind[16]; /* docker, k8s (created, not exposed), nodeport, clusterip, loadbalancer, manual
                    */
    char upstream_host[256];
    unsigned upstream_port;
    char node_name[254];
    char node_selector[256];
    char address_type[16];
    char service[64];
};
/* Replaces the row of <app_id>. 0, or -1. */
int store_k8s_put(struct store *st, const char *app_id, const struct k8s_expose *e);
/* 1 with *<e> filled, 0 when none, -1 on error. */
int store_k8s_get(struct store *st, const char *app_id, struct k8s_expose *e);
int store_k8s_delete(struct store *st, const char *app_id);
/* Marks ExApp <name> (any case) as a Docker one: no Kubernetes look-up for it. */
void store_k8s_docker(struct store *st, const char *name);

/* The audit chain (audit.h, docs/audit.md). At start: the first entry, holding the table as
 * it is, when the log is empty. 0, or -1 with <err>. */
int store_audit_start(struct store *st, struct hp_err *err);
/* Signs and records table <version> with <table_hash> over the last entry at or below it
 * (*<seq>, its hash <head>). 0, or -1. */
struct evp_pkey_st;
int store_audit_sign_version(struct store *st, struct evp_pkey_st *key, int64_t version,
                             const char *table_hash, int64_t *seq, char sig[129], char head[65]);
/* Prunes the entries made before <before> (Unix time) behind a checkpoint signed with <key>:
 * the last pruned entry's hash and the table then; the signed versions before it and their
 * acknowledgements go too. The chain up to there is verified first. The number of entries
 * pruned, or -1 with <err>. */
int64_t store_audit_prune(struct store *st, struct evp_pkey_st *key, int64_t before,
                          struct hp_err *err);
/* Records a data plane's signed acknowledgement of <version>. 0, or -1. */
int store_audit_ack(struct store *st, int64_t version, const char *dp_id, const char *dp_key,
                    const char *table_hash, const char *sig);

#endif
