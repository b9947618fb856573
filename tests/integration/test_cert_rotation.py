# SPDX-License-Identifier: AGPL-3.0-or-later
"""Certificate rotation with an overlap: a new CA beside the old one; the FRP frontend trusts
client certificates of both and presents a chain clients of either verify (the new CA signed
by the old), until the overlap ends. Driven by the tests' frpc (helpers/frpc.py, Python's
OpenSSL) and, when present, the real frpc 0.61.1."""
import json
import shutil
import ssl
import time

import pytest

from harness import free_port, wait_for
from test_frp import (RealFrpc, docker_through, exapp_frpc_dir, get, port_free, real_frpc,
                      tunnel_port, write_real_frpc_dir)

pytest.importorskip("cryptography")
from helpers.frpc import Frpc  # noqa: E402

FILES = ("ca.crt", "client.crt", "client.key")


@pytest.fixture
def frp(make_gateway, tmp_path):
    def make(env=None, **kw):
        port = free_port()
        e = {"HP_FRP_ADDRESS": f"127.0.0.1:{port}", "HP_FRP_DISABLE_TLS": "false",
             "HP_CERTS_DIR": str(tmp_path / "certs")}
        e.update(env or {})
        gw = make_gateway(env=e, dp_args=["--frp"], **kw)
        gw.frp_port = port
        gw.frp_dir = tmp_path / "certs" / "frp"
        return gw
    return make


def copy_files(gw, d):
    d.mkdir()
    for f in FILES:
        shutil.copy(gw.frp_dir / f, d / f)
    return {"ca": str(d / "ca.crt"), "cert": str(d / "client.crt"), "key": str(d / "client.key")}


def status(gw):
    r = gw.ctl.cli("certs", "status", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def logs_in(gw, tls):
    try:
        c = Frpc(gw.frp_port, tls=tls)
        ok = bool(c.login().get("run_id"))
        c.close()
        return ok
    except (ssl.SSLError, OSError, EOFError, AssertionError):
        return False


def test_rotation_keeps_tunnels_and_old_certificates_work_until_the_overlap_ends(frp, tmp_path):
    gw = frp()
    old = copy_files(gw, tmp_path / "old")
    c = Frpc(gw.frp_port, tls=old)
    assert c.login().get("run_id")
    port = tunnel_port()
    assert "error" not in c.new_proxy("kept", port, ("tcp", gw.backend.port))
    assert get(port).status == 200
    assert status(gw)["overlap"] is None

    r = gw.ctl.cli("certs", "rotate")
    assert r.returncode == 0 and "previous CA stays trusted" in r.stdout, r.stdout
    st = status(gw)
    assert st["overlap"]["pending_clients"] == [port] and st["last_renewal_kind"] == "ca"
    assert st["overlap"]["until"] > st["now"] + 6 * 86400  # HP_CERT_OVERLAP_DAYS=7
    new = copy_files(gw, tmp_path / "new")
    assert open(new["ca"]).read() != open(old["ca"]).read()
    # The data plane loads the new files by itself and sees the tunnel on the old chain.
    wait_for(lambda: status(gw)["old_chain_tunnels"] == [port], timeout=60,
             what="the tunnel reported on the old chain")
    assert get(port).status == 200  # the tunnel stays up
    # A new connection with the old files (old CA, old client certificate) works, as one with
    # the new files does, and a mix of both.
    assert logs_in(gw, old)
    assert logs_in(gw, new)
    assert logs_in(gw, {"ca": new["ca"], "cert": old["cert"], "key": old["key"]})
    assert logs_in(gw, {"ca": old["ca"], "cert": new["cert"], "key": new["key"]})
    out = gw.ctl.cli("certs", "status").stdout
    assert f"tunnels on the old chain (port): {port}" in out and "overlap: the previous" in out

    # The overlap ends (an operator's finish here; HP_CERT_OVERLAP_DAYS otherwise).
    r = gw.ctl.cli("certs", "finish")
    assert r.returncode == 0, r.stderr
    assert status(gw)["overlap"] is None
    assert not (gw.frp_dir / "ca-previous.crt").exists()
    assert not logs_in(gw, old)
    assert not logs_in(gw, {"ca": new["ca"], "cert": old["cert"], "key": old["key"]})
    wait_for(lambda: "TLS handshake with 127.0.0.1 failed" in gw.dps[0].log(),
             what="the data plane's log of the refusal")  # the client may tell first
    assert logs_in(gw, new)
    assert get(port).status == 200  # the session opened before is not cut
    assert gw.ctl.cli("certs", "finish").returncode != 0  # nothing left to finish
    c.close()


def key_sha256(ca_file):
    """SHA-256 of the DER public key of the certificate in <ca_file>, in hex."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    import hashlib
    k = x509.load_pem_x509_certificate(open(ca_file, "rb").read()).public_key()
    return hashlib.sha256(k.public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)).hexdigest()


def tunnel_issuers(gw):
    r = gw.ctl.cli("tunnel", "list", "--json")
    assert r.returncode == 0, r.stderr
    return {t["port"]: t["issuer_key"] for t in json.loads(r.stdout)["tunnels"]}


def test_overlap_ends_by_itself_when_every_known_client_moved(frp, tmp_path):
    # Whether a client moved is told by the key that signed its certificate, not by the time
    # its tunnel came up: the whole sequence may fall within one second of the rotation.
    gw = frp()
    old = copy_files(gw, tmp_path / "old")
    c = Frpc(gw.frp_port, tls=old)
    assert c.login().get("run_id")
    port = tunnel_port()
    assert "error" not in c.new_proxy("moving", port, ("tcp", gw.backend.port))
    wait_for(lambda: tunnel_issuers(gw).get(port) == key_sha256(old["ca"]),
             what="the tunnel reported with its issuer's key")
    time.sleep(1 - time.time() % 1)  # at the start of a second, for the rest to fit in it
    assert gw.ctl.cli("certs", "rotate").returncode == 0
    assert status(gw)["overlap"]["pending_clients"] == [port]
    c.close()
    wait_for(lambda: port_free(port), what="the old tunnel closed")
    # The client comes back with the renewed files: it moved, and was the only one known.
    new = copy_files(gw, tmp_path / "new")
    assert key_sha256(new["ca"]) != key_sha256(old["ca"])
    c = Frpc(gw.frp_port, tls=new)
    assert c.login().get("run_id")
    assert "error" not in c.new_proxy("moving", port, ("tcp", gw.backend.port))
    wait_for(lambda: tunnel_issuers(gw).get(port) == key_sha256(new["ca"]),
             what="the tunnel reported with the new CA's key")
    wait_for(lambda: status(gw)["overlap"] is None, timeout=120,
             what="the overlap ended once the client moved")
    wait_for(lambda: "every known client moved" in gw.ctl.log(), what="the reason logged")
    c.close()


def test_overlap_days_setting_and_rotate_now(frp, tmp_path):
    # An overlap of 0 days is none: the old certificates are refused at once; --now also
    # closes the sessions they opened.
    gw = frp(env={"HP_CERT_OVERLAP_DAYS": "0"})
    old = copy_files(gw, tmp_path / "old")
    assert gw.ctl.cli("certs", "rotate").returncode == 0
    assert status(gw)["overlap"] is None
    assert not logs_in(gw, old)
    c = Frpc(gw.frp_port, tls=copy_files(gw, tmp_path / "new"))
    assert c.login().get("run_id")
    port = tunnel_port()
    assert "error" not in c.new_proxy("cut", port, ("tcp", gw.backend.port))
    assert gw.ctl.cli("certs", "rotate", "--now").returncode == 0
    wait_for(lambda: port_free(port), timeout=60, what="the session of the revoked CA closed")
    assert "certificates rotated" in gw.dps[0].log()
    assert gw.ctl.cli("certs", "show", "--now").returncode == 2


def test_real_frpc_rotation_with_overlap(frp, docker_engine, tmp_path):
    """The real frpc: its tunnel stays up across a rotation; a second frpc with the old files
    logs in during the overlap and is refused after it; with the files `engine frpc` writes
    a third one logs in."""
    real_frpc()
    gw = frp(register=False)
    out = tmp_path / "remote1"
    write_real_frpc_dir(gw, "remote1", out, docker_engine.sock)
    eng = RealFrpc(out)
    runs = [eng]
    try:
        wait_for(lambda: docker_through(gw, 24001), timeout=60, what="Docker through the tunnel")
        assert gw.ctl.cli("certs", "rotate").returncode == 0
        assert status(gw)["overlap"]["pending_clients"] == [24001]
        wait_for(lambda: status(gw)["old_chain_tunnels"] == [24001], timeout=60,
                 what="the tunnel reported on the old chain")
        # An ExApp's frpc with the old files (as its container holds them) during the overlap.
        port = tunnel_port()
        app = exapp_frpc_dir(gw, out, tmp_path / "app", port)
        runs.append(RealFrpc(app))
        wait_for(lambda: not port_free(port), timeout=60, what="the old-file frpc's proxy")
        wait_for(lambda: "start proxy success" in runs[-1].output(), what="frpc told of it")
        assert docker_through(gw, 24001)
        runs[-1].kill9()
        wait_for(lambda: port_free(port), what="its tunnel closed")

        assert gw.ctl.cli("certs", "finish").returncode == 0
        mark, dp_mark = len(RealFrpc.log_of(app)), len(gw.dps[0].log())
        runs.append(RealFrpc(app))
        # frpc words the refusal as the TLS error or as yamux's "session shutdown", depending
        # on which side of the handshake notices first.
        wait_for(lambda: "connect to server error" in runs[-1].output()[mark:] or
                 "login to server failed" in runs[-1].output()[mark:],
                 timeout=60, what="the old files refused after the overlap")
        wait_for(lambda: "TLS handshake with 127.0.0.1 failed" in gw.dps[0].log()[dp_mark:],
                 what="the data plane's log of the refusal")
        assert "start proxy success" not in runs[-1].output()[mark:]
        assert port_free(port)
        runs[-1].kill9()
        again = tmp_path / "again"
        assert gw.ctl.cli("engine", "frpc", "remote1", str(again), "--server",
                          f"127.0.0.1:{gw.frp_port}").returncode == 0
        for f in FILES:
            shutil.copy(again / f, app / f)
        runs.append(RealFrpc(app))
        wait_for(lambda: not port_free(port), timeout=60, what="the renewed frpc's proxy")
        assert docker_through(gw, 24001) and eng.p.poll() is None  # never cut
    finally:
        for r in runs:
            r.kill9()


@pytest.mark.parametrize("var,value,ok", [
    ("HP_CERT_OVERLAP_DAYS", "3650", True), ("HP_CERT_OVERLAP_DAYS", "3650.01", False),
    ("HP_CERT_OVERLAP_DAYS", "0.5", True), ("HP_CERT_OVERLAP_DAYS", "-1", False),
    ("HP_CERT_LIFETIME_SECONDS", "3153600000", True),
    ("HP_CERT_LIFETIME_SECONDS", "3153600001", False),
])
def test_lifecycle_settings_limits(tmp_path, var, value, ok):
    from test_config import env_for, run_ctl
    r = run_ctl(["config", "check"], env_for(tmp_path, **{var: value}), timeout=10)
    assert r.returncode == (0 if ok else 2), r.stderr
    if not ok:
        assert var in r.stderr


def test_rotate_body_is_checked(ctl):
    for body in (b"[]", b'{"now": 1}', b"{"):
        r = ctl.request("POST", "/api/v1/certs/rotate", body)
        assert r.status == 400, body
    assert ctl.request("POST", "/api/v1/certs/rotate", b'{"now": false}').status == 200
    # No tunnel, engine or container waits for the new files: the overlap ends by itself.
    wait_for(lambda: ctl.request("GET", "/api/v1/certs/status").json()["overlap"] is None,
             what="the overlap with no known client ended")
    assert ctl.request("POST", "/api/v1/certs/finish").status == 409
