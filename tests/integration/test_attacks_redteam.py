# SPDX-License-Identifier: AGPL-3.0-or-later
"""Red-team pass over the issue 12 defences: requests that still got past them."""
import pytest

from helpers.backends import raw_request

KEY = "test-shared-key-0123"
ADMIN_THEN_PUBLIC = [{"url": "^/admin", "access_level": 2}, {"url": "^/.*", "access_level": 0}]
# An anchored admin route, as ExApps write them for exact endpoints.
EXACT_ADMIN_THEN_PUBLIC = [{"url": "^/settings$", "access_level": 2},
                           {"url": "^/.*", "access_level": 0}]


def status_of(out):
    return int(out.split(b" ", 2)[1]) if out.startswith(b"HTTP/1.1 ") else None


def send(port, path, method="GET", headers=""):
    return raw_request(port, f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                       f"{headers}\r\n".encode(), timeout=5)


# --- 12.2: a '#' in the request-target ------------------------------------------------------
# RFC 9112 has no fragment in an origin-form target, and the servers ExApps run on (uvicorn
# with httptools, gunicorn, werkzeug: all urlsplit-style) drop everything from '#' on. harp
# matched the routes and the internal-endpoint guard on "/init#", which the ExApp serves as
# "/init".

@pytest.mark.attack("12.2: a '#' in the target hides an internal endpoint from the guard")
@pytest.mark.parametrize("method,path", [
    ("POST", "/exapps/pctapp/init#"), ("POST", "/exapps/pctapp/init#x"),
    ("GET", "/exapps/pctapp/heartbeat#"), ("PUT", "/exapps/pctapp/enabled#?enabled=0"),
])
def test_fragment_hides_internal_endpoint(gateway, method, path):
    gateway.register("pctapp", routes=ADMIN_THEN_PUBLIC)
    before = len(gateway.backend.requests)
    out = send(gateway.port, path, method)
    assert out == b"" or status_of(out) == 400, out[:100]
    assert len(gateway.backend.requests) == before, "the request reached the ExApp"


@pytest.mark.attack("12.2: a '#' in the target walks past an anchored admin route")
@pytest.mark.parametrize("path", ["/exapps/pctapp/settings#", "/exapps/pctapp/settings#/x",
                                  "/exapps/pctapp/settings#?a=1"])
def test_fragment_walks_past_anchored_admin_route(gateway, path):
    gateway.register("pctapp", routes=EXACT_ADMIN_THEN_PUBLIC)
    before = len(gateway.backend.requests)
    out = send(gateway.port, path)
    assert status_of(out) in (400, 403), out[:100]
    assert len(gateway.backend.requests) == before, "the request reached the ExApp"


@pytest.mark.attack("12.2: a trailing '/' hides an internal endpoint from the guard")
@pytest.mark.parametrize("method,path", [
    ("POST", "/exapps/pctapp/init/"), ("POST", "/exapps/pctapp/%69nit//"),
    ("GET", "/exapps/pctapp/heartbeat/."), ("PUT", "/exapps/pctapp/enabled/?enabled=0"),
])
def test_trailing_slash_hides_internal_endpoint(gateway, method, path):
    # Express (strict routing off, its default) and other routers serve "/init/" as "/init".
    gateway.register("pctapp", routes=ADMIN_THEN_PUBLIC)
    before = len(gateway.backend.requests)
    out = send(gateway.port, path, method)
    assert out == b"", out[:100]
    assert len(gateway.backend.requests) == before, "the request reached the ExApp"


# --- 12.9: injected header names spelled with '.' --------------------------------------------
# PHP registers every $_SERVER name through php_register_variable, which turns '.' (and ' ')
# into '_': behind `php -S`, or PHP-FPM behind a server that keeps such names (Caddy), a client's
# "AUTHORIZATION.APP.API" is $_SERVER['HTTP_AUTHORIZATION_APP_API'], the header harp injects.

INJECTED = {"ex-app-id", "ex-app-version", "authorization-app-api", "aa-version",
            "harp-shared-key"}


@pytest.mark.attack("12.9: injected headers spelled with '.' reach the ExApp")
def test_dot_spellings_of_injected_headers_are_removed(gateway):
    import json
    spoof = ["AUTHORIZATION.APP.API", "authorization.app_api", "EX.APP.ID", "Ex.App-Version",
             "AA.VERSION", "harp.shared.key"]
    headers = "".join(f"{n}: spoofed-{i}\r\n" for i, n in enumerate(spoof))
    out = send(gateway.port, "/exapps/testapp/public/h", headers=headers)
    assert status_of(out) == 200, out[:200]
    rec = json.loads(out.split(b"\r\n\r\n", 1)[1])
    got = [(k, v) for k, v in rec["headers"]
           if k.lower().replace("_", "-").replace(".", "-") in INJECTED]
    assert all("spoofed" not in v for _, v in got), got
