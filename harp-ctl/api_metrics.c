/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * GET /metrics: the whole deployment in Prometheus text format 0.0.4, from the counters the
 * data planes send every second (counters.h), the data planes' links and tables (publish.h),
 * the published Docker engines, the certificates and harp-ctl's own counters. On the control
 * address it needs the shared key, or a direct client on a loopback address; HP_METRICS_ADDRESS
 * serves it alone, without the key (metrics_server_start).
 */
#include "config.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "api.h"
#include "ca.h"
#include "counters.h"
#include "log.h"
#include "secret.h"
#include "store.h"
#include "xmalloc.h"

#define CERT_FILE_MAX (1024 * 1024)

struct text {
    char *p;
    size_t len, cap;
};

static void __attribute__((format(printf, 2, 3))) put(struct text *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        t->cap = t->cap * 2 + (size_t)(n > 0 ? n : 0) + 1;
        t->p = xrealloc(t->p, t->cap);
    }
}

/* <s> as a label value (exposition format: \\, \" and \n escaped), in a static buffer of one
 * of <slot> 0..3. */
static const char *
lv(const char *s, int slot)
{
    static __thread char buf[4][600];
    char *o = buf[slot];
    size_t n = 0;

    for (; *s != '\0' && n + 3 < sizeof(buf[0]); s++) {
        if (*s == '\\' || *s == '"') {
            o[n++] = '\\';
            o[n++] = *s;
        } else if (*s == '\n') {
            o[n++] = '\\';
            o[n++] = 'n';
        } else {
            o[n++] = *s;
        }
    }
    o[n] = '\0';
    return o;
}

static void
help(struct text *t, const char *name, const char *type, const char *text)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

/* The families rendered from each data plane's counters. Each family's samples stay together,
 * as the format wants: each goes to its own text, joined after the pass. */
enum family {
    F_UP,
    F_REQUESTS,
    F_DURATION,
    F_CONNECT_ERRORS,
    F_REFUSALS,
    F_BYTES_IN,
    F_BYTES_OUT,
    F_OPEN,
    F_SESSION_HITS,
    F_SESSION_MISSES,
    F_NFAMILIES
};

/* One pass over the counters (one lock) writes every family's samples to its own text. */
struct render {
    struct text fam[F_NFAMILIES];
    struct text nc_calls, nc_duration;
};

/* <labels> end in ',' (the le label follows them). */
static void
histogram(struct text *t, const char *name, const char *labels, const int64_t *b, double sum)
{
    int64_t cum = 0;
    int n = (int)strlen(labels) - 1;
    size_t i;

    for (i = 0; i < METRICS_NBUCKETS; i++) {
        cum += b[i];
        if (i < METRICS_NBUCKETS - 1) {
            put(t, "%s_bucket{%sle=\"%g\"} %lld\n", name, labels, metrics_bucket_le[i],
                (long long)cum);
        } else {
            put(t, "%s_bucket{%sle=\"+Inf\"} %lld\n", name, labels, (long long)cum);
        }
    }
    put(t, "%s_sum{%.*s} %.6f\n", name, n, labels, sum);
    put(t, "%s_count{%.*s} %lld\n", name, n, labels, (long long)cum);
}

static void
render_dp_family(struct text *t, enum family f, const char *dp, bool up,
                 const struct msg_metrics *m)
{
    char labels[1400];
    size_t i;
    int l, c;

    switch (f) {
    case F_UP:
        put(t, "harp_dataplane_up{dp=\"%s\"} %d\n", dp, up ? 1 : 0);
        break;
    case F_REQUESTS:
        for (i = 0; i < m->napps; i++) {
            const char *app = lv(m->apps[i].app_id, 1);

            for (l = 0; l < METRICS_NLEVELS; l++) {
                for (c = 0; c < METRICS_NCLASSES; c++) {
                    if (m->apps[i].requests[l][c] != 0) {
                        put(t,
                            "harp_requests_total{dp=\"%s\",app=\"%s\",level=\"%s\","
                            "class=\"%s\"} %lld\n",
                            dp, app, metrics_level_names[l], metrics_class_names[c],
                            (long long)m->apps[i].requests[l][c]);
                    }
                }
            }
        }
        break;
    case F_DURATION:
        for (i = 0; i < m->napps; i++) {
            snprintf(labels, sizeof(labels), "dp=\"%s\",app=\"%s\",", dp, lv(m->apps[i].app_id, 1));
            histogram(t, "harp_request_duration_seconds", labels, m->apps[i].buckets,
                      m->apps[i].duration_sum);
        }
        break;
    case F_CONNECT_ERRORS:
        for (i = 0; i < m->napps; i++) {
            if (m->apps[i].connect_errors != 0) {
                put(t, "harp_upstream_connect_errors_total{dp=\"%s\",app=\"%s\"} %lld\n", dp,
                    lv(m->apps[i].app_id, 1), (long long)m->apps[i].connect_errors);
            }
        }
        break;
    case F_REFUSALS:
        for (l = REFUSAL_NONE + 1; l < REFUSAL_MAX; l++) {
            put(t, "harp_refusals_total{dp=\"%s\",reason=\"%s\"} %lld\n", dp,
                refusal_name((enum refusal_reason)l), (long long)m->refusals[l]);
        }
        break;
    case F_BYTES_IN:
        put(t, "harp_client_received_bytes_total{dp=\"%s\"} %lld\n", dp, (long long)m->bytes_in);
        break;
    case F_BYTES_OUT:
        put(t, "harp_client_sent_bytes_total{dp=\"%s\"} %lld\n", dp, (long long)m->bytes_out);
        break;
    case F_OPEN:
        put(t, "harp_open_connections{dp=\"%s\",kind=\"client\"} %lld\n", dp,
            (long long)m->client_conns);
        put(t, "harp_open_connections{dp=\"%s\",kind=\"upstream\"} %lld\n", dp,
            (long long)m->upstream_conns);
        put(t, "harp_open_connections{dp=\"%s\",kind=\"websocket\"} %lld\n", dp,
            (long long)m->websocket_conns);
        break;
    case F_SESSION_HITS:
        put(t, "harp_session_cache_hits_total{dp=\"%s\"} %lld\n", dp, (long long)m->session_hits);
        break;
    case F_SESSION_MISSES:
        put(t, "harp_session_cache_misses_total{dp=\"%s\"} %lld\n", dp,
            (long long)m->session_misses);
        break;
    case F_NFAMILIES:
        break;
    }
}

static void
render_dp(void *ctx, const char *dp_id, bool up, const struct msg_metrics *m)
{
    struct render *r = ctx;
    const char *dp = lv(dp_id, 0);
    int f;

    for (f = 0; f < F_NFAMILIES; f++) {
        render_dp_family(&r->fam[f], (enum family)f, dp, up, m);
    }
}

static const char *const call_names[NC_NCALLS] = {"user_info", "exapp_meta"};
static const char *const outcome_names[NC_NOUTCOMES] = {"ok", "anonymous", "not_found", "error"};

static void
render_nc(void *ctx, enum nc_call call, const uint64_t outcomes[NC_NOUTCOMES],
          const uint64_t buckets[METRICS_NBUCKETS], double sum)
{
    struct render *r = ctx;
    char labels[64];
    int64_t b[METRICS_NBUCKETS];
    int o;

    for (o = 0; o < NC_NOUTCOMES; o++) {
        if ((call == NC_CALL_USER_INFO && o != NC_OUT_NOT_FOUND) ||
            (call == NC_CALL_EXAPP_META && o != NC_OUT_ANONYMOUS)) {
            put(&r->nc_calls, "harp_nextcloud_calls_total{call=\"%s\",outcome=\"%s\"} %llu\n",
                call_names[call], outcome_names[o], (unsigned long long)outcomes[o]);
        }
    }
    for (o = 0; o < METRICS_NBUCKETS; o++) {
        b[o] = (int64_t)buckets[o];
    }
    snprintf(labels, sizeof(labels), "call=\"%s\",", call_names[call]);
    histogram(&r->nc_duration, "harp_nextcloud_call_duration_seconds", labels, b, sum);
}

/* Appends <part> to <t> and frees it. */
static void
splice(struct text *t, struct text *part)
{
    if (part->len > 0) {
        put(t, "%.*s", (int)part->len, part->p);
    }
    free(part->p);
}

/* The not-after (unix time) of the first certificate in file <path>; -1 without one. */
static int64_t
file_not_after(const char *path)
{
    struct stat sb;
    char *pem;
    FILE *f;
    size_t n;
    int64_t t = -1;

    if (stat(path, &sb) == -1 || sb.st_size <= 0 || sb.st_size > CERT_FILE_MAX ||
        (f = fopen(path, "re")) == NULL) {
        return -1;
    }
    pem = xmalloc((size_t)sb.st_size + 1);
    n = fread(pem, 1, (size_t)sb.st_size, f);
    pem[n] = '\0';
    fclose(f);
    t = ca_not_after(pem);
    free(pem);
    return t;
}

static void
render_certs(struct ctl *ctl, struct text *t)
{
    int64_t now = (int64_t)time(NULL), na;
    struct cert_rec recs[3];
    const json_t *c;
    json_t *desc;
    char *path;
    size_t i;

    help(t, "harp_certificate_expiry_seconds", "gauge",
         "Seconds until the certificate expires (negative: expired).");
    if (!ctl->cfg.frp_disable_tls && store_cert_get_all(ctl->store, recs) == 1) {
        desc = ca_describe(recs);
        store_cert_free(recs);
        json_array_foreach(desc, i, c)
        {
            const char *name = json_string_value(json_object_get(c, "name"));

            put(t, "harp_certificate_expiry_seconds{cert=\"frp_%s\"} %lld\n",
                lv(name != NULL ? name : "unknown", 0),
                (long long)(json_integer_value(json_object_get(c, "not_after")) - now));
        }
        json_decref(desc);
    }
    path = xasprintf("%s/cert.pem", ctl->cfg.certs_dir);
    if ((na = file_not_after(path)) != -1) {
        put(t, "harp_certificate_expiry_seconds{cert=\"https\"} %lld\n", (long long)(na - now));
    }
    free(path);
}

static void
render_links(struct ctl *ctl, struct text *t)
{
    json_t *dps = publish_dataplanes(ctl->pub), *d, *st, *bans;
    size_t i;
    int pass;
    static const char *const names[] = {"harp_dataplane_table_version",
                                        "harp_dataplane_propagation_seconds", "harp_tunnels_up",
                                        "harp_dataplane_seen_seconds_ago"};
    static const char *const helps[] = {
        "The table version each connected data plane applied.",
        "Seconds from the publication of the last table version to the data plane's ack.",
        "FRP tunnels up on each data plane.",
        "Seconds since the control plane last heard from each data plane."};

    for (pass = 0; pass < 4; pass++) {
        help(t, names[pass], "gauge", helps[pass]);
        json_array_foreach(dps, i, d)
        {
            const char *dp = lv(json_string_value(json_object_get(d, "dp_id")), 0);
            const json_t *v;

            switch (pass) {
            case 0:
                put(t, "%s{dp=\"%s\"} %lld\n", names[pass], dp,
                    (long long)json_integer_value(json_object_get(d, "applied_version")));
                break;
            case 1:
                if (json_is_number(v = json_object_get(d, "propagation_seconds"))) {
                    put(t, "%s{dp=\"%s\"} %.6f\n", names[pass], dp, json_number_value(v));
                }
                break;
            case 2:
                put(t, "%s{dp=\"%s\"} %zu\n", names[pass], dp,
                    json_array_size(json_object_get(d, "tunnels")));
                break;
            default:
                put(t, "%s{dp=\"%s\"} %.3f\n", names[pass], dp,
                    json_number_value(json_object_get(d, "seen_seconds_ago")));
                break;
            }
        }
    }
    json_decref(dps);
    st = json_object();
    publish_stats(ctl->pub, st);
    help(t, "harp_table_version", "gauge", "The routing table version harp-ctl publishes.");
    put(t, "harp_table_version %lld\n",
        (long long)json_integer_value(json_object_get(st, "published_version")));
    bans = store_ban_list(ctl->store, (int64_t)time(NULL));
    help(t, "harp_bans_active", "gauge", "Client IPs banned now.");
    put(t, "harp_bans_active %zu\n", json_array_size(bans));
    json_decref(bans);
    help(t, "harp_dataplane_bad_messages_total", "counter",
         "Malformed or unexpected messages from data planes.");
    put(t, "harp_dataplane_bad_messages_total %lld\n",
        (long long)json_integer_value(json_object_get(st, "dataplane_bad_messages")));
    json_decref(st);
}

static void
render_engines(struct ctl *ctl, struct text *t)
{
    json_t *en = publish_engines_info(ctl->pub), *e;
    size_t i;

    help(t, "harp_engine_reachable", "gauge",
         "1 when the Docker engine answered the last probe (every 30 s).");
    json_array_foreach(en, i, e)
    {
        put(t, "harp_engine_reachable{port=\"%lld\",address=\"%s\"} %d\n",
            (long long)json_integer_value(json_object_get(e, "port")),
            lv(json_string_value(json_object_get(e, "address")), 0),
            json_is_true(json_object_get(e, "reachable")) ? 1 : 0);
    }
    help(t, "harp_engine_api_version_info", "gauge",
         "The API version range of each reachable Docker engine (the value is 1).");
    json_array_foreach(en, i, e)
    {
        if (json_is_true(json_object_get(e, "reachable"))) {
            put(t, "harp_engine_api_version_info{port=\"%lld\",min=\"%s\",max=\"%s\"} 1\n",
                (long long)json_integer_value(json_object_get(e, "port")),
                lv(json_string_value(json_object_get(e, "api_min")), 1),
                lv(json_string_value(json_object_get(e, "api_max")), 2));
        }
    }
    json_decref(en);
}

char *
api_metrics_render(struct ctl *ctl)
{
    static const struct {
        const char *name, *type, *help;
    } fam[F_NFAMILIES] = {
        [F_UP] = {"harp_dataplane_up", "gauge",
                  "1 while the data plane's link to harp-ctl is up, 0 once it closed."},
        [F_REQUESTS] = {"harp_requests_total", "counter",
                        "Requests by ExApp (\"-\": none), route access level and status class "
                        "(\"dropped\": closed without an answer)."},
        [F_DURATION] = {"harp_request_duration_seconds", "histogram",
                        "Time from a request's head to the end of its response, by ExApp."},
        [F_CONNECT_ERRORS] = {"harp_upstream_connect_errors_total", "counter",
                              "Connections to an ExApp that could not be made."},
        [F_REFUSALS] = {"harp_refusals_total", "counter",
                        "Requests the data plane refused itself, by reason (the reason= of "
                        "its logs)."},
        [F_BYTES_IN] = {"harp_client_received_bytes_total", "counter", "Bytes read from clients."},
        [F_BYTES_OUT] = {"harp_client_sent_bytes_total", "counter", "Bytes sent to clients."},
        [F_OPEN] = {"harp_open_connections", "gauge",
                    "Connections open now: client, upstream, and upgraded (WebSocket)."},
        [F_SESSION_HITS] = {"harp_session_cache_hits_total", "counter",
                            "User sessions answered from the data plane's cache."},
        [F_SESSION_MISSES] = {"harp_session_cache_misses_total", "counter",
                              "User sessions the data plane asked harp-ctl about."},
    };
    struct text t = {xmalloc(16384), 0, 16384};
    struct render r = {0};
    struct counters_visit v = {&r, render_dp, render_nc, 0, 0};
    int f;

    t.p[0] = '\0';
    for (f = 0; f < F_NFAMILIES; f++) {
        r.fam[f] = (struct text){xmalloc(1024), 0, 1024};
    }
    r.nc_calls = (struct text){xmalloc(1024), 0, 1024};
    r.nc_duration = (struct text){xmalloc(1024), 0, 1024};
    counters_visit(&v);
    put(&t,
        "# HELP harp_build_info harp's version (the value is 1).\n"
        "# TYPE harp_build_info gauge\nharp_build_info{version=\"%s\"} 1\n",
        PACKAGE_VERSION);
    help(&t, "harp_ctl_start_time_seconds", "gauge", "When harp-ctl started (unix time).");
    put(&t, "harp_ctl_start_time_seconds %lld\n", (long long)ctl->started);
    for (f = 0; f < F_NFAMILIES; f++) {
        help(&t, fam[f].name, fam[f].type, fam[f].help);
        splice(&t, &r.fam[f]);
    }
    help(&t, "harp_nextcloud_calls_total", "counter",
         "Calls to Nextcloud's harp endpoints (user-info, exapp-meta) by outcome.");
    splice(&t, &r.nc_calls);
    help(&t, "harp_nextcloud_call_duration_seconds", "histogram",
         "Duration of the calls to Nextcloud's harp endpoints.");
    splice(&t, &r.nc_duration);
    help(&t, "harp_failures_total", "counter",
         "Failures data planes reported towards bans (brute-force statuses, bad keys).");
    put(&t, "harp_failures_total %llu\n", (unsigned long long)v.failures);
    help(&t, "harp_bans_total", "counter", "Bans made by counted failures.");
    put(&t, "harp_bans_total %llu\n", (unsigned long long)v.bans);
    render_links(ctl, &t);
    render_engines(ctl, &t);
    render_certs(ctl, &t);
    return t.p;
}

/* True for a client on a loopback address that came straight to the control address. */
static bool
direct_loopback(struct api_req *req)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci != NULL ? ci->client_addr : NULL;

    if (sa == NULL || api_header(req, API_VIA_DATAPLANE) != NULL) {
        return false;
    }
    if (sa->sa_family == AF_INET) {
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
}

static void
on_metrics(struct api_req *req, struct api_resp *resp)
{
    const char *key = api_header(req, "harp-shared-key");

    if (!direct_loopback(req) &&
        (key == NULL || !secret_equal(key, strlen(key), req->ctl->cfg.shared_key))) {
        api_error(resp, 401, "the metrics need harp-shared-key, or a client on a loopback address");
        return;
    }
    resp->status = 200;
    resp->body = api_metrics_render(req->ctl);
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

const struct api_route api_metrics_routes[] = {
    {"GET", "/metrics", false, true, on_metrics},
    {NULL, NULL, false, false, NULL},
};
