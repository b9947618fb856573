# SPDX-License-Identifier: AGPL-3.0-or-later
"""Attacks on the control plane's API, its store and start-up, and on the client IP (issue 12:
items 5, 6, 11, 15, 17, 18), replayed against the real processes: forged X-Forwarded-For
chains, oversize routing tables, control characters in ExApp metadata, hostile key files, the
operator API reached through the public frontend, and a deleted database."""
import json
import os

import pytest

from harness import HARP_CTL, ProtoClient, run_ctl, wait_for
from proto_frames import message
from helpers.backends import raw_request

KEY = "test-shared-key-0123"


def bans(gw):
    return gw.ctl.request("GET", "/api/v1/bans").json()["bans"]


def dropped(gw, headers=""):
    out = raw_request(gw.port, f"GET /exapps/testapp/public/x HTTP/1.1\r\nHost: x\r\n"
                      f"Connection: close\r\n{headers}\r\n".encode(), timeout=5)
    return out == b""


# --- 12.5: the client IP behind a trusted proxy ---------------------------------------------

@pytest.mark.attack("12.5: 100 forged X-Forwarded-For entries choose the banned IP")
@pytest.mark.parametrize("lines", [1, 2])
def test_forged_forwarded_for_chain_cannot_choose_the_ip(make_gateway, lines):
    gw = make_gateway(env={"HP_BLACKLIST_COUNT": "2", "HP_BLACKLIST_WINDOW": "60",
                           "HP_TRUSTED_PROXY_IPS": "127.0.0.1"})
    forged = [f"6.6.{i // 250}.{i % 250 + 1}" for i in range(100)]
    real = "198.51.100.7"  # what the trusted proxy appended: the client's address
    if lines == 1:
        xff = "X-Forwarded-For: " + ", ".join(forged + [real]) + "\r\n"
    else:  # the forged chain in the client's line, the proxy's entry on a line of its own
        xff = "X-Forwarded-For: " + ", ".join(forged) + "\r\nX-Forwarded-For: " + real + "\r\n"
    for _ in range(2):
        out = raw_request(gw.port, b"GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                          + xff.encode() + b"\r\n", timeout=5)
        assert out.startswith(b"HTTP/1.1 404"), out[:100]
    wait_for(lambda: any(b["ip"] == real for b in bans(gw)), what=f"{real} banned")
    assert [b["ip"] for b in bans(gw)] == [real], "no forged entry was counted"
    wait_for(lambda: dropped(gw, f"X-Forwarded-For: {real}\r\n"),
             what="the ban reaching the data plane")
    assert not dropped(gw, f"X-Forwarded-For: {forged[36]}\r\n"), "forged addresses not banned"


# --- 12.6: what a registration may add to the routing table ---------------------------------

def meta(routes=None, **kw):
    body = {"exapp_token": "limit-token-secret", "exapp_version": "1.0.0", "host": "127.0.0.1",
            "port": 23001, "routes": routes if routes is not None else [
                {"url": "^/x$", "access_level": 0}]}
    body.update(kw)
    return body


def stored_state(ctl):
    return (ctl.request("GET", "/api/v1/exapps").json(),
            ctl.request("GET", "/api/v1/status").json()["table_version"])


def route(url="^/r", bf=None):
    return {"url": url, "access_level": 1, "bruteforce_protection": bf or [401]}


@pytest.mark.parametrize("body,status,message", [
    (meta([route()] * 257), 400, "routes: 257 routes, more than the 256 allowed"),
    (meta([route("^/" + "u" * 4095)]), 400, "routes[0].url: longer than 4096 bytes"),
    (meta([route(bf=[401] * 101)]), 400, "routes[0].bruteforce_protection: more than 100"),
    (meta(exapp_version="1" * 257), 400, "exapp_version: longer than 256 bytes"),
    (meta(host="h" * 254), 400, "host: longer than 253 bytes"),
    (meta(exapp_token="t" * 1025), 400, "exapp_token: longer than 1024 bytes"),
    (meta([route("^/" + "u" * 400)] * 160), 413, "the ExApp's record is"),
], ids=["routes", "url", "bruteforce", "version", "host", "token", "record"])
@pytest.mark.attack("12.6: one past each registration limit")
def test_one_past_each_registration_limit(ctl, body, status, message):
    ctl.secrets.append("limit-token-secret")
    assert ctl.request("POST", "/exapp_storage/lim", meta()).status == 204
    before = stored_state(ctl)
    r = ctl.request("POST", "/exapp_storage/lim", body)
    assert r.status == status, r
    assert message in r.text, r.text
    assert stored_state(ctl) == before, "nothing stored on refusal"
    assert ctl.request("POST", "/exapp_storage/other", body).status == status
    assert ctl.request("GET", "/api/v1/exapps/other").status == 404


def test_at_each_registration_limit_is_accepted(ctl):
    ctl.secrets.append("limit-token-secret")
    for body in (meta([route()] * 256), meta([route("^/" + "u" * 4094)]),
                 meta([route(bf=[401] * 100)]), meta(exapp_version="1" * 256),
                 meta(host="h" * 253), meta([route("^/" + "u" * 200)] * 200)):
        r = ctl.request("POST", "/exapp_storage/lim", body)
        assert r.status == 204, r
        got = ctl.request("GET", "/api/v1/exapps/lim").json()
        assert len(got["routes"]) == len(body["routes"])


@pytest.mark.attack("12.6: 3.9 MB registrations overflow the table a data plane receives")
def test_oversize_registrations_are_refused_and_a_new_data_plane_gets_the_table(ctl):
    ctl.secrets.append("limit-token-secret")
    assert ctl.request("POST", "/exapp_storage/small", meta()).status == 204
    before = stored_state(ctl)
    # 160 routes of 4,096 control characters: 3.9 MB of JSON, as large once published
    big = meta([route("\u0001" * 4096)] * 160)
    raw = json.dumps(big).encode()
    assert 3_800_000 < len(raw) < 4 * 1024 * 1024
    for i in range(5):
        r = ctl.request("POST", f"/exapp_storage/big{i}", raw,
                        {"Content-Type": "application/json"})
        assert r.status == 413 and "record is" in r.text, r
    assert stored_state(ctl) == before
    dp = ProtoClient(os.path.join(ctl.state_dir, "ctl.sock"))
    snap = dp.recv()
    assert snap["type"] == "snapshot" and [a["app_id"] for a in snap["exapps"]] == ["small"]
    dp.close()


def fill_table(ctl, prefix, n, routes):
    codes = []
    for i in range(n):
        codes.append(ctl.request("POST", f"/exapp_storage/{prefix}{i:04d}", meta(routes)).status)
        if codes[-1] != 204:
            break
    return codes


@pytest.mark.attack("12.6: registrations beyond the table budget")
def test_the_table_budget_and_the_number_of_apps(ctl):
    ctl.secrets.append("limit-token-secret")
    # records of about 62 KiB: the 12 MiB table holds about 200 of them
    fat = [route("^/" + "u" * 440)] * 120
    record = dict(app_id="fat0000", **meta(fat), created_at=1999999999, updated_at=1999999999)
    fits = 12 * 1024 * 1024 // len(json.dumps(record, separators=(",", ":")))
    codes = fill_table(ctl, "fat", 260, fat)
    assert codes[-1] == 413 and len(codes) - 1 == fits, (len(codes), codes[-1], fits)
    r = ctl.request("POST", "/exapp_storage/onemore", meta(fat))
    assert r.status == 413 and "the routing table would be" in r.text, r
    listed, version = stored_state(ctl)
    assert len(listed["exapps"]) == len(codes) - 1
    # a new data plane receives all of it in one snapshot
    dp = ProtoClient(os.path.join(ctl.state_dir, "ctl.sock"), timeout=30)
    snap = dp.recv()
    assert snap["type"] == "snapshot" and snap["version"] == version
    assert len(snap["exapps"]) == len(codes) - 1
    dp.close()
    # removing apps makes room again; small apps fill up to the number of apps
    for i in range(len(codes) - 1):
        assert ctl.request("DELETE", f"/exapp_storage/fat{i:04d}").status == 204
    codes = fill_table(ctl, "n", 1001, [route()])
    assert len(codes) == 1001 and codes[-1] == 413, (len(codes), codes[-1])
    r = ctl.request("POST", "/exapp_storage/onemore", meta())
    assert r.status == 413 and "already holds 1000 ExApps" in r.text, r
    assert ctl.request("POST", "/exapp_storage/n0000", meta(port=23002)).status == 204


def test_a_table_over_the_frame_limit_is_never_marked_sent(ctl_factory):
    """A database written by an older harp may hold a table that does not fit one frame: the
    data plane is never told it has it, so the first change that fits reaches it as a
    snapshot, not as a delta from a version it never received."""
    import sqlite3
    ctl = ctl_factory().start()
    ctl.stop()
    db = sqlite3.connect(os.path.join(ctl.state_dir, "harp.db"))
    for i in range(16):  # 16 apps of 256 routes of 4,096 bytes: 17.0 MB, 15 of them fit
        app = f"old{i:02d}"
        db.execute("INSERT INTO exapps VALUES (?, 'old-token-secret', '1', '127.0.0.1', 23001, "
                   "'', 1, 1)", (app,))
        db.executemany("INSERT INTO exapp_routes VALUES (?, ?, ?, 0, '[]')",
                       [(app, j, "^/" + "u" * 4094) for j in range(256)])
    db.execute("UPDATE table_state SET version = version + 1")
    db.commit()
    db.close()
    ctl.secrets.append("old-token-secret")
    ctl.start()
    dp = ProtoClient(os.path.join(ctl.state_dir, "ctl.sock"), timeout=5)
    def refused():
        dp.send(message("ping-from-dp"))  # a live data plane: never silent 30 s, however slow
        return "exceeds the 16777216-byte frame limit; not sent" in ctl.log()
    wait_for(refused, what="the refusal logged")
    assert ctl.request("DELETE", "/exapp_storage/old00").status == 204
    msg = dp.recv()
    assert msg["type"] == "snapshot", "a snapshot, never a delta from a version never sent"
    assert len(msg["exapps"]) == 15
    dp.close()


# --- 12.11: control characters in what is written into request heads ------------------------

@pytest.mark.parametrize("field,value", [
    ("exapp_version", "1.0\r\nX-Evil: 1"), ("exapp_version", "1.0\nX-Evil: 1"),
    ("exapp_version", "1\t"), ("exapp_version", "1\x7f"), ("host", "127.0.0.1\r\nX-Evil: 1"),
    ("resolved_host", "127.0.0.1\r\n"),
])
@pytest.mark.attack("12.11: CRLF in exapp_version or host at the API")
def test_control_characters_refused_at_the_api(ctl, field, value):
    ctl.secrets.append("limit-token-secret")
    assert ctl.request("POST", "/exapp_storage/crlf", meta()).status == 204
    before = stored_state(ctl)
    r = ctl.request("POST", "/exapp_storage/crlf", meta(**{field: value}))
    assert r.status == 400, r
    assert f"{field}: must not contain control characters" in r.text, r.text
    assert stored_state(ctl) == before


@pytest.mark.parametrize("field", ["exapp_version", "host"])
@pytest.mark.attack("12.11: CRLF in exapp-meta from Nextcloud")
def test_control_characters_refused_at_exapp_meta_intake(make_gateway, field):
    gw = make_gateway()
    app = gw.nc.add_app("evilmeta", gw.backend.port, [{"url": "^/", "access_level": 0}])
    app[field] = ("1.0" if field == "exapp_version" else "127.0.0.1") + "\r\nX-Evil: 1"
    gw.ctl.secrets.append(app["exapp_token"])
    for _ in range(2):
        assert gw.get("/exapps/evilmeta/x").status == 404, "the app stays unknown"
    wait_for(lambda: f"{field}: must not contain control characters" in gw.ctl.log(),
             what="the reason logged")
    assert gw.ctl.request("GET", "/api/v1/exapps/evilmeta").status == 404
    assert not any("x-evil" in k.lower() or "X-Evil" in v
                   for rec in gw.backend.requests for k, v in rec["headers"])
    assert gw.get("/exapps/testapp/public/x").status == 200, "the other apps are served"


# --- 12.17: the operator API through the public frontend ------------------------------------

@pytest.mark.parametrize("method,path", [
    ("GET", "/exapps/app_api/api/v1/exapps"), ("GET", "/exapps/app_api/api/v1/status"),
    ("POST", "/exapps/app_api/api/v1/bans"), ("DELETE", "/exapps/app_api/api/v1/exapps/testapp"),
    ("GET", "/exapps/app_api/%61pi/v1/exapps"), ("GET", "/exapps/app_api/api%2fv1/exapps"),
    ("GET", "/exapps/app_api//api/v1/exapps"), ("GET", "/exapps/app_api/./api/v1/exapps"),
    ("GET", "/exapps/app_api/api/v1/exapps?x=1"), ("GET", "/exapps/app_api/api/v1//exapps"),
    ("GET", "/exapps/app_api/%2561pi/v1/exapps"), ("GET", "/exapps/App_Api/api/v1/exapps"),
])
@pytest.mark.attack("12.17: the operator API through the data plane with the shared key")
def test_operator_api_is_refused_through_the_data_plane(gateway, method, path):
    body = {"ip": "203.0.113.50", "seconds": 60} if method == "POST" else None
    r = gateway.get(path, {"harp-shared-key": KEY}, method=method, body=body)
    assert r.status in (400, 403, 404), r
    assert b'"exapps"' not in r.body and b"table_version" not in r.body
    assert gateway.ctl.request("GET", "/api/v1/exapps/testapp").status == 200
    assert gateway.ctl.request("GET", "/api/v1/bans").json()["bans"] == []
    if path == "/exapps/app_api/api/v1/exapps":
        assert r.status == 403 and "control address only" in r.text
    # the same on the control address works
    assert gateway.ctl.request("GET", "/api/v1/exapps").status == 200


def test_harps_control_endpoints_still_work_through_the_data_plane(gateway):
    assert gateway.get("/exapps/app_api/heartbeat", {"harp-shared-key": KEY}).status == 200
    r = gateway.get("/exapps/app_api/exapp_storage/viadp", {"harp-shared-key": KEY},
                    method="POST", body=meta())
    gateway.ctl.secrets.append("limit-token-secret")
    assert r.status == 204, r
    assert gateway.get("/exapps/app_api/info", {"harp-shared-key": KEY}).status == 200
    assert gateway.get("/exapps/app_api/exapp_storage/viadp", {"harp-shared-key": KEY},
                       method="DELETE").status == 204


# --- 12.18: a deleted database ---------------------------------------------------------------

@pytest.mark.parametrize("how", ["deleted", "emptied"])
@pytest.mark.attack("12.18: a deleted harp.db silently starts empty")
def test_a_lost_database_stops_the_start(ctl_factory, how):
    ctl = ctl_factory().start()
    ctl.secrets.append("limit-token-secret")
    assert ctl.request("POST", "/exapp_storage/keep", meta()).status == 204
    ctl.stop()
    assert os.path.exists(os.path.join(ctl.state_dir, "initialised"))
    db = os.path.join(ctl.state_dir, "harp.db")
    for f in (db, db + "-wal", db + "-shm"):
        if os.path.exists(f):
            os.unlink(f)
    if how == "emptied":
        open(db, "w").close()
    r = run_ctl(["serve"], ctl.env(), timeout=20)
    assert r.returncode == 1, r
    assert f"{db} is missing or empty" in r.stderr and "--allow-empty" in r.stderr, r.stderr
    assert not os.path.exists(db) or os.path.getsize(db) == 0, "nothing created"
    ctl.command = lambda: [HARP_CTL, "serve", "--allow-empty"]
    ctl.start()
    assert "starting with an empty database (--allow-empty)" in ctl.log()
    assert ctl.request("GET", "/api/v1/exapps").json()["exapps"] == []
    ctl.stop()
    ctl.command = lambda: [HARP_CTL, "serve"]
    ctl.start()  # the new database is there now: no flag needed


def test_a_new_state_directory_starts_without_the_flag(ctl_factory):
    ctl = ctl_factory().start()
    assert ctl.request("GET", "/api/v1/exapps").status == 200


# --- 12.15: hostile key files ----------------------------------------------------------------

def key_file_env(ctl, path):
    env = ctl.env()
    env.pop("HP_SHARED_KEY", None)
    env["HP_SHARED_KEY_FILE"] = str(path)
    return env


@pytest.mark.parametrize("kind", ["nul", "fifo", "directory"])
@pytest.mark.attack("12.15: a key file with a NUL, or a FIFO, as HP_SHARED_KEY_FILE")
def test_hostile_key_files_stop_serve_with_a_message(ctl_factory, tmp_path, kind):
    ctl = ctl_factory()
    path = tmp_path / "key"
    if kind == "nul":
        path.write_bytes(b"a\x00" + KEY.encode() + b"\n")
        path.chmod(0o600)
        want = f"{path} has a NUL byte at offset 1"
    elif kind == "fifo":
        os.mkfifo(path, 0o600)
        want = f"cannot read {path}: not a regular file"
    else:
        path.mkdir()
        want = f"cannot read {path}: not a regular file"
    r = run_ctl(["serve"], key_file_env(ctl, path), timeout=20)
    assert r.returncode == 2, r
    assert "HP_SHARED_KEY_FILE" in r.stderr and want in r.stderr, r.stderr
    r = run_ctl(["config", "check"], key_file_env(ctl, path), timeout=20)
    assert r.returncode == 2 and want in r.stderr, r.stderr


@pytest.mark.attack("12.15: a world-readable key file goes unnoticed")
def test_world_readable_key_file_is_warned_about(ctl_factory, tmp_path):
    path = tmp_path / "key"
    path.write_text(KEY + "\n")
    path.chmod(0o644)
    ctl = ctl_factory(env={"HP_SHARED_KEY": "__unset__", "HP_SHARED_KEY_FILE": str(path)})
    ctl.start()
    assert f"HP_SHARED_KEY_FILE: {path} has mode 0644: other users may read" in ctl.log()
    assert ctl.request("GET", "/api/v1/exapps").status == 200, "the key works"
