/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The access log: lines gathered in a buffer, written when it fills and by a timer every
 * second, so that a busy data plane makes one write() per 64 KiB, not one per request.
 * Values from the network go through log_escape() (text) and JSON string escaping (json). */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "access_log.h"
#include "log.h"

#define BUF_SIZE (64 * 1024)
#define LINE_MAX_ 2048

static enum access_log_mode mode;
static char dp_name[64];
static char buf[BUF_SIZE];
static size_t buf_len;
static struct lws_context *log_ctx;
static lws_sorted_usec_list_t flush_sul;
static uint64_t id_prefix, id_counter;

int
access_log_parse(const char *s, enum access_log_mode *out)
{
    if (strcasecmp(s, "off") == 0) {
        *out = ACCESS_LOG_OFF;
    } else if (strcasecmp(s, "text") == 0) {
        *out = ACCESS_LOG_TEXT;
    } else if (strcasecmp(s, "json") == 0) {
        *out = ACCESS_LOG_JSON;
    } else {
        return -1;
    }
    return 0;
}

void
access_log_flush(void)
{
    size_t off = 0;
    ssize_t n;

    while (off < buf_len) {
        n = write(STDOUT_FILENO, buf + off, buf_len - off);
        if (n <= 0) {
            break; /* standard output is gone: the lines are lost, not the data plane */
        }
        off += (size_t)n;
    }
    buf_len = 0;
}

static void
on_flush(lws_sorted_usec_list_t *sul)
{
    access_log_flush();
    lws_sul_schedule(log_ctx, 0, sul, on_flush, LWS_US_PER_SEC);
}

void
access_log_start(struct lws_context *ctx, enum access_log_mode m, const char *dp_id)
{
    mode = m;
    snprintf(dp_name, sizeof(dp_name), "%s", dp_id);
    if (getrandom(&id_prefix, sizeof(id_prefix), 0) != (ssize_t)sizeof(id_prefix)) {
        id_prefix = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    }
    if (mode != ACCESS_LOG_OFF) {
        log_ctx = ctx;
        lws_sul_schedule(ctx, 0, &flush_sul, on_flush, LWS_US_PER_SEC);
    }
}

void
access_log_stop(void)
{
    if (mode != ACCESS_LOG_OFF) {
        lws_sul_cancel(&flush_sul);
        access_log_flush();
    }
}

bool
access_log_on(void)
{
    return mode != ACCESS_LOG_OFF;
}

/* <s> escaped for a JSON string (its content, without the quotes) into <out> of <cap>. */
static void
json_escape(const char *s, char *out, size_t cap)
{
    size_t o = 0;

    for (; *s != '\0' && o + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
}

void
access_log_write(const struct access_entry *e)
{
    char line[LINE_MAX_], path[512], jpath[1024], method[64], jmethod[128], ts[40];
    struct timespec now;
    struct tm tm;
    const char *reason = e->reason != REFUSAL_NONE ? refusal_name(e->reason) : "-";
    int n;

    if (mode == ACCESS_LOG_OFF) {
        return;
    }
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    n = (int)strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - (size_t)n, ".%03ldZ", now.tv_nsec / 1000000);
    log_escape(e->path, strlen(e->path), path, sizeof(path));
    log_escape(e->method, strlen(e->method), method, sizeof(method));
    if (mode == ACCESS_LOG_TEXT) {
        n = snprintf(line, sizeof(line),
                     "%s dp=%s client=%s app=%s method=%s path=%s status=%u reason=%s bytes=%llu "
                     "duration=%.6f upstream=%s request_id=%s\n",
                     ts, dp_name, e->client[0] ? e->client : "-", e->app[0] ? e->app : "-",
                     method[0] ? method : "-", path[0] ? path : "-", e->status, reason,
                     (unsigned long long)e->bytes, e->seconds, e->upstream[0] ? e->upstream : "-",
                     e->request_id[0] ? e->request_id : "-");
    } else {
        json_escape(path, jpath, sizeof(jpath));
        json_escape(method, jmethod, sizeof(jmethod));
        n = snprintf(line, sizeof(line),
                     "{\"time\":\"%s\",\"dp\":\"%s\",\"client\":\"%s\",\"app\":\"%s\","
                     "\"method\":\"%s\",\"path\":\"%s\",\"status\":%u,\"reason\":\"%s\","
                     "\"bytes\":%llu,\"duration\":%.6f,\"upstream\":\"%s\","
                     "\"request_id\":\"%s\"}\n",
                     ts, dp_name, e->client, e->app, jmethod, jpath, e->status,
                     e->reason != REFUSAL_NONE ? reason : "", (unsigned long long)e->bytes,
                     e->seconds, e->upstream, e->request_id);
    }
    if (n <= 0) {
        return;
    }
    if ((size_t)n >= sizeof(line)) {
        n = (int)sizeof(line) - 1;
        line[n - 1] = '\n';
    }
    if (buf_len + (size_t)n > sizeof(buf)) {
        access_log_flush();
    }
    memcpy(buf + buf_len, line, (size_t)n);
    buf_len += (size_t)n;
}

static bool
id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("._~:+/=-", c) != NULL);
}

void
request_id_pick(const struct http1_head *h, char out[REQUEST_ID_MAX + 1])
{
    const struct span *v = NULL;
    size_t i, found = 0;

    for (i = 0; i < h->nheaders; i++) {
        if (span_ieq(h->headers[i].name, "x-request-id")) {
            v = &h->headers[i].value;
            found++;
        }
    }
    if (found == 1 && v->n > 0 && v->n <= REQUEST_ID_MAX) {
        for (i = 0; i < v->n && id_char(v->p[i]); i++) {
        }
        if (i == v->n) {
            memcpy(out, v->p, v->n);
            out[v->n] = '\0';
            return;
        }
    }
    snprintf(out, REQUEST_ID_MAX + 1, "%016llx%016llx", (unsigned long long)id_prefix,
             (unsigned long long)++id_counter);
}
