# SPDX-License-Identifier: AGPL-3.0-or-later
"""Upgrading a data plane without a gap: `harp-dp --takeover PATH` takes the listening sockets
of the running harp-dp, which drains (its WebSockets and FRP tunnels go on until they close or
HP_DRAIN_TIMEOUT) and exits 0; SIGUSR2 makes a harp-dp start its own successor."""
import base64
import ctypes
import http.client
import os
import signal
import socket
import threading
import time

import pytest

from harness import MULT, Dp, free_port, http_request, wait_for


def handover_path(dp):
    return os.path.join(dp.ctl.state_dir, f"harp-dp-{dp.name}.sock")


def successor(old, log_name, env=None, args=None):
    """A harp-dp taking over from <old> (not waited for)."""
    d = Dp(old.ctl, old.port, old.name, env=env,
           args=[*(args if args is not None else old.args), "--takeover", handover_path(old)])
    d.log_path = os.path.join(old.ctl.workdir, f"harp-dp-{log_name}.log")
    return d.start(wait=False)


def took_over(new):
    new.check_alive()
    return "upgrade: took over from pid" in new.log()


def exited(dp):
    return dp.proc.poll() is not None


def server_pid(client_sock, port):
    """The pid of the process holding the server side of <client_sock>'s TCP connection, once
    one accepted it."""
    found = []
    wait_for(lambda: found.append(_server_pid(client_sock, port)) or found[-1] is not None,
             what="the connection accepted")
    return found[-1]


def _server_pid(client_sock, port):
    cport = client_sock.getsockname()[1]
    inode = None
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if (int(local.split(":")[1], 16) == port and int(remote.split(":")[1], 16) == cport):
                inode = fields[9]
    if inode in (None, "0"):
        return None  # not accepted yet
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return int(pid)
        except OSError:
            continue
    return None


def get_ok(gw):
    r = gw.get("/exapps/testapp/public/ok")
    return r.status == 200


class Load:
    """Requests in a loop until stopped: <keep> clients on keep-alive connections (a new one
    when the server says Connection: close), <fresh> clients with a new connection each."""

    def __init__(self, port, keep=3, fresh=2):
        self.port = port
        self.ok = 0
        self.failures = []
        self.closes = 0
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.threads = [threading.Thread(target=self.keep_alive) for _ in range(keep)]
        self.threads += [threading.Thread(target=self.fresh) for _ in range(fresh)]
        for t in self.threads:
            t.start()

    def record(self, status=None, error=None):
        with self.lock:
            if error is None and status == 200:
                self.ok += 1
            else:
                self.failures.append(error or status)

    def keep_alive(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10 * MULT)
        while not self.stop_ev.is_set():
            try:
                conn.request("GET", "/exapps/testapp/public/keep")
                r = conn.getresponse()
                r.read()
                if (r.getheader("connection") or "").lower() == "close":
                    with self.lock:
                        self.closes += 1
                self.record(r.status)
            except Exception as e:  # noqa: BLE001 - every failure counts
                self.record(error=repr(e))
                conn.close()
        conn.close()

    def fresh(self):
        while not self.stop_ev.is_set():
            try:
                r = http_request(("127.0.0.1", self.port), "GET", "/exapps/testapp/public/new")
                self.record(r.status)
            except Exception as e:  # noqa: BLE001
                self.record(error=repr(e))

    def count(self):
        with self.lock:
            return self.ok

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(30 * MULT)


def test_takeover_under_load_loses_no_request(make_gateway):
    gw = make_gateway()
    old = gw.dps[0]
    load = Load(gw.port)
    try:
        wait_for(lambda: load.count() > 200, what="requests flowing")
        new = successor(old, "dp0-new")
        gw.dps.append(new)
        wait_for(lambda: took_over(new), what="the takeover")
        wait_for(lambda: exited(old), what="the old data plane drained")
        assert old.proc.returncode == 0, old.log()
        before = load.count()
        wait_for(lambda: load.count() > before + 200, what="requests served by the new one")
    finally:
        load.stop()
    assert load.failures == []
    assert load.closes >= 1  # keep-alive clients were told to reconnect
    log = old.log()
    assert "upgrade: pid %d took over; draining" % new.proc.pid in log
    assert "upgrade: drained: no connection left; exiting" in log
    assert get_ok(gw)


class Ws:
    """A WebSocket client on a plain socket (text frames under 126 bytes), so that the test
    sees which process holds the other end."""

    def __init__(self, port, path="/exapps/wsapp/ws"):
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=10 * MULT)
        key = base64.b64encode(os.urandom(16)).decode()
        self.socket.sendall((f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                             f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                             "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            b = self.socket.recv(1)
            if not b:
                raise ConnectionError("closed during the handshake")
            head += b
        assert head.startswith(b"HTTP/1.1 101"), head

    def _exact(self, n):
        b = b""
        while len(b) < n:
            part = self.socket.recv(n - len(b))
            if not part:
                raise ConnectionError("closed")
            b += part
        return b

    def _frame(self, opcode, payload):
        mask = os.urandom(4)
        body = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        self.socket.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body)

    def send(self, text):
        self._frame(1, text.encode())

    def recv(self):
        b0, b1 = self._exact(2)
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(self._exact(2), "big")
        payload = self._exact(n)
        if b0 & 0x0F == 8:
            raise ConnectionError("closed by the server")
        return payload.decode()

    def close(self):
        try:
            self._frame(8, (1000).to_bytes(2, "big"))
            while True:
                self.recv()
        except (ConnectionError, OSError):
            pass
        self.socket.close()


@pytest.fixture
def ws_gateway(make_gateway, ws_backend):
    def make(env=None):
        gw = make_gateway(env=env)
        gw.register("wsapp", port=ws_backend.port, routes=[{"url": "^/ws$", "access_level": 0}])
        return gw
    return make


def test_websocket_through_the_old_process_lasts_until_closed(ws_gateway):
    gw = ws_gateway()
    old = gw.dps[0]
    ws = Ws(gw.port)
    ws.send("before")
    assert ws.recv() == "before"
    assert server_pid(ws.socket, gw.port) == old.proc.pid

    new = successor(old, "dp0-new")
    gw.dps.append(new)
    wait_for(lambda: took_over(new), what="the takeover")
    wait_for(lambda: "draining" in old.log(), what="the old one draining")
    # New connections go to the new process; the WebSocket stays with the old one.
    ws2 = Ws(gw.port)
    assert server_pid(ws2.socket, gw.port) == new.proc.pid
    s = socket.create_connection(("127.0.0.1", gw.port))
    assert server_pid(s, gw.port) == new.proc.pid
    s.close()
    for i in range(5):
        time.sleep(0.2)
        ws.send(f"during {i}")
        assert ws.recv() == f"during {i}"
        ws2.send(f"new {i}")
        assert ws2.recv() == f"new {i}"
    assert not exited(old)
    ws.close()
    wait_for(lambda: exited(old), what="the old one exiting after its last WebSocket")
    assert old.proc.returncode == 0, old.log()
    ws2.send("still")
    assert ws2.recv() == "still"
    ws2.close()


def test_drain_timeout_ends_the_old_process_with_a_websocket_open(ws_gateway):
    gw = ws_gateway(env={"HP_DRAIN_TIMEOUT": "2s"})
    old = gw.dps[0]
    ws = Ws(gw.port)
    ws.send("x")
    assert ws.recv() == "x"
    new = successor(old, "dp0-new")
    gw.dps.append(new)
    wait_for(lambda: took_over(new), what="the takeover")
    wait_for(lambda: exited(old), what="the drain timeout")
    assert old.proc.returncode == 0, old.log()
    assert "HP_DRAIN_TIMEOUT reached with 1 connection(s)" in old.log()
    with pytest.raises(OSError):  # ConnectionError: closed
        ws.send("y")
        ws.recv()
    assert get_ok(gw)


def test_sigterm_during_the_drain_stops_the_old_process(ws_gateway):
    gw = ws_gateway()
    old = gw.dps[0]
    ws = Ws(gw.port)
    new = successor(old, "dp0-new")
    gw.dps.append(new)
    wait_for(lambda: took_over(new), what="the takeover")
    wait_for(lambda: "draining" in old.log(), what="the old one draining")
    assert old.stop() == 0
    ws.close()
    assert get_ok(gw)


def run_dp(gw, args, env=None, log_name="taker", timeout=30):
    d = Dp(gw.ctl, gw.port, "dp0", env=env, args=args)
    d.log_path = os.path.join(gw.ctl.workdir, f"harp-dp-{log_name}.log")
    d.start(wait=False)
    rc = d.proc.wait(timeout=timeout * MULT)
    return rc, d.log()


def test_takeover_with_nothing_to_take_over_fails_clearly(make_gateway, tmp_path):
    gw = make_gateway()
    rc, log = run_dp(gw, ["--takeover", str(tmp_path / "nothing.sock")])
    assert rc == 1
    assert f"upgrade: nothing to take over at {tmp_path / 'nothing.sock'}" in log
    assert get_ok(gw) and not exited(gw.dps[0])


def fake_running(path, text, fds):
    """A Unix socket at <path> that hands <text> and <fds> to the first process connecting."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    srv.bind(path)
    srv.listen(1)

    def serve():
        c, _ = srv.accept()
        with c:
            socket.send_fds(c, [text], fds)
            c.settimeout(30 * MULT)
            try:
                c.recv(64)
            except OSError:
                pass
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return srv, t


@pytest.mark.parametrize("case,expect", [
    ("garbage", "not a harp-dp handover message"),
    ("oversized", "is too long (at most 1024 bytes)"),
    ("unknown_role", 'names an unknown listener "ftp"'),
    ("more_names", "names more listeners than it carries (1)"),
    ("more_fds", "carries 2 descriptors but names 1"),
    ("no_pid", "without a process id"),
    ("wrong_port", "not to 127.0.0.1:"),
    ("not_listening", "is not a listening TCP socket"),
    ("frp_without_flag", "serves the FRP frontend: start this one with --frp"),
])
def test_a_bad_handover_message_is_refused_and_the_running_one_serves(make_gateway, tmp_path,
                                                                       case, expect):
    gw = make_gateway()
    # on the gateway's port, shared as the data planes do
    lst = socket.socket()
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    lst.bind(("127.0.0.1", 0 if case == "wrong_port" else gw.port))
    if case != "not_listening":
        lst.listen(8)
    text = {
        "garbage": b"hello\n",
        "oversized": b"harp-dp-handover 1 1\n" + b"x" * 2000,
        "unknown_role": b"harp-dp-handover 1 1\nftp 127.0.0.1:1\n",
        "more_names": b"harp-dp-handover 1 1\nhttp a\nhttps b\n",
        "more_fds": b"harp-dp-handover 1 1\nhttp a\n",
        "no_pid": b"harp-dp-handover 1 x\nhttp a\n",
        "wrong_port": b"harp-dp-handover 1 1\nhttp a\n",
        "not_listening": b"harp-dp-handover 1 1\nhttp a\n",
        "frp_without_flag": b"harp-dp-handover 1 1\nhttp a\nfrp b\n",
    }[case]
    fds = [lst.fileno()] * (2 if case in ("frp_without_flag", "more_fds") else 1)
    path = str(tmp_path / "fake.sock")
    srv, t = fake_running(path, text, fds)
    try:
        rc, log = run_dp(gw, ["--takeover", path])
    finally:
        t.join(10)
        srv.close()
        lst.close()
    assert rc == 1, log
    assert expect in log, log
    assert get_ok(gw) and not exited(gw.dps[0])


def test_a_bad_order_to_the_running_one_changes_nothing(make_gateway):
    gw = make_gateway()
    old = gw.dps[0]
    path = handover_path(old)
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    for order, expect in [(b"y" * 65, "a message of 65 bytes from pid"),
                          (b"drain please", "an unknown message of 12 bytes from pid"),
                          (None, "went away before taking over")]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as c:
            c.connect(path)
            text, fds, _, _ = socket.recv_fds(c, 2048, 4)
            for fd in fds:
                os.close(fd)
            assert text.startswith(b"harp-dp-handover 1 %d\nhttp 127.0.0.1:%d\n"
                                   % (old.proc.pid, gw.port))
            if order is not None:
                c.send(order)
        wait_for(lambda: expect in old.log(), what=expect)
        assert get_ok(gw)
    assert "draining" not in old.log()
    # One at a time: a second connection while one is in progress is turned away.
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as c1:
        c1.connect(path)
        socket.recv_fds(c1, 2048, 4)
        rc, log = run_dp(gw, ["--takeover", path])
        assert rc == 1 and "closed without handing over" in log, log
    # And a real takeover still works afterwards.
    new = successor(old, "dp0-new")
    gw.dps.append(new)
    wait_for(lambda: took_over(new), what="the takeover")
    wait_for(lambda: exited(old), what="the old one drained")
    assert old.proc.returncode == 0
    assert get_ok(gw)


def test_sigusr2_starts_the_successor_itself(make_gateway, tmp_path):
    # The successor is the old process's child: when that exits it becomes ours to reap.
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    # systemd's side of sd_notify: what the data planes tell it
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(30 * MULT)
    gw = make_gateway(env={"NOTIFY_SOCKET": str(tmp_path / "notify")})
    old = gw.dps[0]
    assert notify.recv(4096) == b"READY=1"
    s = socket.create_connection(("127.0.0.1", gw.port))
    old.proc.send_signal(signal.SIGUSR2)
    wait_for(lambda: "upgrade: SIGUSR2: started" in old.log(), what="the successor started")
    line = [x for x in old.log().splitlines() if "upgrade: SIGUSR2: started" in x][0]
    child = int(line.split("(pid ")[1].split(")")[0])
    try:
        wait_for(lambda: "upgrade: took over from pid %d" % old.proc.pid in old.log(),
                 what="the takeover")
        s.close()
        wait_for(lambda: exited(old), what="the old one drained")
        assert old.proc.returncode == 0, old.log()
        assert get_ok(gw)
        c = socket.create_connection(("127.0.0.1", gw.port))
        assert server_pid(c, gw.port) == child
        c.close()
        assert os.path.exists(handover_path(old))  # the successor's now
        assert notify.recv(4096) == b"MAINPID=%d\nREADY=1" % child
    finally:
        os.kill(child, signal.SIGTERM)
        _, status = os.waitpid(child, 0)
        notify.close()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_a_successor_configured_for_another_address_fails_and_the_running_one_serves(
        make_gateway):
    gw = make_gateway()
    old = gw.dps[0]
    new = Dp(old.ctl, old.port, old.name, args=["--takeover", handover_path(old)],
             env={"HP_EXAPPS_ADDRESS": f"127.0.0.1:{free_port()}"})
    new.log_path = os.path.join(old.ctl.workdir, "harp-dp-bad.log")
    new.start(wait=False)
    assert new.proc.wait(30 * MULT) == 1
    assert "the http listener is bound to 127.0.0.1:%d, not to" % gw.port in new.log()
    wait_for(lambda: "went away before taking over" in old.log(), what="the old one noticing")
    assert get_ok(gw) and not exited(old)


def test_frp_tunnel_through_the_old_process_lasts_during_the_drain(make_gateway, tmp_path):
    pytest.importorskip("cryptography")
    from helpers.frpc import Frpc
    from test_frp import get, port_free, tunnel_port
    port = free_port()
    gw = make_gateway(env={"HP_FRP_ADDRESS": f"127.0.0.1:{port}", "HP_FRP_DISABLE_TLS": "true",
                           "HP_CERTS_DIR": str(tmp_path / "certs")}, dp_args=["--frp"])
    old = gw.dps[0]
    c = Frpc(port, tls=None)
    assert c.login().get("run_id")
    tport = tunnel_port()
    c.new_proxy("exapp-a", tport, ("tcp", gw.backend.port))
    assert get(tport, "/before").status == 200
    new = successor(old, "dp0-new")
    gw.dps.append(new)
    wait_for(lambda: took_over(new), what="the takeover")
    wait_for(lambda: "draining" in old.log(), what="the old one draining")
    assert "0 connection(s) and 1 FRP session(s) open" in old.log()
    for i in range(5):
        r = get(tport, f"/during/{i}")
        assert r.status == 200 and r.json()["path"] == f"/during/{i}"
    # New FRP clients log in to the new process.
    c2 = Frpc(port, tls=None)
    assert c2.login().get("run_id")
    assert server_pid(c2.sock, port) == new.proc.pid
    c2.close()
    assert not exited(old)
    c.close()
    wait_for(lambda: exited(old), what="the old one exiting after its last FRP session")
    assert old.proc.returncode == 0, old.log()
    wait_for(lambda: port_free(tport), what="the tunnel's port released")


def test_container_supervisor_sighup_replaces_its_data_planes_without_a_gap(ctl_factory, fake_nc):
    import subprocess

    from harness import BUILDDIR, SRCDIR
    from helpers.backends import HttpBackend
    ctl = ctl_factory(env={"NC_INSTANCE_URL": fake_nc.url})  # run by the supervisor
    port = free_port()
    env = ctl.env()
    env.update(HP_DATA_PLANES="2", HP_EXAPPS_ADDRESS=f"127.0.0.1:{port}",
               HP_FRP_ADDRESS=f"127.0.0.1:{free_port()}", HP_FRP_DISABLE_TLS="true",
               PATH=f"{BUILDDIR}/harp-ctl:{BUILDDIR}/harp-dp:{env['PATH']}")
    log_path = os.path.join(ctl.workdir, "supervise.log")
    backend = HttpBackend()
    with open(log_path, "ab") as log:
        sup = subprocess.Popen(["bash", os.path.join(SRCDIR, "deploy/container/supervise.sh")],
                               env=env, stdout=log, stderr=subprocess.STDOUT)

    def sup_log():
        with open(log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    load = None
    try:
        wait_for(lambda: "2 data planes" in sup_log(), what="the supervisor started")
        body = {"exapp_token": "tok-secret-sup", "exapp_version": "1.0.0", "host": "127.0.0.1",
                "port": backend.port, "routes": [{"url": "^/public", "access_level": 0}]}
        ctl.secrets.append(body["exapp_token"])
        assert ctl.request("POST", "/exapp_storage/testapp", body).status == 204

        def served():
            try:
                return http_request(("127.0.0.1", port), "GET",
                                    "/exapps/testapp/public/x").status == 200
            except OSError:
                return False
        wait_for(served, what="the app served")
        load = Load(port)
        wait_for(lambda: load.count() > 100, what="requests flowing")
        sup.send_signal(signal.SIGHUP)
        for i in (1, 2):
            wait_for(lambda: f"dp{i}: pid " in sup_log(), what=f"dp{i} taken over")
        wait_for(lambda: sup_log().count("(taken over) exited with status 0") == 2,
                 what="the old data planes drained")
        before = load.count()
        wait_for(lambda: load.count() > before + 100, what="requests served by the new ones")
        load.stop()
        assert load.failures == []
        assert "could not be taken over" not in sup_log()
    finally:
        if load is not None:
            load.stop()
        sup.send_signal(signal.SIGTERM)
        sup.wait(60 * MULT)
        backend.stop()
    assert sup.returncode == 0, sup_log()


def test_https_listener_is_taken_over_too(make_gateway, tmp_path):
    from test_cert_https import Conn, install, make_pem
    certs = tmp_path / "certs"
    certs.mkdir()
    install(certs, make_pem(certs, "a", "a.example"))
    tport = free_port()
    gw = make_gateway(env={"HP_CERTS_DIR": str(certs),
                           "HP_EXAPPS_HTTPS_ADDRESS": f"127.0.0.1:{tport}"})
    old = gw.dps[0]
    failures, done = [], threading.Event()

    def https_loop():
        while not done.is_set():
            try:
                c = Conn(tport)
                if c.get("/exapps/testapp/public/tls") != b"200":
                    failures.append("status")
                c.close()
            except Exception as e:  # noqa: BLE001 - every failure counts
                failures.append(repr(e))
    t = threading.Thread(target=https_loop)
    t.start()
    try:
        new = successor(old, "dp0-new")
        gw.dps.append(new)
        wait_for(lambda: took_over(new), what="the takeover")
        wait_for(lambda: exited(old), what="the old one drained")
        assert old.proc.returncode == 0, old.log()
        assert f"listen: 127.0.0.1:{tport} (TLS) (taken over, paused)" in new.log()
        c = Conn(tport)
        assert server_pid(c.s, tport) == new.proc.pid
        assert c.get("/exapps/testapp/public/after") == b"200"
        c.close()
    finally:
        done.set()
        t.join(30 * MULT)
    assert failures == []
