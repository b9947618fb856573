/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The process-wide state of harp-ctl serve. */
#ifndef HARP_CTL_CTL_H
#define HARP_CTL_CTL_H

#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "env.h"
#include "publish.h"
#include "store.h"

struct engines;
struct ca_renew;
struct evp_pkey_st;

struct ctl {
    struct hp_config cfg;
    struct store *store;
    struct publish *pub;
    struct engines *engines;
    struct ca_renew *renew;        /* the certificates' renewal thread */
    struct evp_pkey_st *audit_key; /* Ed25519: signs table versions (audit.h) */
    time_t started;
    /* Set once serve stops: long waits (Kubernetes) end so the API can stop. */
    bool stopping; /* __atomic_ access */
    /* Reloads (reload.c): how the settings are read, and what a reload replaced. Under
     * reload_mtx; the live settings in <cfg> change by atomic stores (ENV_LIVE). */
    pthread_mutex_t reload_mtx;
    env_lookup_cb lookup;
    void *lookup_arg;
    struct env_file **file; /* the settings file the lookup consults (NULL: none) */
    void **retired;         /* replaced strings, freed at exit: readers may still hold them */
    size_t nretired;
};

#endif
