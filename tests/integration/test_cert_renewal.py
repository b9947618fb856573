# SPDX-License-Identifier: AGPL-3.0-or-later
"""Automatic renewal: with certificates valid 2 minutes (HP_CERT_LIFETIME_SECONDS, test-only)
the CA and the leaves renew by themselves at two thirds of their life, the previous CA is
trusted until it expires, and no tunnel request, new FRP login or HTTPS connection fails
across it."""
import json
import shutil
import subprocess
import ssl
import threading
import time

import pytest

from harness import free_port, http_request, wait_for
from test_cert_https import Conn, install, make_pem
from test_frp import get, tunnel_port

pytest.importorskip("cryptography")
from helpers.frpc import Frpc  # noqa: E402

LIFETIME = 120


def status(gw):
    r = gw.ctl.cli("certs", "status", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_renewal_by_itself_with_a_two_minute_validity(make_gateway, tmp_path):
    certs = tmp_path / "certs"
    certs.mkdir()
    install(certs, make_pem(certs, "https", "localhost"))
    frp_port, https_port = free_port(), free_port()
    gw = make_gateway(env={"HP_FRP_ADDRESS": f"127.0.0.1:{frp_port}",
                           "HP_FRP_DISABLE_TLS": "false", "HP_CERTS_DIR": str(certs),
                           "HP_EXAPPS_HTTPS_ADDRESS": f"127.0.0.1:{https_port}",
                           "HP_CERT_LIFETIME_SECONDS": str(LIFETIME)},
                      dp_args=["--frp"])
    d = certs / "frp"
    live = {"ca": str(d / "ca.crt"), "cert": str(d / "client.crt"), "key": str(d / "client.key")}
    first = tmp_path / "first"
    first.mkdir()
    for f in ("ca.crt", "client.crt", "client.key"):
        shutil.copy(d / f, first / f)
    st = status(gw)
    ca0 = {c["name"]: c["sha256"] for c in st["certificates"]}
    assert st["automatic"] and st["lifetime_seconds"] == LIFETIME
    assert st["next_renewal"]["ca"] - st["certificates"][0]["not_before"] == LIFETIME * 2 // 3
    out = gw.ctl.cli("certs", "status").stdout
    assert "days left" in out and "renewal: automatic" in out

    c = Frpc(frp_port, tls=live)
    assert c.login().get("run_id")
    port = tunnel_port()
    assert "error" not in c.new_proxy("steady", port, ("tcp", gw.backend.port))
    failures, counts, stop = [], {"tunnel": 0, "https": 0, "login": 0}, threading.Event()

    def tunnel_loop():
        while not stop.is_set():
            try:
                assert get(port, timeout=30).status == 200
                counts["tunnel"] += 1
            except Exception as e:  # noqa: BLE001
                failures.append(("tunnel", repr(e)))
            time.sleep(0.2)

    def https_loop():
        while not stop.is_set():
            try:
                conn = Conn(https_port)
                assert conn.get("/exapps/testapp/public/x") == b"200"
                conn.close()
                counts["https"] += 1
            except Exception as e:  # noqa: BLE001
                failures.append(("https", repr(e)))
            time.sleep(0.2)

    def login_loop():
        # A new frpc connection with the files as they are now (the local engine's case).
        while not stop.is_set():
            for attempt in range(3):
                try:
                    n = Frpc(frp_port, tls=live)
                    assert n.login().get("run_id")
                    n.close()
                    counts["login"] += 1
                    break
                except (ssl.SSLError, OSError, EOFError, AssertionError) as e:
                    # Files read while being replaced one by one: the next try reads them whole.
                    if attempt == 2:
                        failures.append(("login", repr(e)))
                    time.sleep(0.5)
            time.sleep(1)

    threads = [threading.Thread(target=f) for f in (tunnel_loop, https_loop, login_loop)]
    for t in threads:
        t.start()
    try:
        # The CA renews by itself (a rotation with an overlap), then the overlap ends when the
        # previous CA expires: the session opened before stays up.
        wait_for(lambda: status(gw)["last_renewal"] > 0, timeout=LIFETIME * 2,
                 what="a renewal by itself")
        st = status(gw)
        assert st["last_renewal_kind"] == "ca" and st["overlap"] is not None
        assert {c["name"]: c["sha256"] for c in st["certificates"]}["ca"] != ca0["ca"]
        assert st["overlap"]["until"] == st["overlap"]["previous_ca_not_after"]
        wait_for(lambda: status(gw)["overlap"] is None, timeout=LIFETIME * 2,
                 what="the overlap's end when the previous CA expires")
        time.sleep(3)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert failures == []
    assert min(counts.values()) > 0, counts
    assert get(port).status == 200
    with pytest.raises((ssl.SSLError, OSError, EOFError, AssertionError)):
        Frpc(frp_port, tls={k: str(first / v) for k, v in
                            (("ca", "ca.crt"), ("cert", "client.crt"),
                             ("key", "client.key"))}).login()
    assert "ca: new FRP CA" in gw.ctl.log() and "(the overlap ended)" in gw.ctl.log()
    c.close()
    assert http_request(("127.0.0.1", gw.port), "GET", "/exapps/testapp/public/y", None,
                        {}).status == 200


def test_leaves_renew_under_the_same_ca(ctl_factory, tmp_path):
    """An adopted set (ca.key beside it) whose leaves are valid 60 s under a 10-day CA: the
    leaves renew by themselves, signed by the same CA, with no overlap."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    d = tmp_path / "ctl0" / "certs" / "frp"
    d.mkdir(parents=True)
    now = datetime.datetime.now(datetime.timezone.utc)

    def key():
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def pem_key(k):
        return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())

    def cert(cn, k, issuer_name, issuer_key, life, ca):
        b = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
             .issuer_name(issuer_name).public_key(k.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(seconds=5))
             .not_valid_after(now + datetime.timedelta(seconds=life))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=ca))
        b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(k.public_key()),
                            critical=False)
        if not ca:
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
            b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                issuer_key.public_key()), critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    ca_key = key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "harp.nc")])
    ca = cert("harp.nc", ca_key, ca_name, ca_key, 10 * 86400, True)
    (d / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (d / "ca.key").write_bytes(pem_key(ca_key))
    for name, cn in (("server", "harp.nc"), ("client", "harp.client.nc")):
        k = key()
        (d / f"{name}.key").write_bytes(pem_key(k))
        (d / f"{name}.crt").write_bytes(cert(cn, k, ca_name, ca_key, 60, False)
                                        .public_bytes(serialization.Encoding.PEM))
    ctl = ctl_factory(env={"HP_CERT_LIFETIME_SECONDS": str(LIFETIME)}).start()
    before = {c["name"]: c for c in json.loads(
        ctl.cli("certs", "status", "--json").stdout)["certificates"]}
    wait_for(lambda: json.loads(ctl.cli("certs", "status", "--json").stdout)
             ["last_renewal_kind"] == "leaves", timeout=LIFETIME, what="the leaves renewed")
    st = json.loads(ctl.cli("certs", "status", "--json").stdout)
    after = {c["name"]: c for c in st["certificates"]}
    assert st["overlap"] is None
    assert after["ca"]["sha256"] == before["ca"]["sha256"]
    for n in ("server", "client"):
        assert after[n]["sha256"] != before[n]["sha256"]
        assert after[n]["not_after"] - after[n]["not_before"] == LIFETIME
    r = subprocess.run(["openssl", "verify", "-CAfile", str(d / "ca.crt"), str(d / "server.crt"),
                        str(d / "client.crt")], capture_output=True, text=True)
    assert r.stdout.count(": OK") == 2, r.stdout + r.stderr
