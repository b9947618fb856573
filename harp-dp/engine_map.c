/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Docker engines by port: a small array built whole from each push (at most 100 engines),
 * immutable after; shared by the snapshots (world.c) that hold it. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "engine_map.h"
#include "xmalloc.h"

struct engine {
    unsigned port;
    char address[MSG_ENGINE_ADDRESS_MAX + 1];
    unsigned tcp_port;
    unsigned min_major, min_minor, max_major, max_minor;
    bool versions;
    bool refused; /* an engine removed: its port is refused to FRP tunnels */
};

struct engine_map {
    int refs;
    size_t n;
    struct engine e[];
};

/* "1.41" -> 1, 41. */
static bool
parse_api(const char *s, unsigned *major, unsigned *minor)
{
    char *end;
    unsigned long a, b;

    if (s == NULL) {
        return false;
    }
    a = strtoul(s, &end, 10);
    if (end == s || *end != '.') {
        return false;
    }
    s = end + 1;
    b = strtoul(s, &end, 10);
    if (end == s || *end != '\0' || a > 99 || b > 999) {
        return false;
    }
    *major = (unsigned)a;
    *minor = (unsigned)b;
    return true;
}

struct engine_map *
engine_map_ref(struct engine_map *m)
{
    m->refs++;
    return m;
}

void
engine_map_unref(struct engine_map *m)
{
    if (m != NULL && --m->refs == 0) {
        free(m);
    }
}

size_t
engine_map_count(const struct engine_map *m)
{
    return m != NULL ? m->n : 0;
}

struct engine_map *
engine_map_build(const struct msg_engine *list, size_t n)
{
    struct engine_map *m;
    struct engine *e;
    size_t i;

    m = xcalloc(1, sizeof(*m) + (n + 1) * sizeof(m->e[0]));
    m->refs = 1;
    for (i = 0; i < n; i++) {
        e = &m->e[m->n++];
        e->port = list[i].port;
        if (list[i].refused) {
            e->refused = true;
            continue;
        }
        snprintf(e->address, sizeof(e->address), "%s", list[i].address);
        e->tcp_port = list[i].tcp_port;
        e->versions = parse_api(list[i].api_min, &e->min_major, &e->min_minor) &&
                      parse_api(list[i].api_max, &e->max_major, &e->max_minor);
    }
    return m;
}

static const struct engine *
find(const struct engine_map *m, unsigned port)
{
    size_t i;

    for (i = 0; m != NULL && i < m->n; i++) {
        if (m->e[i].port == port && !m->e[i].refused) {
            return &m->e[i];
        }
    }
    return NULL;
}

void
engine_map_upstream(const struct engine_map *m, unsigned port, char *host, size_t hostlen,
                    unsigned *up_port)
{
    const struct engine *e = find(m, port);

    if (e != NULL) {
        snprintf(host, hostlen, "%s", e->address);
        *up_port = e->tcp_port;
    } else {
        snprintf(host, hostlen, "127.0.0.1");
        *up_port = port;
    }
}

size_t
engine_map_rewrite(const struct engine_map *m, unsigned port, struct span t, char *buf, size_t len)
{
    const struct engine *e = find(m, port);
    unsigned major = 0, minor = 0, nmaj, nmin;
    size_t i = 2, j, digits;
    int n;

    if (e == NULL || !e->versions || t.n < 2 || t.p[0] != '/' || t.p[1] != 'v') {
        return 0;
    }
    for (digits = 0; i < t.n && t.p[i] >= '0' && t.p[i] <= '9' && digits < 3; i++, digits++) {
        major = major * 10 + (unsigned)(t.p[i] - '0');
    }
    if (digits == 0 || i >= t.n || t.p[i] != '.') {
        return 0;
    }
    for (j = ++i, digits = 0; i < t.n && t.p[i] >= '0' && t.p[i] <= '9' && digits < 4;
         i++, digits++) {
        minor = minor * 10 + (unsigned)(t.p[i] - '0');
    }
    if (i == j || (i < t.n && t.p[i] != '/')) {
        return 0;
    }
    if (major < e->min_major || (major == e->min_major && minor < e->min_minor)) {
        nmaj = e->min_major;
        nmin = e->min_minor;
    } else if (major > e->max_major || (major == e->max_major && minor > e->max_minor)) {
        nmaj = e->max_major;
        nmin = e->max_minor;
    } else {
        return 0;
    }
    n = snprintf(buf, len, "/v%u.%u%.*s", nmaj, nmin, (int)(t.n - i), t.p + i);
    return n > 0 && (size_t)n < len ? (size_t)n : 0;
}

bool
engine_map_refused(const struct engine_map *m, unsigned port)
{
    size_t i;

    for (i = 0; m != NULL && i < m->n; i++) {
        if (m->e[i].port == port && m->e[i].refused) {
            return true;
        }
    }
    return false;
}
