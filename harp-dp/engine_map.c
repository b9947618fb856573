/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Docker engines by port: a small array, replaced whole at each push (at most 100 engines). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "engine_map.h"
#include "log.h"
#include "xmalloc.h"

struct engine {
    unsigned port;
    char address[120];
    unsigned tcp_port;
    unsigned min_major, min_minor, max_major, max_minor;
    bool versions;
    bool refused; /* an engine removed: its port is refused to FRP tunnels */
};

static struct engine *engines;
static size_t nengines;

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

void
engines_replace(const json_t *list)
{
    const json_t *v;
    const char *addr;
    json_int_t port, tport;
    struct engine *e;
    size_t i;

    free(engines);
    engines = xcalloc(json_array_size(list) + 1, sizeof(*engines));
    nengines = 0;
    json_array_foreach(list, i, v)
    {
        addr = json_string_value(json_object_get(v, "address"));
        port = json_integer_value(json_object_get(v, "port"));
        if (json_is_true(json_object_get(v, "refused")) && port >= 1 && port <= 65535) {
            e = &engines[nengines++];
            e->port = (unsigned)port;
            e->refused = true;
            continue;
        }
        tport = json_integer_value(json_object_get(v, "tcp_port"));
        if (addr == NULL || strlen(addr) >= sizeof(engines->address) || port < 1 || port > 65535 ||
            tport < 0 || tport > 65535) {
            continue;
        }
        e = &engines[nengines++];
        e->port = (unsigned)port;
        snprintf(e->address, sizeof(e->address), "%s", addr);
        e->tcp_port = (unsigned)tport;
        e->versions = parse_api(json_string_value(json_object_get(v, "api_min")), &e->min_major,
                                &e->min_minor) &&
                      parse_api(json_string_value(json_object_get(v, "api_max")), &e->max_major,
                                &e->max_minor);
    }
    log_info("engines: %zu known", nengines);
}

static const struct engine *
find(unsigned port)
{
    size_t i;

    for (i = 0; i < nengines; i++) {
        if (engines[i].port == port && !engines[i].refused) {
            return &engines[i];
        }
    }
    return NULL;
}

void
engines_upstream(unsigned port, char *host, size_t hostlen, unsigned *up_port)
{
    const struct engine *e = find(port);

    if (e != NULL) {
        snprintf(host, hostlen, "%s", e->address);
        *up_port = e->tcp_port;
    } else {
        snprintf(host, hostlen, "127.0.0.1");
        *up_port = port;
    }
}

size_t
engines_rewrite(unsigned port, struct span t, char *buf, size_t len)
{
    const struct engine *e = find(port);
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
engines_refused(unsigned port)
{
    size_t i;

    for (i = 0; i < nengines; i++) {
        if (engines[i].port == port && engines[i].refused) {
            return true;
        }
    }
    return false;
}
