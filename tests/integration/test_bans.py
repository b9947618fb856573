# SPDX-License-Identifier: AGPL-3.0-or-later
"""Brute-force bans (spec 2.7, issue: shared by all data planes, kept across restarts):
failures counted per client IP over every data plane; HP_BLACKLIST_COUNT of them within
HP_BLACKLIST_WINDOW ban it (requests dropped silently, or 429 when asked); callers with the
valid shared key are never counted nor banned; operators list, add and remove bans."""
import json
import time

import pytest

from harness import wait_for
from helpers.backends import raw_request

KEY = "test-shared-key-0123"


def dropped(gw, path="/exapps/testapp/public/x", headers=""):
    out = raw_request(gw.port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                      f"{headers}\r\n".encode(), timeout=3)
    return out == b""


def bans(gw):
    return gw.ctl.request("GET", "/api/v1/bans").json()["bans"]


def wait_banned(gw, ip="127.0.0.1"):
    wait_for(lambda: any(b["ip"] == ip for b in bans(gw)), what=f"{ip} banned")
    # every data plane has the list once the control plane has it and pushed it
    time.sleep(0.1)


@pytest.fixture
def banning(make_gateway):
    return make_gateway(env={"HP_BLACKLIST_COUNT": "3", "HP_BLACKLIST_WINDOW": "2"})


def test_failures_ban_the_client_and_the_ban_expires(banning):
    gw = banning
    for _ in range(3):
        assert gw.get("/").status == 404
    wait_banned(gw)
    b = bans(gw)[0]
    assert (b["failures"], b["reason"]) == (3, "failures")
    assert dropped(gw), "every request of a banned client is dropped"
    assert dropped(gw, "/exapps/app_api/heartbeat"), "control traffic without the key too"
    r = gw.get("/exapps/app_api/heartbeat", {"harp-shared-key": KEY})
    assert r.status == 200, "the shared key is never locked out"
    wait_for(lambda: not bans(gw), what="the ban to expire")
    wait_for(lambda: gw.get("/exapps/testapp/public/x").status == 200,
             what="the client served again")


def test_failure_kinds_and_the_key_exemption(banning):
    gw = banning
    for _ in range(5):
        gw.get("/exapps/unknown/x", {"harp-shared-key": KEY})
        gw.get("/", {"harp-shared-key": KEY})
        assert dropped(gw, "/exapps/testapp/heartbeat", f"harp-shared-key: {KEY}\r\n")
    assert bans(gw) == [], "key holders are never counted"
    assert gw.get("/exapps/testapp/admin/x").status == 403  # F7
    assert gw.get("/exapps/testapp/none").status == 404     # F8
    assert not dropped(gw, "/exapps/testapp/public/ok")
    assert dropped(gw, "/exapps/testapp/init")               # F6
    wait_banned(gw)


def test_successful_requests_do_not_count(banning):
    for _ in range(10):
        assert banning.get("/exapps/testapp/public/x").status == 200
    assert bans(banning) == []


def test_bruteforce_protection_statuses_count(banning):
    gw = banning  # route ^/public has bruteforce_protection [401]
    for _ in range(3):
        r = gw.get("/exapps/testapp/public/status/401")
        assert r.status == 401, "the response passes unchanged"
    wait_banned(gw)


def test_failures_spread_over_two_data_planes_ban_at_the_same_count(make_gateway):
    # Each request is a new connection; SO_REUSEPORT spreads them by a hash of the client port,
    # so 16 of them all reach one data plane with a chance of 2**-15.
    gw = make_gateway(ndp=2, env={"HP_BLACKLIST_COUNT": "16", "HP_BLACKLIST_WINDOW": "30"})
    for i in range(15):
        assert gw.get(f"/nothing-{i}").status == 404
    assert bans(gw) == [], "fifteen failures: not yet"
    assert gw.get("/nothing-15").status == 404
    wait_banned(gw)
    assert all("/nothing-" in d.log() for d in gw.dps), "both data planes saw failures"
    for _ in range(6):
        assert dropped(gw), "both data planes drop the banned client"


def test_bans_survive_a_control_plane_restart(make_gateway):
    gw = make_gateway(env={"HP_BLACKLIST_COUNT": "2", "HP_BLACKLIST_WINDOW": "60"})
    gw.get("/")
    gw.get("/")
    wait_banned(gw)
    gw.ctl.stop()
    assert dropped(gw), "the data plane keeps the ban while the control plane is away"
    gw.ctl.start()
    wait_for(lambda: gw.dps[0].connected(), what="resync")
    assert [b["ip"] for b in bans(gw)] == ["127.0.0.1"]
    assert dropped(gw)


def test_opt_in_429_with_retry_after(make_gateway):
    gw = make_gateway(env={"HP_BLACKLIST_COUNT": "1", "HP_BLACKLIST_WINDOW": "30",
                           "HP_BAN_REPLY_429": "true"})
    gw.get("/")
    wait_banned(gw)
    r = gw.get("/exapps/testapp/public/x")
    assert r.status == 429
    assert 0 < int(r.headers["retry-after"]) <= 31  # rounded up: never lifted early


def test_count_zero_disables_bans(make_gateway):
    gw = make_gateway(env={"HP_BLACKLIST_COUNT": "0"})
    for _ in range(20):
        gw.get("/")
    assert bans(gw) == []
    assert gw.get("/exapps/testapp/public/x").status == 200


def test_client_ip_behind_a_trusted_proxy(make_gateway):
    gw = make_gateway(env={"HP_BLACKLIST_COUNT": "2", "HP_BLACKLIST_WINDOW": "30",
                           "HP_TRUSTED_PROXY_IPS": "127.0.0.0/8"})
    xff = {"X-Forwarded-For": "6.6.6.6, 198.51.100.7"}
    gw.get("/", xff)
    gw.get("/", xff)
    wait_banned(gw, "198.51.100.7")
    assert [b["ip"] for b in bans(gw)] == ["198.51.100.7"], "not the forged left-most entry"
    assert dropped(gw, headers="X-Forwarded-For: 198.51.100.7\r\n")
    assert gw.get("/exapps/testapp/public/x", {"X-Forwarded-For": "203.0.113.1"}).status == 200
    assert gw.get("/exapps/testapp/public/x").status == 200, "the proxy itself is not banned"


def test_operators_manage_bans(make_gateway):
    gw = make_gateway()
    c = gw.ctl
    r = c.cli("ban", "add", "203.0.113.9", "--for", "120")
    assert r.returncode == 0 and "banned 203.0.113.9" in r.stdout
    r = c.cli("ban", "add", "2001:DB8:0::1")
    assert r.returncode == 0
    listed = c.cli("ban", "list", "--json")
    ips = [b["ip"] for b in json.loads(listed.stdout)["bans"]]
    assert ips == ["2001:db8::1", "203.0.113.9"], "canonical forms"
    table = c.cli("ban", "list").stdout
    assert "203.0.113.9" in table and "operator" in table
    r = c.cli("ban", "add", "not-an-ip")
    assert r.returncode == 1 and "ip: must be an IPv4 or IPv6 address" in r.stderr
    r = c.request("POST", "/api/v1/bans", {"ip": "1.2.3.4", "seconds": 0})
    assert r.status == 400 and "seconds" in r.text
    assert c.request("POST", "/api/v1/bans", [1]).status == 400
    r = c.cli("ban", "rm", "203.0.113.9")
    assert r.returncode == 0
    r = c.cli("ban", "rm", "203.0.113.9")
    assert r.returncode == 1 and "no ban" in r.stderr
    c.cli("ban", "add", "127.0.0.1", "--for", "60")
    wait_for(lambda: dropped(gw), what="an operator's ban reaching the data plane")
    c.cli("ban", "rm", "127.0.0.1")
    wait_for(lambda: gw.get("/exapps/testapp/public/x").status == 200,
             what="the lifted ban reaching the data plane")


@pytest.mark.parametrize("failing", [
    lambda gw: dropped(gw, "/exapps/testapp/%2e%2e/x"),                          # F1
    lambda gw: gw.get("/exapps/app_api/info", {"harp-shared-key": "nope"}),     # F3
    lambda gw: dropped(gw, "/exapps/testapp/heartbeat",                          # F4
                       "ex-app-version: 1\r\nex-app-id: t\r\nex-app-host: h\r\n"
                       "ex-app-port: 1\r\nauthorization-app-api: QQ==\r\n"
                       "harp-shared-key: nope\r\n"),
    lambda gw: gw.get("/exapps/ghost-app/x"),                                   # F5
])
def test_each_failure_kind_counts(banning, failing):
    for _ in range(3):
        failing(banning)
    wait_banned(banning)
