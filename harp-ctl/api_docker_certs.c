/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * POST /docker/exapp/install_certificates (spec 4.7.7): Nextcloud's CA bundle and the FRP
 * client certificates copied into an ExApp container as a tar archive through the Docker API,
 * then the OS's trust store update run with exec. The container is started for it when it was
 * stopped, and stopped again after.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_docker_certs.h"
#include "api_docker_req.h"
#include "ca.h"
#include "log.h"
#include "secret.h"
#include "xmalloc.h"

#define MAX_CERT_FILE (1u * 1024 * 1024)
#define MAX_EXEC_OUTPUT (1u * 1024 * 1024)

/* --- tar ---------------------------------------------------------------------------------- */

struct tar {
    char *data;
    size_t len;
};

static void
octal(char *field, size_t width, unsigned long long v)
{
    snprintf(field, width, "%0*llo", (int)width - 1, v);
}

/* Appends a regular file <name> (relative, under 100 bytes), mode 0644, owner root. */
static void
tar_add(struct tar *t, const char *name, const char *data, size_t len)
{
    size_t pad = (512 - len % 512) % 512, i;
    unsigned sum = 0;
    char *h;

    t->data = xrealloc(t->data, t->len + 512 + len + pad);
    h = t->data + t->len;
    memset(h, 0, 512);
    snprintf(h, 100, "%s", name);
    octal(h + 100, 8, 0644);
    octal(h + 108, 8, 0);
    octal(h + 116, 8, 0);
    octal(h + 124, 12, len);
    octal(h + 136, 12, (unsigned long long)time(NULL));
    memset(h + 148, ' ', 8);
    h[156] = '0';
    memcpy(h + 257,
           "ustar\0"
           "00",
           8);
    snprintf(h + 265, 32, "root");
    snprintf(h + 297, 32, "root");
    for (i = 0; i < 512; i++) {
        sum += (unsigned char)h[i];
    }
    snprintf(h + 148, 8, "%06o", sum);
    memcpy(h + 512, data, len);
    memset(h + 512 + len, 0, pad);
    t->len += 512 + len + pad;
}

static void
tar_end(struct tar *t)
{
    t->data = xrealloc(t->data, t->len + 1024);
    memset(t->data + t->len, 0, 1024);
    t->len += 1024;
}

/* --- exec and upload ---------------------------------------------------------------------- */

/* Runs <cmd> in the container: its exit code (-1 when unknown), or -2 when the exec could not
 * be run at all. Its output goes to <out> (NUL-terminated, may be NULL). */
static int
exec_in(struct docker_session *s, const char *container, json_t *cmd, char *out, size_t out_len)
{
    struct docker_reply r;
    json_t *body, *o = NULL;
    const char *id;
    char path[400], *idc;
    long status;
    int code = -1;

    if (out != NULL) {
        out[0] = '\0';
    }
    body = json_pack("{s:b,s:b,s:O}", "AttachStdout", 1, "AttachStderr", 1, "Cmd", cmd);
    snprintf(path, sizeof(path), "/containers/%s/exec", container);
    if (docker_call_json(s, "POST", path, body, &status, &o) != DOCKER_OK || status != 201 ||
        (id = json_string_value(json_object_get(o, "Id"))) == NULL) {
        json_decref(body);
        json_decref(o);
        return -2;
    }
    json_decref(body);
    idc = xstrdup(id);
    json_decref(o);
    snprintf(path, sizeof(path), "/exec/%.128s/start", idc);
    if (docker_call(s, "POST", path, NULL, "{\"Detach\": false, \"Tty\": false}", 32,
                    MAX_EXEC_OUTPUT, &r) != DOCKER_OK ||
        r.status != 200) {
        if (r.status != 0) {
            http_body_free(&r.body);
        }
        free(idc);
        return -2;
    }
    if (out != NULL) {
        /* The multiplexed stream: 8-byte frame headers, then the bytes. */
        size_t off = 0, o_len = 0, flen;
        const unsigned char *p = (const unsigned char *)r.body.data;

        while (off + 8 <= r.body.len && o_len + 1 < out_len) {
            flen = (size_t)p[off + 4] << 24 | (size_t)p[off + 5] << 16 | (size_t)p[off + 6] << 8 |
                   p[off + 7];
            off += 8;
            if (flen > r.body.len - off) {
                flen = r.body.len - off;
            }
            if (flen > out_len - 1 - o_len) {
                memcpy(out + o_len, p + off, out_len - 1 - o_len);
                o_len = out_len - 1;
            } else {
                memcpy(out + o_len, p + off, flen);
                o_len += flen;
            }
            off += flen;
        }
        out[o_len] = '\0';
    }
    http_body_free(&r.body);
    snprintf(path, sizeof(path), "/exec/%.128s/json", idc);
    free(idc);
    o = NULL;
    if (docker_call_json(s, "GET", path, NULL, &status, &o) == DOCKER_OK && status == 200 &&
        json_is_integer(json_object_get(o, "ExitCode"))) {
        code = (int)json_integer_value(json_object_get(o, "ExitCode"));
    }
    json_decref(o);
    return code;
}

static int
upload(struct docker_session *s, const char *container, const struct tar *t)
{
    struct docker_reply r;
    char path[400];

    snprintf(path, sizeof(path), "/containers/%s/archive?path=/", container);
    if (docker_call(s, "PUT", path, "application/x-tar", t->data, t->len, 64 * 1024, &r) !=
        DOCKER_OK) {
        return -1;
    }
    http_body_free(&r.body);
    return r.status == 200 ? 0 : -1;
}

/* Reads a whole file up to MAX_CERT_FILE; NULL when missing or unreadable. */
static char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;

    if (f == NULL) {
        return NULL;
    }
    buf = xmalloc(MAX_CERT_FILE + 1);
    *len = fread(buf, 1, MAX_CERT_FILE + 1, f);
    if (ferror(f) || *len > MAX_CERT_FILE) {
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    return buf;
}

/* Whether Docker says <container> does not exist (404 to an inspect). */
static bool
container_gone(struct ctl *ctl, unsigned port, const char *container)
{
    struct docker_session s;
    char path[400];
    long status = 0;

    docker_session_open(&s, ctl, port, 30);
    snprintf(path, sizeof(path), "/containers/%s/json", container);
    return docker_call_json(&s, "GET", path, NULL, &status, NULL) == DOCKER_OK && status == 404;
}

/* --- the endpoint ------------------------------------------------------------------------- */

/* The OS family's CA directory and update command from os-release text, or NULL. */
static const char *
ca_dir_for(const char *os_release, const char **update)
{
    char *low = xstrdup(os_release), *p;
    const char *dir = NULL;

    for (p = low; *p != '\0'; p++) {
        *p = (char)tolower((unsigned char)*p);
    }
    if (strstr(low, "alpine") != NULL || strstr(low, "debian") != NULL ||
        strstr(low, "ubuntu") != NULL) {
        dir = "/usr/local/share/ca-certificates";
        *update = "update-ca-certificates";
    } else if (strstr(low, "centos") != NULL || strstr(low, "almalinux") != NULL ||
               strstr(low, "rhel") != NULL || strstr(low, "fedora") != NULL) {
        dir = "/etc/pki/ca-trust/source/anchors";
        *update = "update-ca-trust extract";
    }
    free(low);
    return dir;
}

/* Step 4: the CA bundle's certificates as <dir>/custom_ca_cert_<i>.crt. 0, or -1 answered. */
static int
install_bundle(struct docker_session *s, struct api_resp *resp, const char *container,
               const char *bundle, const char *os_release)
{
    static const char begin[] = "-----BEGIN CERTIFICATE-----";
    static const char end[] = "-----END CERTIFICATE-----";
    const char *dir, *update = NULL, *b, *e;
    struct tar t = {0};
    char name[160], *msg, out[256];
    json_t *cmd;
    int code, i = 0;

    if ((dir = ca_dir_for(os_release, &update)) == NULL) {
        log_info("docker: %s: unknown OS family, CA bundle not installed", container);
        return 0;
    }
    cmd = json_pack("[s,s,s]", "mkdir", "-p", dir);
    code = exec_in(s, container, cmd, NULL, 0);
    json_decref(cmd);
    if (code != 0) {
        msg = xasprintf("Failed to create %s in the container. Exit: %d", dir, code);
        api_text(resp, 500, msg);
        free(msg);
        return -1;
    }
    for (b = strstr(bundle, begin); b != NULL; b = strstr(e, begin)) {
        if ((e = strstr(b, end)) == NULL) {
            break;
        }
        e += sizeof(end) - 1;
        snprintf(name, sizeof(name), "%s/custom_ca_cert_%d.crt", dir + 1, i++);
        tar_add(&t, name, b, (size_t)(e - b));
    }
    if (i == 0) {
        return 0;
    }
    tar_end(&t);
    code = upload(s, container, &t);
    free(t.data);
    if (code == -1) {
        api_text(resp, 500, "Failed to upload the CA certificates into the container.");
        return -1;
    }
    cmd = json_pack("[s,s,s]", "sh", "-c", update);
    code = exec_in(s, container, cmd, out, sizeof(out));
    json_decref(cmd);
    if (code != 0) {
        log_info("docker: %s: %s exited %d: %.200s", container, update, code, out);
    }
    log_info("docker: %s: %d CA certificate(s) installed in %s", container, i, dir);
    return 0;
}

static const char *const frp_files[] = {"ca.crt", "client.crt", "client.key"};

/* The FRP client files as a tar for /, and the sha256 of client.crt in <sha> (the caller
 * frees it); -1 when one is missing. */
static int
frp_tar(const char *certs_dir, struct tar *t, char **sha)
{
    char *data[3] = {NULL, NULL, NULL}, path[4096], name[64];
    size_t len[3], i;
    int rc = 0;

    memset(t, 0, sizeof(*t));
    for (i = 0; i < 3 && rc == 0; i++) {
        snprintf(path, sizeof(path), "%s/frp/%s", certs_dir, frp_files[i]);
        if ((data[i] = slurp(path, &len[i])) == NULL) {
            rc = -1;
        }
    }
    for (i = 0; i < 3 && rc == 0; i++) {
        snprintf(name, sizeof(name), "certs/frp/%s", frp_files[i]);
        tar_add(t, name, data[i], len[i]);
    }
    if (rc == 0) {
        tar_end(t);
        data[1][len[1]] = '\0';
        *sha = ca_fingerprint(data[1]);
    }
    for (i = 0; i < 3; i++) {
        if (data[i] != NULL) {
            secret_wipe(data[i], len[i]);
        }
        free(data[i]);
    }
    return rc;
}

/* Step 5: the FRP client files under /certs/frp, remembered so that renewed ones follow.
 * 0, or -1 answered. */
static int
install_frp(struct docker_session *s, struct api_resp *resp, struct ctl *ctl, unsigned port,
            const char *container)
{
    struct tar t;
    char *sha = NULL;
    json_t *cmd;
    int code, rc = 0;

    if (frp_tar(ctl->cfg.certs_dir, &t, &sha) == -1) {
        log_info("docker: %s: FRP client files missing in %s/frp, not installed", container,
                 ctl->cfg.certs_dir);
        free(t.data);
        return 0;
    }
    cmd = json_pack("[s,s,s]", "mkdir", "-p", "/certs/frp");
    code = exec_in(s, container, cmd, NULL, 0);
    json_decref(cmd);
    if (code != 0) {
        api_text(resp, 500, "Failed to create /certs/frp in the container.");
        rc = -1;
    } else if (upload(s, container, &t) == -1) {
        api_text(resp, 500, "Failed to upload the FRP certificates into the container.");
        rc = -1;
    } else {
        store_cert_install_put(ctl->store, port, container, sha);
    }
    free(t.data);
    free(sha);
    return rc;
}

/* --- renewed files to the containers ------------------------------------------------------ */

static size_t
deliveries(struct ctl *ctl, bool deliver)
{
    json_t *list = store_cert_install_list(ctl->store), *row;
    struct docker_session s;
    const char *container;
    size_t i, left = 0;
    unsigned port;
    struct tar t;
    char *sha = NULL;

    if (frp_tar(ctl->cfg.certs_dir, &t, &sha) == -1) {
        free(t.data);
        json_decref(list);
        return 0;
    }
    json_array_foreach(list, i, row)
    {
        container = json_string_value(json_object_get(row, "container"));
        port = (unsigned)json_integer_value(json_object_get(row, "port"));
        if (strcmp(json_string_value(json_object_get(row, "delivered")), sha) == 0) {
            continue;
        }
        if (!deliver) {
            left++;
            continue;
        }
        /* The archive API writes into running and stopped containers alike. */
        docker_session_open(&s, ctl, port, 30);
        if (upload(&s, container, &t) == 0) {
            store_cert_install_put(ctl->store, port, container, sha);
            log_notice("docker: renewed FRP client certificate written into %s (port %u)",
                       container, port);
        } else if (container_gone(ctl, port, container)) {
            store_cert_install_delete(ctl->store, port, container);
            log_info("docker: %s (port %u) is gone: no more renewed certificates for it", container,
                     port);
        } else {
            left++;
            log_warnx("docker: cannot write the renewed FRP client certificate into %s (port "
                      "%u); retried later",
                      container, port);
        }
    }
    free(t.data);
    free(sha);
    json_decref(list);
    return left;
}

size_t
api_docker_certs_deliver(struct ctl *ctl)
{
    return deliveries(ctl, true);
}

size_t
api_docker_certs_pending(struct ctl *ctl)
{
    return deliveries(ctl, false);
}

void
api_docker_certs_install(struct api_req *req, struct api_resp *resp)
{
    struct docker_session s;
    struct exapp_name n;
    unsigned port;
    json_t *body, *info = NULL, *bundle_v, *cmd;
    const char *bundle = NULL;
    bool frp, running = true;
    char path[320], t[600], os[4096];
    enum docker_rc rc;
    long status;
    int code;

    if ((body = api_docker_req_begin(req, resp, &port, &n)) == NULL) {
        return;
    }
    bundle_v = json_object_get(body, "system_certs_bundle");
    if (bundle_v != NULL && !json_is_null(bundle_v) && !json_is_string(bundle_v)) {
        json_decref(body);
        api_docker_req_invalid(resp, "system_certs_bundle",
                               "Input should be a valid string or null");
        return;
    }
    if (api_docker_req_bool(body, "install_frp_certs", true, &frp) == -1) {
        json_decref(body);
        api_docker_req_invalid(resp, "install_frp_certs", "Input should be a valid boolean");
        return;
    }
    bundle = json_string_value(bundle_v);
    docker_session_open(&s, req->ctl, port, 120);
    snprintf(path, sizeof(path), "/containers/%s/json", n.container);
    if ((rc = docker_call_json(&s, "GET", path, NULL, &status, &info)) != DOCKER_OK) {
        api_docker_req_failed(resp, rc, port);
        json_decref(body);
        return;
    }
    if (status == 404) {
        snprintf(t, sizeof(t), "Container '%s' not found.", n.container);
        api_text(resp, 404, t);
        goto out_nostop;
    }
    if (status != 200) {
        snprintf(t, sizeof(t), "Failed to inspect container: Status %ld", status);
        api_text(resp, 503, t);
        goto out_nostop;
    }
    running = json_is_true(json_object_get(json_object_get(info, "State"), "Running"));
    if (!running) {
        snprintf(path, sizeof(path), "/containers/%s/start", n.container);
        if ((rc = docker_call_json(&s, "POST", path, NULL, &status, NULL)) != DOCKER_OK) {
            api_docker_req_failed(resp, rc, port);
            goto out;
        }
        if (status != 204 && status != 304) {
            snprintf(t, sizeof(t), "Failed to start container: Status %ld", status);
            api_text(resp, 503, t);
            goto out;
        }
    }
    cmd = json_pack("[s,s]", "cat", "/etc/os-release");
    code = exec_in(&s, n.container, cmd, os, sizeof(os));
    json_decref(cmd);
    if (code != 0) {
        snprintf(t, sizeof(t), "Failed to get OS info. Exit: %d. Output: %.200s",
                 code < -1 ? -1 : code, os);
        api_text(resp, 500, t);
        goto out;
    }
    if (bundle != NULL && bundle[0] != '\0' &&
        install_bundle(&s, resp, n.container, bundle, os) == -1) {
        goto out;
    }
    if (frp && install_frp(&s, resp, req->ctl, port, n.container) == -1) {
        goto out;
    }
    log_info("docker: certificates installed in %s on port %u", n.container, port);
    api_empty(resp, 204);
out:
    if (!running) {
        /* Stopping gets a fresh deadline of its own: errors ignored, as HaRP. */
        struct docker_session stop;
        long st;

        docker_session_open(&stop, req->ctl, port, 30);
        snprintf(path, sizeof(path), "/containers/%s/stop", n.container);
        docker_call_json(&stop, "POST", path, NULL, &st, NULL);
    }
out_nostop:
    json_decref(info);
    json_decref(body);
}
