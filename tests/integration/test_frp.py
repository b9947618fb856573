# SPDX-License-Identifier: AGPL-3.0-or-later
"""The FRP frontend of harp-dp --frp, driven by two independent clients: ours
(helpers/frpc.py: TLS, yamux flow control, piping to local targets) and minifrpc.py from the
protocol notes (plain TCP)."""
import hashlib
import json
import os
import shutil
import socket
import subprocess
import time

import pytest

from harness import SRCDIR, Dp, free_port, http_request, tunnel_port, wait_for
from helpers.backends import pattern_sha256

pytest.importorskip("cryptography")
from helpers.frpc import Frpc  # noqa: E402

KEY = "test-shared-key-0123"
MINIFRPC = os.path.join(SRCDIR, "tests", "fixtures", "frp-vectors", "tools", "minifrpc.py")


@pytest.fixture
def frp(make_gateway, tmp_path):
    def make(tls=True, env=None, **kw):
        port = free_port()
        e = {"HP_FRP_ADDRESS": f"127.0.0.1:{port}", "HP_FRP_DISABLE_TLS": "false" if tls else "true",
             "HP_CERTS_DIR": str(tmp_path / "certs")}
        e.update(env or {})
        gw = make_gateway(env=e, dp_args=["--frp"], **kw)
        gw.frp_port = port
        d = tmp_path / "certs" / "frp"
        gw.tls = {"ca": str(d / "ca.crt"), "cert": str(d / "client.crt"),
                  "key": str(d / "client.key")} if tls else None
        return gw
    return make


def client(gw, **kw):
    kw.setdefault("tls", gw.tls)
    return Frpc(gw.frp_port, **kw)


def get(port, path="/x", timeout=10):
    return http_request(("127.0.0.1", port), "GET", path, None, {}, timeout=timeout)


def download_ok(port, size, timeout=None):
    """GET /big?size=<size> through <port>: the whole pattern body arrived byte-exact."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(f"GET /big?size={size} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    h, head = hashlib.sha256(), b""
    while b"\r\n\r\n" not in head:
        head += s.recv(65536)
    head, body = head.split(b"\r\n\r\n", 1)
    h.update(body)
    got = len(body)
    while got < size:
        b = s.recv(1 << 20)
        if not b:
            break
        h.update(b)
        got += len(b)
    s.close()
    return got == size and h.hexdigest() == pattern_sha256(size)


def port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def test_mutual_tls_login_proxy_and_requests(frp):
    gw = frp(tls=True)
    c = client(gw)
    assert c.login().get("run_id")
    port = tunnel_port()
    r = c.new_proxy("exapp-a", port, ("tcp", gw.backend.port))
    assert r == {"proxy_name": "exapp-a", "remote_addr": f":{port}"}
    for i in range(5):
        r = get(port, f"/through/{i}?q=1")
        assert r.status == 200 and r.json()["path"] == f"/through/{i}?q=1"
    # Operators see it.
    out = gw.ctl.cli("tunnel", "list", "--json")
    tunnels = json.loads(out.stdout)["tunnels"]
    assert [(t["name"], t["port"], t["peer"], t["dp_id"]) for t in tunnels] == \
        [("exapp-a", port, "127.0.0.1", "dp0")]
    c.close()
    wait_for(lambda: port_free(port), what="the port released when the client goes")
    wait_for(lambda: json.loads(gw.ctl.cli("tunnel", "list", "--json").stdout)["tunnels"] == [],
             what="the tunnel reported down")


def test_data_plane_started_before_the_certificates_serves_and_loads_them_later(frp, tmp_path):
    """A data plane whose certificates directory is still empty (harp-ctl has not written it
    yet) starts and takes its table, closes TLS logins, and takes the certificates when they appear."""
    gw = frp(tls=True)
    empty, port = tmp_path / "later", free_port()
    dp = Dp(gw.ctl, free_port(), "early", args=["--frp"],
            env={"HP_CERTS_DIR": str(empty), "HP_FRP_ADDRESS": f"127.0.0.1:{port}"}).start()
    try:
        assert "TLS connections are closed until they are there" in dp.log()
        with pytest.raises((ssl_error(), OSError, EOFError, AssertionError)):
            Frpc(port, tls=gw.tls).login()
        shutil.copytree(tmp_path / "certs", empty)
        c = Frpc(port, tls=gw.tls)
        assert c.login().get("run_id")
        c.close()
        assert "frp: certificates in" in dp.log()
        dp.check_alive()
    finally:
        dp.stop()


def test_first_byte_0x17(frp):
    gw = frp(tls=True)
    c = client(gw, first_byte=True)
    assert c.login().get("run_id")
    port = tunnel_port()
    assert "error" not in c.new_proxy("b", port, ("tcp", gw.backend.port))
    assert get(port).status == 200
    c.close()


def test_tls_without_client_certificate_or_without_tls_is_refused(frp):
    gw = frp(tls=True)
    with pytest.raises((ssl_error(), OSError, EOFError, AssertionError)):
        c = client(gw, tls={"ca": gw.tls["ca"]})
        c.login()
    with pytest.raises((OSError, EOFError, AssertionError)):
        c = client(gw, tls=None)
        c.login()
    # A certificate from another CA.
    other = gw.ctl.workdir + "/other"
    os.makedirs(other)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    f"{other}/k", "-out", f"{other}/c", "-days", "1", "-subj",
                    "/CN=harp.client.nc"], check=True, capture_output=True)
    with pytest.raises((ssl_error(), OSError, EOFError, AssertionError)):
        c = client(gw, tls={"ca": gw.tls["ca"], "cert": f"{other}/c", "key": f"{other}/k"})
        c.login()
    wait_for(lambda: "TLS handshake" in gw.dps[0].log() or "non-TLS" in gw.dps[0].log(),
             what="the data plane's log of the refusal")  # the client may tell first


def ssl_error():
    import ssl
    return ssl.SSLError


def test_plain_mode_with_minifrpc(frp):
    gw = frp(tls=False, key="sekrit")  # minifrpc sends metas.token "sekrit"
    port = tunnel_port()
    # -u: the helper is killed at the end, and what it printed must not die in its buffer.
    p = subprocess.Popen(["/usr/bin/python3", "-u", MINIFRPC, "--port",
                          str(gw.frp_port), "--proxy", f"test-exapp:{port}", "--seconds", "600"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: not port_free(port), what="minifrpc's proxy bound")
        r = get(port, "/")
        assert (r.status, r.body) == (200, b"hello from minifrpc\n")
        assert get(port, "/").body == b"hello from minifrpc\n"
    finally:
        p.kill()
        out = p.communicate()[0]
    assert "< LoginResp 1 {'version': '0.61.1', 'run_id':" in out
    assert f"'remote_addr': ':{port}'" in out
    wait_for(lambda: port_free(port), what="port released")


def test_plain_client_refused_by_tls_frontend_and_tls_by_plain(frp):
    gw = frp(tls=False)
    with pytest.raises((OSError, EOFError, AssertionError, Exception)):
        c = client(gw, tls={"ca": "/etc/ssl/certs/ca-certificates.crt"})
        c.login()
    c = client(gw)
    assert c.login().get("run_id")


def test_wrong_token_fails_and_counts_towards_a_ban(frp):
    gw = frp(tls=False, env={"HP_BLACKLIST_COUNT": "2"})
    r = client(gw).login(meta_token="wrong")
    assert r == {"version": "0.61.1", "error": "send Login request to plugin error"}
    r = client(gw).login(meta_token="")
    assert r["error"] == "send Login request to plugin error"
    wait_for(lambda: gw.ctl.request("GET", "/api/v1/bans").json()["bans"], what="ban")
    assert gw.ctl.request("GET", "/api/v1/bans").json()["bans"][0]["ip"] == "127.0.0.1"
    time.sleep(0.3)  # the ban reaches the data plane
    r = client(gw).login()  # even the right token, from a banned address
    assert r["error"] == "banned"


def test_port_rules(frp):
    gw = frp(tls=False)
    c = client(gw)
    c.login()
    r = c.new_proxy("far", 25000, ("tcp", gw.backend.port))
    assert r == {"proxy_name": "far", "error": "port not allowed"}
    port = tunnel_port()
    assert "error" not in c.new_proxy("one", port, ("tcp", gw.backend.port))
    r = c.new_proxy("two", tunnel_port(), ("tcp", gw.backend.port))
    assert r["error"] == "exceed the max_ports_per_client"
    d = client(gw)
    d.login()
    assert d.new_proxy("other", port, ("tcp", 1))["error"] == "port already used"
    e = client(gw)
    e.login()
    assert e.new_proxy("one", tunnel_port(), ("tcp", 1))["error"] == "proxy [one] already exists"
    with socket.socket() as s:  # a port held by something else
        held = tunnel_port()
        s.bind(("127.0.0.1", held))
        s.listen()
        f = client(gw)
        f.login()
        assert f.new_proxy("held", held, ("tcp", 1))["error"] == "port unavailable"
    # Engines' ports are allowed too.
    g = client(gw)
    g.login()
    assert "error" not in g.new_proxy("engine", tunnel_port(24001, 24099), ("tcp", 1))


def test_reconnect_with_run_id_gets_the_port_back(frp):
    gw = frp(tls=True)
    c = client(gw)
    run_id = c.login()["run_id"]
    port = tunnel_port()
    assert "error" not in c.new_proxy("re", port, ("tcp", gw.backend.port))
    # A new login with the same run_id replaces the old control before it is answered.
    d = client(gw, run_id=run_id)
    assert d.login()["run_id"] == run_id
    assert d.new_proxy("re", port, ("tcp", gw.backend.port)) == \
        {"proxy_name": "re", "remote_addr": f":{port}"}
    assert get(port).status == 200
    wait_for(lambda: c.ctl.fin, what="the replaced control stream ends")


def test_one_gib_through_a_tunnel_in_constant_memory(frp):
    gw = frp(tls=False)
    c = client(gw)
    c.login()
    port = tunnel_port()
    c.new_proxy("big", port, ("tcp", gw.backend.port))
    size = 1 << 30
    assert download_ok(port, size)
    assert gw.dps[0].rss_peak_kib() < 32 * 1024


def test_work_connection_without_answer_is_closed(frp):
    gw = frp(tls=False, env={"HP_TIMEOUT_SERVER": "2s"})
    c = client(gw)
    c.login()
    c.silent_work = True  # frpc whose local socket is down: it never writes or closes
    port = tunnel_port()
    c.new_proxy("mute", port, ("tcp", 1))
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    s.settimeout(60)
    assert s.recv(100) == b""  # closed by harp, not left hanging
    assert 1.5 < time.monotonic() - t0
    s.close()


def test_exapp_reached_through_a_tunnel(frp):
    gw = frp(tls=True, register=False)
    c = client(gw)
    c.login()
    port = tunnel_port()
    c.new_proxy("tunnelled-app", port, ("tcp", gw.backend.port))
    gw.register(app_id="tunnelled-app", port=port,
                routes=[{"url": "^/public", "access_level": 0}])
    r = gw.get("/exapps/tunnelled-app/public/page?x=1")
    assert r.status == 200
    seen = r.json()
    assert seen["path"] == "/public/page?x=1"
    assert dict((k.lower(), v) for k, v in seen["headers"])["ex-app-id"] == "tunnelled-app"


def test_docker_engine_through_a_tunnel(frp, docker_engine):
    gw = frp(tls=True, register=False)
    assert gw.ctl.cli("engine", "add", "remote").returncode == 0  # port 24001: a tunnel
    c = client(gw)
    c.login()
    r = c.new_proxy("remote-engine", 24001, ("unix", docker_engine.sock))
    assert r == {"proxy_name": "remote-engine", "remote_addr": ":24001"}
    r = http_request(("127.0.0.1", gw.port), "POST", "/exapps/app_api/docker/exapp/exists",
                     b'{"name": "nobody"}', {"harp-shared-key": KEY,
                                             "docker-engine-port": "24001"})
    assert (r.status, r.json()) == (200, {"exists": False})

    def remote():
        engines = json.loads(gw.ctl.cli("engine", "list", "--json").stdout)["engines"]
        return [e for e in engines if e["name"] == "remote"][0]

    # The data plane lowers a newer client API version once the engine's is known (probed by
    # the control plane and published): until then the call goes through as written.
    wait_for(lambda: remote().get("api_version"), timeout=60, what="the engine's API version")
    wait_for(lambda: http_request(("127.0.0.1", gw.port), "GET", "/exapps/app_api/v1.44/_ping",
                                  None, {"harp-shared-key": KEY, "docker-engine-port": "24001"})
             .body == b"OK", timeout=30, what="_ping with a newer API version answered")
    assert remote()["reachable"] is True and remote()["kind"] == "tunnel"


def test_engine_add_writes_a_ready_frpc_folder_and_rm_refuses_the_tunnel(frp, tmp_path):
    gw = frp(tls=True, register=False)
    out = tmp_path / "remote1"
    r = gw.ctl.cli("engine", "add", "remote1", "--frpc-dir", str(out), "--server",
                   f"127.0.0.1:{gw.frp_port}")
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(out)) == ["ca.crt", "client.crt", "client.key", "frpc.toml"]
    assert oct(os.stat(out / "frpc.toml").st_mode & 0o777) == "0o600"
    toml = (out / "frpc.toml").read_text()
    for line in (f'serverAddr = "127.0.0.1"', f"serverPort = {gw.frp_port}",
                 f'metadatas.token = "{KEY}"', "loginFailExit = false",
                 'transport.tls.serverName = "harp.nc"', 'transport.tls.certFile = "client.crt"',
                 'name = "remote1"', "remotePort = 24001", 'type = "unix_domain_socket"',
                 'unixPath = "/var/run/docker.sock"'):
        assert line in toml, line
    # A client using exactly those files gets the engine's tunnel.
    c = client(gw, tls={"ca": str(out / "ca.crt"), "cert": str(out / "client.crt"),
                        "key": str(out / "client.key")})
    c.login()
    assert c.new_proxy("remote1", 24001, ("tcp", gw.backend.port))["remote_addr"] == ":24001"
    wait_for(lambda: not port_free(24001), what="tunnel bound")
    # Removed: the tunnel is closed with its client's session (frpc reconnects and registers
    # again), and refused from then on.
    assert gw.ctl.cli("engine", "rm", "remote1").returncode == 0
    wait_for(lambda: port_free(24001), what="the removed engine's tunnel closed")
    wait_for(lambda: c.closed, what="the client's session closed")
    c = client(gw, tls={"ca": str(out / "ca.crt"), "cert": str(out / "client.crt"),
                        "key": str(out / "client.key")})
    c.login()
    assert c.new_proxy("remote1", 24001, ("tcp", 1))["error"] == "port not allowed"
    # Registered again: allowed again.
    assert gw.ctl.cli("engine", "add", "remote1", "--port", "24001").returncode == 0
    wait_for(lambda: "error" not in c.new_proxy("remote1", 24001, ("tcp", gw.backend.port)),
             what="port allowed again")
    r = gw.ctl.cli("engine", "frpc", "remote1", str(tmp_path / "again"), "--server",
                   "gw.example:443")
    assert r.returncode == 0
    toml = (tmp_path / "again" / "frpc.toml").read_text()
    assert 'serverAddr = "gw.example"' in toml and "serverPort = 443" in toml
    assert gw.ctl.cli("engine", "frpc", "nope", str(tmp_path / "x")).returncode == 1


def test_rotation_makes_clients_use_the_new_certificates(frp, tmp_path):
    gw = frp(tls=True)
    old = dict(gw.tls)
    for k in ("ca", "cert", "key"):  # keep copies of the old files
        data = open(old[k], "rb").read()
        old[k] = str(tmp_path / f"old-{k}")
        open(old[k], "wb").write(data)
    c = client(gw, tls=old)
    assert c.login().get("run_id")
    # --now: no overlap (test_cert_rotation.py has the rotation with one).
    assert gw.ctl.cli("certs", "rotate", "--now").returncode == 0
    time.sleep(0.05)
    # The next connection makes the data plane load the new files and drop old sessions.
    with pytest.raises(Exception):
        client(gw, tls=old).login()
    wait_for(lambda: c.closed, what="the old session closed")
    d = client(gw)  # the new files
    assert d.login().get("run_id")


def test_the_recorded_client_flight_gets_frps_answers(frp):
    """kat.txt's exact bytes of a client (recorded against the real frps 0.61.1) get the
    answers the real frps gave: ACK, plaintext LoginResp, then the server's IV and encrypted
    ReqWorkConn and NewProxyResp {test-exapp, :23000}."""
    import re
    import struct
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
    from helpers.frpc import CFB
    if not port_free(23000):
        pytest.skip("port 23000 is in use on this machine")
    kat = open(os.path.join(SRCDIR, "tests", "fixtures", "frp-vectors", "kat.txt")).read()
    flight = {n: bytes.fromhex(h) for n, h in re.findall(r"^(flight[12]) ([0-9a-f]+)$", kat, re.M)}
    gw = frp(tls=False, key="sekrit")
    s = socket.create_connection(("127.0.0.1", gw.frp_port))
    s.settimeout(10)
    s.sendall(flight["flight1"])
    f = s.makefile("rb")

    def frame():
        v, t, fl, sid, ln = struct.unpack(">BBHII", f.read(12))
        return t, fl, sid, ln, (f.read(ln) if t == 0 else b"")

    assert frame()[:3] == (1, 2, 1)  # WINDOW_UPDATE ACK on stream 1
    t, fl, sid, ln, body = frame()
    assert body[:1] == b"1"
    resp = json.loads(body[9:])
    assert resp["version"] == "0.61.1" and len(resp["run_id"]) == 16
    s.sendall(flight["flight2"])
    data = b""
    while True:
        t, fl, sid, ln, body = frame()
        data += body
        if len(data) > 16:
            dec = Cipher(algorithms.AES(hashlib.pbkdf2_hmac("sha1", b"", b"frp", 64, 16)),
                         CFB(data[:16])).decryptor()
            plain = dec.update(data[16:])
            if b'"remote_addr"' in plain:
                break
    assert plain.startswith(bytes.fromhex("7200000000000000027b7d"))  # ReqWorkConn
    assert b'{"proxy_name":"test-exapp","remote_addr":":23000"}' in plain
    s.close()


def real_frpc():
    """The unmodified frpc 0.61.1 of the test bench ($HARP_FRPC, or beside the project)."""
    for p in (os.environ.get("HARP_FRPC", ""),
              os.path.join(SRCDIR, "..", "shared", "tools", "frp-0.61.1", "frpc"),
              os.path.join(SRCDIR, "..", "..", "shared", "tools", "frp-0.61.1", "frpc")):
        if p and os.access(p, os.X_OK):
            return p
    pytest.skip("the real frpc 0.61.1 is not available (HARP_FRPC)")


def test_real_frpc_moves_large_bodies_both_ways_byte_exact(frp, tmp_path):
    """frpc 0.61.1 (6 MiB windows, 16 KiB frames) through harp's 256 KiB windows: 256 MiB
    down and 64 MiB up, several at once, byte-exact, within bounded memory."""
    import threading
    frpc = real_frpc()
    gw = frp(tls=True)
    port = tunnel_port()
    conf = tmp_path / "frpc.toml"
    conf.write_text(f'''serverAddr = "127.0.0.1"
serverPort = {gw.frp_port}
loginFailExit = true
metadatas.token = "{KEY}"
transport.tls.enable = true
transport.tls.serverName = "harp.nc"
transport.tls.certFile = "{gw.tls['cert']}"
transport.tls.keyFile = "{gw.tls['key']}"
transport.tls.trustedCaFile = "{gw.tls['ca']}"

[[proxies]]
name = "bulk"
type = "tcp"
localIP = "127.0.0.1"
localPort = {gw.backend.port}
remotePort = {port}
''')
    p = subprocess.Popen([frpc, "-c", str(conf)], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: not port_free(port), what="frpc's proxy bound")
        results = {}

        def down(i, size):
            results[("down", i)] = download_ok(port, size, timeout=60)

        def up(i, size):
            block = os.urandom(1 << 20)
            h = hashlib.sha256()
            s = socket.create_connection(("127.0.0.1", port), timeout=60)
            s.sendall(f"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n"
                      "Connection: close\r\n\r\n".encode())
            for _ in range(size >> 20):
                s.sendall(block)
                h.update(block)
            resp = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                resp += b
            s.close()
            rec = json.loads(resp.split(b"\r\n\r\n", 1)[1])
            results[("up", i)] = (rec["body_len"] == size and rec["body_sha256"] == h.hexdigest())

        threads = [threading.Thread(target=down, args=(0, 256 << 20)),
                   threading.Thread(target=down, args=(1, 32 << 20)),
                   threading.Thread(target=up, args=(0, 64 << 20)),
                   threading.Thread(target=up, args=(1, 16 << 20))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert results == {("down", 0): True, ("down", 1): True, ("up", 0): True,
                           ("up", 1): True}
        assert p.poll() is None, "frpc still connected"
        assert "protocol error" not in gw.dps[0].log()
        assert gw.dps[0].rss_peak_kib() < 48 * 1024
    finally:
        p.kill()
        out = p.communicate()[0]
    assert "start proxy success" in out, out[-2000:]


def test_clean_tls_close_is_a_normal_close(frp):
    """A TLS client that ends with close_notify (SSL_ERROR_ZERO_RETURN) is a normal close, not
    an error (issue 13, defect 3)."""
    import ssl
    gw = frp(tls=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(gw.tls["ca"])
    ctx.load_cert_chain(gw.tls["cert"], gw.tls["key"])
    ctx.check_hostname = False
    with socket.create_connection(("127.0.0.1", gw.frp_port), timeout=10) as raw:
        s = ctx.wrap_socket(raw, server_hostname="harp.nc")
        s.unwrap()  # close_notify
    wait_for(lambda: "frp: session of 127.0.0.1" in gw.dps[0].log(), what="the session closed")
    log = gw.dps[0].log()
    assert "(null)" not in log
    assert [ln for ln in log.splitlines() if "frp:" in ln and "error" in ln] == [], log


def write_real_frpc_dir(gw, name, out, docker_sock):
    """`harp-ctl engine add --frpc-dir` as users run it; the one change: the Docker socket of
    the test engine in place of /var/run/docker.sock."""
    r = gw.ctl.cli("engine", "add", name, "--frpc-dir", str(out), "--server",
                   f"127.0.0.1:{gw.frp_port}")
    assert r.returncode == 0, r.stderr
    toml = (out / "frpc.toml").read_text()
    assert 'unixPath = "/var/run/docker.sock"' in toml
    (out / "frpc.toml").write_text(toml.replace("/var/run/docker.sock", docker_sock))


def docker_through(gw, port):
    try:
        r = http_request(("127.0.0.1", gw.port), "POST", "/exapps/app_api/docker/exapp/exists",
                         b'{"name": "nobody"}', {"harp-shared-key": KEY,
                                                 "docker-engine-port": str(port)}, timeout=10)
    except OSError:
        return False
    return r.status == 200 and r.json() == {"exists": False}


def test_real_frpc_engine_rm_then_add_gets_the_tunnel_back(frp, docker_engine, tmp_path):
    """engine rm, then engine add of the same engine while the real frpc stays connected: frpc
    believed its proxy up; harp closes its control session, frpc reconnects and registers it
    again (issue 13, defect 2)."""
    frpc = real_frpc()
    gw = frp(tls=True, register=False)
    out = tmp_path / "remote1"
    write_real_frpc_dir(gw, "remote1", out, docker_engine.sock)
    p = subprocess.Popen([frpc, "-c", "frpc.toml"], cwd=out, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: docker_through(gw, 24001), timeout=60, what="Docker through the tunnel")
        assert gw.ctl.cli("engine", "rm", "remote1").returncode == 0
        wait_for(lambda: port_free(24001), what="the removed engine's tunnel closed")
        assert gw.ctl.cli("engine", "add", "remote1", "--port", "24001").returncode == 0
        # frpc retries a refused proxy every 30 s: a generous deadline.
        wait_for(lambda: docker_through(gw, 24001), timeout=150,
                 what="Docker through the tunnel again")
        assert p.poll() is None
    finally:
        p.kill()
        p.communicate()


class RealFrpc:
    """The real frpc 0.61.1 run in <d> with <d>/frpc.toml, its output in <d>/frpc.log."""

    def __init__(self, d):
        self.dir = d
        self.start()

    def start(self):
        with open(self.dir / "frpc.log", "ab") as log:
            self.p = subprocess.Popen([real_frpc(), "-c", "frpc.toml"], cwd=self.dir, stdout=log,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self

    @staticmethod
    def log_of(d):
        """What frpc runs in <d> wrote so far ("" before the first)."""
        p = d / "frpc.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def output(self):
        return self.log_of(self.dir)

    def kill9(self):
        self.p.kill()
        self.p.wait()


def exapp_frpc_dir(gw, engine_dir, d, port):
    """An ExApp's frpc: a tcp proxy to the test backend, with the client certificate that
    `engine add --frpc-dir` handed out (mTLS)."""
    d.mkdir()
    toml = (engine_dir / "frpc.toml").read_text()
    head = toml.split("[[proxies]]")[0]
    for f in ("ca.crt", "client.crt", "client.key"):
        (d / f).write_bytes((engine_dir / f).read_bytes())
    (d / "frpc.toml").write_text(head + f'''[[proxies]]
name = "tunnelled-app"
type = "tcp"
localIP = "127.0.0.1"
localPort = {gw.backend.port}
remotePort = {port}
''')
    return d


def exapp_through(gw):
    try:
        return gw.get("/exapps/tunnelled-app/public/x").status == 200
    except OSError:
        return False


def test_real_frpc_docker_and_exapp_tunnels_survive_kill9_of_either_side(frp, docker_engine,
                                                                        tmp_path):
    """The Docker socket (unix_domain_socket plugin, the engine's frpc folder) and an ExApp tcp
    proxy, both over mTLS; kill -9 of frpc, then of harp-dp: the tunnels come back."""
    gw = frp(tls=True, register=False)
    out = tmp_path / "remote1"
    write_real_frpc_dir(gw, "remote1", out, docker_engine.sock)
    port = tunnel_port()
    app = exapp_frpc_dir(gw, out, tmp_path / "app", port)
    gw.register(app_id="tunnelled-app", port=port, routes=[{"url": "^/public", "access_level": 0}])
    eng, exa = RealFrpc(out), RealFrpc(app)
    try:
        wait_for(lambda: docker_through(gw, 24001), timeout=60, what="Docker through the tunnel")
        wait_for(lambda: exapp_through(gw), timeout=60, what="the ExApp through its tunnel")
        assert "TLS with client certificates" in gw.dps[0].log()
        eng.kill9()
        wait_for(lambda: port_free(24001), what="the killed frpc's tunnel closed")
        eng.start()
        wait_for(lambda: docker_through(gw, 24001), timeout=60, what="Docker after frpc's kill")
        gw.dps[0].kill9()
        gw.dps[0].start()
        # frpc retries with a growing backoff (at most 20 s between tries).
        wait_for(lambda: docker_through(gw, 24001), timeout=120,
                 what="Docker after harp-dp's kill")
        wait_for(lambda: exapp_through(gw), timeout=120, what="the ExApp after harp-dp's kill")
        assert eng.p.poll() is None and exa.p.poll() is None
    finally:
        eng.kill9()
        exa.kill9()


def test_real_frpc_refused_wrong_token_no_certificate_and_port_outside_the_ranges(frp,
                                                                                 tmp_path):
    gw = frp(tls=True, register=False)
    out = tmp_path / "remote1"
    write_real_frpc_dir(gw, "remote1", out, "/nonexistent.sock")
    toml = (out / "frpc.toml").read_text()
    cases = {
        "token": toml.replace(f'metadatas.token = "{KEY}"', 'metadatas.token = "wrong"'),
        "nocert": "\n".join(ln for ln in toml.splitlines()
                            if not ln.startswith(("transport.tls.certFile",
                                                  "transport.tls.keyFile"))) + "\n",
        "port": toml.replace("remotePort = 24001", "remotePort = 25000"),
    }
    runs = {}
    try:
        for name, text in cases.items():
            d = tmp_path / name
            d.mkdir()
            for f in ("ca.crt", "client.crt", "client.key"):
                (d / f).write_bytes((out / f).read_bytes())
            (d / "frpc.toml").write_text(text)
            runs[name] = RealFrpc(d)
        wait_for(lambda: "send Login request to plugin error" in runs["token"].output(), timeout=60,
                 what="frpc told its token is wrong")
        wait_for(lambda: "with a wrong token" in gw.dps[0].log(), what="the refusal logged")
        wait_for(lambda: "TLS handshake with 127.0.0.1 failed" in gw.dps[0].log(), timeout=60,
                 what="the login without a certificate refused")
        assert "logged in" not in runs["nocert"].output()
        wait_for(lambda: "port not allowed" in runs["port"].output(), timeout=60,
                 what="the port outside the ranges refused")
        assert port_free(25000)
    finally:
        for r in runs.values():
            r.kill9()


def test_real_frpc_certificate_rotation(frp, docker_engine, tmp_path):
    """After `certs rotate --now` (no overlap) the frpc with the old files is cut off and
    cannot log in again; the folder `engine frpc` writes then brings the tunnel back."""
    gw = frp(tls=True, register=False)
    out = tmp_path / "remote1"
    write_real_frpc_dir(gw, "remote1", out, docker_engine.sock)
    old = RealFrpc(out)
    new = None
    try:
        wait_for(lambda: docker_through(gw, 24001), timeout=60, what="Docker through the tunnel")
        assert gw.ctl.cli("certs", "rotate", "--now").returncode == 0
        again = tmp_path / "again"
        assert gw.ctl.cli("engine", "frpc", "remote1", str(again), "--server",
                          f"127.0.0.1:{gw.frp_port}").returncode == 0
        toml = (again / "frpc.toml").read_text()
        (again / "frpc.toml").write_text(toml.replace("/var/run/docker.sock", docker_engine.sock))
        # The next connection makes the data plane load the new files and close the sessions
        # of the old ones; the old frpc cannot log in again.
        new = RealFrpc(again)
        wait_for(lambda: "certificates rotated" in gw.dps[0].log(), timeout=60,
                 what="the old session closed")
        wait_for(lambda: "TLS handshake with 127.0.0.1 failed" in gw.dps[0].log(), timeout=60,
                 what="the old certificate refused")
        wait_for(lambda: docker_through(gw, 24001), timeout=60,
                 what="Docker through the tunnel with the new certificates")
        assert old.p.poll() is None and "start proxy success" in new.output()
        assert new.p.poll() is None
    finally:
        old.kill9()
        if new is not None:
            new.kill9()
