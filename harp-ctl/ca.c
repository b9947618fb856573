/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The FRP certificate authority, with OpenSSL's library. Certificates as HaRP's start script
 * makes them: RSA 2048, SHA-256; CA CN=harp.nc; server CN=harp.nc with DNS:harp.nc; client
 * CN=harp.client.nc with DNS:harp.client.nc; no extended key usage (frpc's Go TLS checks it).
 *
 * The store holds the set (and the CA key, which is never written out); the directory holds
 * what frpc, ExApps and the data plane read. Files an operator put there win: they are never
 * replaced except by an explicit rotation.
 */
#include "config.h"

#include <errno.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ca.h"
#include "log.h"
#include "secret.h"
#include "xmalloc.h"

#define MAX_PEM (64 * 1024)

const char *const ca_files[CA_NFILES] = {"ca.crt", "server.crt", "server.key", "client.crt",
                                         "client.key"};

char *
ca_dir(const struct ctl *ctl)
{
    return xasprintf("%s/frp", ctl->cfg.certs_dir);
}

bool
ca_files_present(const char *certs_dir)
{
    char *path;
    bool all = true;
    int i;

    for (i = 0; i < CA_NFILES && all; i++) {
        path = xasprintf("%s/frp/%s", certs_dir, ca_files[i]);
        all = access(path, R_OK) == 0;
        free(path);
    }
    return all;
}

static char *
bio_string(BIO *b)
{
    char *p, *s;
    long n = BIO_get_mem_data(b, &p);

    s = xmalloc((size_t)n + 1);
    memcpy(s, p, (size_t)n);
    s[n] = '\0';
    return s;
}

static bool
add_ext(X509 *issuer, X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    bool ok;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL) {
        return false;
    }
    ok = X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

/* The authority key id from <issuer>'s subject key id; none when it has none (a CA made
 * without one, e.g. by another tool and adopted). */
static bool
add_akid(X509 *issuer, X509 *x)
{
    if (X509_get0_subject_key_id(issuer) == NULL) {
        return true;
    }
    return add_ext(issuer, x, NID_authority_key_identifier, "keyid:always");
}

/* One certificate for CN <cn> (and SAN DNS:<cn> unless a CA), signed by <ca>/<ca_key>, or
 * self-signed when <ca> is NULL. */
static X509 *
issue(const char *cn, EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key, long secs)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    BIGNUM *bn = BN_new();
    unsigned char serial[16];
    char san[300];
    bool ok;

    RAND_bytes(serial, sizeof(serial));
    serial[0] &= 0x7f;
    ok = x != NULL && name != NULL && bn != NULL && BN_bin2bn(serial, sizeof(serial), bn) &&
         X509_set_version(x, 2) && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) &&
         X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                    0) &&
         X509_set_subject_name(x, name) &&
         X509_set_issuer_name(x, ca != NULL ? X509_get_subject_name(ca) : name) &&
         X509_gmtime_adj(X509_getm_notBefore(x), 0) &&
         X509_gmtime_adj(X509_getm_notAfter(x), secs) && X509_set_pubkey(x, key);
    if (ok && ca == NULL) {
        ok = add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") &&
             add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") &&
             add_ext(x, x, NID_subject_key_identifier, "hash");
    } else if (ok) {
        snprintf(san, sizeof(san), "DNS:%s", cn);
        ok = add_ext(ca, x, NID_basic_constraints, "CA:FALSE") &&
             add_ext(ca, x, NID_key_usage, "critical,digitalSignature,keyEncipherment") &&
             add_ext(ca, x, NID_subject_alt_name, san) &&
             add_ext(ca, x, NID_subject_key_identifier, "hash") && add_akid(ca, x);
    }
    ok = ok && X509_sign(x, ca_key != NULL ? ca_key : key, EVP_sha256()) > 0;
    X509_NAME_free(name);
    BN_free(bn);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static int
to_pem(X509 *x, EVP_PKEY *k, struct cert_rec *r)
{
    BIO *bc = BIO_new(BIO_s_mem()), *bk = BIO_new(BIO_s_mem());
    int rc = -1;

    if (bc != NULL && bk != NULL && PEM_write_bio_X509(bc, x) &&
        PEM_write_bio_PrivateKey(bk, k, NULL, NULL, 0, NULL, NULL)) {
        r->cert_pem = bio_string(bc);
        r->key_pem = bio_string(bk);
        r->created_at = (int64_t)time(NULL);
        rc = 0;
    }
    BIO_free(bc);
    BIO_free(bk);
    return rc;
}

static X509 *
pem_cert(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

    BIO_free(b);
    return x;
}

static EVP_PKEY *
pem_key(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;

    BIO_free(b);
    return k;
}

/* The set in <out>: a new CA when <ca> is NULL, else <ca> copied and new leaves it signs. */
static int
generate(long secs, const struct cert_rec *ca, struct cert_rec out[3], struct hp_err *err)
{
    static const char *const cns[3] = {"harp.nc", "harp.nc", "harp.client.nc"};
    EVP_PKEY *keys[3] = {NULL, NULL, NULL};
    X509 *certs[3] = {NULL, NULL, NULL};
    int i, rc = 0;

    memset(out, 0, 3 * sizeof(*out));
    if (ca != NULL) {
        certs[0] = pem_cert(ca->cert_pem);
        keys[0] = pem_key(ca->key_pem);
        out[0].cert_pem = xstrdup(ca->cert_pem);
        out[0].key_pem = xstrdup(ca->key_pem);
        out[0].created_at = ca->created_at;
        rc = certs[0] != NULL && keys[0] != NULL ? 0 : -1;
    }
    for (i = ca != NULL ? 1 : 0; i < 3 && rc == 0; i++) {
        keys[i] = EVP_RSA_gen(2048);
        certs[i] = keys[i] == NULL ? NULL
                                   : issue(cns[i], keys[i], i == 0 ? NULL : certs[0],
                                           i == 0 ? NULL : keys[0], secs);
        if (certs[i] == NULL || to_pem(certs[i], keys[i], &out[i]) == -1) {
            rc = -1;
        }
    }
    for (i = 0; i < 3; i++) {
        X509_free(certs[i]);
        EVP_PKEY_free(keys[i]);
    }
    if (rc == -1) {
        store_cert_free(out);
        err_set(err, "cannot generate the FRP certificates: %s",
                ERR_reason_error_string(ERR_get_error()));
    }
    return rc;
}

int
ca_generate(long secs, struct cert_rec out[3], struct hp_err *err)
{
    return generate(secs, NULL, out, err);
}

int
ca_issue_leaves(long secs, const struct cert_rec *ca, struct cert_rec out[3], struct hp_err *err)
{
    return generate(secs, ca, out, err);
}

char *
ca_cross_sign(const struct cert_rec *old_ca, const char *new_ca_pem, int64_t not_after)
{
    X509 *oc = pem_cert(old_ca->cert_pem), *nc = pem_cert(new_ca_pem), *x = X509_new();
    EVP_PKEY *ok = pem_key(old_ca->key_pem);
    time_t end = (time_t)not_after;
    char *pem = NULL;
    BIO *b = NULL;
    bool good;

    /* The new CA's name, key and key id, issued by the old CA: clients that trust only the
     * old CA build leaf -> this -> old CA. */
    good = oc != NULL && nc != NULL && ok != NULL && x != NULL && X509_set_version(x, 2) &&
           X509_set_serialNumber(x, X509_get_serialNumber(nc)) &&
           X509_set_subject_name(x, X509_get_subject_name(nc)) &&
           X509_set_issuer_name(x, X509_get_subject_name(oc)) &&
           X509_gmtime_adj(X509_getm_notBefore(x), 0) &&
           X509_time_adj_ex(X509_getm_notAfter(x), 0, 0, &end) &&
           X509_set_pubkey(x, X509_get0_pubkey(nc)) &&
           add_ext(oc, x, NID_basic_constraints, "critical,CA:TRUE") &&
           add_ext(oc, x, NID_key_usage, "critical,keyCertSign,cRLSign") &&
           add_ext(oc, x, NID_subject_key_identifier, "hash") && add_akid(oc, x) &&
           X509_sign(x, ok, EVP_sha256()) > 0 && (b = BIO_new(BIO_s_mem())) != NULL &&
           PEM_write_bio_X509(b, x);
    if (good) {
        pem = bio_string(b);
    }
    BIO_free(b);
    X509_free(x);
    X509_free(oc);
    X509_free(nc);
    EVP_PKEY_free(ok);
    ERR_clear_error();
    return pem;
}

static const char *file_part(const struct cert_rec recs[3], int i);
static json_int_t asn1_unix(const ASN1_TIME *t);

/* --- files ------------------------------------------------------------------------------- */

/* What file <i> of ca_files holds; the caller frees it. During a rotation's overlap
 * server.crt carries the certificate that links the new CA to the old one (<cross>). */
static char *
file_content(const struct cert_rec recs[3], const char *cross, int i)
{
    if (i == 1 && cross != NULL) {
        return xasprintf("%s%s", recs[1].cert_pem, cross);
    }
    return xstrdup(file_part(recs, i));
}

static const char *
file_part(const struct cert_rec recs[3], int i)
{
    switch (i) {
    case 0:
        return recs[0].cert_pem;
    case 1:
        return recs[1].cert_pem;
    case 2:
        return recs[1].key_pem;
    case 3:
        return recs[2].cert_pem;
    default:
        return recs[2].key_pem;
    }
}

static char *
read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;

    if (f == NULL) {
        return NULL;
    }
    buf = xmalloc(MAX_PEM + 1);
    n = fread(buf, 1, MAX_PEM + 1, f);
    fclose(f);
    if (n > MAX_PEM) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

/* Writes <content> to <dir>/<name> through a temporary file, mode <mode>. */
static int
write_file(const char *dir, const char *name, const char *content, mode_t mode, struct hp_err *err)
{
    char *path = xasprintf("%s/%s", dir, name), *tmp = xasprintf("%s/.%s.tmp", dir, name);
    FILE *f;
    int rc = -1;

    unlink(tmp);
    if ((f = fopen(tmp, "wx")) != NULL) {
        if (fchmod(fileno(f), mode) == 0 && fputs(content, f) >= 0 && fflush(f) == 0 &&
            fsync(fileno(f)) == 0) {
            rc = 0;
        }
        if (fclose(f) != 0) {
            rc = -1;
        }
    }
    if (rc == 0 && rename(tmp, path) == -1) {
        rc = -1;
    }
    if (rc == -1) {
        err_set(err, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
    }
    free(path);
    free(tmp);
    return rc;
}

/* Writes the files of <recs> into <dir>; only those missing unless <all>. server.crt and
 * server.key go last: the data plane reloads when server.crt changes. */
static int
write_files(const char *dir, const struct cert_rec recs[3], const char *cross, bool all,
            struct hp_err *err)
{
    static const int order[CA_NFILES] = {0, 3, 4, 2, 1};
    char *path, *content;
    struct stat sb;
    int i, k, rc;

    if (mkdir(dir, 0755) == -1 && errno != EEXIST) {
        err_set(err, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    chmod(dir, 0755);
    for (k = 0; k < CA_NFILES; k++) {
        i = order[k];
        path = xasprintf("%s/%s", dir, ca_files[i]);
        if (!all && stat(path, &sb) == 0) {
            free(path);
            continue;
        }
        free(path);
        content = file_content(recs, cross, i);
        rc = write_file(dir, ca_files[i], content,
                        strstr(ca_files[i], ".key") != NULL ? 0600 : 0644, err);
        secret_wipe(content, strlen(content));
        free(content);
        if (rc == -1) {
            return -1;
        }
    }
    return 0;
}

int
ca_write(struct ctl *ctl, const struct cert_rec recs[3], struct hp_err *err)
{
    char *dir = ca_dir(ctl), *cross = store_cert_state_get(ctl->store, "cross");
    char *prev = store_cert_state_get(ctl->store, "previous_ca");
    char *revoked = store_cert_state_get(ctl->store, "revoked_ca");
    int rc = 0;

    /* The data plane's trust for new connections (ca.crt and ca-previous.crt) and the CA whose
     * sessions it closes (revoked.crt) are in place before server.crt changes. */
    if (prev != NULL) {
        rc = write_file(dir, CA_PREVIOUS, prev, 0644, err);
    } else {
        char *p = xasprintf("%s/%s", dir, CA_PREVIOUS);

        unlink(p);
        free(p);
    }
    if (rc == 0 && revoked != NULL) {
        rc = write_file(dir, CA_REVOKED, revoked, 0644, err);
    }
    if (rc == 0) {
        rc = write_files(dir, recs, cross, true, err);
    }
    free(dir);
    free(cross);
    free(prev);
    free(revoked);
    return rc;
}

/* Checks that a certificate PEM parses and, with <key_pem>, that the key matches it. */
static bool
pem_ok(const char *cert_pem, const char *key_pem)
{
    BIO *b = BIO_new_mem_buf(cert_pem, -1);
    X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    EVP_PKEY *k = NULL;
    bool ok = x != NULL;

    BIO_free(b);
    if (ok && key_pem != NULL) {
        b = BIO_new_mem_buf(key_pem, -1);
        k = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
        ok = k != NULL && X509_check_private_key(x, k) == 1;
        BIO_free(b);
    }
    EVP_PKEY_free(k);
    X509_free(x);
    return ok;
}

int
ca_init(struct ctl *ctl, struct hp_err *err)
{
    struct cert_rec stored[3], files[3];
    char *dir, *path, *content[CA_NFILES] = {NULL}, *want, *cross;
    int i, present = 0, rc = -1, have;
    bool same = true;

    if (ctl->cfg.frp_disable_tls) {
        log_notice("ca: HP_FRP_DISABLE_TLS=true: no FRP certificates");
        return 0;
    }
    dir = ca_dir(ctl);
    mkdir(ctl->cfg.certs_dir, 0755);
    for (i = 0; i < CA_NFILES; i++) {
        path = xasprintf("%s/%s", dir, ca_files[i]);
        if ((content[i] = read_file(path)) != NULL) {
            present++;
        }
        free(path);
    }
    have = store_cert_get_all(ctl->store, stored);
    if (present == CA_NFILES) {
        memset(files, 0, sizeof(files));
        if (!pem_ok(content[0], NULL) || !pem_ok(content[1], content[2]) ||
            !pem_ok(content[3], content[4])) {
            err_set(err, "%s: the certificate files do not parse or their keys do not match", dir);
            goto out;
        }
        cross = store_cert_state_get(ctl->store, "cross");
        for (i = 0; i < CA_NFILES && same && have == 1; i++) {
            want = file_content(stored, cross, i);
            same = strcmp(content[i], want) == 0;
            free(want);
        }
        free(cross);
        same = same && have == 1;
        if (same) {
            log_info("ca: using the FRP certificates in %s", dir);
            rc = 0;
            goto out;
        }
        /* An operator's (or HaRP's) set: adopt it; HaRP also left its CA key beside it. */
        path = xasprintf("%s/ca.key", dir);
        files[0].key_pem = read_file(path);
        free(path);
        if (files[0].key_pem == NULL) {
            files[0].key_pem = xstrdup("");
        }
        files[0].cert_pem = xstrdup(content[0]);
        files[1].cert_pem = xstrdup(content[1]);
        files[1].key_pem = xstrdup(content[2]);
        files[2].cert_pem = xstrdup(content[3]);
        files[2].key_pem = xstrdup(content[4]);
        for (i = 0; i < 3; i++) {
            files[i].created_at = (int64_t)time(NULL);
        }
        rc = store_cert_put_all(ctl->store, files, err);
        store_cert_free(files);
        if (rc == 0) {
            log_notice("ca: adopted the FRP certificates found in %s", dir);
        }
        goto out;
    }
    if (present > 0 && have != 1) {
        err_set(err,
                "%s holds only some of ca.crt, server.crt, server.key, client.crt, "
                "client.key: remove the directory to have new certificates generated",
                dir);
        goto out;
    }
    if (present > 0) {
        cross = store_cert_state_get(ctl->store, "cross");
        for (i = 0; i < CA_NFILES; i++) {
            want = file_content(stored, cross, i);
            same = content[i] == NULL || strcmp(content[i], want) == 0;
            free(want);
            if (!same) {
                free(cross);
                err_set(err,
                        "%s/%s differs from the stored certificates and others are "
                        "missing: restore it, or remove the directory",
                        dir, ca_files[i]);
                goto out;
            }
        }
        free(cross);
    }
    if (have != 1) {
        if (ca_generate(ca_lifetime(ctl), stored, err) == -1 ||
            store_cert_put_all(ctl->store, stored, err) == -1) {
            goto out;
        }
        have = 1;
        log_notice("ca: generated the FRP CA and certificates (valid %u days)",
                   ctl->cfg.frp_cert_validity_days);
    }
    cross = store_cert_state_get(ctl->store, "cross");
    rc = write_files(dir, stored, cross, false, err);
    free(cross);
    if (rc == 0) {
        log_notice("ca: FRP certificates written to %s", dir);
    }
out:
    if (have == 1) {
        store_cert_free(stored);
    }
    for (i = 0; i < CA_NFILES; i++) {
        if (content[i] != NULL) {
            secret_wipe(content[i], strlen(content[i]));
            free(content[i]);
        }
    }
    free(dir);
    return rc;
}

long
ca_lifetime(const struct ctl *ctl)
{
    return ctl->cfg.cert_lifetime_seconds > 0 ? (long)ctl->cfg.cert_lifetime_seconds
                                              : (long)ctl->cfg.frp_cert_validity_days * 86400;
}

int64_t
ca_not_after(const char *pem)
{
    X509 *x = pem_cert(pem);
    int64_t t = x != NULL ? (int64_t)asn1_unix(X509_get0_notAfter(x)) : 0;

    X509_free(x);
    return t;
}

int64_t
ca_not_before(const char *pem)
{
    X509 *x = pem_cert(pem);
    int64_t t = x != NULL ? (int64_t)asn1_unix(X509_get0_notBefore(x)) : 0;

    X509_free(x);
    return t;
}

char *
ca_fingerprint(const char *pem)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    char fp[EVP_MAX_MD_SIZE * 2 + 1];
    unsigned mdlen = 0, j;
    X509 *x = pem_cert(pem);

    if (x == NULL || X509_digest(x, EVP_sha256(), md, &mdlen) != 1) {
        X509_free(x);
        return xstrdup("");
    }
    for (j = 0; j < mdlen; j++) {
        snprintf(fp + j * 2, 3, "%02x", md[j]);
    }
    X509_free(x);
    return xstrdup(fp);
}

int
ca_key_sha256(const char *pem, char out[CANON_HASH_HEX])
{
    X509 *x = pem_cert(pem);
    int rc = x != NULL ? canon_pubkey_sha256(X509_get0_pubkey(x), out) : -1;

    X509_free(x);
    return rc;
}

/* --- description ------------------------------------------------------------------------- */

static json_t *
name_text(const X509_NAME *n)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *s;
    json_t *j;

    X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253);
    s = bio_string(b);
    BIO_free(b);
    j = json_string(s);
    free(s);
    return j;
}

static json_int_t
asn1_unix(const ASN1_TIME *t)
{
    struct tm tm;

    memset(&tm, 0, sizeof(tm));
    if (ASN1_TIME_to_tm(t, &tm) != 1) {
        return 0;
    }
    return (json_int_t)timegm(&tm);
}

json_t *
ca_describe(const struct cert_rec recs[3])
{
    static const char *const names[3] = {"ca", "server", "client"};
    json_t *a = json_array(), *o, *sans;
    GENERAL_NAMES *gens;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen, j;
    char fp[EVP_MAX_MD_SIZE * 3 + 1];
    BIGNUM *bn;
    char *serial;
    X509 *x;
    BIO *b;
    int i, k;

    for (i = 0; i < 3; i++) {
        b = BIO_new_mem_buf(recs[i].cert_pem, -1);
        x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        BIO_free(b);
        if (x == NULL) {
            continue;
        }
        X509_digest(x, EVP_sha256(), md, &mdlen);
        for (j = 0; j < mdlen; j++) {
            snprintf(fp + j * 3, 4, "%02X%s", md[j], j + 1 < mdlen ? ":" : "");
        }
        bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
        serial = BN_bn2hex(bn);
        sans = json_array();
        gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
        for (k = 0; gens != NULL && k < sk_GENERAL_NAME_num(gens); k++) {
            GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, k);

            if (g->type == GEN_DNS) {
                json_array_append_new(
                    sans,
                    json_sprintf("DNS:%s", (const char *)ASN1_STRING_get0_data(g->d.dNSName)));
            }
        }
        GENERAL_NAMES_free(gens);
        o = json_pack("{s:s,s:o,s:o,s:o,s:s,s:I,s:I,s:s,s:i,s:b}", "name", names[i], "subject",
                      name_text(X509_get_subject_name(x)), "issuer",
                      name_text(X509_get_issuer_name(x)), "san", sans, "serial", serial,
                      "not_before", asn1_unix(X509_get0_notBefore(x)), "not_after",
                      asn1_unix(X509_get0_notAfter(x)), "sha256", fp, "key_bits",
                      EVP_PKEY_get_bits(X509_get0_pubkey(x)), "key_stored",
                      recs[i].key_pem != NULL && recs[i].key_pem[0] != '\0');
        OPENSSL_free(serial);
        BN_free(bn);
        X509_free(x);
        json_array_append_new(a, o);
    }
    return a;
}
