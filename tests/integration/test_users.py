# SPDX-License-Identifier: AGPL-3.0-or-later
"""Users (spec 2.3 step 9, 2.5, 3.3): credentials (the oc_sessionPassphrase cookie or an
Authorization header) are resolved by Nextcloud's user-info through the control plane, which
caches cookie answers for HP_SESSION_LIFETIME, shares them with every data plane and makes
one call however many requests carry the same cookie. Outcomes as HaRP's: USER routes need
level 1, ADMIN 2; a Nextcloud error is 401; a 4xx from it is "no user"."""
import base64
import json
import threading
import time

import pytest

from harness import wait_for

KEY = "test-shared-key-0123"
ALICE = "Basic " + base64.b64encode(b"alice:Alice-pw").decode()
ADMIN = "Basic " + base64.b64encode(b"admin:Admin-pw").decode()
BOB = "Basic " + base64.b64encode(b"bob:Bob-pw").decode()


def users(nc):
    nc.users = {"alice:Alice-pw": ("alice", 1, True), "admin:Admin-pw": ("admin", 2, True),
                "bob:Bob-pw": ("bob", 1, False)}
    nc.sessions = {"sess-alice": ("alice", 1), "sess-admin": ("admin", 2),
                   "sess-anon": ("", 0)}
    nc.add_app("testapp", 1)  # user-info answers 401 for apps it does not know


@pytest.fixture
def gw(make_gateway):
    g = make_gateway()
    users(g.nc)
    return g


def cookie(value):
    return {"Cookie": f"nc_session_id=abc; oc_sessionPassphrase={value}; nc_username=x"}


@pytest.mark.parametrize("who,creds,expect", [
    ("anonymous", {}, (200, 403, 403)),
    ("alice cookie", cookie("sess-alice"), (200, 200, 403)),
    ("alice basic", {"Authorization": ALICE}, (200, 200, 403)),
    ("admin cookie", cookie("sess-admin"), (200, 200, 200)),
    ("admin basic", {"Authorization": ADMIN}, (200, 200, 200)),
    ("expired session", cookie("sess-unknown"), (200, 403, 403)),
    ("disabled user", {"Authorization": BOB}, (200, 403, 403)),
])
def test_access_matrix(gw, who, creds, expect):
    got = tuple(gw.get(f"/exapps/testapp/{p}/x", creds).status for p in ("public", "user", "admin"))
    assert got == expect, who
    assert gw.get("/exapps/testapp/none", creds).status == 404


def test_forbidden_body_and_injected_user(gw):
    r = gw.get("/exapps/testapp/admin/x", cookie("sess-alice"))
    assert (r.status, r.text) == (403, "403 Forbidden")
    r = gw.get("/exapps/testapp/user/x", cookie("sess-alice"))
    rec = json.loads(r.body)
    token = base64.b64encode(b"alice:" + gw.TOKEN.encode()).decode()
    assert gw.backend.header(rec, "AUTHORIZATION-APP-API") == [token]
    assert gw.backend.header(rec, "Cookie") == [cookie("sess-alice")["Cookie"]]
    r = gw.get("/exapps/testapp/public/x", cookie("sess-anon"))
    rec = json.loads(r.body)
    assert gw.backend.header(rec, "AUTHORIZATION-APP-API") == [
        base64.b64encode(b":" + gw.TOKEN.encode()).decode()]


def test_what_user_info_receives(gw):
    gw.get("/exapps/TestApp/user/x?q=1", {"Authorization": ALICE, "X-Forwarded-For": "1.2.3.4",
                                         "harp-shared-key": "spoofed", "Content-Length": "0",
                                         "Connection": "keep-alive, X-Hop", "X-Hop": "1"})
    endpoint, app_id, headers = gw.nc.calls[-1]
    assert (endpoint, app_id) == ("user-info", "testapp")
    assert headers["authorization"] == ALICE
    assert headers["x-forwarded-for"] == "1.2.3.4"
    assert headers["harp-shared-key"] == KEY, "the gateway's key, not the client's"
    assert "x-hop" not in headers, "hop-by-hop headers are not passed"
    assert headers.get("host", "").startswith("127.0.0.1:")  # Nextcloud's own, not the client's


def test_session_cache_lifetime(make_gateway):
    g = make_gateway(env={"HP_SESSION_LIFETIME": "1"})
    users(g.nc)
    for _ in range(5):
        assert g.get("/exapps/testapp/user/x", cookie("sess-alice")).status == 200
    assert g.nc.count("user-info") == 1, "one call within the lifetime"
    time.sleep(1.2)
    assert g.get("/exapps/testapp/user/x", cookie("sess-alice")).status == 200
    assert g.nc.count("user-info") == 2, "a new call after it"


def test_lifetime_zero_disables_the_cache(make_gateway):
    g = make_gateway(env={"HP_SESSION_LIFETIME": "0"})
    users(g.nc)
    for _ in range(3):
        g.get("/exapps/testapp/user/x", cookie("sess-alice"))
    assert g.nc.count("user-info") == 3


def test_authorization_only_is_never_cached(gw):
    for _ in range(3):
        assert gw.get("/exapps/testapp/user/x", {"Authorization": ALICE}).status == 200
    assert gw.nc.count("user-info") == 3


def test_one_nextcloud_call_for_50_concurrent_requests_with_one_cookie(gw):
    gw.nc.delay = 0.5
    results = []

    def one():
        results.append(gw.get("/exapps/testapp/user/x", cookie("sess-admin")).status)

    threads = [threading.Thread(target=one) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 50
    assert gw.nc.count("user-info") == 1


def test_the_cache_is_shared_by_data_planes(make_gateway):
    g = make_gateway(ndp=2)
    users(g.nc)
    for _ in range(20):  # new connections land on both data planes
        assert g.get("/exapps/testapp/user/x", cookie("sess-alice")).status == 200
    assert all("user route" in d.log() for d in g.dps), "both served the user"
    assert g.nc.count("user-info") == 1


@pytest.mark.parametrize("status,expect", [(500, 401), (503, 401), (403, 403), (404, 403)])
def test_nextcloud_answers(gw, status, expect):
    gw.nc.fail_status = status
    r = gw.get("/exapps/testapp/user/x", cookie("sess-alice"))
    assert r.status == expect
    if expect == 401:
        assert r.text == "401 Unauthorized"
        assert gw.get("/exapps/testapp/public/x", cookie("sess-alice")).status == 401, \
            "HaRP resolves before matching: a Nextcloud error is 401 even for PUBLIC routes"
    assert gw.get("/exapps/testapp/public/x").status == 200, "no credentials, no call"


def test_nextcloud_unreachable_is_401(make_gateway):
    g = make_gateway()
    users(g.nc)
    g.nc.stop()
    r = g.get("/exapps/testapp/user/x", {"Authorization": ALICE})
    assert r.status == 401


def test_cached_sessions_survive_the_control_plane(make_gateway):
    g = make_gateway(env={"HP_SESSION_LIFETIME": "10"})
    users(g.nc)
    assert g.get("/exapps/testapp/user/x", cookie("sess-alice")).status == 200
    g.ctl.kill9()
    assert g.get("/exapps/testapp/user/x", cookie("sess-alice")).status == 200
    assert g.get("/exapps/testapp/user/x", cookie("sess-admin")).status == 401
    g.ctl.start()
    wait_for(lambda: g.dps[0].connected(), what="resync")
    assert g.get("/exapps/testapp/admin/x", cookie("sess-admin")).status == 200


def test_cookies_are_not_logged(gw):
    gw.get("/exapps/testapp/user/x", cookie("sess-alice"))
    gw.get("/exapps/testapp/user/x", {"Authorization": ALICE})
    for text in [gw.ctl.log()] + [d.log() for d in gw.dps]:
        assert "sess-alice" not in text and ALICE.split()[1] not in text
