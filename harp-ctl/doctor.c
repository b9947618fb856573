/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * `harp-ctl doctor`, the control plane's half: GET /api/v1/doctor runs every check the control
 * plane can make itself (state directory, Nextcloud and the shared key, data planes and their
 * tables, Docker engines, the FRP frontend, certificates) and answers them with their fixes
 * (doctor_rules.c decides). GET /doctor/canary, reached through a data plane as
 * /exapps/app_api/doctor/canary with the shared key, echoes what arrived, so that the CLI can
 * tell what a front proxy changed on the way.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "ca.h"
#include "doctor_rules.h"
#include "engines.h"
#include "nextcloud.h"
#include "xmalloc.h"

/* The longest delay a canary may ask for (a front proxy's read timeout, probed); as long as
 * wait_for_start may hold a connection. */
#define CANARY_MAX_DELAY_S 120
#define CANARY_MAX_NONCE 64
#define CANARY_NONCE_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"

static json_t *
check_state_dir(const struct ctl *ctl)
{
    struct stat d, f;
    char *db = xasprintf("%s/harp.db", ctl->cfg.state_dir);
    json_t *c;

    if (stat(ctl->cfg.state_dir, &d) == -1 || stat(db, &f) == -1) {
        c = doctor_check("state_dir", false, "the state directory or harp.db cannot be read",
                         "check HP_STATE_DIR and its owner");
    } else {
        c = doctor_state_dir(ctl->cfg.state_dir, d.st_mode, f.st_mode);
    }
    free(db);
    return c;
}

/* exapp-meta for an app harp holds (a refusal is then about the key), else for a name no
 * app has (Nextcloud then refuses whatever the key: its AppAPI answered). */
static json_t *
check_nextcloud(struct ctl *ctl)
{
    struct exapp *apps = NULL;
    struct nc_probe p;
    struct hp_err err;
    char app[EXAPP_ID_MAX + 1] = "harp-doctor-probe";
    size_t n = 0;
    bool known = false;

    if (store_exapp_list(ctl->store, &apps, &n, &err) == 0 && n > 0) {
        snprintf(app, sizeof(app), "%s", apps[0].app_id);
        known = true;
    }
    store_exapp_list_free(apps, n);
    nextcloud_probe(&ctl->cfg, app, &p);
    return doctor_nextcloud(ENV_LIVE(ctl->cfg.nc_instance_url), app, known, &p);
}

static json_t *
check_dataplanes(struct ctl *ctl)
{
    json_t *first = publish_dataplanes(ctl->pub), *last = NULL, *c;
    struct timespec ts = {0, 250 * 1000 * 1000};
    int i;

    /* A table published a moment ago is not stale yet: up to 3 s to take it. */
    for (i = 0; i < 12; i++) {
        json_decref(last);
        last = publish_dataplanes(ctl->pub);
        c = doctor_dataplanes(first, last);
        if (json_is_true(json_object_get(c, "ok")) || json_array_size(first) == 0) {
            break;
        }
        json_decref(c);
        c = NULL;
        nanosleep(&ts, NULL);
    }
    if (c == NULL) {
        c = doctor_dataplanes(first, last);
    }
    json_decref(first);
    json_decref(last);
    return c;
}

/* Something accepts TCP connections at HP_FRP_ADDRESS (a wildcard address is tried on the
 * loopback address of its family). */
static json_t *
check_frp(struct ctl *ctl)
{
    char host[256], detail[600];
    struct sockaddr_storage ss;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    struct timeval tv = {3, 0};
    unsigned port;
    socklen_t len;
    int fd, ok;

    if (env_parse_hostport(ctl->cfg.frp_address, host, sizeof(host), &port, NULL) == -1) {
        return doctor_check("frp", false, "HP_FRP_ADDRESS cannot be parsed",
                            "set HP_FRP_ADDRESS to HOST:PORT");
    }
    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, strcmp(host, "0.0.0.0") == 0 ? "127.0.0.1" : host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        len = sizeof(*a4);
    } else if (inet_pton(AF_INET6, strcmp(host, "::") == 0 ? "::1" : host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        len = sizeof(*a6);
    } else {
        snprintf(detail, sizeof(detail), "HP_FRP_ADDRESS=%s: not checked (a host name)",
                 ctl->cfg.frp_address);
        return doctor_check("frp", true, detail, NULL);
    }
    if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
        return doctor_check("frp", false, "no socket", "see the control plane's log");
    }
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    ok = connect(fd, (struct sockaddr *)&ss, len) == 0;
    close(fd);
    if (!ok) {
        snprintf(detail, sizeof(detail), "nothing accepts connections at HP_FRP_ADDRESS=%s",
                 ctl->cfg.frp_address);
        return doctor_check("frp", false, detail,
                            "run one data plane per host with --frp (the container and "
                            "harp-dp@1.service do), with the same HP_FRP_ADDRESS");
    }
    snprintf(detail, sizeof(detail), "the FRP frontend listens at %s (%s)", ctl->cfg.frp_address,
             ctl->cfg.frp_disable_tls ? "TLS disabled" : "TLS with client certificates");
    return doctor_check("frp", true, detail, NULL);
}

/* The HTTPS frontend's $HP_CERTS_DIR/cert.pem, when there is one. */
static void
check_https_cert(struct ctl *ctl, json_t *checks, int64_t now)
{
    char *path = xasprintf("%s/cert.pem", ctl->cfg.certs_dir);
    FILE *f = fopen(path, "re");
    X509 *x = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    struct tm tm;

    if (f != NULL) {
        fclose(f);
    }
    if (x != NULL && ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1) {
        json_array_append_new(checks, doctor_cert("https (cert.pem)", (int64_t)timegm(&tm), now));
    } else if (f != NULL) {
        json_array_append_new(checks, doctor_check("certificate https (cert.pem)", false,
                                                   "cert.pem holds no readable certificate",
                                                   "put the chain and key in cert.pem (PEM)"));
    }
    X509_free(x);
    free(path);
}

static void
check_certs(struct ctl *ctl, json_t *checks)
{
    struct cert_rec recs[3];
    int64_t now = (int64_t)time(NULL);
    const json_t *c;
    json_t *desc;
    size_t i;

    if (!ctl->cfg.frp_disable_tls && store_cert_get_all(ctl->store, recs) == 1) {
        desc = ca_describe(recs);
        store_cert_free(recs);
        json_array_foreach(desc, i, c)
        {
            char what[80];

            snprintf(what, sizeof(what), "frp %s",
                     json_string_value(json_object_get(c, "name")) != NULL
                         ? json_string_value(json_object_get(c, "name"))
                         : "?");
            json_array_append_new(
                checks,
                doctor_cert(what, json_integer_value(json_object_get(c, "not_after")), now));
        }
        json_decref(desc);
    }
    check_https_cert(ctl, checks, now);
}

static void
on_doctor(struct api_req *req, struct api_resp *resp)
{
    struct ctl *ctl = req->ctl;
    json_t *checks = json_array(), *engines, *e, *c;
    bool ok = true;
    size_t i;

    json_array_append_new(checks, check_state_dir(ctl));
    json_array_append_new(checks, check_nextcloud(ctl));
    json_array_append_new(checks, check_dataplanes(ctl));
    engines = engines_report(ctl, NULL);
    json_array_foreach(engines, i, e)
    {
        json_array_append_new(checks, doctor_engine(e));
    }
    json_decref(engines);
    json_array_append_new(checks, check_frp(ctl));
    check_certs(ctl, checks);
    json_array_foreach(checks, i, c)
    {
        ok = ok && json_is_true(json_object_get(c, "ok"));
    }
    api_json(resp, 200, json_pack("{s:b,s:o}", "ok", ok, "checks", checks));
}

/* What arrived, for the CLI's probes through a front proxy: the nonce it sent, the path, the
 * Upgrade and X-Forwarded-For headers as the data plane passed them on, and the client's
 * address as the data plane decided it (HP_TRUSTED_PROXY_IPS). ?delay=S answers after S
 * seconds (at most CANARY_MAX_DELAY_S), to find a front proxy's read timeout. */
static void
on_canary(struct api_req *req, struct api_resp *resp)
{
    const char *nonce = api_query(req, "nonce"), *delay = api_query(req, "delay");
    const char *up = api_header(req, "Upgrade"), *xff = api_header(req, "X-Forwarded-For");
    const char *via = api_header(req, API_VIA_DATAPLANE);
    unsigned s = 0;
    size_t n = nonce != NULL ? strspn(nonce, CANARY_NONCE_CHARS) : 0;
    size_t d = delay != NULL ? strspn(delay, "0123456789") : 0;

    if (nonce == NULL || n == 0 || n > CANARY_MAX_NONCE || nonce[n] != '\0') {
        api_error(resp, 400, "nonce: required, 1 to 64 letters, digits, '-' or '_'");
        return;
    }
    if (delay != NULL) {
        if (d == 0 || d > 3 || delay[d] != '\0' ||
            (s = (unsigned)strtoul(delay, NULL, 10)) > CANARY_MAX_DELAY_S) {
            api_error(resp, 400, "delay: whole seconds, from 0 to 120");
            return;
        }
        /* In steps, so that a stop does not wait for it. */
        log_debug("doctor: a canary waits %u s before it answers", s);
        for (s *= 10; s > 0; s--) {
            if (__atomic_load_n(&req->ctl->stopping, __ATOMIC_RELAXED)) {
                api_text(resp, 503, "harp-ctl is stopping");
                return;
            }
            usleep(100000);
        }
    }
    api_json(resp, 200,
             json_pack("{s:s,s:s,s:o,s:o,s:o}", "harp_canary", nonce, "path", req->path, "upgrade",
                       up != NULL ? json_string(up) : json_null(), "client",
                       via != NULL ? json_string(via) : json_null(), "x_forwarded_for",
                       xff != NULL ? json_string(xff) : json_null()));
}

const struct api_route api_doctor_routes[] = {
    {"GET", "/api/v1/doctor", false, false, on_doctor},
    {"GET", "/doctor/canary", false, false, on_canary},
    {NULL, NULL, false, false, NULL},
};
