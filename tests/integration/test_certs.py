# SPDX-License-Identifier: AGPL-3.0-or-later
"""The FRP certificate authority: what harp-ctl serve generates, keeps and writes to
$HP_CERTS_DIR/frp, checked with openssl and by a real mutual-TLS handshake."""
import json
import os
import socket
import ssl
import stat
import subprocess
import threading

import pytest

from harness import Ctl

FILES = ["ca.crt", "server.crt", "server.key", "client.crt", "client.key"]


def openssl(*args, data=None):
    r = subprocess.run(["openssl", *args], input=data, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def frp_dir(ctl):
    return os.path.join(ctl.workdir, "certs", "frp")


def show(ctl):
    r = ctl.cli("certs", "show", "--json")
    assert r.returncode == 0, r.stderr
    return {c["name"]: c for c in json.loads(r.stdout)["certificates"]}


def test_generated_at_first_start_as_haRP_does(ctl_factory):
    ctl = ctl_factory(env={"HP_FRP_CERT_VALIDITY_DAYS": "30"}).start()
    d = frp_dir(ctl)
    assert sorted(os.listdir(d)) == sorted(FILES)  # the CA key stays in the store
    for f in FILES:
        mode = stat.S_IMODE(os.stat(os.path.join(d, f)).st_mode)
        assert mode == (0o600 if f.endswith(".key") else 0o644), f
    ca, srv, cli = (os.path.join(d, f) for f in ("ca.crt", "server.crt", "client.crt"))
    assert openssl("verify", "-CAfile", ca, srv, cli).count(": OK") == 2
    for path, cn, san in ((ca, "harp.nc", None), (srv, "harp.nc", "DNS:harp.nc"),
                          (cli, "harp.client.nc", "DNS:harp.client.nc")):
        text = openssl("x509", "-in", path, "-noout", "-text")
        assert f"Subject: CN = {cn}" in text and "Issuer: CN = harp.nc" in text
        assert "Public-Key: (2048 bit)" in text and "sha256WithRSAEncryption" in text
        assert "Extended Key Usage" not in text  # Go's frpc checks EKU when present
        if san:
            assert san in text and "CA:FALSE" in text
        else:
            assert "CA:TRUE" in text
    for key, crt in (("server.key", srv), ("client.key", cli)):
        assert openssl("pkey", "-in", os.path.join(d, key), "-pubout") == \
            openssl("x509", "-in", crt, "-noout", "-pubkey")
    certs = show(ctl)
    assert set(certs) == {"ca", "server", "client"}
    assert certs["server"]["san"] == ["DNS:harp.nc"]
    assert certs["client"]["subject"] == "CN=harp.client.nc"
    assert certs["ca"]["not_after"] - certs["ca"]["not_before"] == 30 * 86400
    fp = openssl("x509", "-in", srv, "-noout", "-fingerprint", "-sha256").split("=")[1].strip()
    assert certs["server"]["sha256"] == fp
    log = ctl.log()
    for f in ("server.key", "client.key"):
        with open(os.path.join(d, f)) as fh:
            body = fh.read().splitlines()[1]
        assert body not in log


def test_certificates_work_for_mutual_tls(ctl):
    d = frp_dir(ctl)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(os.path.join(d, "server.crt"), os.path.join(d, "server.key"))
    server.load_verify_locations(os.path.join(d, "ca.crt"))
    server.verify_mode = ssl.CERT_REQUIRED
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_cert_chain(os.path.join(d, "client.crt"), os.path.join(d, "client.key"))
    client.load_verify_locations(os.path.join(d, "ca.crt"))
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    seen = {}

    def serve():
        conn, _ = lsock.accept()
        with server.wrap_socket(conn, server_side=True) as s:
            seen["peer"] = s.getpeercert()["subject"]
            s.sendall(b"ok")

    t = threading.Thread(target=serve)
    t.start()
    with client.wrap_socket(socket.create_connection(lsock.getsockname()),
                            server_hostname="harp.nc") as c:  # frpc's serverName
        assert c.recv(2) == b"ok"
    t.join()
    lsock.close()
    assert seen["peer"] == ((("commonName", "harp.client.nc"),),)


def test_kept_across_restarts_and_rewritten_from_the_store(ctl_factory):
    ctl = ctl_factory().start()
    d = frp_dir(ctl)
    before = show(ctl)
    ctl.stop()
    ctl.start()
    assert show(ctl) == before
    ctl.stop()
    os.remove(os.path.join(d, "client.key"))
    os.remove(os.path.join(d, "ca.crt"))
    ctl.start()
    assert show(ctl) == before  # the same certificates, written back
    assert sorted(os.listdir(d)) == sorted(FILES)


def test_files_an_operator_provides_are_used_not_replaced(ctl_factory, tmp_path):
    # A set made as HaRP's start script makes it (openssl command line), ca.key included.
    d = tmp_path / "ctl0" / "certs" / "frp"
    d.mkdir(parents=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "ca.key"),
            "-out", str(d / "ca.crt"), "-days", "10", "-subj", "/CN=harp.nc")
    for name, cn in (("server", "harp.nc"), ("client", "harp.client.nc")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / f"{name}.key"),
                "-out", str(d / f"{name}.csr"), "-subj", f"/CN={cn}")
        ext = tmp_path / f"{name}.ext"
        ext.write_text(f"subjectAltName=DNS:{cn}\n")
        openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.crt"),
                "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-out", str(d / f"{name}.crt"),
                "-days", "10", "-sha256", "-extfile", str(ext))
    original = {f: (d / f).read_bytes() for f in FILES}
    ctl = ctl_factory().start()
    assert {f: (d / f).read_bytes() for f in FILES} == original
    fp = openssl("x509", "-in", str(d / "client.crt"), "-noout", "-fingerprint", "-sha256")
    assert show(ctl)["client"]["sha256"] == fp.split("=")[1].strip()
    assert "adopted the FRP certificates" in ctl.log()
    r = ctl.cli("certs", "export", str(tmp_path / "out"))
    assert r.returncode == 0
    assert (tmp_path / "out" / "client.key").read_bytes() == original["client.key"]


def test_an_incomplete_set_stops_the_start(ctl_factory, tmp_path):
    d = tmp_path / "ctl0" / "certs" / "frp"
    d.mkdir(parents=True)
    (d / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    ctl = ctl_factory()
    with pytest.raises(AssertionError):
        ctl.start()
    assert ctl.proc.wait(timeout=60) == 1
    assert "holds only some of" in ctl.log()
    assert os.listdir(d) == ["ca.crt"]  # nothing written over or beside it


def test_rotate_and_export(ctl_factory, tmp_path):
    ctl = ctl_factory().start()
    d = frp_dir(ctl)
    old = show(ctl)
    old_key = open(os.path.join(d, "client.key")).read()
    r = ctl.cli("certs", "rotate")
    assert r.returncode == 0 and "rotated" in r.stdout
    new = show(ctl)
    for n in ("ca", "server", "client"):
        assert new[n]["sha256"] != old[n]["sha256"]
    assert open(os.path.join(d, "client.key")).read() != old_key
    assert openssl("verify", "-CAfile", os.path.join(d, "ca.crt"),
                   os.path.join(d, "client.crt")).strip().endswith("OK")
    out = tmp_path / "export"
    r = ctl.cli("certs", "export", str(out))
    assert r.returncode == 0
    assert sorted(os.listdir(out)) == ["ca.crt", "client.crt", "client.key"]
    assert stat.S_IMODE(os.stat(out / "client.key").st_mode) == 0o600
    for f in ("ca.crt", "client.crt", "client.key"):
        assert (out / f).read_bytes() == open(os.path.join(d, f), "rb").read()
    ctl.stop()
    ctl.start()
    assert show(ctl) == new  # rotation survives a restart


def test_tls_disabled_means_no_certificates(ctl_factory, tmp_path):
    ctl = ctl_factory(env={"HP_FRP_DISABLE_TLS": "true"}).start()
    assert not os.path.exists(frp_dir(ctl))
    r = ctl.cli("certs", "show")
    assert r.returncode == 0 and "disabled" in r.stdout
    r = ctl.cli("certs", "export", str(tmp_path / "x"))
    assert r.returncode == 1 and "disabled" in r.stderr
    r = ctl.cli("certs", "rotate")
    assert r.returncode == 1 and "disabled" in r.stderr
    assert ctl.cli("certs").returncode == 2
