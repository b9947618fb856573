/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Logging for both programs. Callers never pass secrets here (see STYLE: Logging). */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static const char *log_proc = "harp";
static enum log_level log_level = LOG_LVL_WARNING;
static pthread_mutex_t log_mtx = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"error", "warning", "info", "debug"};

void
log_init(const char *procname, enum log_level level)
{
    log_proc = procname;
    __atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
}

/* The level may change while other threads log (a reload): read and written atomically. */
void
log_set_level(enum log_level level)
{
    __atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
}

enum log_level
log_get_level(void)
{
    return __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

/* Accepts HaRP's names (debug, info, warning, error) in any case, and the usual aliases. */
int
log_level_parse(const char *s, enum log_level *out)
{
    static const struct {
        const char *name;
        enum log_level level;
    } names[] = {
        {"debug", LOG_LVL_DEBUG},    {"info", LOG_LVL_INFO},   {"warning", LOG_LVL_WARNING},
        {"warn", LOG_LVL_WARNING},   {"error", LOG_LVL_ERROR}, {"err", LOG_LVL_ERROR},
        {"critical", LOG_LVL_ERROR},
    };
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(s, names[i].name) == 0) {
            *out = names[i].level;
            return 0;
        }
    }
    return -1;
}

const char *
log_level_name(enum log_level level)
{
    return level_names[level];
}

/* The length of the valid UTF-8 character at <p> (<n> bytes left) that may be logged as is:
 * 0 for a control character, a byte that starts no valid sequence, or a C1 control. */
static size_t
printable_len(const unsigned char *p, size_t n)
{
    size_t len, i;

    if (p[0] < 0x80) {
        return p[0] >= 0x20 && p[0] != 0x7f;
    }
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        len = 2;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        len = 3;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        len = 4;
    } else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    for (i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
    }
    if ((p[0] == 0xc2 && p[1] < 0xa0) ||  /* C1 controls */
        (p[0] == 0xe0 && p[1] < 0xa0) ||  /* overlong */
        (p[0] == 0xed && p[1] >= 0xa0) || /* surrogates */
        (p[0] == 0xf0 && p[1] < 0x90) ||  /* overlong */
        (p[0] == 0xf4 && p[1] >= 0x90)) { /* above U+10FFFF */
        return 0;
    }
    return len;
}

size_t
log_escape(const char *in, size_t n, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)in;
    size_t i = 0, o = 0, k;

    if (cap == 0) {
        return 0;
    }
    while (i < n) {
        k = printable_len(p + i, n - i);
        if (k > 0) {
            if (o + k >= cap) {
                break;
            }
            memcpy(out + o, p + i, k);
            o += k;
            i += k;
            continue;
        }
        if (o + 4 >= cap) {
            break;
        }
        out[o++] = '\\';
        out[o++] = 'x';
        out[o++] = hex[p[i] >> 4];
        out[o++] = hex[p[i] & 15];
        i++;
    }
    out[o] = '\0';
    return o;
}

bool
log_rate_ok(struct log_rate *r, unsigned per_second, unsigned long *held)
{
    time_t now = time(NULL);

    if (now != r->second) {
        r->second = now;
        r->n = 0;
    }
    if (r->n >= per_second) {
        r->held++;
        return false;
    }
    r->n++;
    *held = r->held;
    r->held = 0;
    return true;
}

static void
vlog(const char *lvl, const char *fmt, va_list ap, const char *suffix)
{
    static char msg[LOG_LINE_MAX + 8], line[LOG_LINE_MAX * 4 + 8];
    char tbuf[32];
    struct timespec ts;
    struct tm tm;
    int n;
    size_t len;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);
    pthread_mutex_lock(&log_mtx);
    n = vsnprintf(msg, LOG_LINE_MAX + 1, fmt, ap);
    len = n < 0 ? 0 : (size_t)n;
    if (suffix != NULL && len < LOG_LINE_MAX) {
        n = snprintf(msg + len, LOG_LINE_MAX + 1 - len, ": %s", suffix);
        len += n < 0 ? 0 : (size_t)n;
    }
    if (len > LOG_LINE_MAX) {
        memcpy(msg + LOG_LINE_MAX - 3, "...", 4);
        len = LOG_LINE_MAX;
    }
    len = log_escape(msg, len, line, sizeof(line) - 1);
    line[len++] = '\n';
    fprintf(stderr, "%s.%03ldZ %s[%d] %s ", tbuf, ts.tv_nsec / 1000000, log_proc, (int)getpid(),
            lvl);
    fwrite(line, 1, len, stderr);
    fflush(stderr);
    pthread_mutex_unlock(&log_mtx);
}

#define LOG_BODY(minlevel, name, suffix)                                                           \
    va_list ap;                                                                                    \
    if (log_get_level() < (minlevel)) {                                                            \
        return;                                                                                    \
    }                                                                                              \
    va_start(ap, fmt);                                                                             \
    vlog(name, fmt, ap, suffix);                                                                   \
    va_end(ap)

void
log_warn(const char *fmt, ...)
{
    const char *why = strerror(errno);
    LOG_BODY(LOG_LVL_WARNING, "warning", why);
}

void
log_warnx(const char *fmt, ...)
{
    LOG_BODY(LOG_LVL_WARNING, "warning", NULL);
}

void
log_errorx(const char *fmt, ...)
{
    LOG_BODY(LOG_LVL_ERROR, "error", NULL);
}

void
log_info(const char *fmt, ...)
{
    LOG_BODY(LOG_LVL_INFO, "info", NULL);
}

void
log_debug(const char *fmt, ...)
{
    LOG_BODY(LOG_LVL_DEBUG, "debug", NULL);
}

void
log_notice(const char *fmt, ...)
{
    LOG_BODY(LOG_LVL_ERROR, "notice", NULL);
}

void
fatal(const char *fmt, ...)
{
    const char *why = strerror(errno);
    va_list ap;

    va_start(ap, fmt);
    vlog("fatal", fmt, ap, why);
    va_end(ap);
    exit(1);
}

void
fatalx(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog("fatal", fmt, ap, NULL);
    va_end(ap);
    exit(1);
}
