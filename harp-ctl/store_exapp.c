/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The exapps and exapp_routes tables. Every function takes the store's mutex. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "log.h"
#include "store.h"
#include "xmalloc.h"

static int
fail_db(struct store *st, struct hp_err *err, const char *what)
{
    err_set(err, "database: %s: %s", what, sqlite3_errmsg(st->db));
    log_warnx("store: %s: %s", what, sqlite3_errmsg(st->db));
    return -1;
}

static int list_locked(struct store *st, struct exapp **apps, size_t *n, struct hp_err *err);

static int
bump_version(struct store *st)
{
    return sqlite3_exec(st->db, "UPDATE table_state SET version = version + 1 WHERE id = 1", NULL,
                        NULL, NULL) == SQLITE_OK
               ? 0
               : -1;
}

/* Runs <sql> with ?1 bound to <id>. */
static int
exec_id(struct store *st, const char *sql, const char *id)
{
    sqlite3_stmt *s;
    int rc = -1;

    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) == SQLITE_OK &&
        sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_DONE) {
        rc = 0;
    }
    sqlite3_finalize(s);
    return rc;
}

static int
insert_routes(struct store *st, const struct exapp *app)
{
    sqlite3_stmt *s = NULL;
    size_t i;
    char *bf;
    int rc = -1;

    if (sqlite3_prepare_v2(st->db,
                           "INSERT INTO exapp_routes (app_id, position, url, access_level, "
                           "bruteforce_protection) VALUES (?1, ?2, ?3, ?4, ?5)",
                           -1, &s, NULL) != SQLITE_OK) {
        return -1;
    }
    for (i = 0; i < app->nroutes; i++) {
        json_t *a = exapp_bruteforce_json(&app->routes[i]);

        bf = json_dumps(a, JSON_COMPACT);
        json_decref(a);
        sqlite3_reset(s);
        sqlite3_bind_text(s, 1, app->app_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)i);
        sqlite3_bind_text(s, 3, app->routes[i].url, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 4, app->routes[i].access_level);
        sqlite3_bind_text(s, 5, bf, -1, SQLITE_TRANSIENT);
        free(bf);
        if (sqlite3_step(s) != SQLITE_DONE) {
            goto out;
        }
    }
    rc = 0;
out:
    sqlite3_finalize(s);
    return rc;
}

/* Reads the size of the published table into st->table_bytes and st->table_apps, once. */
static int
table_size_locked(struct store *st, struct hp_err *err)
{
    struct exapp *apps;
    size_t n, i;
    int64_t sum = 0;

    if (st->table_bytes >= 0) {
        return 0;
    }
    if (list_locked(st, &apps, &n, err) == -1) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        sum += (int64_t)exapp_record_size(&apps[i]);
    }
    store_exapp_list_free(apps, n);
    st->table_bytes = sum;
    st->table_apps = n;
    return 0;
}

/* 0 when <app> (its timestamps set) may replace the record of <old_size> bytes (0: a new app)
 * in the published table; -1 with <err> when it does not fit. *<total> is the new size. */
static int
check_fits(struct store *st, const struct exapp *app, size_t old_size, int64_t *total,
           struct hp_err *err)
{
    size_t size = exapp_record_size(app);

    if (old_size == 0 && st->table_apps >= EXAPP_MAX_APPS) {
        err_set(err, "the routing table already holds %zu ExApps, the most allowed; nothing stored",
                st->table_apps);
        return -1;
    }
    if (size > EXAPP_MAX_RECORD) {
        err_set(err,
                "the ExApp's record is %zu bytes as published, more than the %u allowed; "
                "nothing stored",
                size, EXAPP_MAX_RECORD);
        return -1;
    }
    *total = st->table_bytes - (int64_t)old_size + (int64_t)size;
    /* a table already over the limit (stored by an older harp) may still shrink */
    if (*total > (int64_t)EXAPP_MAX_TABLE && *total > st->table_bytes) {
        err_set(err,
                "the routing table would be %lld bytes, more than the %u allowed; "
                "nothing stored",
                (long long)*total, EXAPP_MAX_TABLE);
        return -1;
    }
    return 0;
}

int
store_exapp_put(struct store *st, struct exapp *app, struct hp_err *err)
{
    sqlite3_stmt *s = NULL;
    int64_t now = (int64_t)time(NULL), total;
    struct exapp old;
    size_t old_size = 0;
    int rc = -1, found;

    pthread_mutex_lock(&st->mtx);
    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        fail_db(st, err, "begin");
        goto out;
    }
    if (table_size_locked(st, err) == -1 ||
        (found = store_exapp_get_locked(st, app->app_id, &old, err)) == -1) {
        goto rollback;
    }
    app->created_at = now;
    if (found) {
        old_size = exapp_record_size(&old);
        app->created_at = old.created_at;
        exapp_free(&old);
    }
    app->updated_at = now;
    if (check_fits(st, app, old_size, &total, err) == -1) {
        rc = -2;
        goto rollback;
    }
    if (sqlite3_prepare_v2(st->db,
                           "INSERT INTO exapps (app_id, token, version, host, port, "
                           "resolved_host, created_at, updated_at) "
                           "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) "
                           "ON CONFLICT (app_id) DO UPDATE SET token = excluded.token, "
                           "version = excluded.version, host = excluded.host, "
                           "port = excluded.port, resolved_host = excluded.resolved_host, "
                           "updated_at = excluded.updated_at "
                           "RETURNING created_at",
                           -1, &s, NULL) != SQLITE_OK) {
        fail_db(st, err, "prepare");
        goto rollback;
    }
    sqlite3_bind_text(s, 1, app->app_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, app->token, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, app->version, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, app->host, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 5, (int)app->port);
    sqlite3_bind_text(s, 6, app->resolved_host ? app->resolved_host : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 7, now);
    if (sqlite3_step(s) != SQLITE_ROW) {
        fail_db(st, err, "write exapp");
        goto rollback;
    }
    app->created_at = sqlite3_column_int64(s, 0);
    app->updated_at = now;
    sqlite3_finalize(s);
    s = NULL;
    if (exec_id(st, "DELETE FROM exapp_routes WHERE app_id = ?1", app->app_id) == -1) {
        fail_db(st, err, "clear routes");
        goto rollback;
    }
    /* The entry holds the app as published: with the operator's timeouts, which outlive
     * AppAPI's registrations. */
    if (exec_id(st, "DELETE FROM exapp_removed WHERE app_id = ?1", app->app_id) == -1 ||
        insert_routes(st, app) == -1 || bump_version(st) == -1 ||
        store_timeouts_load(st, app, 1, app->app_id) == -1 ||
        audit_append(st->db, "exapp.put", app->app_id, json_pack("{s:o}", "app", canon_app(app))) ==
            -1) {
        fail_db(st, err, "write routes");
        goto rollback;
    }
    if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        fail_db(st, err, "commit");
        goto rollback;
    }
    st->table_bytes = total;
    st->table_apps += found ? 0 : 1;
    rc = 0;
    goto out;
rollback:
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
out:
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mtx);
    return rc;
}

static char *
col_dup(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);

    return xstrdup(t != NULL ? (const char *)t : "");
}

static void
load_bruteforce(struct exapp_route *r, const char *text)
{
    json_t *a = json_loads(text, 0, NULL), *v;
    size_t i;

    if (!json_is_array(a)) {
        json_decref(a);
        return;
    }
    r->bruteforce = xcalloc(json_array_size(a), sizeof(int));
    json_array_foreach(a, i, v)
    {
        r->bruteforce[r->nbruteforce++] = (int)json_integer_value(v);
    }
    json_decref(a);
}

static void
route_row(sqlite3_stmt *s, struct exapp *a)
{
    struct exapp_route *r;

    a->routes = xrealloc(a->routes, (a->nroutes + 1) * sizeof(*a->routes));
    r = &a->routes[a->nroutes++];
    memset(r, 0, sizeof(*r));
    r->url = col_dup(s, 1);
    r->access_level = sqlite3_column_int(s, 2);
    load_bruteforce(r, (const char *)sqlite3_column_text(s, 3));
}

/* Reads the routes of every app in <apps> (sorted by id) with one query. */
static int
load_routes(struct store *st, struct exapp *apps, size_t n, const char *only)
{
    return store_app_rows(st,
                          "SELECT app_id, url, access_level, bruteforce_protection "
                          "FROM exapp_routes WHERE ?1 IS NULL OR app_id = ?1 "
                          "ORDER BY app_id, position",
                          apps, n, only, route_row);
}

static void
row_to_exapp(sqlite3_stmt *s, struct exapp *a)
{
    memset(a, 0, sizeof(*a));
    snprintf(a->app_id, sizeof(a->app_id), "%s", (const char *)sqlite3_column_text(s, 0));
    a->token = col_dup(s, 1);
    a->version = col_dup(s, 2);
    a->host = col_dup(s, 3);
    a->port = (unsigned)sqlite3_column_int(s, 4);
    a->resolved_host = col_dup(s, 5);
    a->created_at = sqlite3_column_int64(s, 6);
    a->updated_at = sqlite3_column_int64(s, 7);
}

#define SELECT_EXAPP                                                                               \
    "SELECT app_id, token, version, host, port, resolved_host, created_at, updated_at "            \
    "FROM exapps "

int
store_exapp_get_locked(struct store *st, const char *app_id, struct exapp *app, struct hp_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc = -1, step;

    if (sqlite3_prepare_v2(st->db, SELECT_EXAPP "WHERE app_id = ?1", -1, &s, NULL) != SQLITE_OK) {
        fail_db(st, err, "read exapp");
        goto out;
    }
    sqlite3_bind_text(s, 1, app_id, -1, SQLITE_STATIC);
    step = sqlite3_step(s);
    if (step == SQLITE_DONE) {
        rc = 0;
        goto out;
    }
    if (step != SQLITE_ROW) {
        fail_db(st, err, "read exapp");
        goto out;
    }
    row_to_exapp(s, app);
    if (load_routes(st, app, 1, app_id) == -1 || store_timeouts_load(st, app, 1, app_id) == -1) {
        exapp_free(app);
        fail_db(st, err, "read routes");
        goto out;
    }
    rc = 1;
out:
    sqlite3_finalize(s);
    return rc;
}

int
store_exapp_get(struct store *st, const char *app_id, struct exapp *app, struct hp_err *err)
{
    int rc;

    pthread_mutex_lock(&st->mtx);
    rc = store_exapp_get_locked(st, app_id, app, err);
    pthread_mutex_unlock(&st->mtx);
    return rc;
}

static int
list_locked(struct store *st, struct exapp **apps, size_t *n, struct hp_err *err)
{
    sqlite3_stmt *s = NULL;
    struct exapp *a = NULL;
    size_t cnt = 0;
    int rc = -1, step;

    if (sqlite3_prepare_v2(st->db, SELECT_EXAPP "ORDER BY app_id", -1, &s, NULL) != SQLITE_OK) {
        fail_db(st, err, "list exapps");
        goto out;
    }
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        a = xrealloc(a, (cnt + 1) * sizeof(*a));
        row_to_exapp(s, &a[cnt++]);
    }
    if (step != SQLITE_DONE || load_routes(st, a, cnt, NULL) == -1 ||
        store_timeouts_load(st, a, cnt, NULL) == -1) {
        fail_db(st, err, "list exapps");
        store_exapp_list_free(a, cnt);
        goto out;
    }
    *apps = a;
    *n = cnt;
    rc = 0;
out:
    sqlite3_finalize(s);
    return rc;
}

int
store_exapp_list(struct store *st, struct exapp **apps, size_t *n, struct hp_err *err)
{
    int rc;

    pthread_mutex_lock(&st->mtx);
    rc = list_locked(st, apps, n, err);
    pthread_mutex_unlock(&st->mtx);
    return rc;
}

/* Leaves out the apps whose record a data plane would refuse (which would cost it the whole
 * table): records stored before a check of exapp_from_json() existed. */
static void
drop_unpublishable(struct exapp *apps, size_t *n)
{
    struct exapp again;
    struct hp_err e;
    size_t i, kept = 0;
    json_t *j;
    int rc;

    for (i = 0; i < *n; i++) {
        j = exapp_to_json(&apps[i], true);
        rc = exapp_from_json(j, &again, &e);
        json_decref(j);
        if (rc == 0) {
            exapp_free(&again);
            apps[kept++] = apps[i];
            continue;
        }
        log_warnx("store: ExApp %s is not published: %s; register it again or remove it",
                  apps[i].app_id, e.msg);
        exapp_free(&apps[i]);
    }
    *n = kept;
}

int
store_exapp_snapshot(struct store *st, struct exapp **apps, size_t *n, int64_t *version,
                     struct hp_err *err)
{
    sqlite3_stmt *s;
    int rc;

    pthread_mutex_lock(&st->mtx);
    rc = list_locked(st, apps, n, err);
    if (rc == 0) {
        drop_unpublishable(*apps, n);
    }
    *version = -1;
    if (rc == 0 && sqlite3_prepare_v2(st->db, "SELECT version FROM table_state WHERE id = 1", -1,
                                      &s, NULL) == SQLITE_OK) {
        if (sqlite3_step(s) == SQLITE_ROW) {
            *version = sqlite3_column_int64(s, 0);
        }
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&st->mtx);
    if (rc == 0 && *version < 0) {
        store_exapp_list_free(*apps, *n);
        err_set(err, "database: cannot read the table version");
        return -1;
    }
    return rc;
}

int64_t
store_exapp_removed_at(struct store *st, const char *app_id)
{
    sqlite3_stmt *s;
    int64_t at = 0;

    pthread_mutex_lock(&st->mtx);
    if (sqlite3_prepare_v2(st->db, "SELECT removed_at FROM exapp_removed WHERE app_id = ?1", -1, &s,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, app_id, -1, SQLITE_STATIC);
        if (sqlite3_step(s) == SQLITE_ROW) {
            at = sqlite3_column_int64(s, 0);
        }
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&st->mtx);
    return at;
}

void
store_exapp_list_free(struct exapp *apps, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        exapp_free(&apps[i]);
    }
    free(apps);
}

int
store_exapp_delete(struct store *st, const char *app_id, struct hp_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc = -1;

    pthread_mutex_lock(&st->mtx);
    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        fail_db(st, err, "begin");
        goto out;
    }
    if (sqlite3_prepare_v2(st->db, "DELETE FROM exapps WHERE app_id = ?1", -1, &s, NULL) !=
            SQLITE_OK ||
        sqlite3_bind_text(s, 1, app_id, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_DONE) {
        fail_db(st, err, "delete exapp");
        goto rollback;
    }
    rc = sqlite3_changes(st->db) > 0 ? 1 : 0;
    if ((rc == 1 &&
         (bump_version(st) == -1 || audit_append(st->db, "exapp.delete", app_id,
                                                 json_pack("{s:s}", "app_id", app_id)) == -1)) ||
        exec_id(st,
                "INSERT OR REPLACE INTO exapp_removed (app_id, removed_at) "
                "VALUES (?1, unixepoch())",
                app_id) == -1 ||
        sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        fail_db(st, err, "commit");
        rc = -1;
        goto rollback;
    }
    st->table_bytes = -1; /* read again at the next write */
    goto out;
rollback:
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
out:
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mtx);
    return rc;
}

size_t
store_exapp_count(struct store *st)
{
    sqlite3_stmt *s;
    size_t n = 0;

    pthread_mutex_lock(&st->mtx);
    if (sqlite3_prepare_v2(st->db, "SELECT count(*) FROM exapps", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
        n = (size_t)sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mtx);
    return n;
}

/* The audit entry of a change: what was set, and the app as published after it. */
static int
audit_timeouts(struct store *st, const char *app_id, const char *route,
               const uint32_t ms[EXAPP_NTIMEOUTS], const bool change[EXAPP_NTIMEOUTS])
{
    json_t *set = json_object(), *effect;
    struct exapp app;
    struct hp_err err;
    int k, found;

    for (k = 0; k < EXAPP_NTIMEOUTS; k++) {
        if (change[k]) {
            json_object_set_new(set, exapp_timeout_name(k), json_integer(ms[k]));
        }
    }
    effect = json_pack("{s:s,s:s,s:o}", "app_id", app_id, "route", route, "set", set);
    memset(&app, 0, sizeof(app));
    if ((found = store_exapp_get_locked(st, app_id, &app, &err)) == -1) {
        json_decref(effect);
        return -1;
    }
    if (found == 1) {
        json_object_set_new(effect, "app", canon_app(&app));
        exapp_free(&app);
    }
    return audit_append(st->db, "exapp.timeouts", app_id, effect);
}

int
store_timeouts_set(struct store *st, const char *app_id, const char *route,
                   const uint32_t ms[EXAPP_NTIMEOUTS], const bool change[EXAPP_NTIMEOUTS],
                   struct hp_err *err)
{
    sqlite3_stmt *del = NULL, *ins = NULL;
    int rc = -1, k;

    pthread_mutex_lock(&st->mtx);
    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(st->db,
                           "DELETE FROM exapp_timeouts WHERE app_id = ?1 AND route = ?2 "
                           "AND kind = ?3",
                           -1, &del, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(st->db,
                           "INSERT INTO exapp_timeouts (app_id, route, kind, ms) "
                           "VALUES (?1, ?2, ?3, ?4)",
                           -1, &ins, NULL) != SQLITE_OK) {
        goto fail;
    }
    for (k = 0; k < EXAPP_NTIMEOUTS; k++) {
        if (!change[k]) {
            continue;
        }
        sqlite3_reset(del);
        sqlite3_bind_text(del, 1, app_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(del, 2, route, -1, SQLITE_STATIC);
        sqlite3_bind_text(del, 3, exapp_timeout_name(k), -1, SQLITE_STATIC);
        if (sqlite3_step(del) != SQLITE_DONE) {
            goto fail;
        }
        if (ms[k] == 0) {
            continue; /* back to the default */
        }
        sqlite3_reset(ins);
        sqlite3_bind_text(ins, 1, app_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 2, route, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 3, exapp_timeout_name(k), -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 4, ms[k]);
        if (sqlite3_step(ins) != SQLITE_DONE) {
            goto fail;
        }
    }
    /* the data planes get the change with the next table version */
    if (sqlite3_exec(st->db, "UPDATE table_state SET version = version + 1 WHERE id = 1", NULL,
                     NULL, NULL) != SQLITE_OK ||
        audit_timeouts(st, app_id, route, ms, change) == -1 ||
        sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        goto fail;
    }
    rc = 0;
    goto out;
fail:
    err_set(err, "database: timeouts: %s", sqlite3_errmsg(st->db));
    log_warnx("store: timeouts: %s", sqlite3_errmsg(st->db));
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
out:
    sqlite3_finalize(del);
    sqlite3_finalize(ins);
    pthread_mutex_unlock(&st->mtx);
    return rc;
}
