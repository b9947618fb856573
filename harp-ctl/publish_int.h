/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The publisher's parts: publish.c (links, tables, the thread), publish_lookup.c (unknown app
 * ids), publish_auth.c (user look-ups, the session cache), publish_bans.c (failures, bans).
 * Everything runs on the publisher thread except where "any thread" or "worker" is said. */
#ifndef HARP_CTL_PUBLISH_INT_H
#define HARP_CTL_PUBLISH_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "cidr.h"
#include "err.h"
#include "exapp.h"
#include "frame.h"
#include "log.h"
#include "msg.h"
#include "pool.h"
#include "publish.h"

struct link {
    int fd;
    uint64_t serial;
    struct frame_reader rd;
    char *out;
    size_t out_len, out_off;
    bool hello;
    char dp_id[64];
    long long pid;
    int64_t sent_version, acked_version;
    double connected, last_seen;
    json_t *tunnels; /* [{name, port, peer, since}] as the data plane last reported */
    struct link *next;
};

struct waiter {
    uint64_t link_serial;
    json_int_t req_id;
};

/* One Nextcloud look-up in flight, shared by every data plane that asked. */
struct lookup {
    char app_id[EXAPP_ID_MAX + 1];
    struct waiter *waiters;
    size_t nwaiters;
    int result; /* set by the worker: 1 found, 0 not found, -1 error */
    char error[sizeof(((struct hp_err *)0)->msg)];
    struct publish *pub;
    struct lookup *next;      /* in pub->inflight */
    struct lookup *done_next; /* in pub->done */
};

/* One user-info call in flight, shared by the requests that carry the same session cookie,
 * or, without one, the same Authorization header (those answers are never cached). */
struct authreq {
    char *key; /* "c" + cookie, "a" + Authorization; NULL: shared with nothing */
    char *cookie; /* the cache key when non-empty */
    char app_id[EXAPP_ID_MAX + 1];
    struct msg_auth req; /* the first request's headers */
    struct waiter *waiters;
    size_t nwaiters;
    int result; /* enum nc_user_result */
    char user_id[256];
    int level;
    char error[sizeof(((struct hp_err *)0)->msg)];
    struct publish *pub;
    struct authreq *next;      /* in pub->auth_inflight */
    struct authreq *done_next; /* in pub->auth_done */
};

/* The session cache: cookie -> the user Nextcloud named, for HP_SESSION_LIFETIME. */
#define SESSION_BUCKETS 4096
#define SESSION_MAX 100000

struct session {
    char *cookie;
    char user_id[256];
    int level;
    double fetched;
    struct session *next;
};

/* Failures of one client IP within the window, over every data plane (newest last). */
#define FAIL_BUCKETS 4096
#define FAIL_MAX_IPS 100000

struct failures {
    char ip[IP_STR_MAX];
    double *ts;
    size_t n;
    struct failures *next;
};

struct forget {
    char ip[IP_STR_MAX];
    struct forget *next;
};

struct missing {
    char app_id[EXAPP_ID_MAX + 1];
    double until;
    struct missing *next;
};

struct publish {
    struct ctl *ctl;
    pthread_t thr;
    int listen_fd, wake_fd;
    char *path;
    /* Owned by the thread. */
    struct link *links;
    size_t nlinks;
    uint64_t serials;
    json_t *table; /* app_id -> published exapp object */
    int64_t version;
    double last_ping;
    struct lookup *inflight;
    struct authreq *auth_inflight;
    struct session *sessions[SESSION_BUCKETS];
    size_t nsessions;
    struct failures *fails[FAIL_BUCKETS];
    size_t nfails;
    json_t *bans; /* [{ip, expires_at}] as last pushed */
    struct log_rate bad_log;
    /* Set at start, then read-only. */
    struct pool *user_pool, *app_pool;
    /* Shared, under mtx. */
    uint64_t bad_messages;
    pthread_mutex_t mtx;
    int refs; /* the publisher itself and each running look-up worker */
    bool changed, stop;
    bool stopped; /* the thread has ended: workers clean up after themselves */
    struct lookup *done;
    struct authreq *auth_done;
    struct missing *missing;
    bool bans_changed;
    struct forget *forget;
    json_t *dp_info;
    json_t *engines; /* [{port, address, tcp_port, api_min, api_max}], as last given */
    bool engines_changed;
};

/* publish.c */
double pub_now_mono(void);
double pub_now_wall(void);
/* Wakes the thread. Any thread. */
void pub_wake(struct publish *pub);
/* Queues <msg> (stolen) on <l>: 0, or -1 (logged) when it exceeds the frame limit. */
int pub_send(struct link *l, json_t *msg);
/* The live link with <serial>, or NULL once it closed. */
struct link *pub_link(struct publish *pub, uint64_t serial);
/* Adds a data plane's request to the waiters of a look-up. */
void pub_waiter_add(struct waiter **v, size_t *n, uint64_t serial, json_int_t id);
/* Queues <fn>(<arg>) on <pool>, holding a reference to <pub> until the job is done; -1 when
 * the pool is full (the caller answers "unavailable"). */
int pub_worker_start(struct publish *pub, struct pool *pool, pool_fn *fn, void *arg);
/* Answers request <id> of the link <serial> with request_error (the data plane fails it with
 * 503). */
void pub_request_error(struct publish *pub, uint64_t serial, json_int_t id, const char *why);
/* A message the data plane of <l> should not have sent: answered with request_error when it
 * carries a request id, counted, logged (rate-limited) and otherwise ignored. */
void pub_bad_message(struct publish *pub, struct link *l, const json_t *msg, const char *why);
/* A worker is done after publish_stop(): drops its reference, the last one frees <pub>.
 * Called with pub->mtx held; returns with it released. */
void pub_worker_release(struct publish *pub);

/* publish_lookup.c: look-ups of unknown app ids, one per app id (singleflight). */
void lookup_on_request(struct publish *pub, struct link *l, json_t *msg);
/* Replies to the waiters of finished look-ups; runs after the table was published. */
void lookup_finish(struct publish *pub, struct lookup *done);
/* At stop, under pub->mtx: frees finished look-ups and the negative cache. */
void lookup_clear(struct publish *pub);

/* publish_auth.c: user look-ups, one per session cookie, and the session cache. */
void auth_on_request(struct publish *pub, struct link *l, json_t *msg);
void auth_finish(struct publish *pub, struct authreq *done);
/* At stop, under pub->mtx: frees finished look-ups and the session cache. */
void auth_clear(struct publish *pub);

/* publish_bans.c: failures counted per client IP, bans pushed to every data plane. */
/* Reads the bans in force from the store and pushes them to every data plane. */
void bans_push(struct publish *pub);
void bans_send(struct publish *pub, struct link *l);
void bans_on_failure(struct publish *pub, const char *raw_ip);
/* Forgets the failures counted for each IP of <list>, and frees it. */
void bans_forget(struct publish *pub, struct forget *list);
/* Drops the failures older than the window. */
void bans_prune_failures(struct publish *pub, double now);
/* At stop: every failure counted and every pending forget. */
void bans_clear(struct publish *pub);

#endif
