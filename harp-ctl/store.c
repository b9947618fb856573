/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Opening the database and migrating it.
 *
 * Design notes:
 * 1. PRAGMA user_version is the number of the last migration applied. Each migration runs in
 *    its own IMMEDIATE transaction together with the user_version update, so a crash leaves the
 *    database at a whole step.
 * 2. A database whose user_version is above the newest migration compiled in was written by a
 *    newer harp: refused, never touched.
 * 3. WAL with synchronous=FULL: a change is on disk when its COMMIT returns, which is before the
 *    API answers 2xx, so an acknowledged change survives a crash of the process or the host.
 * 4. The file is created 0600: it holds ExApp tokens.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "schema.h"
#include "store.h"
#include "xmalloc.h"

static int
exec(struct store *st, const char *sql, struct hp_err *err)
{
    char *msg = NULL;

    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        err_set(err, "database: %s", msg != NULL ? msg : sqlite3_errmsg(st->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* PRAGMA user_version; the caller holds <mtx> or is store_open(). */
static int
schema_version(struct store *st)
{
    sqlite3_stmt *s;
    int v = -1;

    if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
        v = sqlite3_column_int(s, 0);
    }
    sqlite3_finalize(s);
    return v;
}

int
store_schema_version(struct store *st)
{
    int v;

    /* The connection is opened NOMUTEX: every use outside store_open() holds <mtx>. */
    pthread_mutex_lock(&st->mtx);
    v = schema_version(st);
    pthread_mutex_unlock(&st->mtx);
    return v;
}

static int
migrate(struct store *st, struct hp_err *err)
{
    int cur = schema_version(st);
    unsigned i;
    char *sql;

    if (cur < 0) {
        err_set(err, "database: cannot read the schema version: %s", sqlite3_errmsg(st->db));
        return -1;
    }
    if ((unsigned)cur > schema_steps[schema_nsteps - 1].version) {
        err_set(err, "database %s has schema version %d, newer than this harp knows (%u)", st->path,
                cur, schema_steps[schema_nsteps - 1].version);
        return -1;
    }
    for (i = 0; i < schema_nsteps; i++) {
        if (schema_steps[i].version <= (unsigned)cur) {
            continue;
        }
        if (exec(st, "BEGIN IMMEDIATE", err) == -1) {
            return -1;
        }
        sql = xasprintf("%s\nPRAGMA user_version = %u;", schema_steps[i].sql,
                        schema_steps[i].version);
        if (exec(st, sql, err) == -1 || exec(st, "COMMIT", err) == -1) {
            free(sql);
            sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
            return -1;
        }
        free(sql);
        log_info("store: applied migration %s", schema_steps[i].name);
    }
    return 0;
}

struct store *
store_open(const char *path, struct hp_err *err)
{
    struct store *st = xcalloc(1, sizeof(*st));
    int fd;

    st->path = xstrdup(path);
    st->table_bytes = -1;
    pthread_mutex_init(&st->mtx, NULL);
    /* Create it 0600 before SQLite does, whatever the umask. */
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd == -1) {
        err_set(err, "database %s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    close(fd);
    if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        err_set(err, "database %s: %s", path, st->db ? sqlite3_errmsg(st->db) : "cannot open");
        goto fail;
    }
    sqlite3_busy_timeout(st->db, 5000);
    if (exec(st, "PRAGMA journal_mode = WAL", err) == -1 ||
        exec(st, "PRAGMA synchronous = FULL", err) == -1 ||
        exec(st, "PRAGMA foreign_keys = ON", err) == -1 || migrate(st, err) == -1) {
        goto fail;
    }
    return st;
fail:
    store_close(st);
    return NULL;
}

void
store_close(struct store *st)
{
    if (st == NULL) {
        return;
    }
    if (st->db != NULL) {
        sqlite3_close_v2(st->db);
    }
    pthread_mutex_destroy(&st->mtx);
    free(st->path);
    free(st);
}

int64_t
store_table_version(struct store *st)
{
    sqlite3_stmt *s;
    int64_t v = -1;

    pthread_mutex_lock(&st->mtx);
    if (sqlite3_prepare_v2(st->db, "SELECT version FROM table_state WHERE id = 1", -1, &s, NULL) ==
            SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
        v = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mtx);
    return v;
}

int
store_app_rows(struct store *st, const char *sql, struct exapp *apps, size_t n, const char *only,
               void (*row)(sqlite3_stmt *s, struct exapp *app))
{
    sqlite3_stmt *s;
    size_t i = 0;
    int rc;

    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
        return -1;
    }
    if (only != NULL) {
        sqlite3_bind_text(s, 1, only, -1, SQLITE_STATIC);
    }
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(s, 0);

        while (i < n && strcmp(apps[i].app_id, id) < 0) {
            i++;
        }
        if (i < n && strcmp(apps[i].app_id, id) == 0) {
            row(s, &apps[i]);
        }
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? 0 : -1;
}
