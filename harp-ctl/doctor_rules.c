/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* `harp-ctl doctor`'s verdicts: findings in, one check with its fix out. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doctor_rules.h"

static const char *
str_or(const char *v, const char *dflt)
{
    return v != NULL ? v : dflt;
}

json_t *
doctor_check(const char *name, bool ok, const char *detail, const char *fix)
{
    json_t *o = json_pack("{s:s,s:b,s:s}", "check", name, "ok", ok, "detail", detail);

    if (!ok && fix != NULL) {
        json_object_set_new(o, "fix", json_string(fix));
    }
    return o;
}

json_t *
doctor_state_dir(const char *dir, mode_t mode, mode_t db_mode)
{
    char detail[600], fix[600];

    if ((mode & 0022) != 0 || (db_mode & 0077) != 0) {
        snprintf(detail, sizeof(detail),
                 "%s is mode %03o and harp.db %03o: others can %s the state (keys, tokens)", dir,
                 (unsigned)(mode & 0777), (unsigned)(db_mode & 0777),
                 (mode & 0022) != 0 ? "change" : "read");
        snprintf(fix, sizeof(fix), "chmod 700 %s && chmod 600 %s/harp.db", dir, dir);
        return doctor_check("state_dir", false, detail, fix);
    }
    snprintf(detail, sizeof(detail), "%s (mode %03o), harp.db (mode %03o)", dir,
             (unsigned)(mode & 0777), (unsigned)(db_mode & 0777));
    return doctor_check("state_dir", true, detail, NULL);
}

json_t *
doctor_nextcloud(const char *url, const char *app, bool app_known, const struct nc_probe *p)
{
    char detail[800];
    const char *url_fix =
        "set NC_INSTANCE_URL to the address at which harp reaches Nextcloud (from inside the "
        "container when harp runs in one), and enable AppAPI there";

    if (p->status == 0) {
        snprintf(detail, sizeof(detail), "no answer from %s: %s", url, p->neterr);
        return doctor_check("nextcloud", false, detail, url_fix);
    }
    if (p->status == 200 && p->meta) {
        snprintf(detail, sizeof(detail), "%s answers exapp-meta for %s with this shared key", url,
                 app);
        return doctor_check("nextcloud", true, detail, NULL);
    }
    if (p->status == 401 && p->json && strcmp(p->message, "Harp shared key is not valid") == 0) {
        if (!app_known) {
            snprintf(detail, sizeof(detail),
                     "%s is Nextcloud's AppAPI; the shared key can be checked once an ExApp is "
                     "registered",
                     url);
            return doctor_check("nextcloud", true, detail, NULL);
        }
        snprintf(detail, sizeof(detail),
                 "Nextcloud refuses the shared key for %s, an ExApp harp holds: the key of "
                 "AppAPI's deploy daemon is not HP_SHARED_KEY",
                 app);
        return doctor_check("nextcloud", false, detail,
                            "give both sides the same key: edit the deploy daemon in Nextcloud "
                            "(occ app_api:daemon:register ... --harp_shared_key KEY) or set "
                            "HP_SHARED_KEY to its key (no quotes, no spaces)");
    }
    if (p->status == 503) {
        snprintf(detail, sizeof(detail), "%s answers 503: Nextcloud is in maintenance mode or down",
                 url);
        return doctor_check("nextcloud", false, detail,
                            "end maintenance mode (occ maintenance:mode --off) or start Nextcloud");
    }
    snprintf(detail, sizeof(detail), "%s answers exapp-meta with %ld%s%s: not Nextcloud's AppAPI",
             url, p->status, p->content_type[0] != '\0' ? " " : "", p->content_type);
    return doctor_check("nextcloud", false, detail, url_fix);
}

json_t *
doctor_engine(const json_t *e)
{
    const char *name = json_string_value(json_object_get(e, "name"));
    const char *addr = json_string_value(json_object_get(e, "address"));
    const char *kind = json_string_value(json_object_get(e, "kind"));
    const char *api = json_string_value(json_object_get(e, "api_version"));
    const char *why = json_string_value(json_object_get(e, "error"));
    char check[128], detail[800], fix[400];

    snprintf(check, sizeof(check), "engine %s", name != NULL ? name : "?");
    if (!json_is_true(json_object_get(e, "reachable"))) {
        snprintf(detail, sizeof(detail), "%s unreachable: %s", addr != NULL ? addr : "?",
                 why != NULL ? why : "no answer");
        if (kind != NULL && strcmp(kind, "socket") == 0) {
            snprintf(fix, sizeof(fix),
                     "mount the Docker socket (-v /var/run/docker.sock:/var/run/docker.sock) "
                     "and put harp's user in the socket's group, or set HP_DOCKER_SOCKET");
        } else if (kind != NULL && strcmp(kind, "tunnel") == 0) {
            snprintf(fix, sizeof(fix),
                     "start the engine host's frpc with the files of harp-ctl engine add "
                     "--frpc-dir, and check that it reaches HP_FRP_ADDRESS");
        } else {
            snprintf(fix, sizeof(fix),
                     "check that the engine listens at %s and that this host "
                     "reaches it (harp-ctl engine show)",
                     addr != NULL ? addr : "its address");
        }
        return doctor_check(check, false, detail, fix);
    }
    if (api == NULL || doctor_api_cmp(api, DOCTOR_MIN_DOCKER_API) < 0) {
        snprintf(detail, sizeof(detail),
                 "%s speaks Docker Engine API %s; harp's calls need %s or later",
                 addr != NULL ? addr : "?", api != NULL ? api : "(unknown)", DOCTOR_MIN_DOCKER_API);
        return doctor_check(check, false, detail,
                            "upgrade Docker Engine on that host to 20.10 or later");
    }
    snprintf(detail, sizeof(detail), "%s, Docker %s, API %s", addr != NULL ? addr : "?",
             str_or(json_string_value(json_object_get(e, "version")), "?"), api);
    return doctor_check(check, true, detail, NULL);
}

static const json_t *
find_dp(const json_t *dps, const char *id)
{
    const json_t *d;
    size_t i;

    json_array_foreach(dps, i, d)
    {
        if (strcmp(str_or(json_string_value(json_object_get(d, "dp_id")), ""), id) == 0) {
            return d;
        }
    }
    return NULL;
}

json_t *
doctor_dataplanes(const json_t *first, const json_t *last)
{
    const json_t *d, *l;
    char detail[800] = "", *p = detail;
    size_t i, n = 0, stale = 0;
    json_int_t want, got;

    json_array_foreach(first, i, d)
    {
        const char *id = str_or(json_string_value(json_object_get(d, "dp_id")), "?");

        want = json_integer_value(json_object_get(d, "table_version"));
        l = find_dp(last, id);
        if (l == NULL) {
            continue; /* gone in between: not counted */
        }
        n++;
        got = json_integer_value(json_object_get(l, "applied_version"));
        if (got < want && (size_t)(p - detail) < sizeof(detail) - 120) {
            p += snprintf(p, sizeof(detail) - (size_t)(p - detail),
                          "%s%s applies version %lld, current %lld", stale > 0 ? "; " : "", id,
                          (long long)got, (long long)want);
            stale++;
        }
    }
    if (n == 0) {
        return doctor_check("dataplanes", false, "no data plane is connected",
                            "start harp-dp (deploy/up.sh, systemctl start harp-dp@1, or the "
                            "container's supervisor), with the same HP_CTL_SOCKET");
    }
    if (stale > 0) {
        return doctor_check("dataplanes", false, detail,
                            "a data plane that does not take tables is stuck or overloaded: "
                            "look at its log, then restart it (its successor gets the current "
                            "table at once)");
    }
    snprintf(detail, sizeof(detail), "%zu connected, all on the current table", n);
    return doctor_check("dataplanes", true, detail, NULL);
}

json_t *
doctor_cert(const char *what, int64_t not_after, int64_t now)
{
    char check[128], detail[300];
    double days = (double)(not_after - now) / 86400.0;

    snprintf(check, sizeof(check), "certificate %s", what);
    if (days < DOCTOR_CERT_DAYS) {
        snprintf(detail, sizeof(detail), "%s %.0f days", days < 0 ? "expired" : "expires in",
                 days < 0 ? -days : days);
        return doctor_check(check, false, detail,
                            "harp-ctl certs rotate, then give remote engines' frpc the new files "
                            "(harp-ctl certs export DIR)");
    }
    snprintf(detail, sizeof(detail), "%.0f days left", days);
    return doctor_check(check, true, detail, NULL);
}

int
doctor_api_cmp(const char *a, const char *b)
{
    unsigned long amaj = 0, amin = 0, bmaj = 0, bmin = 0;
    char *end;

    amaj = strtoul(a, &end, 10);
    if (*end == '.') {
        amin = strtoul(end + 1, NULL, 10);
    }
    bmaj = strtoul(b, &end, 10);
    if (*end == '.') {
        bmin = strtoul(end + 1, NULL, 10);
    }
    if (amaj != bmaj) {
        return amaj < bmaj ? -1 : 1;
    }
    return amin < bmin ? -1 : amin > bmin ? 1 : 0;
}
