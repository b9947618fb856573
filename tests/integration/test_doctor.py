# SPDX-License-Identifier: AGPL-3.0-or-later
"""`harp-ctl doctor`: every check passes on a healthy gateway (control plane, a data plane with
the FRP frontend, the real Docker engine, Nextcloud knowing the app, a front proxy that does
its job), and each fault injected alone is found and named with its fix: a wrong shared key on
Nextcloud's side, a wrong NC URL, a front proxy stripping /exapps/, dropping Upgrade, the key
or X-Forwarded-For, not among HP_TRUSTED_PROXY_IPS, or cutting slow requests, an unreachable
engine, an engine whose API is too old, a certificate expiring in 10 days, a data plane on a
stale table. Exit status 0 when all pass, else 1."""
import http.client
import http.server
import json
import os
import signal
import socket
import threading

import pytest

from harness import free_port, wait_for
from helpers.front_proxy import FrontProxy


@pytest.fixture
def doc_gw(make_gateway, docker_engine, tmp_path):
    def make(env=None):
        e = {"HP_FRP_ADDRESS": f"127.0.0.1:{free_port()}", "HP_CERTS_DIR": str(tmp_path / "certs"),
             "HP_DOCKER_SOCKET": docker_engine.sock,
             "HP_TRUSTED_PROXY_IPS": FrontProxy.SOURCE}
        e.update(env or {})
        gw = make_gateway(env=e, dp_args=["--frp"])
        gw.nc.add_app("testapp", gw.backend.port)
        return gw
    return make


def doctor(gw, *args):
    r = gw.ctl.cli("doctor", "--json", *args, timeout=300,
                   env={"HP_EXAPPS_ADDRESS": f"127.0.0.1:{gw.port}"})
    assert r.returncode in (0, 1), r.stderr
    out = json.loads(r.stdout)
    assert out["ok"] is (r.returncode == 0)
    return r.returncode, {c["check"]: c for c in out["checks"]}


def failing(checks):
    return {k: c for k, c in checks.items() if not c["ok"]}


def test_healthy_gateway_passes_every_check(doc_gw):
    gw = doc_gw()
    proxy = FrontProxy(gw.port)
    try:
        rc, checks = doctor(gw, "--public-url", proxy.url + "/", "--read-timeout", "2")
    finally:
        proxy.stop()
    assert rc == 0, failing(checks)
    for name in ("state_dir", "nextcloud", "dataplanes", "engine local", "frp",
                 "certificate frp ca", "certificate frp server", "certificate frp client",
                 "front proxy", "front proxy upgrade", "front proxy read timeout",
                 "trusted proxies"):
        assert checks[name]["ok"], (name, checks.get(name), sorted(checks))
    assert "testapp with this shared key" in checks["nextcloud"]["detail"]
    assert "1 connected" in checks["dataplanes"]["detail"]
    assert "client as 127.0.0.1" in checks["trusted proxies"]["detail"]
    # The text output says the same.
    r = gw.ctl.cli("doctor", env={"HP_EXAPPS_ADDRESS": f"127.0.0.1:{gw.port}"}, timeout=300)
    assert r.returncode == 0 and r.stdout.rstrip().endswith("all checks passed"), r.stdout


def test_wrong_key_on_the_nextcloud_side(doc_gw):
    gw = doc_gw()
    gw.nc.key = "the-key-appapi-holds"
    rc, checks = doctor(gw)
    assert rc == 1
    assert list(failing(checks)) == ["nextcloud"]
    c = checks["nextcloud"]
    assert "not HP_SHARED_KEY" in c["detail"] and "--harp_shared_key" in c["fix"]


def test_no_app_yet_means_the_key_cannot_be_told(make_gateway, tmp_path):
    gw = make_gateway(register=False, env={"HP_CERTS_DIR": str(tmp_path / "certs")})
    gw.nc.key = "another-key"
    _, checks = doctor(gw)
    assert checks["nextcloud"]["ok"] and "once an ExApp is registered" in \
        checks["nextcloud"]["detail"]


@pytest.mark.parametrize("where", ["nothing", "not nextcloud"])
def test_wrong_nextcloud_url(doc_gw, where):
    url = (f"http://127.0.0.1:{free_port()}" if where == "nothing" else None)
    gw = doc_gw(env={"NC_INSTANCE_URL": url} if url else None)
    if url is None:  # the ExApp backend answers, but it is not Nextcloud
        gw.ctl.stop()
        gw.ctl.extra_env = dict(gw.ctl.extra_env,
                                NC_INSTANCE_URL=f"http://127.0.0.1:{gw.backend.port}")
        gw.ctl.start()
        wait_for(lambda: gw.dps[0].connected(), what="the data plane back")
    rc, checks = doctor(gw)
    assert rc == 1 and list(failing(checks)) == ["nextcloud"]
    c = checks["nextcloud"]
    assert ("no answer from" if where == "nothing" else "not Nextcloud's AppAPI") in c["detail"]
    assert "NC_INSTANCE_URL" in c["fix"]


@pytest.mark.parametrize("fault,expect", [
    (dict(strip_prefix=True), "strips /exapps/"),
    (dict(drop=["harp-shared-key"]), "drops or changes the harp-shared-key header"),
    (dict(drop=["upgrade"]), "drops the Upgrade header"),
    (dict(xff=False), "sends no X-Forwarded-For"),
])
def test_front_proxy_faults(doc_gw, fault, expect):
    gw = doc_gw()
    proxy = FrontProxy(gw.port, **fault)
    try:
        rc, checks = doctor(gw, "--public-url", proxy.url)
    finally:
        proxy.stop()
    bad = failing(checks)
    assert rc == 1 and len(bad) == 1, bad
    (c,) = bad.values()
    assert expect in c["detail"], c
    assert c["fix"]


def test_front_proxy_not_among_the_trusted_proxies(doc_gw):
    gw = doc_gw(env={"HP_TRUSTED_PROXY_IPS": "10.9.9.9"})
    proxy = FrontProxy(gw.port)
    try:
        rc, checks = doctor(gw, "--public-url", proxy.url)
    finally:
        proxy.stop()
    assert rc == 1 and list(failing(checks)) == ["trusted proxies"]
    assert checks["trusted proxies"]["fix"] == f"add {FrontProxy.SOURCE} to HP_TRUSTED_PROXY_IPS"


def test_front_proxy_read_timeout_shorter_than_asked(doc_gw):
    gw = doc_gw()
    proxy = FrontProxy(gw.port, read_timeout=1)
    try:
        rc, checks = doctor(gw, "--public-url", proxy.url, "--read-timeout", "4")
    finally:
        proxy.stop()
    assert rc == 1 and list(failing(checks)) == ["front proxy read timeout"]
    assert "proxy_read_timeout" in checks["front proxy read timeout"]["fix"]


def test_unreachable_engine(doc_gw):
    gw = doc_gw()
    r = gw.ctl.cli("engine", "add", "far", "--address", f"tcp://127.0.0.1:{free_port()}",
                   "--port", "24042")
    assert r.returncode == 0, r.stderr
    rc, checks = doctor(gw)
    assert rc == 1 and list(failing(checks)) == ["engine far"]
    assert "unreachable" in checks["engine far"]["detail"]


class OldEngine:
    """The real Docker engine on TCP, as an engine of Docker 19.03 would answer /version
    (API 1.40): every other answer is the real engine's."""

    def __init__(self, sock):
        class Unix(http.client.HTTPConnection):
            def connect(self):
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(30)
                self.sock.connect(sock)

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                c = Unix("docker")
                c.request("GET", self.path)
                r = c.getresponse()
                body = r.read()
                c.close()
                if self.path.split("?")[0].endswith("/version") and r.status == 200:
                    v = json.loads(body)
                    v.update(Version="19.03.15", ApiVersion="1.40", MinAPIVersion="1.12")
                    body = json.dumps(v).encode()
                self.send_response(r.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def test_engine_api_too_old(doc_gw, docker_engine):
    gw = doc_gw()
    old = OldEngine(docker_engine.sock)
    try:
        r = gw.ctl.cli("engine", "add", "old", "--address", f"tcp://127.0.0.1:{old.port}",
                       "--port", "24043")
        assert r.returncode == 0, r.stderr
        rc, checks = doctor(gw)
    finally:
        old.stop()
    assert rc == 1 and list(failing(checks)) == ["engine old"], failing(checks)
    c = checks["engine old"]
    assert "speaks Docker Engine API 1.40" in c["detail"] and "1.41 or later" in c["detail"], c
    assert c["fix"]


def test_certificate_expiring_in_ten_days(doc_gw):
    gw = doc_gw(env={"HP_FRP_CERT_VALIDITY_DAYS": "10"})
    rc, checks = doctor(gw)
    bad = failing(checks)
    assert rc == 1 and bad and all(k.startswith("certificate frp") for k in bad), bad
    assert any("expires in 10 days" in c["detail"] or "expires in 9 days" in c["detail"]
               for c in bad.values())
    assert all("harp-ctl certs rotate" in c["fix"] for c in bad.values())


def test_data_plane_on_a_stale_table(doc_gw):
    gw = doc_gw()
    dp = gw.dps[0]
    dp.proc.send_signal(signal.SIGSTOP)
    try:
        gw.nc.add_app("second", gw.backend.port)
        r = gw.ctl.request("POST", "/exapp_storage/second",
                           {"exapp_token": "second-token-secret", "exapp_version": "1.0.0",
                            "host": "127.0.0.1", "port": gw.backend.port, "routes": []})
        gw.ctl.secrets.append("second-token-secret")
        assert r.status == 204
        rc, checks = doctor(gw)
    finally:
        dp.proc.send_signal(signal.SIGCONT)
    assert rc == 1 and "dataplanes" in failing(checks)
    assert "dp0 applies version" in checks["dataplanes"]["detail"]
    wait_for(dp.connected, what="the data plane catching up")
    rc, checks = doctor(gw)
    assert checks["dataplanes"]["ok"], checks["dataplanes"]


def test_control_plane_down_and_bad_options(ctl_factory, tmp_path):
    ctl = ctl_factory()
    r = ctl.cli("doctor", "--json")  # never started
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["ok"] is False and out["checks"][0]["check"] == "control plane"
    assert "harp-ctl serve" in out["checks"][0]["fix"]
    for bad in (["--read-timeout", "0", "--public-url", "http://x"],
                ["--read-timeout", "121", "--public-url", "http://x"],
                ["--read-timeout", "5"], ["--public-url", "ftp://x"], ["extra"]):
        r = ctl.cli("doctor", *bad)
        assert r.returncode == 2 and r.stderr, (bad, r.stdout)


def test_canary_arguments_and_their_limits(ctl_factory):
    ctl = ctl_factory()
    ctl.start()
    ok = ctl.request("GET", "/doctor/canary?nonce=" + "a" * 64)
    assert ok.status == 200 and ok.json()["harp_canary"] == "a" * 64
    assert ctl.request("GET", "/doctor/canary?nonce=Ab-_9&delay=0").json()["harp_canary"] == "Ab-_9"
    assert ctl.request("GET", "/doctor/canary?nonce=x", key=False).status == 401
    for q, arg in (("nonce=" + "a" * 65, "nonce"), ("", "nonce"), ("nonce=", "nonce"),
                   ("nonce=a%20b", "nonce"), ("nonce=%C3%A9", "nonce"), ("nonce=%FF", "nonce"),
                   ("nonce=a&delay=121", "delay"), ("nonce=a&delay=", "delay"),
                   ("nonce=a&delay=-1", "delay"), ("nonce=a&delay=+5", "delay"),
                   ("nonce=a&delay=%205", "delay"), ("nonce=a&delay=1.5", "delay"),
                   ("nonce=a&delay=0120", "delay"), ("nonce=a&delay=99999999999999999999", "delay")):
        r = ctl.request("GET", "/doctor/canary?" + q)
        assert r.status == 400 and arg in r.text, (q, r.status, r.text)
    assert ctl.check_alive() is None


def test_a_canary_waiting_does_not_hold_up_a_stop(ctl_factory):
    import threading
    import time
    ctl = ctl_factory()
    ctl.start()
    answers = []

    def ask():
        try:
            answers.append(ctl.request("GET", "/doctor/canary?nonce=a&delay=120").status)
        except OSError as e:  # the stop closed the connection before the answer went out
            answers.append(e)

    t = threading.Thread(target=ask, daemon=True)
    t.start()
    wait_for(lambda: "a canary waits 120 s" in ctl.log(), what="the canary waiting")
    start = time.monotonic()
    ctl.stop()
    t.join(60)
    assert answers and answers[0] != 200, answers
    # A stop that waited for the canary would take its 120 s.
    assert time.monotonic() - start < 110
