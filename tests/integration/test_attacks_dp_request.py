# SPDX-License-Identifier: AGPL-3.0-or-later
"""Attacks on the data plane's request path (issue 12: items 2, 8, 9, 13, 14), replayed
against the real processes: percent-encoded paths walking past access levels, catastrophic
route regexes, injected-header spellings with underscores, lax HTTP/1.1 parsing, and backends
that break the response."""
import json

import pytest

from harness import wait_for
from helpers.backends import RawBackend, raw_request

KEY = "test-shared-key-0123"
# An admin route followed by a catch-all public one: a path that escapes the first reaches
# the second anonymously.
ADMIN_THEN_PUBLIC = [{"url": "^/admin", "access_level": 2}, {"url": "^/.*", "access_level": 0}]


def status_of(out):
    return int(out.split(b" ", 2)[1]) if out.startswith(b"HTTP/1.1 ") else None


def get_raw(port, path, headers="", method="GET"):
    return raw_request(port, f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                       f"{headers}\r\n".encode(), timeout=5)


def backend_paths(gw):
    return [r["path"] for r in gw.backend.requests]


# --- 12.2: one normalised path for the routes, the internal guard and the app id ------------

@pytest.mark.attack("12.2: percent-encoded, doubled and dot segments walk past an admin route")
@pytest.mark.parametrize("path", ["/exapps/pctapp/%61dmin", "/exapps/pctapp/%61%64%6D%69%6E/x",
                                  "/exapps/pctapp//admin", "/exapps/pctapp/./admin",
                                  "/exapps/pctapp/%2e/admin", "/exapps/pctapp///./%2E//admin"])
def test_encoded_admin_path_meets_the_admin_route(gateway, path):
    gateway.register("pctapp", routes=ADMIN_THEN_PUBLIC)
    before = len(gateway.backend.requests)
    r = gateway.get(path)
    assert r.status == 403, r
    assert len(gateway.backend.requests) == before, "the request reached the ExApp"


@pytest.mark.attack("12.2: percent-encoded internal endpoints without AppAPI's signature")
@pytest.mark.parametrize("method,path", [
    ("POST", "/exapps/pctapp/%69nit"), ("PUT", "/exapps/pctapp/%65nabled?enabled=0"),
    ("GET", "/exapps/pctapp/%68eartbeat"), ("POST", "/exapps/pctapp//init"),
    ("POST", "/exapps/pctapp/./init"), ("PUT", "/exapps/pctapp/%2E/%65%6e%61%62%6c%65%64"),
])
def test_encoded_internal_endpoint_is_dropped(gateway, method, path):
    gateway.register("pctapp", routes=ADMIN_THEN_PUBLIC)
    before = len(gateway.backend.requests)
    out = get_raw(gateway.port, path, method=method)
    assert out == b"", out[:100]
    assert len(gateway.backend.requests) == before, "the request reached the ExApp"


@pytest.mark.attack("12.2: encodings that cannot be normalised safely are refused")
@pytest.mark.parametrize("path", ["/exapps/pctapp/x%2fadmin", "/exapps/pctapp/x%2Fadmin",
                                  "/exapps/pctapp/a%00b", "/exapps/pctapp/a%zz",
                                  "/exapps/pctapp/a%4", "/exapps/pctapp/a%", "/exapps/pctapp/a%5cb",
                                  "/exapps/pctapp/a\\admin", "/exapps/pct%2Fapp/x"])
def test_unsafe_encodings_are_refused(gateway, path):
    gateway.register("pctapp", routes=ADMIN_THEN_PUBLIC)
    before = len(gateway.backend.requests)
    out = get_raw(gateway.port, path)
    assert status_of(out) == 400, out[:100]
    assert out.endswith(b"400 Bad Request")
    assert len(gateway.backend.requests) == before


@pytest.mark.attack("12.2: an encoded or doubled app_api needs the shared key")
@pytest.mark.parametrize("path", ["/exapps/%61pp_api/info", "/exapps//app_api/info",
                                  "//exapps/app_api/info", "/exapps/./app_api/info",
                                  "/exapps/app%5Fapi/info"])
def test_encoded_app_api_needs_the_key(gateway, path):
    assert gateway.get(path).status == 401
    r = gateway.get(path, {"harp-shared-key": KEY})
    assert r.status == 200, r
    assert "version" in r.json()


def test_forwarded_path_is_the_normalised_one_query_unchanged(gateway):
    gateway.register("pctapp", routes=ADMIN_THEN_PUBLIC)
    r = gateway.get("/exapps/%70ctapp//p%75b%6cic/./a%3bb/%c3%a9?q=%2f%zz&x=..%2F")
    assert r.status == 200, r
    rec = json.loads(r.body)
    assert rec["path"] == "/public/a%3Bb/%C3%A9?q=%2f%zz&x=..%2F"
    assert gateway.backend.header(rec, "EX-APP-ID") == ["pctapp"]


# --- 12.8: one PCRE2 budget per request ----------------------------------------------------

@pytest.mark.attack("12.8: ReDoS routes cannot fall through to a permissive route")
def test_catastrophic_routes_share_one_budget(gateway):
    routes = [{"url": "^/(a+)+$", "access_level": 0}] * 30
    gateway.register("redos", routes=routes + [{"url": "^/.*", "access_level": 0}])
    before = len(gateway.backend.requests)
    r = gateway.get("/exapps/redos/" + "a" * 40 + "b")
    assert r.status == 400, r
    assert b"400 Bad Request" in r.body
    assert len(gateway.backend.requests) == before, "fell through to the permissive route"
    assert "matching budget" in gateway.dps[0].log()
    assert gateway.get("/exapps/redos/aaaa").status == 200, "cheap matches still work"
    assert gateway.get("/exapps/redos/public/x").status == 200, "so does the catch-all"


# --- 12.9: every spelling of an injected header is removed --------------------------------

INJECTED = {"ex-app-id", "ex-app-version", "authorization-app-api", "aa-version",
            "harp-shared-key"}


@pytest.mark.attack("12.9: injected headers spelled with underscores do not reach the ExApp")
def test_underscore_spellings_of_injected_headers_are_removed(gateway):
    spoof = ["AUTHORIZATION_APP_API", "authorization_app-api", "Authorization-App_Api",
             "EX_APP_ID", "ex_app-id", "Ex_App-Version", "EX_APP_VERSION", "AA_VERSION",
             "aa_version", "harp_shared_key", "HARP_SHARED-KEY", "harp-shared_key"]
    headers = "".join(f"{n}: spoofed-{i}\r\n" for i, n in enumerate(spoof))
    out = get_raw(gateway.port, "/exapps/testapp/public/h", headers)
    assert status_of(out) == 200, out[:200]
    rec = json.loads(out.split(b"\r\n\r\n", 1)[1])
    got = [(k, v) for k, v in rec["headers"] if k.lower().replace("_", "-") in INJECTED]
    assert all("spoofed" not in v for _, v in got), got
    assert sorted(k.upper() for k, _ in got) == ["AA-VERSION", "AUTHORIZATION-APP-API",
                                                 "EX-APP-ID", "EX-APP-VERSION"], got
    other = [k for k, _ in rec["headers"] if "_" in k]
    assert other == [], other


# --- 12.13: strict HTTP/1.1 parsing ---------------------------------------------------------

REQ = b"POST /exapps/testapp/public/p HTTP/1.1\r\nHost: x\r\n"


@pytest.mark.attack("12.13: lax parsing (bare CR, chunk size with a space, bad chunked body)")
@pytest.mark.parametrize("raw", [
    b"GET /exapps/testapp/public/cr HTTP/1.1\r\nHost: x\rX-Foo: y\r\n\r\n",
    b"GET /exapps/testapp/public/cr HTTP/1.1\rHost: x\r\n\r\n",
    b"GET /exapps/testapp/public/cr\r HTTP/1.1\r\nHost: x\r\n\r\n",
    REQ + b"Transfer-Encoding: chunked\r\n\r\n5 5\r\nhello\r\n0\r\n\r\n",
    REQ + b"Transfer-Encoding: chunked\r\n\r\n5\t;x\r\nhello\r\n5x\r\nhello\r\n0\r\n\r\n",
    REQ + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    REQ + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
    REQ + b"Transfer-Encoding: chunked\r\n\r\n5\rhello\r\n0\r\n\r\n",
])
def test_lax_framing_is_refused_with_400(gateway, raw):
    out = raw_request(gateway.port, raw, timeout=5)
    assert status_of(out) == 400, out[:200]
    assert b"Connection: close" in out
    assert gateway.get("/exapps/testapp/public/ok").status == 200


def test_chunk_extensions_and_whitespace_before_them_still_pass(gateway):
    out = raw_request(gateway.port, REQ + b"Transfer-Encoding: chunked\r\nConnection: close\r\n"
                      b"\r\n5 ;a=b\r\nhello\r\n3;x=\"y\"\r\nabc\r\n0\r\n\r\n", timeout=5)
    assert status_of(out) == 200, out[:200]
    assert b'"body_len": 8' in out


# --- 12.14: broken backends -----------------------------------------------------------------

def closes_at_once(sock, head):
    pass


def partial_head(sock, head):
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Le")


def switches_protocols(sock, head):
    sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: evil\r\nConnection: upgrade"
                 b"\r\n\r\nTUNNELLED")
    sock.recv(100)


@pytest.fixture
def raw_backends():
    made = []

    def make(behave):
        b = RawBackend(behave)
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()


@pytest.mark.attack("12.14: a backend closing without a response is a 502, not a 503")
@pytest.mark.parametrize("behave", [closes_at_once, partial_head])
def test_backend_closing_before_a_response_is_502(gateway, raw_backends, behave):
    b = raw_backends(behave)
    gateway.register("broken", port=b.port, routes=[{"url": ".*", "access_level": 0}])
    r = gateway.get("/exapps/broken/x")
    assert r.status == 502, r
    assert b"invalid or incomplete response" in r.body
    assert len(b.heads) >= 1


@pytest.mark.attack("12.14: a 101 to a request without Upgrade is a 502, not a tunnel")
def test_unrequested_101_is_502(gateway, raw_backends):
    b = raw_backends(switches_protocols)
    gateway.register("sw", port=b.port, routes=[{"url": ".*", "access_level": 0}])
    out = get_raw(gateway.port, "/exapps/sw/x")
    assert status_of(out) == 502, out[:200]
    assert b"TUNNELLED" not in out
    wait_for(lambda: len(b.heads) >= 1, what="the backend got the request")


def read_response(sock, buf=b""):
    """One response with a Content-Length from <sock>: (head, body, bytes left over)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, buf
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    length = int([ln.split(b":")[1] for ln in head.split(b"\r\n")
                  if ln.lower().startswith(b"content-length:")][0])
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk
        rest += chunk
    return head, rest[:length], rest[length:]


@pytest.mark.attack("12.14: a half response head of a dead backend never prefixes the next one")
@pytest.mark.parametrize("pipelined", [False, True])
def test_after_a_502_the_connection_serves_the_next_request(gateway, raw_backends, pipelined):
    import socket
    b = raw_backends(partial_head)
    gateway.register("broken", port=b.port, routes=[{"url": ".*", "access_level": 0}])
    first = b"GET /exapps/broken/x HTTP/1.1\r\nHost: x\r\n\r\n"
    second = b"GET /exapps/testapp/public/next HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as s:
        s.sendall(first + second if pipelined else first)
        head, body, left = read_response(s)
        assert head.startswith(b"HTTP/1.1 502 "), head
        if not pipelined:
            s.sendall(second)
        head, body, _ = read_response(s, left)
        assert head.startswith(b"HTTP/1.1 200 "), head
        assert json.loads(body)["path"] == "/public/next"
