# SPDX-License-Identifier: AGPL-3.0-or-later
"""Attacks on the data plane's connections (issue 12: items 3, 4, 12), replayed against the
real processes: thousands of idle connections, connections past the cap and past the
descriptor limit, slowloris heads and many large unfinished heads."""
import os
import resource
import select
import socket
import threading
import time

import pytest

from conftest import Gateway
from harness import MULT, Dp, free_port, wait_for
from helpers.backends import HttpBackend

PUBLIC = b"GET /exapps/testapp/public/x HTTP/1.1\r\nHost: x\r\n\r\n"


def read_response(s):
    """One response (Content-Length framed) from <s>, or what came before EOF."""
    out = b""
    while b"\r\n\r\n" not in out:
        chunk = s.recv(65536)
        if not chunk:
            return out
        out += chunk
    head, _, body = out.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def status_of(out):
    return int(out.split(b" ", 2)[1]) if out.startswith(b"HTTP/1.1 ") else None


def connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=10 * MULT)


def served(port):
    """A new connection's PUBLIC request is answered 200."""
    try:
        with connect(port) as s:
            s.sendall(PUBLIC)
            return status_of(read_response(s)) == 200
    except OSError:
        return False


def closed(s, seen=None):
    """<s> was closed by the peer (EOF or reset); what it sent goes to seen[s]."""
    try:
        while select.select([s], [], [], 0)[0]:
            chunk = s.recv(65536)
            if seen is not None:
                seen[s] = seen.get(s, b"") + chunk
            if not chunk:
                return True
    except OSError:
        return True
    return False


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- 12.3: idle connections and the connection cap --------------------------------------------

@pytest.mark.attack("12.3: thousands of idle connections cost no CPU and keep requests served")
def test_idle_connections_cost_no_cpu(make_gateway):
    # Before: each connection re-armed its own timer on a sorted list every second, O(n^2):
    # 2,000 idle connections took 16% of a core and 8,000 all of it.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    n = min(3000, hard - 256)
    gw = make_gateway(env={"HP_MAX_CONNECTIONS": n + 100})
    pid = gw.dps[0].proc.pid
    idle = []
    try:
        for _ in range(n):
            idle.append(connect(gw.port))
        wait_for(lambda: len(os.listdir(f"/proc/{pid}/fd")) >= n, timeout=60,
                 what="harp-dp holding the idle connections")
        time.sleep(2)
        t0, c0 = time.monotonic(), cpu_seconds(pid)
        time.sleep(5)
        share = (cpu_seconds(pid) - c0) / (time.monotonic() - t0)
        # Generous: the timer wheel costs well under 1% here, the old timers over 25%.
        assert share < 0.10, f"harp-dp used {share:.0%} of a core for {n} idle connections"
        assert served(gw.port), "a PUBLIC request is served beside the idle connections"
    finally:
        for s in idle:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.attack("12.3: a connection past HP_MAX_CONNECTIONS is refused cleanly")
def test_connection_past_the_cap_is_refused_until_one_closes(make_gateway):
    gw = make_gateway(env={"HP_MAX_CONNECTIONS": 3})
    held = [connect(gw.port) for _ in range(3)]
    try:
        for s in held:
            s.sendall(PUBLIC)
            assert status_of(read_response(s)) == 200
        with connect(gw.port) as extra:
            out = read_response(extra)
            assert status_of(out) == 503, out
            assert b"too many connections" in out
            assert extra.recv(100) == b"", "closed after the 503"
        for s in held:  # the N held ones are still served
            s.sendall(PUBLIC)
            assert status_of(read_response(s)) == 200
        held.pop().close()
        wait_for(lambda: served(gw.port), what="a new connection served once one closed")
    finally:
        for s in held:
            s.close()
    assert "refused" in gw.dps[0].log() and "HP_MAX_CONNECTIONS" in gw.dps[0].log()


# --- 12.4: out of file descriptors ------------------------------------------------------------

class LimitedDp(Dp):
    """harp-dp started under a small RLIMIT_NOFILE: <nofile> soft and hard, or "soft:hard"."""

    def __init__(self, *args, nofile, **kw):
        super().__init__(*args, **kw)
        self.nofile = nofile if ":" in str(nofile) else f"{nofile}:{nofile}"

    def command(self):
        return ["prlimit", f"--nofile={self.nofile}", *super().command()]


@pytest.fixture
def limited_gateway(ctl_factory, fake_nc):
    made = []

    def make(nofile, env, args=None):
        ctl = ctl_factory(env={"NC_INSTANCE_URL": fake_nc.url}).start()
        dp = LimitedDp(ctl, free_port(), "dplim", env=env, args=args, nofile=nofile).start()
        gw = Gateway(ctl, fake_nc, HttpBackend(), [dp])
        made.append(gw)
        gw.register()
        return gw

    yield make
    for gw in made:
        gw.dps[0].stop()
        gw.backend.stop()


def test_soft_descriptor_limit_is_raised_and_sets_the_default_cap(limited_gateway):
    gw = limited_gateway("256:4096", {})
    log = gw.dps[0].log()
    assert "descriptor limit 4096, at most 2016 client connections" in log, log
    with open(f"/proc/{gw.dps[0].proc.pid}/limits") as f:
        line = next(ln for ln in f if ln.startswith("Max open files"))
    assert line.split()[3:5] == ["4096", "4096"], line


@pytest.mark.attack("12.4: connections past the descriptor limit do not make accept spin")
def test_descriptor_exhaustion_backs_off_and_recovers(limited_gateway):
    # Before: accept failed with EMFILE on every loop turn, logging 20,000 lines a second.
    gw = limited_gateway(64, {"HP_MAX_CONNECTIONS": 100000})
    assert served(gw.port)
    exhaust_descriptors(gw, gw.port)


def exhaust_descriptors(gw, port):
    """Opens 150 connections to <port> of a data plane limited to 64 descriptors: it logs the
    shortage a few times, does not spin, and serves again once they close."""
    dp = gw.dps[0]
    lines_before = len(dp.log().splitlines())
    held = []
    try:
        for _ in range(150):
            held.append(connect(port))
        t0, c0 = time.monotonic(), cpu_seconds(dp.proc.pid)
        time.sleep(3)
        elapsed = time.monotonic() - t0
        cpu = cpu_seconds(dp.proc.pid) - c0
        dp.check_alive()
        lines = dp.log().splitlines()[lines_before:]
        assert len(lines) <= 4 + 2 * elapsed, f"{len(lines)} log lines in {elapsed:.1f} s"
        assert any("out of file descriptors" in ln for ln in lines), lines
        assert cpu < 0.5 * elapsed, f"harp-dp busy at the fd limit: {cpu:.2f} s CPU"
    finally:
        for s in held:
            s.close()
    wait_for(lambda: served(gw.port), timeout=30, what="a request served after the burst")


@pytest.mark.attack("12.4: connections past the descriptor limit on the FRP port")
def test_descriptor_exhaustion_on_the_frp_port_backs_off(limited_gateway, tmp_path):
    # Before: the FRP listener stayed readable while accept failed, and the loop spun on it.
    frp_port = free_port()
    gw = limited_gateway(64, {"HP_MAX_CONNECTIONS": 100000, "HP_FRP_MAX_PENDING": 100000,
                              "HP_FRP_ADDRESS": f"127.0.0.1:{frp_port}",
                              "HP_FRP_DISABLE_TLS": "true",
                              "HP_CERTS_DIR": str(tmp_path / "certs")}, args=["--frp"])
    exhaust_descriptors(gw, frp_port)


# --- 12.12: request heads ---------------------------------------------------------------------

@pytest.mark.attack("12.12: slowloris, a head one byte every 200 ms, gets 408")
def test_slow_head_gets_408_while_others_are_served(make_gateway):
    # Before: each byte reset the inactivity timer and the head was held indefinitely.
    gw = make_gateway(env={"HP_TIMEOUT_HEAD": "2s"})
    slow = connect(gw.port)
    got = []
    stop = threading.Event()

    def drip():
        head = b"GET /exapps/testapp/public/x HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100000
        try:
            for i in range(len(head)):
                if stop.is_set():
                    return
                slow.sendall(head[i:i + 1])
                time.sleep(0.2)
        except OSError:
            return

    t = threading.Thread(target=drip, daemon=True)
    t.start()
    try:
        time.sleep(0.5)
        assert served(gw.port), "a client sending its head at once is served meanwhile"

        def answered():
            try:
                if select.select([slow], [], [], 0)[0]:
                    chunk = slow.recv(65536)
                    got.append(chunk)
                    return chunk == b""
            except OSError:
                return True
            return False

        wait_for(answered, timeout=60, what="the slow head closed")
    finally:
        stop.set()
        t.join(timeout=10)
        slow.close()
    out = b"".join(got)
    assert status_of(out) == 408, out
    assert served(gw.port)


@pytest.mark.attack("12.12: unfinished 60 KiB heads past HP_MAX_HEAD_MEMORY are refused")
def test_unfinished_heads_are_bounded_in_memory(make_gateway):
    # Before: each connection holding an unfinished 61 KiB head cost ~117 KiB, without bound.
    gw = make_gateway(env={"HP_MAX_HEAD_MEMORY": 1, "HP_TIMEOUT_HEAD": "120s"})
    part = b"GET /exapps/testapp/public/x HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 60000
    conns, seen = [], {}
    try:
        for _ in range(40):
            s = connect(gw.port)
            s.sendall(part)
            conns.append(s)
        # At most 1 MiB of input buffers: with ~120 KiB each, a handful stay; the oldest go.
        wait_for(lambda: sum(closed(s, seen) for s in conns) >= 40 - 16, timeout=30,
                 what="the oldest unfinished heads refused")
        assert not closed(conns[-1], seen), "the newest head is kept"
        assert status_of(seen[conns[0]]) == 408, seen[conns[0]]
        assert served(gw.port), "a complete head is served meanwhile"
    finally:
        for s in conns:
            s.close()
