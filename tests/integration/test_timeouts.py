# SPDX-License-Identifier: AGPL-3.0-or-later
"""Operators' timeouts per ExApp and per route (harp-ctl exapp set, PUT
/api/v1/timeouts/{id}): validated, stored apart from AppAPI's registration so that a
re-registration keeps them, shown with where each value comes from, carried to the data planes
in the table, and what they do to long streams and tunnels.

Times are scaled down through the settings (HP_TIMEOUT_SERVER=2s, so the data plane's idle and
tunnel defaults are 2 s). Cuts are asserted as "not before T" and "not while bytes flow",
never as "within a short deadline"."""
import socket
import time

from harness import MULT, wait_for
from helpers.stream_backend import StreamBackend, sse_every

DEFAULT_S = 2  # HP_TIMEOUT_SERVER (and so HP_TIMEOUT_TUNNEL) in these tests
ROUTES = [{"url": "^/sse", "access_level": 0}, {"url": "^/silent", "access_level": 0},
          {"url": "^/ws", "access_level": 0}, {"url": "^/slow", "access_level": 0}]


def silent_after_one(b, c, head, rest):
    """One event, then silence until the gateway closes the connection."""
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n")
    ev = b"data: only\n\n"
    c.sendall(b"%x\r\n%s\r\n" % (len(ev), ev))
    b.times["silent_written"] = time.monotonic()
    c.settimeout(60 * MULT)
    try:
        while c.recv(4096):
            pass
    except OSError:
        pass
    b.times["silent_cut"] = time.monotonic()
    b.event("silent_cut").set()
    return False, rest


def ws_echo(b, c, head, rest):
    c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\n\r\n")
    if rest:
        c.sendall(rest)
    c.settimeout(60 * MULT)
    try:
        while True:
            data = c.recv(4096)
            if not data:
                break
            c.sendall(data)
    except OSError:
        pass
    b.times["ws_closed"] = time.monotonic()
    b.event("ws_closed").set()
    return False, b""


def gateway_with_apps(make_gateway, scripts):
    gw = make_gateway(env={"HP_TIMEOUT_SERVER": f"{DEFAULT_S}s"}, register=False)
    be = StreamBackend(scripts)
    for app in ("longapp", "shortapp"):
        gw.register(app_id=app, port=be.port, routes=ROUTES)
    return gw, be


def published(gw):
    version = gw.ctl.request("GET", "/api/v1/status").json()["table_version"]
    for d in gw.dps:
        wait_for(lambda: d.applied(version), what="table applied")


def open_stream(gw, path):
    s = socket.create_connection(("127.0.0.1", gw.port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    s.settimeout(60 * MULT)
    return s


def read_events(s, n):
    """Reads until <n> events arrived (or EOF): their arrival times, and whether EOF came."""
    buf, times = b"", []
    while len(times) < n:
        data = s.recv(65536)
        if not data:
            return times, True
        buf += data
        while b"\n\n" in buf:
            ev, buf = buf.split(b"\n\n", 1)
            if b"data:" in ev:
                times.append(time.monotonic())
    return times, False


def effective(gw, app):
    r = gw.ctl.request("GET", f"/api/v1/exapps/{app}")
    assert r.status == 200, r
    return r.json()["effective_timeouts"]


def test_sse_lives_through_a_raised_idle_timeout_and_is_cut_at_the_default(make_gateway):
    gw, be = gateway_with_apps(make_gateway, {"/sse": sse_every(2 * DEFAULT_S),
                                              "/silent": silent_after_one})
    try:
        r = gw.ctl.cli("exapp", "set", "longapp", "--idle-timeout", "30s")
        assert r.returncode == 0, r.stderr
        # AppAPI registers the app again: the operator's value stays
        gw.register(app_id="longapp", port=be.port, routes=ROUTES)
        assert effective(gw, "longapp")["app"]["idle"] == {"ms": 30000, "source": "app"}
        published(gw)

        # events every 4 s through an app whose idle timeout is 30 s: not cut while they flow
        s = open_stream(gw, "/exapps/longapp/sse")
        times, eof = read_events(s, 4)
        s.close()
        assert not eof and len(times) == 4, (times, eof)
        gaps = [b - a for a, b in zip(times, times[1:])]
        print(f"longapp: 4 events, gaps {[round(g, 2) for g in gaps]} s "
              f"(default idle {DEFAULT_S} s)")

        # the app left at the default: cut after at least DEFAULT_S of silence
        s = open_stream(gw, "/exapps/shortapp/silent")
        times, eof = read_events(s, 2)
        s.close()
        assert eof and len(times) == 1, "the silent stream ends, after its one event"
        assert be.event("silent_cut").wait(60 * MULT)
        silence = be.times["silent_cut"] - be.times["silent_written"]
        print(f"shortapp: cut after {silence:.2f} s of silence (idle {DEFAULT_S} s)")
        assert silence >= DEFAULT_S, "never cut before the idle timeout"
    finally:
        be.stop()


def test_events_keep_a_default_stream_alive(make_gateway):
    """The idle timeout is between bytes, not the whole response: 8 events 0.5 s apart (4 s,
    twice the default) pass whole."""
    gw, be = gateway_with_apps(make_gateway, {"/sse": sse_every(0.5, count=8)})
    try:
        s = open_stream(gw, "/exapps/shortapp/sse")
        times, eof = read_events(s, 8)
        data = s.recv(65536)
        s.close()
        assert not eof and len(times) == 8
        assert data.endswith(b"0\r\n\r\n"), "the stream ends with its last chunk"
    finally:
        be.stop()


def test_route_timeout_wins_over_the_app_and_default(make_gateway):
    gw, be = gateway_with_apps(make_gateway, {"/slow": sse_every(DEFAULT_S + 1.5, count=2)})
    try:
        r = gw.ctl.cli("exapp", "set", "shortapp", "--route", "^/slow", "--idle-timeout", "20s",
                       "--first-byte-timeout", "1m")
        assert r.returncode == 0, r.stderr
        assert "route 3 (^/slow):" in r.stdout, r.stdout
        assert "idle        20s      (route)" in r.stdout, r.stdout
        r = gw.ctl.cli("exapp", "set", "shortapp", "--ws-idle-timeout", "2h")
        assert r.returncode == 0, r.stderr
        eff = effective(gw, "shortapp")
        assert eff["app"]["ws_idle"] == {"ms": 7200000, "source": "app"}
        assert eff["app"]["idle"] == {"ms": DEFAULT_S * 1000, "source": "default"}
        slow = [x for x in eff["routes"] if x["url"] == "^/slow"][0]
        assert slow["idle"] == {"ms": 20000, "source": "route"}
        assert slow["ws_idle"] == {"ms": 7200000, "source": "app"}
        assert slow["connect"]["source"] == "default"
        r = gw.ctl.cli("exapp", "show", "shortapp")
        assert "ws_idle     2h       (app)" in r.stdout, r.stdout
        published(gw)
        # 3.5 s between the events: past the default, within the route's 20 s
        s = open_stream(gw, "/exapps/shortapp/slow")
        times, eof = read_events(s, 2)
        s.close()
        assert not eof and len(times) == 2
    finally:
        be.stop()


def test_websocket_idle_timeout_per_app(make_gateway):
    gw, be = gateway_with_apps(make_gateway, {"/ws": ws_echo})
    try:
        assert gw.ctl.cli("exapp", "set", "longapp", "--ws-idle-timeout", "30s").returncode == 0
        published(gw)
        up = b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
        s = socket.create_connection(("127.0.0.1", gw.port))
        s.sendall(b"GET /exapps/longapp/ws HTTP/1.1\r\nHost: x\r\n" + up + b"\r\n")
        s.settimeout(60 * MULT)
        assert s.recv(4096).startswith(b"HTTP/1.1 101")
        time.sleep(DEFAULT_S + 1.5)  # silent past the default tunnel timeout
        s.sendall(b"ping")
        assert s.recv(4096) == b"ping", "the tunnel lives on a raised ws-idle timeout"
        s.close()

        be.event("ws_closed").clear()
        s = socket.create_connection(("127.0.0.1", gw.port))
        s.sendall(b"GET /exapps/shortapp/ws HTTP/1.1\r\nHost: x\r\n" + up + b"\r\n")
        s.settimeout(60 * MULT)
        assert s.recv(4096).startswith(b"HTTP/1.1 101")
        s.sendall(b"ping")
        assert s.recv(4096) == b"ping"
        last = time.monotonic()
        assert s.recv(4096) == b"", "the default tunnel timeout closes a silent WebSocket"
        assert time.monotonic() - last >= DEFAULT_S - 0.1
        s.close()
    finally:
        be.stop()


def test_bad_values_are_refused_and_change_nothing(make_gateway):
    gw, be = gateway_with_apps(make_gateway, {})
    try:
        assert gw.ctl.cli("exapp", "set", "longapp", "--idle-timeout", "30m").returncode == 0
        before = effective(gw, "longapp")
        version = gw.ctl.request("GET", "/api/v1/status").json()["table_version"]
        r = gw.ctl.cli("exapp", "set", "longapp", "--idle-timeout", "3x")
        assert r.returncode == 1 and "timeouts.idle: not a duration" in r.stderr, r.stderr
        for body, status, text in [
            ({"timeouts": {"connect": "5s", "ws_idle": "bogus"}}, 400, "timeouts.ws_idle"),
            ({"timeouts": {"idle": "999ms"}}, 400, "from 1s to 24d"),
            ({"timeouts": {"idle": "2073600001"}}, 400, "from 1s to 24d"),  # 24 d + 1 ms
            ({"timeouts": {"idle": "25d"}}, 400, "from 1s to 24d"),
            ({"timeouts": {"idle": -5}}, 400, "not a duration"),
            ({"timeouts": {"idel": "5s"}}, 400, "unknown timeout 'idel'"),
            ({"timeouts": {}}, 400, "body: must be"),
            ({"timeouts": "5s"}, 400, "body: must be"),
            ({"timeouts": {"idle": "5s"}, "route": "^/nope"}, 404, "no route '^/nope'"),
        ]:
            r = gw.ctl.request("PUT", "/api/v1/timeouts/longapp", body)
            assert r.status == status and text in r.text, (body, r)
        r = gw.ctl.request("PUT", "/api/v1/timeouts/nosuchapp", {"timeouts": {"idle": 1000}})
        assert r.status == 404, r
        assert effective(gw, "longapp") == before, "a refused change changes nothing"
        assert gw.ctl.request("GET", "/api/v1/status").json()["table_version"] == version
        # the limits themselves are accepted; "default" goes back to the default
        r = gw.ctl.request("PUT", "/api/v1/timeouts/longapp",
                           {"timeouts": {"idle": "24d", "connect": "1s", "request": 1000}})
        assert r.status == 200, r
        eff = r.json()["effective_timeouts"]["app"]
        assert eff["idle"]["ms"] == 2073600000 and eff["connect"]["ms"] == 1000
        r = gw.ctl.cli("exapp", "set", "longapp", "--idle-timeout", "default",
                       "--connect-timeout", "default", "--request-timeout", "default")
        assert r.returncode == 0, r.stderr
        assert effective(gw, "longapp")["app"]["idle"]["source"] == "default"
    finally:
        be.stop()


def test_timeouts_survive_removal_and_registration_and_a_restart(make_gateway):
    gw, be = gateway_with_apps(make_gateway, {})
    try:
        assert gw.ctl.cli("exapp", "set", "longapp", "--first-byte-timeout", "90s").returncode == 0
        assert gw.ctl.request("DELETE", "/exapp_storage/longapp").status == 204
        gw.register(app_id="longapp", port=be.port, routes=ROUTES)
        assert effective(gw, "longapp")["app"]["first_byte"] == {"ms": 90000, "source": "app"}
        gw.ctl.stop()
        gw.ctl.start()
        assert effective(gw, "longapp")["app"]["first_byte"] == {"ms": 90000, "source": "app"}
    finally:
        be.stop()
