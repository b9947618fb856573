# SPDX-License-Identifier: AGPL-3.0-or-later
"""AppAPI 33's recorded requests replayed through harp-dp in their order: control calls reach
harp-ctl, signed calls to ExApps (heartbeat, init, enabled, and user requests relayed by
Nextcloud's proxy controller) reach the ExApp with the path rewritten, AppAPI's authorization
kept, AA-VERSION 32, and without the shared key. The ExApp's port is the test backend's; a host name (direct mode's Docker alias) becomes
"localhost", which the data plane resolves."""
import json
import os

import pytest

from harness import CAPTURES, capture_available, parse_capture

FILES = sorted(
    f for f in (os.listdir(CAPTURES) if capture_available() else [])
    if any(t.startswith("/exapps/") and not t.startswith("/exapps/app_api/")
           for _, t, _, _ in parse_capture(f)))


@pytest.mark.skipif(not capture_available(), reason="AppAPI captures not present")
@pytest.mark.parametrize("capture", FILES)
def test_capture_replayed_through_the_data_plane(make_gateway, capture):
    requests = parse_capture(capture)
    key = next(h["harp-shared-key"] for _, _, h, _ in requests if "harp-shared-key" in h)
    gw = make_gateway(register=False, key=key)
    port = str(gw.backend.port)
    exapp_calls = 0
    for method, target, headers, body in requests:
        if "docker-engine-port" in headers or target.startswith("/exapps/app_api/docker/"):
            continue  # the Docker issue replays these
        headers = dict(headers)
        if "ex-app-port" in headers:
            headers["ex-app-port"] = port
        if headers.get("ex-app-host", "127.0.0.1") != "127.0.0.1":
            headers["ex-app-host"] = "localhost"  # a Docker network alias in direct mode
        if body and target.startswith("/exapps/app_api/exapp_storage/"):
            meta = json.loads(body)
            meta["port"] = int(port)
            if meta["host"] != "127.0.0.1":
                meta["host"] = "localhost"
            gw.ctl.secrets.append(meta["exapp_token"])
            body = json.dumps(meta)
        before = len(gw.backend.requests)
        r = gw.get(target, headers, method, body.encode() if body else None)
        if target.startswith("/exapps/app_api/"):
            assert r.status in (200, 204, 404), (target, r)
            if target.startswith("/exapps/app_api/exapp_storage/") and method == "POST":
                assert r.status == 204
            continue
        assert r.status == 200, (method, target, r)
        assert len(gw.backend.requests) == before + 1
        rec = gw.backend.last()
        app_id = target.split("/")[2]
        assert rec["path"] == target[len("/exapps/" + app_id):]
        assert rec["method"] == method
        b = gw.backend
        assert b.header(rec, "AUTHORIZATION-APP-API") == [headers["AUTHORIZATION-APP-API"]]
        assert b.header(rec, "AA-VERSION") == ["32"]
        assert b.header(rec, "EX-APP-ID") == [app_id]
        assert b.header(rec, "harp-shared-key") == []
        if body:
            assert rec["body_len"] == len(body.encode())
        exapp_calls += 1
    assert exapp_calls > 0
