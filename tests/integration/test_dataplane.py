# SPDX-License-Identifier: AGPL-3.0-or-later
"""harp-dp with real processes: HaRP's decision procedure (spec 2.3, 2.9), what reaches the
ExApp (2.6), the app_api forwarding (2.8), HTTP/1.1 framing and smuggling defences, and
resilience when the control plane goes away."""
import base64
import json
import socket
import time

import pytest

from harness import Dp, http_request, wait_for
from helpers.backends import raw_request

KEY = "test-shared-key-0123"
SIGNED = {"EX-APP-ID": "testapp", "EX-APP-VERSION": "9.9.9", "EX-APP-HOST": "127.0.0.1",
          "AUTHORIZATION-APP-API": base64.b64encode(b"alice:sig").decode(),
          "AA-VERSION": "33.0.0", "harp-shared-key": KEY}


def dropped(port, path, headers=""):
    """True when the gateway closes without any response (HaRP's silent drop)."""
    out = raw_request(port, f"GET {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode(),
                      timeout=3)
    return out == b""


def test_public_route_is_forwarded_with_rewritten_path_and_injected_headers(gateway):
    r = gateway.get("/exapps/TestApp/public/a%2Fb//c?x=1&y=a+b",
                    {"EX-APP-ID": "spoof", "Ex-App-Version": "spoof", "aa-version": "1",
                     "Authorization-App-Api": "spoof", "harp-shared-key": KEY,
                     "Cookie": "a=1; b=2", "Authorization": "Basic eDp5",
                     "X-Forwarded-For": "203.0.113.9", "X-Custom-Thing": "kept"})
    assert r.status == 200, r
    assert r.headers["x-backend-unknown"] == "kept"
    rec = json.loads(r.body)
    b = gateway.backend
    # normalised ("//" collapsed; the key holder may keep an encoded '/'), query byte-exact
    assert rec["path"] == "/public/a%2Fb/c?x=1&y=a+b", "path normalised, query kept"
    assert b.header(rec, "EX-APP-ID") == ["TestApp"], "original case, client copy replaced"
    assert b.header(rec, "EX-APP-VERSION") == ["1.2.3"]
    assert b.header(rec, "AA-VERSION") == ["32"]
    token = base64.b64encode(b":" + gateway.TOKEN.encode()).decode()
    assert b.header(rec, "AUTHORIZATION-APP-API") == [token]
    assert b.header(rec, "harp-shared-key") == [], "the shared key is never forwarded"
    assert b.header(rec, "Cookie") == ["a=1; b=2"]
    assert b.header(rec, "Authorization") == ["Basic eDp5"]
    assert b.header(rec, "X-Forwarded-For") == ["203.0.113.9"]
    assert b.header(rec, "X-Custom-Thing") == ["kept"]


def test_methods_and_bodies_pass(gateway):
    for method in ("POST", "PUT", "PATCH", "DELETE", "PROPFIND", "OPTIONS"):
        r = gateway.get("/exapps/testapp/public/m", method=method, body=b"x" * 1000)
        assert r.status == 200, (method, r)
        rec = json.loads(r.body)
        assert rec["method"] == method and rec["body_len"] == 1000


@pytest.mark.parametrize("path,status", [
    ("/", 404), ("/exapps", 404), ("/exapps/", 404), ("/exapps/testapp/none", 404),
    ("/exapps/testapp/user", 403), ("/exapps/testapp/admin/x", 403),
    ("/exapps/App_Api/info", 404), ("/exapps/unknown-app/x", 404),
])
def test_local_answers(gateway, path, status):
    r = gateway.get(path)
    assert r.status == status, r
    assert r.headers["content-type"] == "text/plain"
    assert r.text == {403: "403 Forbidden", 404: "404 Not Found"}[status]


@pytest.mark.parametrize("path", ["/exapps/testapp/../x", "/exapps/testapp/%2e%2E/x",
                                  "/exapps/testapp%2F..%2Fx", "/exapps/testapp/public/..",
                                  "/../exapps/testapp/public"])
def test_traversal_is_dropped_silently(gateway, path):
    assert dropped(gateway.port, path)
    assert dropped(gateway.port, path, f"harp-shared-key: {KEY}\r\n")


@pytest.mark.parametrize("internal", ["/heartbeat", "/init", "/enabled"])
def test_internal_paths_only_for_signed_requests(gateway, internal):
    assert dropped(gateway.port, f"/exapps/testapp{internal}")
    r = gateway.get(f"/exapps/testapp{internal}?x=1", SIGNED | {"EX-APP-PORT": "1"})
    assert r.status == 200, r
    rec = json.loads(r.body)
    b = gateway.backend
    assert rec["path"] == f"{internal}?x=1"
    assert b.header(rec, "AUTHORIZATION-APP-API") == [SIGNED["AUTHORIZATION-APP-API"]]
    assert b.header(rec, "EX-APP-VERSION") == ["1.2.3"], "the record's version wins"
    assert b.header(rec, "AA-VERSION") == ["32"]
    missing = {k: v for k, v in SIGNED.items() if k != "AA-VERSION"}
    missing.pop("EX-APP-HOST")
    assert dropped(gateway.port, f"/exapps/testapp{internal}",
                   "".join(f"{k}: {v}\r\n" for k, v in missing.items()) + "ex-app-port: 1\r\n")


def test_signed_request_with_wrong_key_is_dropped(gateway):
    h = SIGNED | {"EX-APP-PORT": "1", "harp-shared-key": "wrong"}
    assert dropped(gateway.port, "/exapps/testapp/heartbeat",
                   "".join(f"{k}: {v}\r\n" for k, v in h.items()))


def test_signed_request_for_an_unregistered_app_uses_its_headers(gateway):
    h = SIGNED | {"EX-APP-PORT": str(gateway.backend.port), "EX-APP-ID": "newapp"}
    r = gateway.get("/exapps/newapp/init", h, method="POST")
    assert r.status == 200
    rec = json.loads(r.body)
    assert gateway.backend.header(rec, "EX-APP-VERSION") == ["9.9.9"]
    assert gateway.nc.count("exapp-meta") == 0


def test_first_matching_route_decides(gateway):
    gateway.register(routes=[{"url": ".*", "access_level": 1},
                             {"url": "^/public", "access_level": 0}])
    assert gateway.get("/exapps/testapp/public/x").status == 403


def test_route_regex_is_python_re_match_semantics(gateway):
    gateway.register(routes=[{"url": "^api\\/public\\/.*", "access_level": 0},
                             {"url": "/x$", "access_level": 0},
                             {"url": "(?i)^/CaSe$", "access_level": 0},
                             {"url": "[", "access_level": 0},
                             {"url": "^/after-bad$", "access_level": 0}])
    assert gateway.get("/exapps/testapp/api/public/x").status == 404, "anchored at '/'"
    assert gateway.get("/exapps/testapp/x").status == 200, "anchored at the start"
    assert gateway.get("/exapps/testapp/a/x").status == 404
    assert gateway.get("/exapps/testapp/case").status == 200, "inline flags work"
    assert gateway.get("/exapps/testapp/after-bad").status == 200, "a bad regex is skipped"


def test_unknown_app_is_fetched_from_nextcloud(gateway):
    gateway.nc.add_app("fromnc", gateway.backend.port, [{"url": "^/p", "access_level": 0}])
    gateway.ctl.secrets.append("fromnc-token-secret")
    r = gateway.get("/exapps/FromNC/p/1")
    assert r.status == 200, r
    rec = json.loads(r.body)
    assert gateway.backend.header(rec, "EX-APP-ID") == ["FromNC"]
    assert gateway.get("/exapps/fromnc/p/2").status == 200
    assert gateway.nc.count("exapp-meta", "fromnc") == 1


def remove_as_appapi_disables(gateway, app_id):
    """AppAPI's disable: the app is marked disabled in Nextcloud, then DELETE /exapp_storage."""
    gateway.nc.disabled.add(app_id)
    assert gateway.ctl.request("DELETE", f"/exapp_storage/{app_id}").status == 204
    version = gateway.ctl.request("GET", "/api/v1/status").json()["table_version"]
    wait_for(lambda: gateway.dps[0].applied(version), what="removal applied")


def test_removed_app_comes_back_when_nextcloud_enabled_it_but_the_push_was_lost(gateway):
    """Issue 13, defect 1: AppAPI's enable marks the app enabled first and pushes
    POST /exapp_storage last; with harp-ctl down at that moment the push is lost. HaRP recovers
    at the next request through exapp-meta; harp answered 404 until the admin disabled and
    enabled the app again, because the removal marker stopped the look-up."""
    nc_app = gateway.nc.add_app("flip", gateway.backend.port, [{"url": ".*", "access_level": 0}],
                                token=gateway.TOKEN, version="1.2.3")
    gateway.register("flip", routes=nc_app["routes"])
    assert gateway.get("/exapps/flip/before").status == 200
    remove_as_appapi_disables(gateway, "flip")
    gateway.ctl.kill9()                    # harp-ctl down while AppAPI enables the app:
    gateway.nc.disabled.discard("flip")    # enabled in Nextcloud, its push never arrives
    gateway.ctl.start()
    wait_for(lambda: gateway.dps[0].connected(), what="the data plane back on its link")
    r = gateway.get("/exapps/flip/after")
    assert r.status == 200, r
    assert gateway.get("/exapps/flip/again").status == 200
    assert gateway.nc.count("get-values", "flip") == 1, "asked once, then published"


def test_removed_app_stays_unreachable_while_nextcloud_holds_it_disabled(gateway):
    """A disabled app is not reachable, although Nextcloud's exapp-meta answers for it: harp
    asks AppAPI (a call signed with the app's secret, which AppAPI refuses for a disabled app)
    at most once per 15 s, and the app stays removed."""
    gateway.nc.add_app("off", gateway.backend.port, [{"url": ".*", "access_level": 0}],
                       token=gateway.TOKEN, version="1.2.3")
    gateway.register("off", routes=[{"url": ".*", "access_level": 0}])
    remove_as_appapi_disables(gateway, "off")
    assert gateway.get("/exapps/off/x").status == 404
    assert gateway.get("/exapps/off/y").status == 404
    assert gateway.nc.count("get-values", "off") == 1
    assert "off" in gateway.nc.disabled and gateway.nc.apps["off"]["exapp_version"] == "1.2.3", \
        "the check is signed with the version Nextcloud holds (another would disable the app)"


def test_app_api_goes_to_the_control_plane_with_the_key_only(gateway):
    r = gateway.get("/exapps/app_api/heartbeat", {"harp-shared-key": KEY})
    assert (r.status, r.body) == (200, b'{"status": "ok"}')
    r = gateway.get("/exapps/app_api/info?x=1", {"harp-shared-key": KEY})
    assert r.status == 200 and r.json()["version"]
    for key in (None, "wrong"):
        r = gateway.get("/exapps/app_api/heartbeat", {"harp-shared-key": key} if key else {})
        assert (r.status, r.text) == (401, "401 Unauthorized")
    r = gateway.get("/exapps/app_api/v1.44/_ping", {"harp-shared-key": KEY})
    assert r.status == 404, "without docker-engine-port it is a control API path"
    r = gateway.get("/exapps/app_api/info", {"harp-shared-key": KEY, "docker-engine-port": "x"})
    assert r.status == 503


def log_time(line):
    from datetime import datetime
    return datetime.strptime(line.split(" ", 1)[0], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def test_route_added_through_the_gateway_reaches_every_data_plane_within_100ms(make_gateway):
    """Measured from harp-ctl's commit of the registration to each harp-dp's swap of the new
    table, on their own log clocks (same host, millisecond stamps)."""
    gw = make_gateway(ndp=2, register=False)
    body = {"exapp_token": "late-token-secret", "exapp_version": "1", "host": "127.0.0.1",
            "port": gw.backend.port, "routes": [{"url": "^/now$", "access_level": 0}]}
    gw.ctl.secrets.append("late-token-secret")
    r = gw.get("/exapps/app_api/exapp_storage/late", {"harp-shared-key": KEY}, "POST",
               json.dumps(body).encode())
    assert r.status == 204
    version = gw.ctl.request("GET", "/api/v1/status").json()["table_version"]
    for d in gw.dps:
        wait_for(lambda: d.applied(version), what="table applied")
    stored = next(l for l in gw.ctl.log().splitlines() if "exapp: stored late " in l)
    for d in gw.dps:
        applied = next(l for l in d.log().splitlines()
                       if f"table version {version} applied" in l)
        delay = log_time(applied) - log_time(stored)
        assert 0 <= delay < 0.1, f"{d.name} applied the route {delay * 1000:.1f} ms later"
    for _ in range(10):
        assert gw.get("/exapps/late/now").status == 200


def test_two_data_planes_share_the_port(make_gateway):
    gw = make_gateway(ndp=2)
    for _ in range(60):
        assert gw.get("/exapps/testapp/public/spread").status == 200
    counts = [d.log().count("/exapps/testapp/public/spread") for d in gw.dps]
    assert all(c > 0 for c in counts), counts


def test_unreachable_exapp_is_503(gateway):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    gateway.register("deadapp", port=dead, routes=[{"url": ".*", "access_level": 0}])
    r = gateway.get("/exapps/deadapp/x")
    assert r.status == 503
    assert b"No server is available to handle this request." in r.body


def test_control_plane_down_then_back(gateway):
    ctl = gateway.ctl
    ctl.kill9()
    for _ in range(20):
        assert gateway.get("/exapps/testapp/public/still").status == 200
    r = gateway.get("/exapps/app_api/heartbeat", {"harp-shared-key": KEY})
    assert r.status == 503 and b"control plane" in r.body
    r = gateway.get("/exapps/neverseen/x")
    assert r.status == 503 and b"control plane" in r.body
    ctl.start()
    wait_for(lambda: gateway.dps[0].connected(), what="resync")
    gateway.register("again", routes=[{"url": ".*", "access_level": 0}])
    assert gateway.get("/exapps/again/x").status == 200
    assert gateway.get("/exapps/testapp/public/after").status == 200


def test_requests_keep_succeeding_while_the_control_plane_restarts(gateway):
    ok = 0
    for i in range(150):
        if i == 30:
            gateway.ctl.kill9()
        if i == 90:
            gateway.ctl.start()
        r = gateway.get("/exapps/testapp/public/loop")
        assert r.status == 200, (i, r)
        ok += 1
    assert ok == 150


def test_keep_alive_and_pipelining(gateway):
    req = (b"GET /exapps/testapp/public/1 HTTP/1.1\r\nHost: x\r\n\r\n"
           b"POST /exapps/testapp/public/2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
           b"GET /exapps/testapp/none HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /exapps/testapp/public/4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    out = raw_request(gateway.port, req, timeout=5)
    assert out.count(b"HTTP/1.1 200 OK") == 3 and out.count(b"HTTP/1.1 404 Not Found") == 1
    assert (out.index(b'"/public/1"') < out.index(b'"/public/2"') < out.index(b"404 Not Found")
            < out.index(b'"/public/4"'))


def test_chunked_both_ways_head_204_304(gateway):
    req = (b"POST /exapps/testapp/public/up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
           b"\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n"
           b"GET /exapps/testapp/public/chunked HTTP/1.1\r\nHost: x\r\n\r\n"
           b"HEAD /exapps/testapp/public/h HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /exapps/testapp/public/status/204 HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /exapps/testapp/public/status/304 HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /exapps/testapp/public/end HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    out = raw_request(gateway.port, req, timeout=5)
    assert b'"body_len": 11' in out
    assert b"5\r\nhello\r\n" not in out and b"hello chunked world" not in out
    assert b"6\r\nhello \r\n8\r\nchunked \r\n5\r\nworld\r\n0\r\n\r\n" in out
    assert b"HTTP/1.1 204 No Content" in out and b"HTTP/1.1 304 Not Modified" in out
    assert out.rstrip().endswith(b'}') and b'"/public/end"' in out
    rec = gateway.backend.requests[-1]
    assert rec["path"] == "/public/end"


def test_expect_100_continue(gateway):
    s = socket.create_connection(("127.0.0.1", gateway.port), timeout=5)
    s.sendall(b"PUT /exapps/testapp/public/e HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
              b"Expect: 100-continue\r\n\r\n")
    first = s.recv(4096)
    assert first.startswith(b"HTTP/1.1 100 Continue\r\n")
    s.sendall(b"data")
    rest = b""
    while b'"body_len": 4' not in rest:
        chunk = s.recv(4096)
        assert chunk
        rest += chunk
    s.close()


@pytest.mark.parametrize("raw,status", [
    (b"GET /exapps/testapp/public HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n", 400),
    (b"POST /exapps/testapp/public HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
     b"Content-Length: 3\r\n\r\nabc", 400),
    (b"POST /exapps/testapp/public HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc", 400),
    (b"POST /exapps/testapp/public HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n"
     b"\r\n", 400),
    (b"GET /exapps/testapp/public HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n", 400),
    (b"GET /exapps/testapp/public HTTP/1.1\nHost: x\n\n", 400),
    (b"GET /exapps/testapp/public HTTP/1.1\r\n\r\n", 400),
    (b"GET /exapps/testapp/public HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    (b"GET exapps/testapp/public HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET /exapps/testapp/public HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n",
     431),
    (b"GET /exapps/testapp/public HTTP/1.1\r\nHost: x\r\n"
     + b"".join(b"X-%d: 1\r\n" % i for i in range(200)) + b"\r\n", 431),
])
def test_malformed_and_ambiguous_requests_are_refused(gateway, raw, status):
    out = raw_request(gateway.port, raw, timeout=5)
    assert out.startswith(b"HTTP/1.1 %d " % status), out[:100]
    assert b"Connection: close" in out
    assert gateway.get("/exapps/testapp/public/ok").status == 200


def test_backend_response_headers_pass_unchanged(gateway):
    r = gateway.get("/exapps/testapp/public/h")
    assert r.headers["x-backend-unknown"] == "kept"
    assert r.headers["content-type"] == "application/json"


def test_large_download_and_upload_in_constant_memory(make_gateway):
    """1 GiB each way through the data plane; its peak RSS stays under 32 MiB."""
    import hashlib
    from helpers.backends import pattern_sha256
    gw = make_gateway()
    size = 1 << 30
    dp = gw.dps[0]
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=60)
    s.sendall(b"GET /exapps/testapp/public/big?size=%d HTTP/1.1\r\nHost: x\r\n\r\n" % size)
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, body = buf.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200")
    h = hashlib.sha256(body)
    got = len(body)
    while got < size:
        chunk = s.recv(1 << 20)
        assert chunk
        h.update(chunk)
        got += len(chunk)
    assert h.hexdigest() == pattern_sha256(size)

    from helpers.backends import PATTERN
    s.sendall(b"PUT /exapps/testapp/public/upload HTTP/1.1\r\nHost: x\r\n"
              b"Content-Length: %d\r\n\r\n" % size)
    left = size
    while left:
        n = min(left, len(PATTERN))
        s.sendall(PATTERN[:n])
        left -= n
    buf = b""
    while b"body_sha256" not in buf or not buf.rstrip().endswith(b"}"):
        buf += s.recv(65536)
    s.close()
    assert pattern_sha256(size).encode() in buf
    peak = dp.rss_peak_kib()
    assert peak < 32 * 1024, f"peak RSS {peak} KiB"


def test_slow_reader_holds_the_upstream(gateway):
    """Backpressure: a client that does not read leaves the upstream paused, not buffered."""
    s = socket.create_connection(("127.0.0.1", gateway.port), timeout=30)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"GET /exapps/testapp/public/big?size=%d HTTP/1.1\r\nHost: x\r\n\r\n" % (300 << 20))
    time.sleep(2)
    peak = gateway.dps[0].rss_peak_kib()
    s.close()
    assert peak < 32 * 1024, f"peak RSS {peak} KiB with a stalled reader"
    assert gateway.get("/exapps/testapp/public/after").status == 200


def test_websocket_echo_close_codes_and_subprotocol(gateway, ws_backend):
    import asyncio

    import websockets
    gateway.register("wsapp", port=ws_backend.port, routes=[{"url": "^/ws$", "access_level": 0}])

    async def run():
        uri = f"ws://127.0.0.1:{gateway.port}/exapps/wsapp/ws"
        async with websockets.connect(uri, subprotocols=["other"], max_size=None,
                                      ping_interval=None) as ws:
            assert ws.subprotocol == "other"
            await ws.send("hello")
            assert await ws.recv() == "hello"
            big = bytes(range(256)) * 800  # 200 KiB binary message
            await ws.send(big)
            assert await ws.recv() == big
            pong = await ws.ping(b"p")
            await asyncio.wait_for(pong, 5)
            await ws.send("close:4001")
            try:
                await ws.recv()
            except websockets.ConnectionClosed as e:
                return e.code, e.reason
        return None

    assert asyncio.run(run()) == (4001, "bye")
    seen = ws_backend.seen[-1]
    assert seen["path"] == "/ws"
    assert {k.lower(): v for k, v in seen["headers"].items()}["ex-app-id"] == "wsapp"


def test_websocket_stays_open_past_the_client_timeout(make_gateway, ws_backend):
    import asyncio

    import websockets
    gw = make_gateway(env={"HP_TIMEOUT_CLIENT": "1s", "HP_TIMEOUT_TUNNEL": "10s"})
    gw.register("wsapp", port=ws_backend.port, routes=[{"url": "^/ws$", "access_level": 0}])

    async def run():
        async with websockets.connect(f"ws://127.0.0.1:{gw.port}/exapps/wsapp/ws",
                                      ping_interval=None) as ws:
            await asyncio.sleep(2.5)
            await ws.send("still here")
            return await ws.recv()

    assert asyncio.run(run()) == "still here"


def test_idle_keep_alive_connection_is_closed_after_the_client_timeout(make_gateway):
    gw = make_gateway(env={"HP_TIMEOUT_CLIENT": "1s"})
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=60)
    s.sendall(b"GET /exapps/testapp/public/t HTTP/1.1\r\nHost: x\r\n\r\n")
    buf = b""
    while not buf.endswith(b"}"):
        buf += s.recv(65536)
    assert buf.startswith(b"HTTP/1.1 200")
    t0 = time.monotonic()
    assert s.recv(1) == b""  # closed by harp (a hang would end in the socket's timeout)
    assert 0.5 < time.monotonic() - t0
    s.close()


def test_slow_upstream_gets_504(make_gateway):
    gw = make_gateway(env={"HP_TIMEOUT_SERVER": "1s"})
    r = gw.get("/exapps/testapp/public/slow?s=3")
    assert r.status == 504


def test_https_frontend_when_the_certificate_exists(make_gateway, tmp_path):
    import ssl
    import subprocess

    from harness import free_port
    certs = tmp_path / "certs"
    certs.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-keyout", str(certs / "key.pem"),
                    "-out", str(certs / "crt.pem")], check=True, capture_output=True)
    (certs / "cert.pem").write_bytes((certs / "crt.pem").read_bytes()
                                     + (certs / "key.pem").read_bytes())
    https_port = free_port()
    gw = make_gateway(env={"HP_CERTS_DIR": str(certs),
                           "HP_EXAPPS_HTTPS_ADDRESS": f"127.0.0.1:{https_port}"})
    ctx = ssl.create_default_context(cafile=str(certs / "crt.pem"))
    ctx.check_hostname = False
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", https_port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            assert s.selected_alpn_protocol() in (None, "http/1.1")
            s.sendall(b"GET /exapps/testapp/public/tls HTTP/1.1\r\nHost: x\r\n"
                      b"Connection: close\r\n\r\n")
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
    assert out.startswith(b"HTTP/1.1 200 OK") and b'"/public/tls"' in out
    assert gw.get("/exapps/testapp/public/plain").status == 200


def test_no_https_without_a_certificate(make_gateway, tmp_path):
    from harness import free_port
    https_port = free_port()
    make_gateway(env={"HP_CERTS_DIR": str(tmp_path / "none"),
                      "HP_EXAPPS_HTTPS_ADDRESS": f"127.0.0.1:{https_port}"})
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", https_port), timeout=2)


def test_docker_proxy_allow_list(gateway):
    """Allowed calls reach the engine port named by docker-engine-port; others get 403."""
    from helpers.backends import HttpBackend
    engine = HttpBackend()
    try:
        h = {"harp-shared-key": KEY, "docker-engine-port": str(engine.port)}
        r = gateway.get("/exapps/app_api/v1.44/_ping", h)
        assert r.status == 200
        rec = json.loads(r.body)
        assert rec["path"] == "/v1.44/_ping"
        assert engine.header(rec, "harp-shared-key") == []
        assert gateway.get("/exapps/app_api/v1.44/images/create?fromImage=a%2Fb", h,
                           "POST").status == 200
        for method, path in [("POST", "/v1.44/containers/create"),
                             ("POST", "/v1.44/containers/nc_app_x/exec"),
                             ("DELETE", "/v1.44/containers/nc_app_x"), ("GET", "/version")]:
            r = gateway.get("/exapps/app_api" + path, h, method)
            assert r.status == 403 and b"Request forbidden by administrative rules." in r.body
        assert len(engine.requests) == 2
    finally:
        engine.stop()


def test_a_data_plane_that_dies_takes_nothing_else_down(make_gateway):
    gw = make_gateway(ndp=2)
    victim, survivor = gw.dps
    victim.proc.kill()
    victim.proc.wait()
    for _ in range(30):
        assert gw.get("/exapps/testapp/public/after-kill").status == 200
    wait_for(lambda: [d["dp_id"] for d in
                      gw.ctl.request("GET", "/api/v1/dataplanes").json()["dataplanes"]]
             == [survivor.name], what="the dead data plane leaves the list")
    gw.dps = [survivor]
    gw.register("later", routes=[{"url": ".*", "access_level": 0}])
    assert gw.get("/exapps/later/x").status == 200


def test_tunnel_closes_after_the_tunnel_timeout(make_gateway, ws_backend):
    import asyncio

    import websockets
    gw = make_gateway(env={"HP_TIMEOUT_TUNNEL": "1s"})
    gw.register("wsapp", port=ws_backend.port, routes=[{"url": "^/ws$", "access_level": 0}])

    async def run():
        async with websockets.connect(f"ws://127.0.0.1:{gw.port}/exapps/wsapp/ws",
                                      ping_interval=None) as ws:
            t0 = time.monotonic()
            try:
                await asyncio.wait_for(ws.recv(), 60)
            except websockets.ConnectionClosed:
                return time.monotonic() - t0
        return None

    elapsed = asyncio.run(run())
    assert elapsed is not None and 0.9 < elapsed


def test_exapp_host_names_are_resolved_off_the_loop(gateway):
    """Direct mode registers host names (Docker aliases); a name that does not resolve is
    HaRP's 404, and other requests are served meanwhile."""
    gateway.register("named", routes=[{"url": ".*", "access_level": 0}])
    body = {"exapp_token": "named-token-secret", "exapp_version": "1", "host": "localhost",
            "port": gateway.backend.port, "routes": [{"url": ".*", "access_level": 0}]}
    gateway.ctl.secrets.append("named-token-secret")
    assert gateway.ctl.request("POST", "/exapp_storage/named", body).status == 204
    body = dict(body, host="no-such-host.invalid")
    assert gateway.ctl.request("POST", "/exapp_storage/nowhere", body).status == 204
    version = gateway.ctl.request("GET", "/api/v1/status").json()["table_version"]
    wait_for(lambda: gateway.dps[0].applied(version), what="table applied")
    for _ in range(3):
        assert gateway.get("/exapps/named/x").status == 200
        r = gateway.get("/exapps/nowhere/x")
        assert (r.status, r.text) == (404, "404 Not Found")
    assert gateway.get("/exapps/testapp/public/alive").status == 200
