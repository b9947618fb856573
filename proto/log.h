/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* One line per event on stderr: "time proc[pid] level subsys: message". */
#ifndef HARP_PROTO_LOG_H
#define HARP_PROTO_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* Longest message logged; a longer one is cut and ends in "...". */
#define LOG_LINE_MAX 8192

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARNING, LOG_LVL_INFO, LOG_LVL_DEBUG };

void log_init(const char *procname, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
int log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level level);

/* Every line is escaped on its way out (log_escape), so values from the network cannot
 * forge lines or send terminal escapes, whichever call logs them. */

/* Copies <n> bytes of <in> to <out> (<cap> bytes, NUL-terminated, cut at a whole character)
 * with control characters (C0, DEL, and C1 in UTF-8) and bytes that are not part of valid
 * UTF-8 written as \xNN; valid printable UTF-8 is kept. Returns the length written. Pure. */
size_t log_escape(const char *in, size_t n, char *out, size_t cap);

/* At most <per_second> lines a second for one kind of event. Not thread-safe: one per
 * thread or under the caller's lock. Zeroed to start. */
struct log_rate {
    time_t second;
    unsigned n;
    unsigned long held; /* lines held back since the last one logged */
};
/* True when a line may be logged now; *<held> then gets the number held back before it. */
bool log_rate_ok(struct log_rate *r, unsigned per_second, unsigned long *held);

void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_errorx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Printed whatever the level: the start-up summary and the stop line. */
void log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
