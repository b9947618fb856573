# SPDX-License-Identifier: AGPL-3.0-or-later
"""The control endpoints AppAPI calls (spec 4.0-4.4, 5.3): exact bodies and statuses, the
shared key on everything but /heartbeat, validation naming the field, size limits."""
import json
import os
import socket

import pytest

from harness import CAPTURES, capture_available, http_request, parse_capture

CAPTURE_BODY = {
    "exapp_token": "manual_probe_secret_0123456789",
    "exapp_version": "1.0.0",
    "host": "127.0.0.1",
    "port": 23001,
    "routes": [
        {"url": "^api\\/public\\/.*", "access_level": 0, "bruteforce_protection": [401, 500]},
        {"url": ".*", "access_level": 1, "bruteforce_protection": []},
        {"url": "^admin\\/.*", "access_level": 2, "bruteforce_protection": [401]},
    ],
}


def register(ctl, app_id="manual_probe", body=None):
    body = body or CAPTURE_BODY
    ctl.secrets.append(body["exapp_token"])
    return ctl.request("POST", f"/exapp_storage/{app_id}", body)


def test_heartbeat_needs_no_key_and_has_harps_exact_body(ctl):
    r = ctl.request("GET", "/heartbeat", key=False)
    assert r.status == 200
    assert r.body == b'{"status": "ok"}'
    assert r.headers["content-type"] == "application/json; charset=utf-8"


def test_info_reports_a_version_appapi_accepts_and_docker_and_k8s_off(ctl):
    r = ctl.request("GET", "/info")
    assert r.status == 200
    assert r.body.startswith(b'{"version": "')
    info = r.json()
    major, minor, patch = (int(x) for x in info["version"].split("."))
    assert (major, minor, patch) >= (0, 3, 0)  # AppAPI's HarpVersionCheck minimum
    assert info["docker"] is True
    assert info["kubernetes"] == {"enabled": False}


def test_info_with_k8s_enabled_but_unreachable(ctl_factory):
    port = 1  # nothing listens there
    c = ctl_factory(env={"HP_K8S_ENABLED": "true",
                         "HP_K8S_API_SERVER": f"http://127.0.0.1:{port}",
                         "HP_K8S_BEARER_TOKEN": "k8s-token-abcdef"}).start()
    c.secrets.append("k8s-token-abcdef")
    info = c.request("GET", "/info").json()
    assert info["kubernetes"] == {"enabled": True, "api_server": f"http://127.0.0.1:{port}",
                                  "reachable": False}


@pytest.mark.parametrize("method,path", [
    ("GET", "/info"), ("POST", "/exapp_storage/app1"), ("DELETE", "/exapp_storage/app1"),
    ("GET", "/api/v1/status"), ("GET", "/api/v1/exapps"), ("GET", "/api/v1/exapps/app1"),
    ("DELETE", "/api/v1/exapps/app1"), ("GET", "/no/such/path"),
])
@pytest.mark.parametrize("key", [False, "", "wrong", "test-shared-key-012", "test-shared-key-01234",
                                 "TEST-SHARED-KEY-0123"])
def test_missing_or_wrong_key_is_401(ctl, method, path, key):
    r = ctl.request(method, path, CAPTURE_BODY if method == "POST" else None, key=key)
    assert r.status == 401
    assert r.text == "401: Unauthorized"
    assert r.headers["content-type"] == "text/plain; charset=utf-8"


def test_register_show_delete_cycle(ctl):
    r = register(ctl, "Manual_Probe")
    assert (r.status, r.body) == (204, b"")
    shown = ctl.request("GET", "/api/v1/exapps/MANUAL_PROBE")
    assert shown.status == 200
    app = shown.json()
    assert "exapp_token" not in app and CAPTURE_BODY["exapp_token"] not in shown.text
    assert app["app_id"] == "manual_probe"
    assert app["exapp_version"] == "1.0.0" and app["host"] == "127.0.0.1"
    assert app["port"] == 23001
    assert app["routes"] == CAPTURE_BODY["routes"]
    listed = ctl.request("GET", "/api/v1/exapps").json()["exapps"]
    assert [a["app_id"] for a in listed] == ["manual_probe"]
    assert CAPTURE_BODY["exapp_token"] not in json.dumps(listed)

    r = ctl.request("DELETE", "/exapp_storage/manual_PROBE")
    assert (r.status, r.body) == (204, b"")
    r = ctl.request("DELETE", "/exapp_storage/manual_probe")
    assert (r.status, r.text) == (404, "404: Not Found")
    assert ctl.request("GET", "/api/v1/exapps/manual_probe").status == 404


def test_reregistration_replaces_the_record_and_its_routes(ctl):
    assert register(ctl).status == 204
    body = dict(CAPTURE_BODY, exapp_version="2.0.0", port="23005",
                routes=[{"url": "^/only$", "access_level": "1"}])
    assert register(ctl, body=body).status == 204
    app = ctl.request("GET", "/api/v1/exapps/manual_probe").json()
    assert app["exapp_version"] == "2.0.0" and app["port"] == 23005
    assert app["routes"] == [{"url": "^/only$", "access_level": 1, "bruteforce_protection": []}]


def test_operator_delete(ctl):
    assert register(ctl).status == 204
    assert ctl.request("DELETE", "/api/v1/exapps/manual_probe").status == 204
    assert ctl.request("DELETE", "/api/v1/exapps/manual_probe").status == 404


BAD_BODIES = [
    ({"exapp_version": "1", "host": "h", "port": 1}, "exapp_token"),
    ({"exapp_token": None, "exapp_version": "1", "host": "h", "port": 1}, "exapp_token"),
    ({"exapp_token": "t", "exapp_version": 1, "host": "h", "port": 1}, "exapp_version"),
    ({"exapp_token": "t", "exapp_version": "1", "port": 1}, "host"),
    ({"exapp_token": "t", "exapp_version": "1", "host": "", "port": 1}, "host"),
    ({"exapp_token": "t", "exapp_version": "1", "host": "h"}, "port"),
    ({"exapp_token": "t", "exapp_version": "1", "host": "h", "port": "x"}, "port"),
    ({"exapp_token": "t", "exapp_version": "1", "host": "h", "port": 70000}, "port"),
    ({"exapp_token": "t", "exapp_version": "1", "host": "h", "port": 1, "routes": "x"}, "routes"),
    ({"exapp_token": "t", "exapp_version": "1", "host": "h", "port": 1,
      "routes": [{"access_level": 0}]}, "routes[0].url"),
    ({"exapp_token": "t", "exapp_version": "1", "host": "h", "port": 1,
      "routes": [{"url": "a", "access_level": 0}, {"url": "b", "access_level": 5}]},
     "routes[1].access_level"),
    ({"exapp_token": "t", "exapp_version": "1", "host": "h", "port": 1,
      "routes": [{"url": "a", "access_level": 0, "bruteforce_protection": [401, "x"]}]},
     "routes[0].bruteforce_protection[1]"),
    ([1, 2], "body"),
]


@pytest.mark.parametrize("body,field", BAD_BODIES)
def test_invalid_body_is_400_naming_the_field_and_keeps_the_stored_record(ctl, body, field):
    assert register(ctl).status == 204
    r = ctl.request("POST", "/exapp_storage/manual_probe", body)
    assert r.status == 400
    assert r.text.startswith(f"400: Bad Request: {field}:"), r.text
    app = ctl.request("GET", "/api/v1/exapps/manual_probe").json()
    assert app["port"] == 23001 and len(app["routes"]) == 3


@pytest.mark.parametrize("raw", [b"{bad", b"", b"null", b'{"a": 1', b"\xff\xfe", b'{"a":1,"a":2}'])
def test_malformed_json_is_400(ctl, raw):
    r = ctl.request("POST", "/exapp_storage/x", raw, {"Content-Type": "application/json"})
    assert r.status == 400
    assert r.text.startswith("400: Bad Request:")
    assert ctl.request("GET", "/api/v1/exapps/x").status == 404


@pytest.mark.parametrize("app_id", ["a%20b", "a%2Fb", "app_api", "APP_API", "x" * 256])
def test_bad_app_ids_are_400(ctl, app_id):
    r = register(ctl, app_id)
    assert r.status in (400, 404)
    if r.status == 400:
        assert r.text.startswith("400: Bad Request: app id:")
    assert ctl.request("GET", "/api/v1/exapps").json()["exapps"] == []


def test_oversized_declared_body_is_413_and_daemon_unharmed(ctl):
    with socket.create_connection(ctl.addr) as s:
        s.sendall(b"POST /exapp_storage/big HTTP/1.1\r\nHost: x\r\nharp-shared-key: "
                  + ctl.key.encode() + b"\r\nContent-Length: 50000000\r\n\r\n" + b"{" * 65536)
        head = s.recv(4096)
    assert head.startswith(b"HTTP/1.1 413 ")
    assert ctl.request("GET", "/heartbeat").status == 200
    assert register(ctl).status == 204


def test_endless_body_is_cut_off(ctl):
    """A client that never stops sending is answered 413 and disconnected after 64 MiB."""
    chunk = b"a" * (1 << 20)
    sent = 0
    with socket.create_connection(ctl.addr) as s:
        s.sendall(b"POST /exapp_storage/big HTTP/1.1\r\nHost: x\r\nharp-shared-key: "
                  + ctl.key.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            while sent < 200 << 20:
                s.sendall(b"100000\r\n" + chunk + b"\r\n")
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
    assert sent < 200 << 20
    assert ctl.request("GET", "/heartbeat").status == 200


def test_oversized_chunked_body_is_413_and_daemon_unharmed(ctl):
    chunk = b"a" * 65536
    with socket.create_connection(ctl.addr) as s:
        s.sendall(b"POST /exapp_storage/big HTTP/1.1\r\nHost: x\r\nharp-shared-key: "
                  + ctl.key.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(100):  # 6.4 MiB, over the 4 MiB limit
                s.sendall(b"10000\r\n" + chunk + b"\r\n")
            s.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        s.settimeout(60)
        head = s.recv(4096)
    assert head.startswith(b"HTTP/1.1 413 ")
    assert ctl.request("GET", "/heartbeat").status == 200
    assert ctl.request("GET", "/api/v1/exapps/big").status == 404


def test_a_body_just_under_the_limit_is_read(ctl):
    body = dict(CAPTURE_BODY, exapp_version="v" * 200,
                padding="p" * (4 * 1024 * 1024 - 2000))
    r = register(ctl, "near_limit", body)
    assert r.status == 204


def test_unknown_path_404_and_wrong_method_405_with_allow(ctl):
    r = ctl.request("GET", "/nope")
    assert (r.status, r.text) == (404, "404: Not Found")
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    r = ctl.request("POST", "/info")
    assert (r.status, r.text) == (405, "405: Method Not Allowed")
    assert r.headers["allow"] == "GET"
    r = ctl.request("GET", "/exapp_storage/x")
    assert r.status == 405
    assert set(r.headers["allow"].split(", ")) == {"POST", "DELETE"}
    assert ctl.request("GET", "/exapp_storage/").status == 404
    assert ctl.request("GET", "/exapp_storage/a/b").status == 404


def test_query_string_is_ignored_for_routing(ctl):
    assert ctl.request("GET", "/info?x=1").status == 200
    assert ctl.request("GET", "/heartbeat?y", key=False).status == 200


CONTROL_CAPTURES = sorted(
    f for f in (os.listdir(CAPTURES) if capture_available() else [])
    if any(m + " /exapps/app_api/" + p in open(os.path.join(CAPTURES, f)).read()
           for m in ("GET", "POST", "DELETE") for p in ("exapp_storage", "info")))


@pytest.mark.skipif(not capture_available(), reason="AppAPI captures not present")
@pytest.mark.parametrize("capture", CONTROL_CAPTURES)
def test_appapi_control_requests_replayed(ctl_factory, capture):
    """Every control request AppAPI 33 sent in the capture (/exapps/app_api/<path> without
    docker-engine-port), replayed in order as a data plane forwards it: prefix removed,
    headers and body byte for byte. POST stores exactly the routes sent; DELETE answers 204
    for a registered app and 404 otherwise; /info answers a version."""
    requests = parse_capture(capture)
    key = next(h["harp-shared-key"] for _, t, h, _ in requests if t.startswith("/exapps/app_api/"))
    ctl = ctl_factory(key=key).start()
    registered = set()
    replayed = 0
    for method, target, headers, body in requests:
        if not target.startswith("/exapps/app_api/") or "docker-engine-port" in headers:
            continue
        path = target[len("/exapps/app_api"):]
        if not (path == "/info" or path.startswith("/exapp_storage/")):
            continue
        if body:
            ctl.secrets.append(json.loads(body)["exapp_token"])
        r = http_request(ctl.addr, method, path, body.encode() if body else None, headers)
        app_id = path.rsplit("/", 1)[1].lower()
        if method == "GET":
            assert r.status == 200 and r.json()["version"]
        elif method == "POST":
            assert (r.status, r.body) == (204, b"")
            registered.add(app_id)
            stored = ctl.request("GET", f"/api/v1/exapps/{app_id}").json()
            sent = json.loads(body)
            assert stored["exapp_version"] == sent["exapp_version"]
            assert (stored["host"], stored["port"]) == (sent["host"], int(sent["port"]))
            assert stored["routes"] == [dict({"bruteforce_protection": []}, **rt)
                                        for rt in sent.get("routes", [])]
        elif method == "DELETE":
            assert r.status == (204 if app_id in registered else 404)
            registered.discard(app_id)
            assert ctl.request("GET", f"/api/v1/exapps/{app_id}").status == 404
        replayed += 1
    assert replayed > 0
