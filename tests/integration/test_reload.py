# SPDX-License-Identifier: AGPL-3.0-or-later
"""Reloading the settings (SIGHUP, POST /api/v1/reload, harp-ctl reload): HP_ENV_FILE is read
again; the log level, timeouts, trusted proxies, ban settings and NC_INSTANCE_URL change in
harp-ctl and in every data plane without a restart, and without dropping the link or open
connections; other changes are reported as needing a restart; an invalid file changes
nothing and is reported with its file and line."""
import os
import signal
import socket
import time

import pytest

from harness import wait_for
from helpers.backends import raw_request
from helpers.fake_nextcloud import FakeNextcloud

BASE = {"HP_LOG_LEVEL": "warning", "HP_BLACKLIST_COUNT": "100", "HP_BLACKLIST_WINDOW": "300"}


def write(path, settings, extra=""):
    lines = ["# harp settings (test)", ""]
    lines += [f"{k}={v}" for k, v in settings.items()]
    path.write_text("\n".join(lines) + "\n" + extra)


@pytest.fixture
def reloadable(make_gateway, tmp_path):
    envfile = tmp_path / "harp.env"
    write(envfile, BASE)

    def make(**kw):
        gw = make_gateway(env={"HP_ENV_FILE": str(envfile)}, **kw)
        gw.envfile = envfile
        return gw
    return make


def hup(gw, settings, expect, extra=""):
    """Writes <settings> (over BASE), sends SIGHUP, waits until harp-ctl logged <expect>."""
    write(gw.envfile, dict(BASE, **settings), extra)
    before = gw.ctl.log().count(expect)
    gw.ctl.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: gw.ctl.log().count(expect) > before, what=f"'{expect}' logged")


def dp_has(gw, text):
    return all(text in d.log() for d in gw.dps)


def lines_after(log, mark, level):
    return [ln for ln in log[log.rindex(mark):].splitlines() if f" {level} " in ln]


class KeepAlive:
    """One keep-alive HTTP connection to a data plane."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)

    def get(self, path):
        self.s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.s.recv(65536)
            assert chunk, "the connection was closed"
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        length = int([ln.split(b":")[1] for ln in head.split(b"\r\n")
                      if ln.lower().startswith(b"content-length:")][0])
        while len(body) < length:
            body += self.s.recv(65536)
        return int(head.split(b" ")[1])


def test_log_level_timeouts_and_open_connections(reloadable):
    gw = reloadable(ndp=2)
    assert "HP_LOG_LEVEL=warning" in gw.ctl.log(), "the file overrides the environment"
    conn = KeepAlive(gw.port)
    assert conn.get("/exapps/testapp/public/a") == 200
    t0 = time.monotonic()
    assert gw.get("/exapps/testapp/public/slow?s=2").status == 200  # HP_TIMEOUT_SERVER 1800s
    hup(gw, {"HP_LOG_LEVEL": "debug", "HP_TIMEOUT_SERVER": "1s"},
        "reload: HP_TIMEOUT_SERVER 1800s -> 1s (live)")
    log = gw.ctl.log()
    assert "reload: HP_LOG_LEVEL warning -> debug (live)" in log
    assert "reload: HP_TIMEOUT_TUNNEL 1800s -> 1s (live)" in log  # it follows HP_TIMEOUT_SERVER
    assert "needs a restart" not in log
    wait_for(lambda: dp_has(gw, "settings: HP_TIMEOUT_SERVER 1800s -> 1s"),
             what="every data plane took the timeout")
    assert dp_has(gw, "settings: HP_LOG_LEVEL warning -> debug")
    # The next request through either data plane: a backend slower than 1 s gets 504.
    for _ in range(4):
        assert gw.get("/exapps/testapp/public/slow?s=6").status == 504
    assert gw.get("/exapps/testapp/public/fast").status == 200
    # Debug lines appear now, in harp-ctl and in the data planes.
    gw.ctl.request("GET", "/api/v1/status")
    wait_for(lambda: lines_after(gw.ctl.log(), "reload: HP_LOG_LEVEL", "debug"),
             what="harp-ctl logs at debug")
    for d in gw.dps:
        wait_for(lambda: lines_after(d.log(), "settings: HP_LOG_LEVEL", "debug")
                 or lines_after(d.log(), "settings: HP_LOG_LEVEL", "info"),
                 what=f"{d.name} logs at debug")
    # The connection opened before the reload is still served, and the link never dropped.
    assert conn.get("/exapps/testapp/public/b") == 200
    for d in gw.ctl.request("GET", "/api/v1/dataplanes").json()["dataplanes"]:
        assert d["connected_seconds"] >= time.monotonic() - t0, f"{d['dp_id']} reconnected"
    for d in gw.dps:
        d.check_alive()
    conn.s.close()


def test_command_line_level_of_a_data_plane_wins(reloadable):
    gw = reloadable(ndp=1, dp_args=["--log-level", "error"])
    hup(gw, {"HP_LOG_LEVEL": "debug", "HP_TIMEOUT_CLIENT": "20s"},
        "reload: HP_LOG_LEVEL warning -> debug (live)")
    wait_for(lambda: dp_has(gw, "settings: HP_TIMEOUT_CLIENT 30s -> 20s"),
             what="the data plane took the timeout")
    assert "settings: HP_LOG_LEVEL" not in gw.dps[0].log()
    gw.get("/exapps/testapp/public/x")
    assert not lines_after(gw.dps[0].log(), "settings: HP_TIMEOUT_CLIENT", "debug")


def test_trusted_proxy_and_ban_count(reloadable):
    gw = reloadable()
    r = gw.ctl.request("POST", "/api/v1/bans", {"ip": "192.0.2.9", "seconds": 3600})
    assert r.status == 201
    xff = {"X-Forwarded-For": "192.0.2.9"}
    assert gw.get("/exapps/testapp/public/x", xff).status == 200, "127.0.0.1 is not trusted yet"
    hup(gw, {"HP_TRUSTED_PROXY_IPS": "127.0.0.1", "HP_BLACKLIST_COUNT": "2"},
        "reload: HP_TRUSTED_PROXY_IPS  -> 127.0.0.1 (live)")
    assert "reload: HP_BLACKLIST_COUNT 100 -> 2 (live)" in gw.ctl.log()
    wait_for(lambda: dp_has(gw, "settings: HP_TRUSTED_PROXY_IPS  -> 127.0.0.1"),
             what="the data plane took the trusted proxies")
    # The forwarded address is the client now: the banned one is dropped.
    out = raw_request(gw.port, b"GET /exapps/testapp/public/x HTTP/1.1\r\nHost: x\r\n"
                      b"X-Forwarded-For: 192.0.2.9\r\nConnection: close\r\n\r\n", timeout=5)
    assert out == b""
    # Two failures now ban a client (HP_BLACKLIST_COUNT 2).
    other = {"X-Forwarded-For": "198.51.100.4"}
    for _ in range(2):
        assert gw.get("/", other).status == 404
    wait_for(lambda: any(b["ip"] == "198.51.100.4"
                         for b in gw.ctl.request("GET", "/api/v1/bans").json()["bans"]),
             what="banned after two failures")


def test_nextcloud_url_for_user_lookups(reloadable, fake_nc):
    gw = reloadable()
    nc2 = FakeNextcloud(fake_nc.key)
    try:
        fake_nc.add_app("testapp", gw.backend.port)
        nc2.add_app("testapp", gw.backend.port)
        nc2.sessions["sess-carol"] = ("carol", 1)
        fake_nc.sessions["sess-alice"] = ("alice", 1)
        assert gw.get("/exapps/testapp/user/1", {"Cookie": "oc_sessionPassphrase=sess-alice"}) \
            .status == 200
        hup(gw, {"NC_INSTANCE_URL": nc2.url}, f"reload: NC_INSTANCE_URL {fake_nc.url} -> "
            f"{nc2.url} (live)")
        calls = fake_nc.count("user-info")
        r = gw.get("/exapps/testapp/user/3", {"Cookie": "oc_sessionPassphrase=sess-carol"})
        assert r.status == 200 and nc2.count("user-info") == 1
        assert fake_nc.count("user-info") == calls, "the old Nextcloud is not asked any more"
    finally:
        nc2.stop()


def test_invalid_file_changes_nothing(reloadable):
    gw = reloadable()
    hup(gw, {"HP_TIMEOUT_SERVER": "1s"}, "the running settings stay",
        extra="this is not a setting\n")
    log = gw.ctl.log()
    assert f"{gw.envfile}:7: expected NAME=value: the running settings stay" in log
    assert "HP_TIMEOUT_SERVER 1800s" not in log
    assert gw.get("/exapps/testapp/public/slow?s=2").status == 200
    write(gw.envfile, dict(BASE, HP_TIMEOUT_SERVER="soon"))
    r = gw.ctl.request("POST", "/api/v1/reload")
    assert r.status == 422 and "HP_TIMEOUT_SERVER" in r.text, r
    res = gw.ctl.cli("reload")
    assert res.returncode == 1 and "HP_TIMEOUT_SERVER" in res.stderr, res
    # Limits: a line one past the longest.
    write(gw.envfile, BASE, "HP_TRUSTED_PROXY_IPS=" + "1" * (8192 - 20) + "\n")
    r = gw.ctl.request("POST", "/api/v1/reload")
    assert r.status == 422 and "line longer than 8192 bytes" in r.text, r
    write(gw.envfile, BASE, "HP_TRUSTED_PROXY_IPS=" + "1" * (8192 - 21) + "\n")
    assert gw.ctl.request("POST", "/api/v1/reload").status == 200
    assert "HP_TIMEOUT_SERVER 1800s" not in gw.ctl.log()
    gw.dps[0].check_alive()


def test_restart_settings_reported_and_the_cli(reloadable, tmp_path):
    gw = reloadable()
    write(gw.envfile, dict(BASE, HP_FRP_ADDRESS="127.0.0.1:1", HP_SHARED_KEY="another-secret-key",
                           HP_BLACKLIST_WINDOW="60"))
    res = gw.ctl.cli("reload")
    assert res.returncode == 0, res
    assert "HP_BLACKLIST_WINDOW 300 -> 60 (live)" in res.stdout
    assert "HP_FRP_ADDRESS changed: needs a restart" in res.stdout
    assert "HP_SHARED_KEY changed: needs a restart" in res.stdout
    log = gw.ctl.log()
    assert "reload: HP_FRP_ADDRESS changed: needs a restart" in log
    assert "reload: HP_SHARED_KEY changed: needs a restart" in log
    assert "another-secret-key" not in log + res.stdout
    # The running key stays: the old one still works, the new one does not yet.
    assert gw.ctl.request("GET", "/api/v1/status").status == 200
    assert gw.ctl.request("GET", "/api/v1/status", key="another-secret-key").status == 401
    r = gw.ctl.request("POST", "/api/v1/reload", key=False)
    assert r.status == 401, "reload is an operator's endpoint"
    j = gw.ctl.request("POST", "/api/v1/reload").json()
    assert j["live"] == [] and "HP_FRP_ADDRESS" in j["restart"], j
    assert gw.ctl.cli("reload", "--json").returncode == 0
    os.unlink(gw.envfile)
    r = gw.ctl.request("POST", "/api/v1/reload")
    assert r.status == 422 and str(gw.envfile) in r.text, r


def test_reloads_while_user_lookups_run(reloadable, fake_nc):
    """NC_INSTANCE_URL swapped back and forth while look-up workers call Nextcloud: every
    request is answered by one of the two (run under the TSan build, no report either)."""
    import threading
    gw = reloadable()
    nc2 = FakeNextcloud(fake_nc.key)
    statuses, stop = [], threading.Event()

    def client():
        i = 0
        while not stop.is_set():
            i += 1
            r = gw.get(f"/exapps/testapp/user/{i}", {"Cookie": f"oc_sessionPassphrase=s{i % 50}"})
            statuses.append(r.status)

    try:
        for nc in (fake_nc, nc2):
            nc.add_app("testapp", gw.backend.port)
            nc.sessions.update({f"s{i}": (f"u{i}", 1) for i in range(50)})
        threads = [threading.Thread(target=client) for _ in range(3)]
        for t in threads:
            t.start()
        for i in range(8):
            write(gw.envfile, dict(BASE, NC_INSTANCE_URL=(nc2 if i % 2 == 0 else fake_nc).url))
            r = gw.ctl.request("POST", "/api/v1/reload")
            assert r.status == 200 and r.json()["live"][0]["name"] == "NC_INSTANCE_URL", r
        wait_for(lambda: len(statuses) > 20, what="requests during the reloads")
        stop.set()
        for t in threads:
            t.join()
        assert set(statuses) == {200}, statuses
        assert fake_nc.count("user-info") > 0 and nc2.count("user-info") > 0
    finally:
        stop.set()
        nc2.stop()
