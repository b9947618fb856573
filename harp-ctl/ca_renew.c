/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The certificates' lifecycle. A rotation makes a new CA beside the old one: until the overlap
 * ends (HP_CERT_OVERLAP_DAYS, the old CA's expiry, `certs finish`, or every known client moved
 * to the new chain) server.crt carries a certificate of the new CA signed by the old one, so
 * clients holding either ca.crt verify the server, and the data plane trusts client
 * certificates of both (ca-previous.crt). Leaves are renewed under the same CA at two thirds
 * of their life, the CA (by a rotation) at two thirds of its life. Sessions are never cut,
 * except by `certs rotate --now` (revoked.crt). Each change is delivered to the containers
 * install_certificates wrote into (api_docker_certs.c) by the renewal thread.
 *
 * State (schema 0010, cert_state): previous_ca, cross, overlap_until, pending_clients (tunnel
 * ports still on the old chain), revoked_ca, last_renewal, last_renewal_kind.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_docker_certs.h"
#include "ca.h"
#include "ca_renew.h"
#include "log.h"
#include "publish.h"
#include "xmalloc.h"

struct ca_renew {
    struct ctl *ctl;
    pthread_t thr;
    pthread_mutex_t mtx;
    pthread_cond_t cond;
    bool stop, kick;
};

/* Rotations, renewals and the overlap's end, one at a time (API threads and the renewal
 * thread). */
static pthread_mutex_t lifecycle = PTHREAD_MUTEX_INITIALIZER;

static int64_t
state_int(struct ctl *ctl, const char *name)
{
    char *v = store_cert_state_get(ctl->store, name);
    int64_t n = v != NULL ? strtoll(v, NULL, 10) : 0;

    free(v);
    return n;
}

static void
state_set_int(struct ctl *ctl, const char *name, int64_t n)
{
    char b[32];

    snprintf(b, sizeof(b), "%lld", (long long)n);
    store_cert_state_set(ctl->store, name, b);
}

static void
renewed(struct ctl *ctl, const char *kind)
{
    state_set_int(ctl, "last_renewal", (int64_t)time(NULL));
    store_cert_state_set(ctl->store, "last_renewal_kind", kind);
}

static json_t *tunnels_since(struct ctl *ctl, bool old, const char *moved_to, int64_t since);

/* The ports of the tunnels up, those on the old chain when <old_only>: a JSON array. */
static json_t *
tunnel_ports(struct ctl *ctl, bool old_only)
{
    return tunnels_since(ctl, old_only, NULL, 0);
}

/* The ports of the tunnels up: those on the old chain when <old>; else, with <moved_to>,
 * those whose client certificate is signed by that key (canon_pubkey_sha256 of the current
 * CA; a data plane that does not say which key signed it: those up on the new chain after
 * <since>, whole seconds); else all. */
static json_t *
tunnels_since(struct ctl *ctl, bool old, const char *moved_to, int64_t since)
{
    json_t *dps = ctl->pub != NULL ? publish_dataplanes(ctl->pub) : json_array(), *d, *t;
    json_t *names = json_array();
    const char *ik;
    size_t i, k;
    bool oc, take;

    json_array_foreach(dps, i, d)
    {
        json_array_foreach(json_object_get(d, "tunnels"), k, t)
        {
            oc = json_is_true(json_object_get(t, "old_chain"));
            ik = json_string_value(json_object_get(t, "issuer_key"));
            if (old) {
                take = oc;
            } else if (moved_to == NULL) {
                take = true;
            } else if (ik != NULL && ik[0] != '\0') {
                take = moved_to[0] != '\0' && strcmp(ik, moved_to) == 0;
            } else {
                take = !oc && json_integer_value(json_object_get(t, "since")) > since;
            }
            if (take) {
                json_array_append(names, json_object_get(t, "port"));
            }
        }
    }
    json_decref(dps);
    return names;
}

/* The clients a rotation waits for: the tunnels up and the engines behind FRP tunnels. */
static json_t *
known_clients(struct ctl *ctl)
{
    json_t *ports = tunnel_ports(ctl, false);
    struct engine_rec *list = NULL;
    struct hp_err err;
    size_t i, n = 0;

    if (store_engine_list(ctl->store, &list, &n, &err) == 0) {
        for (i = 0; i < n; i++) {
            if (list[i].address[0] == '\0') {
                json_array_append_new(ports, json_integer(list[i].port));
            }
        }
        free(list);
    }
    return ports;
}

static int
rotate_locked(struct ctl *ctl, bool now, struct hp_err *err)
{
    struct cert_rec old[3], recs[3];
    int64_t t = (int64_t)time(NULL), until, old_end;
    char *cross = NULL, *pending;
    json_t *names;
    bool overlap;
    int have, rc;

    if (ctl->cfg.frp_disable_tls) {
        err_set(err, "FRP TLS is disabled (HP_FRP_DISABLE_TLS=true)");
        return -1;
    }
    have = store_cert_get_all(ctl->store, old);
    if (ca_generate(ca_lifetime(ctl), recs, err) == -1) {
        if (have == 1) {
            store_cert_free(old);
        }
        return -1;
    }
    old_end = have == 1 ? ca_not_after(old[0].cert_pem) : 0;
    until = t + (int64_t)(ctl->cfg.cert_overlap_days * 86400);
    if (until > old_end) {
        until = old_end;
    }
    overlap = !now && have == 1 && old[0].key_pem[0] != '\0' && until > t &&
              (cross = ca_cross_sign(&old[0], recs[0].cert_pem, until)) != NULL;
    store_cert_state_del(ctl->store, "cross");
    store_cert_state_del(ctl->store, "previous_ca");
    store_cert_state_del(ctl->store, "overlap_until");
    store_cert_state_del(ctl->store, "overlap_started");
    store_cert_state_del(ctl->store, "pending_clients");
    if (overlap) {
        store_cert_state_set(ctl->store, "previous_ca", old[0].cert_pem);
        store_cert_state_set(ctl->store, "cross", cross);
        state_set_int(ctl, "overlap_until", until);
        state_set_int(ctl, "overlap_started", t);
        names = known_clients(ctl);
        pending = json_dumps(names, JSON_COMPACT);
        store_cert_state_set(ctl->store, "pending_clients", pending);
        free(pending);
        json_decref(names);
    } else if (have == 1) {
        /* No overlap: the data plane closes the sessions the old CA's certificates opened. */
        store_cert_state_set(ctl->store, "revoked_ca", old[0].cert_pem);
    }
    rc = store_cert_put_all(ctl->store, recs, err);
    if (rc == 0) {
        rc = ca_write(ctl, recs, err);
    }
    if (rc == 0) {
        renewed(ctl, "ca");
        if (overlap) {
            log_notice("ca: new FRP CA; the previous one is trusted beside it until %lld",
                       (long long)until);
        } else {
            log_notice("ca: FRP certificates rotated with no overlap");
        }
    }
    free(cross);
    store_cert_free(recs);
    if (have == 1) {
        store_cert_free(old);
    }
    return rc;
}

int
ca_rotate(struct ctl *ctl, bool now, struct hp_err *err)
{
    int rc;

    pthread_mutex_lock(&lifecycle);
    rc = rotate_locked(ctl, now, err);
    pthread_mutex_unlock(&lifecycle);
    return rc;
}

static int
renew_leaves_locked(struct ctl *ctl, struct hp_err *err)
{
    struct cert_rec cur[3], recs[3];
    int rc;

    if (store_cert_get_all(ctl->store, cur) != 1) {
        err_set(err, "no certificates stored");
        return -1;
    }
    rc = ca_issue_leaves(ca_lifetime(ctl), &cur[0], recs, err);
    store_cert_free(cur);
    if (rc == -1) {
        return -1;
    }
    rc = store_cert_put_all(ctl->store, recs, err);
    if (rc == 0) {
        rc = ca_write(ctl, recs, err);
    }
    if (rc == 0) {
        renewed(ctl, "leaves");
        log_notice("ca: FRP server and client certificates renewed");
    }
    store_cert_free(recs);
    return rc;
}

static int
finish_locked(struct ctl *ctl, const char *why, struct hp_err *err)
{
    struct cert_rec recs[3];
    char *prev = store_cert_state_get(ctl->store, "previous_ca");
    int rc;

    if (prev == NULL) {
        err_set(err, "no rotation in progress");
        return -1;
    }
    free(prev);
    if (store_cert_get_all(ctl->store, recs) != 1) {
        err_set(err, "no certificates stored");
        return -1;
    }
    store_cert_state_del(ctl->store, "cross");
    store_cert_state_del(ctl->store, "previous_ca");
    store_cert_state_del(ctl->store, "overlap_until");
    store_cert_state_del(ctl->store, "overlap_started");
    store_cert_state_del(ctl->store, "pending_clients");
    rc = ca_write(ctl, recs, err);
    store_cert_free(recs);
    if (rc == 0) {
        log_notice("ca: the previous FRP CA is no longer trusted (%s)", why);
    }
    return rc;
}

int
ca_finish(struct ctl *ctl, const char *why, struct hp_err *err)
{
    int rc;

    pthread_mutex_lock(&lifecycle);
    rc = finish_locked(ctl, why, err);
    pthread_mutex_unlock(&lifecycle);
    return rc;
}

/* The known clients left: those before minus the tunnels that came up on the new chain since
 * the rotation, plus any tunnel up on the old chain (by port). */
static size_t
pending_update(struct ctl *ctl)
{
    char *v = store_cert_state_get(ctl->store, "pending_clients"), *out;
    json_t *pending = v != NULL ? json_loads(v, 0, NULL) : NULL;
    char key[CANON_HASH_HEX] = "";
    struct cert_rec recs[3];
    json_t *up, *old, *left = json_array(), *n, *m;
    size_t i, k, count;
    bool moved, dup;

    free(v);
    if (store_cert_get_all(ctl->store, recs) == 1) {
        ca_key_sha256(recs[0].cert_pem, key);
        store_cert_free(recs);
    }
    up = tunnels_since(ctl, false, key, state_int(ctl, "overlap_started"));
    old = tunnel_ports(ctl, true);
    json_array_extend(pending != NULL ? pending : (pending = json_array()), old);
    json_array_foreach(pending, i, n)
    {
        moved = false;
        json_array_foreach(up, k, m)
        {
            moved = moved || json_equal(n, m);
        }
        json_array_foreach(old, k, m)
        {
            moved = moved && !json_equal(n, m);
        }
        dup = false;
        json_array_foreach(left, k, m)
        {
            dup = dup || json_equal(n, m);
        }
        if (!moved && !dup) {
            json_array_append(left, n);
        }
    }
    count = json_array_size(left);
    out = json_dumps(left, JSON_COMPACT);
    store_cert_state_set(ctl->store, "pending_clients", out);
    free(out);
    json_decref(pending);
    json_decref(up);
    json_decref(old);
    json_decref(left);
    return count;
}

/* Two thirds of the life of <pem> passed at <t>. */
static bool
due(const char *pem, int64_t t)
{
    int64_t nb = ca_not_before(pem), na = ca_not_after(pem);

    return na > nb && (t - nb) * 3 >= (na - nb) * 2;
}

void
ca_renew_check(struct ctl *ctl)
{
    struct cert_rec recs[3];
    struct hp_err err;
    int64_t t = (int64_t)time(NULL), until;
    char *prev;
    bool has_key;

    if (ctl->cfg.frp_disable_tls) {
        return;
    }
    pthread_mutex_lock(&lifecycle);
    prev = store_cert_state_get(ctl->store, "previous_ca");
    if (prev != NULL) {
        until = state_int(ctl, "overlap_until");
        if (t >= until) {
            if (finish_locked(ctl, "the overlap ended", &err) == -1) {
                log_warnx("ca: %s", err.msg);
            }
        } else if (pending_update(ctl) == 0 && api_docker_certs_pending(ctl) == 0) {
            if (finish_locked(ctl, "every known client moved to the new CA", &err) == -1) {
                log_warnx("ca: %s", err.msg);
            }
        }
        free(prev);
    }
    if (store_cert_get_all(ctl->store, recs) == 1) {
        has_key = recs[0].key_pem[0] != '\0';
        if (has_key && due(recs[0].cert_pem, t)) {
            if (rotate_locked(ctl, false, &err) == -1) {
                log_warnx("ca: renewing the CA: %s", err.msg);
            }
        } else if (has_key && (due(recs[1].cert_pem, t) || due(recs[2].cert_pem, t))) {
            if (renew_leaves_locked(ctl, &err) == -1) {
                log_warnx("ca: renewing the certificates: %s", err.msg);
            }
        }
        store_cert_free(recs);
    }
    pthread_mutex_unlock(&lifecycle);
}

/* --- status ------------------------------------------------------------------------------- */

json_t *
ca_lifecycle(struct ctl *ctl)
{
    struct cert_rec recs[3];
    char *prev = store_cert_state_get(ctl->store, "previous_ca");
    char *kind = store_cert_state_get(ctl->store, "last_renewal_kind");
    char *pend = store_cert_state_get(ctl->store, "pending_clients"), *fp;
    json_t *o = json_object(), *next = json_object(), *p;
    static const char *const names[3] = {"ca", "server", "client"};
    int64_t nb, na;
    int i;

    json_object_set_new(o, "lifetime_seconds", json_integer(ca_lifetime(ctl)));
    json_object_set_new(o, "overlap_days", json_real(ctl->cfg.cert_overlap_days));
    json_object_set_new(o, "last_renewal", json_integer(state_int(ctl, "last_renewal")));
    json_object_set_new(o, "last_renewal_kind", json_string(kind != NULL ? kind : ""));
    if (store_cert_get_all(ctl->store, recs) == 1) {
        for (i = 0; i < 3; i++) {
            nb = ca_not_before(recs[i].cert_pem);
            na = ca_not_after(recs[i].cert_pem);
            json_object_set_new(next, names[i], json_integer(nb + (na - nb) * 2 / 3));
        }
        json_object_set_new(o, "automatic", json_boolean(recs[0].key_pem[0] != '\0'));
        store_cert_free(recs);
    } else {
        json_object_set_new(o, "automatic", json_false());
    }
    json_object_set_new(o, "next_renewal", next);
    if (prev != NULL) {
        fp = ca_fingerprint(prev);
        p = json_loads(pend != NULL ? pend : "[]", 0, NULL);
        json_object_set_new(o, "overlap",
                            json_pack("{s:I,s:s,s:I,s:o}", "until",
                                      (json_int_t)state_int(ctl, "overlap_until"),
                                      "previous_ca_sha256", fp, "previous_ca_not_after",
                                      (json_int_t)ca_not_after(prev), "pending_clients",
                                      p != NULL ? p : json_array()));
        free(fp);
    } else {
        json_object_set_new(o, "overlap", json_null());
    }
    json_object_set_new(o, "old_chain_tunnels", tunnel_ports(ctl, true));
    json_object_set_new(o, "deliveries", store_cert_install_list(ctl->store));
    free(prev);
    free(kind);
    free(pend);
    return o;
}

/* --- the renewal thread ------------------------------------------------------------------- */

/* Seconds between checks: a thirtieth of the lifetime, 1 s to 1 min. */
static long
interval(const struct ctl *ctl)
{
    long s = ca_lifetime(ctl) / 30;

    return s < 1 ? 1 : s > 60 ? 60 : s;
}

static void *
renewer(void *arg)
{
    struct ca_renew *r = arg;
    struct timespec ts;

    pthread_mutex_lock(&r->mtx);
    /* The first check waits for the first ca_renew_kick(): the publisher exists by then. */
    while (!r->stop && !r->kick) {
        pthread_cond_wait(&r->cond, &r->mtx);
    }
    while (!r->stop) {
        r->kick = false;
        pthread_mutex_unlock(&r->mtx);
        ca_renew_check(r->ctl);
        api_docker_certs_deliver(r->ctl);
        pthread_mutex_lock(&r->mtx);
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += interval(r->ctl);
        while (!r->stop && !r->kick) {
            if (pthread_cond_timedwait(&r->cond, &r->mtx, &ts) != 0) {
                break;
            }
        }
    }
    pthread_mutex_unlock(&r->mtx);
    return NULL;
}

struct ca_renew *
ca_renew_start(struct ctl *ctl)
{
    struct ca_renew *r = xcalloc(1, sizeof(*r));

    r->ctl = ctl;
    pthread_mutex_init(&r->mtx, NULL);
    pthread_cond_init(&r->cond, NULL);
    if (pthread_create(&r->thr, NULL, renewer, r) != 0) {
        log_warnx("ca: cannot start the renewal thread");
        free(r);
        return NULL;
    }
    return r;
}

void
ca_renew_kick(struct ca_renew *r)
{
    if (r == NULL) {
        return;
    }
    pthread_mutex_lock(&r->mtx);
    r->kick = true;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->mtx);
}

void
ca_renew_stop(struct ca_renew *r)
{
    if (r == NULL) {
        return;
    }
    pthread_mutex_lock(&r->mtx);
    r->stop = true;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->mtx);
    pthread_join(r->thr, NULL);
}

void
ca_renew_free(struct ca_renew *r)
{
    if (r == NULL) {
        return;
    }
    pthread_mutex_destroy(&r->mtx);
    pthread_cond_destroy(&r->cond);
    free(r);
}
