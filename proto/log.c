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
    log_level = level;
}

void
log_set_level(enum log_level level)
{
    log_level = level;
}

enum log_level
log_get_level(void)
{
    return log_level;
}

/* Accepts HaRP's names (debug, info, warning, error) in any case, and the usual aliases. */
int
log_level_parse(const char *s, enum log_level *out)
{
    static const struct {
        const char *name;
        enum log_level level;
    } names[] = {
        {"debug", LOG_LVL_DEBUG},     {"info", LOG_LVL_INFO},   {"warning", LOG_LVL_WARNING},
        {"warn", LOG_LVL_WARNING},    {"error", LOG_LVL_ERROR}, {"err", LOG_LVL_ERROR},
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

static void
vlog(const char *lvl, const char *fmt, va_list ap, const char *suffix)
{
    char tbuf[32];
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);
    pthread_mutex_lock(&log_mtx);
    fprintf(stderr, "%s.%03ldZ %s[%d] %s ", tbuf, ts.tv_nsec / 1000000, log_proc, (int)getpid(),
            lvl);
    vfprintf(stderr, fmt, ap);
    if (suffix != NULL) {
        fprintf(stderr, ": %s", suffix);
    }
    fputc('\n', stderr);
    fflush(stderr);
    pthread_mutex_unlock(&log_mtx);
}

#define LOG_BODY(minlevel, name, suffix)                                                           \
    va_list ap;                                                                                    \
    if (log_level < (minlevel)) {                                                                  \
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
