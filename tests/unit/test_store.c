/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The store on a real SQLite file: migrations, 0600 file, round trips, replacement of routes,
 * table versions, refusal of a database from a newer harp, the connection used only under the
 * store's lock. */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "schema.h"
#include "store.h"
#include "tap.h"
#include "xmalloc.h"

static void
make_app(struct exapp *a, const char *id, unsigned port, size_t nroutes)
{
    size_t i;

    memset(a, 0, sizeof(*a));
    snprintf(a->app_id, sizeof(a->app_id), "%s", id);
    a->token = xstrdup("tok");
    a->version = xstrdup("1.0");
    a->host = xstrdup("127.0.0.1");
    a->resolved_host = xstrdup("");
    a->port = port;
    a->routes = xcalloc(nroutes, sizeof(*a->routes));
    a->nroutes = nroutes;
    for (i = 0; i < nroutes; i++) {
        a->routes[i].url = xasprintf("^/r%zu$", i);
        a->routes[i].access_level = (int)(i % 3);
        a->routes[i].bruteforce = xcalloc(1, sizeof(int));
        a->routes[i].bruteforce[0] = 401;
        a->routes[i].nbruteforce = 1;
    }
}

/* <app> with <nroutes> routes whose URLs are <len> bytes long. */
static void
make_big_app(struct exapp *a, const char *id, size_t nroutes, size_t len)
{
    size_t i;

    make_app(a, id, 23000, nroutes);
    for (i = 0; i < nroutes; i++) {
        free(a->routes[i].url);
        a->routes[i].url = xmalloc(len + 1);
        memset(a->routes[i].url, 'u', len);
        a->routes[i].url[len] = '\0';
    }
}

/* What one app and all of them may add to the published table (issue 12.6): one past each
 * limit is refused with -2 and nothing changes. */
static void
test_limits(const char *dir)
{
    char *path = xasprintf("%s/limits.db", dir), id[32];
    struct store *st;
    struct exapp a, got;
    struct hp_err err;
    int64_t v;
    size_t i, n, size;
    int rc = 0;

    st = store_open(path, &err);
    make_app(&a, "small", 23000, 1);
    IS_INT(store_exapp_put(st, &a, &err), 0, "a small app");
    exapp_free(&a);
    v = store_table_version(st);

    /* one record: 160 routes of 400 bytes are about 75 KiB as published */
    make_big_app(&a, "small", 160, 400);
    IS_INT(store_exapp_put(st, &a, &err), -2, "a record over %u bytes is refused",
           EXAPP_MAX_RECORD);
    OK(strstr(err.msg, "record is") != NULL && strstr(err.msg, "nothing stored") != NULL,
       "saying so: %s", err.msg);
    exapp_free(&a);
    IS_INT(store_exapp_get(st, "small", &got, &err), 1, "the stored record is still there");
    IS_INT(got.nroutes, 1, "unchanged");
    exapp_free(&got);
    OK(store_table_version(st) == v, "the table version did not move");

    /* the table: records just under EXAPP_MAX_RECORD until EXAPP_MAX_TABLE is reached */
    make_big_app(&a, "t000", 120, 440);
    size = exapp_record_size(&a);
    OK(size < EXAPP_MAX_RECORD && size > EXAPP_MAX_RECORD - 8192, "a record of %zu bytes", size);
    for (i = 0; i < EXAPP_MAX_TABLE / size + 2 && rc == 0; i++) {
        snprintf(a.app_id, sizeof(a.app_id), "t%03zu", i);
        rc = store_exapp_put(st, &a, &err);
    }
    IS_INT(rc, -2, "the table fills up");
    n = store_exapp_count(st);
    OK((n - 1) * size <= EXAPP_MAX_TABLE && n * size > EXAPP_MAX_TABLE - 2 * size,
       "after %zu records of %zu bytes", n - 1, size);
    OK(strstr(err.msg, "routing table would be") != NULL, "saying so: %s", err.msg);
    IS_INT(store_exapp_get(st, a.app_id, &got, &err), 0, "the refused app is not stored");
    snprintf(a.app_id, sizeof(a.app_id), "t000");
    IS_INT(store_exapp_put(st, &a, &err), 0, "replacing a record of the same size still works");
    exapp_free(&a);
    make_app(&a, "t001", 23000, 1);
    IS_INT(store_exapp_put(st, &a, &err), 0, "so does shrinking one");
    exapp_free(&a);
    make_app(&a, "late", 23000, 1);
    IS_INT(store_exapp_put(st, &a, &err), 0, "which makes room for a small app");
    exapp_free(&a);
    IS_INT(store_exapp_delete(st, "t002", &err), 1, "a delete");
    make_big_app(&a, "t002", 120, 440);
    IS_INT(store_exapp_put(st, &a, &err), 0, "makes room for a big one again");
    exapp_free(&a);

    /* the number of apps */
    for (i = 0; i < n + 10; i++) {
        snprintf(id, sizeof(id), "t%03zu", i);
        store_exapp_delete(st, id, &err);
    }
    n = store_exapp_count(st);
    rc = 0;
    make_app(&a, "n0000", 23000, 1);
    for (i = 0; n + i <= EXAPP_MAX_APPS && rc == 0; i++) {
        snprintf(a.app_id, sizeof(a.app_id), "n%04zu", i);
        rc = store_exapp_put(st, &a, &err);
    }
    IS_INT(rc, -2, "app number %zu is refused", n + i);
    IS_INT(store_exapp_count(st), EXAPP_MAX_APPS, "%d apps stored", EXAPP_MAX_APPS);
    OK(strstr(err.msg, "already holds 1000 ExApps") != NULL, "saying so: %s", err.msg);
    snprintf(a.app_id, sizeof(a.app_id), "n0000");
    a.port = 23999;
    IS_INT(store_exapp_put(st, &a, &err), 0, "an app already there may still be replaced");
    exapp_free(&a);
    store_close(st);
    free(path);
}

struct version_reader {
    struct store *st;
    atomic_int done;
    int version;
};

static void *
read_version(void *arg)
{
    struct version_reader *r = arg;

    r->version = store_schema_version(r->st);
    atomic_store(&r->done, 1);
    return NULL;
}

/* The connection is opened NOMUTEX: store_schema_version() must wait for the store's lock
 * held by another thread (an API thread's transaction) rather than use the connection. */
static void
test_schema_version_locks(struct store *st)
{
    struct version_reader r = {.st = st};
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 300 * 1000 * 1000};
    pthread_t t;

    pthread_mutex_lock(&st->mtx);
    OK(pthread_create(&t, NULL, read_version, &r) == 0, "reader thread started");
    nanosleep(&pause, NULL);
    IS_INT(atomic_load(&r.done), 0,
           "store_schema_version waits while another thread holds the lock");
    pthread_mutex_unlock(&st->mtx);
    pthread_join(t, NULL);
    IS_INT(r.version, schema_steps[schema_nsteps - 1].version, "and reads the version after");
}

int
main(void)
{
    char dir[] = "/tmp/harp-store-XXXXXX";
    struct store *st;
    struct exapp a, got, *list;
    struct hp_err err;
    struct stat sb;
    size_t n;
    char *path, *cmd;
    int64_t v0;

    OK(mkdtemp(dir) != NULL, "temp dir");
    path = xasprintf("%s/harp.db", dir);
    st = store_open(path, &err);
    OK(st != NULL, "a new database opens");
    IS_INT(store_schema_version(st), schema_steps[schema_nsteps - 1].version,
           "all migrations applied");
    OK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600, "database file is 0600");
    v0 = store_table_version(st);
    test_schema_version_locks(st);

    make_app(&a, "alpha", 23001, 3);
    IS_INT(store_exapp_put(st, &a, &err), 0, "put alpha");
    OK(store_table_version(st) == v0 + 1, "table version bumped");
    exapp_free(&a);
    make_app(&a, "alpha", 23002, 1);
    IS_INT(store_exapp_put(st, &a, &err), 0, "replace alpha with one route");
    exapp_free(&a);
    IS_INT(store_exapp_get(st, "alpha", &got, &err), 1, "get alpha");
    IS_INT(got.port, 23002, "replaced port");
    IS_INT(got.nroutes, 1, "old routes gone");
    IS_STR(got.routes[0].url, "^/r0$", "route url");
    IS_INT(got.routes[0].bruteforce[0], 401, "bruteforce list round trip");
    IS_STR(got.token, "tok", "token stored");
    exapp_free(&got);
    IS_INT(store_exapp_get(st, "beta", &got, &err), 0, "absent app");

    make_app(&a, "beta", 23003, 2);
    IS_INT(store_exapp_put(st, &a, &err), 0, "put beta");
    exapp_free(&a);
    IS_INT(store_exapp_list(st, &list, &n, &err), 0, "list");
    IS_INT(n, 2, "two apps");
    IS_STR(list[0].app_id, "alpha", "ordered by id");
    IS_INT(list[1].nroutes, 2, "beta's routes listed");
    IS_STR(list[1].routes[1].url, "^/r1$", "routes in order");
    store_exapp_list_free(list, n);

    IS_INT(store_exapp_delete(st, "alpha", &err), 1, "delete alpha");
    IS_INT(store_exapp_delete(st, "alpha", &err), 0, "delete again: absent");
    IS_INT(store_exapp_count(st), 1, "one app left");
    store_close(st);

    st = store_open(path, &err);
    OK(st != NULL, "reopen");
    IS_INT(store_exapp_count(st), 1, "data persists across reopen");
    store_close(st);

    test_limits(dir);

    cmd = xasprintf("sqlite3 %s 'PRAGMA user_version = 999' 2>/dev/null || "
                    "python3 -c \"import sqlite3; c=sqlite3.connect('%s'); "
                    "c.execute('PRAGMA user_version = 999'); c.commit()\"",
                    path, path);
    OK(system(cmd) == 0, "database marked as from a newer harp");
    st = store_open(path, &err);
    OK(st == NULL && strstr(err.msg, "newer") != NULL, "a newer schema is refused");
    store_close(st);

    free(cmd);
    cmd = xasprintf("rm -rf %s", dir);
    OK(system(cmd) == 0, "cleanup");
    free(cmd);
    free(path);
    return tap_done();
}
