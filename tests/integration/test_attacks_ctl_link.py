# SPDX-License-Identifier: AGPL-3.0-or-later
"""Attacks on the control link between data planes and harp-ctl (issue 12, items 1, 7, 16):
header bytes that are not UTF-8, malformed proto messages, floods of user look-ups, and log
injection. Each replays the attack against the real processes and checks the refusal."""
import base64
import os
import re
import socket
import threading
import time

import pytest

from harness import MULT, FakeCtl, ProtoClient, wait_for
from proto_frames import PROTO_VERSION, frame, message

KEY = "test-shared-key-0123"
ALICE = "Basic " + base64.b64encode(b"alice:Alice-pw").decode()


def users(nc):
    nc.users = {"alice:Alice-pw": ("alice", 1, True)}
    nc.sessions = {"sess-alice": ("alice", 1)}
    nc.add_app("testapp", 1)  # user-info answers 401 for apps it does not know


def raw_request(port, head, timeout=30.0):
    """Sends <head> (bytes, a whole request head) and returns (status, response bytes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout * MULT) as s:
        s.sendall(head)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    m = re.match(rb"HTTP/1\.1 (\d{3})", data)
    return (int(m.group(1)) if m else None), data


def dataplane(ctl, name):
    for d in ctl.request("GET", "/api/v1/dataplanes").json()["dataplanes"]:
        if d["dp_id"] == name:
            return d
    return None


def sock(ctl):
    return os.path.join(ctl.state_dir, "ctl.sock")


# --- 12.1: header values are bytes; a bad message fails its request, never the link --------

BAD_VALUES = [b"\xff", b"\xff\xfe", b"\x80abc", b"ok\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
              b"caf\xe9", b"\x7f\x7f"]


@pytest.mark.attack("12.1: non-UTF-8 cookies cut a data plane off the control plane")
def test_non_utf8_credentials_keep_the_link_and_reach_nextcloud_exactly(make_gateway):
    gw = make_gateway()
    users(gw.nc)
    dp = gw.dps[0]
    before = dataplane(gw.ctl, "dp0")
    assert before is not None
    downs = dp.log().count("link down")
    t0 = time.monotonic()
    statuses = []
    for i in range(60):
        v = BAD_VALUES[i % len(BAD_VALUES)] + str(i).encode()
        if i % 3 == 2:
            hdr = b"Authorization: Basic " + v + b"\r\n"
        else:
            hdr = b"Cookie: a=b; oc_sessionPassphrase=" + v + b"; c=\xff\r\n"
        status, _ = raw_request(gw.port, b"GET /exapps/testapp/public HTTP/1.1\r\nHost: x\r\n" + hdr +
                                b"X-Other: \xfe\xff\r\nConnection: close\r\n\r\n")
        statuses.append(status)
    # Credentials are resolved whatever the route: Nextcloud knows none of them (anonymous), so
    # the PUBLIC route serves them (never 401/503, the signs of a look-up that was lost).
    assert statuses == [200] * 60, statuses
    assert gw.nc.count("user-info") == 60
    # The exact bytes reached Nextcloud's user-info.
    cookies = [v for call in gw.nc.raw_headers for k, v in call if k == "cookie"]
    auths = [v for call in gw.nc.raw_headers for k, v in call if k == "authorization"]
    others = [v for call in gw.nc.raw_headers for k, v in call if k == "x-other"]
    assert b"a=b; oc_sessionPassphrase=\xff0; c=\xff" in cookies
    assert b"Basic \x80abc2" in auths and b"Basic ok\xc3(11" in auths
    assert others and all(v == b"\xfe\xff" for v in others)
    # The link never dropped: the same connection, older now, and no reconnection logged.
    after = dataplane(gw.ctl, "dp0")
    assert after is not None and after["pid"] == before["pid"]
    assert after["connected_seconds"] >= before["connected_seconds"] + (time.monotonic() - t0) - 1
    assert dp.log().count("link down") == downs
    assert "closing" not in gw.ctl.log()
    # A normal session still authenticates through the control plane.
    r = gw.get("/exapps/testapp/user", {"Cookie": "oc_sessionPassphrase=sess-alice"})
    assert r.status == 200, r
    r = gw.get("/exapps/testapp/user", {"Authorization": ALICE})
    assert r.status == 200, r
    for v in (b"\xff", b"\xff0"):
        assert b"oc_sessionPassphrase=" + v not in gw.ctl.log().encode("utf-8", "surrogateescape")


@pytest.mark.attack("12.1: malformed proto messages close a data plane's link")
def test_bad_messages_on_the_ctl_socket_fail_their_request_not_the_link(ctl_nc, fake_nc):
    dp = ProtoClient(sock(ctl_nc), "raw-dp")
    assert dp.recv()["type"] == "snapshot"
    # The invalid cases of tests/fixtures/proto/ a data plane could send, each with a request id.
    bad_requests = [message(name, id=11 + i) for i, name in enumerate([
        "auth-fields-missing", "auth-proto-2-cookie", "auth-cookie-not-base64",
        "auth-header-not-token", "auth-header-not-base64", "auth-cookie-nul",
        "auth-app-id-number", "lookup-app-id-list",
        "unknown-type",        # unknown type
        "snapshot-from-dp",    # not ours
        "hello-other-proto",   # a second hello
    ])]
    for m in bad_requests:
        dp.send(m)
        r = dp.recv()
        assert r["type"] == "request_error" and r["id"] == m["id"], (m, r)
        assert r["message"]
    # Without a request id: ignored. Frames that are not messages: skipped.
    dp.send(message("event-no-event"))
    dp.send(message("event-failure-ip-list"))
    dp.send(message("ack-no-version"))
    dp.sock.sendall(frame(b"\xff\xfe{not json") + frame(b"[1,2]") + frame(b'{"type": 7}') +
                    frame(b"") + frame(b'{"type":"a","type":"b"}'))
    # The link is alive and answers in step: a valid look-up and a ping.
    dp.send(message("lookup", id=30, app_id="nosuchapp"))
    r = dp.recv()
    assert r["type"] == "lookup_reply" and r["id"] == 30 and r["found"] is False
    dp.send(message("ping-from-dp"))
    assert dp.recv(skip=("bans", "engines"))["type"] == "pong"
    assert any(d["dp_id"] == "raw-dp" for d in
               ctl_nc.request("GET", "/api/v1/dataplanes").json()["dataplanes"])
    st = ctl_nc.request("GET", "/api/v1/status").json()
    assert st["dataplane_bad_messages"] >= len(bad_requests) + 7
    assert "closing" not in ctl_nc.log()
    dp.close()


def test_an_oversized_frame_still_closes_the_link(ctl):
    dp = ProtoClient(sock(ctl), "big")
    dp.recv()
    dp.sock.sendall(b"\x7f\xff\xff\xff{")
    with pytest.raises((EOFError, ConnectionResetError)):
        while True:
            dp.recv()


# --- 12.16: log injection ------------------------------------------------------------------

def forged_lines(text):
    return [line for line in text.splitlines() if line.lstrip().startswith("FORGED")]


@pytest.mark.attack("12.16: log injection through the URL and headers")
def test_control_characters_cannot_forge_log_lines(make_gateway):
    gw = make_gateway(env={"HP_LOG_LEVEL": "debug"})
    users(gw.nc)
    # Through the data plane to harp-ctl's API (with the key, so it is forwarded) and directly.
    r = gw.get("/exapps/app_api/x%0aFORGED%20line%0d%0aFORGED%1b[31m", {"harp-shared-key": KEY})
    assert r.status >= 400, r
    r = gw.ctl.request("GET", "/api/v1/x%0aFORGED%0d%0a%c2%85FORGED")
    assert r.status == 404, r
    # Header values with control characters and bytes that are not UTF-8.
    status, _ = raw_request(gw.port, b"GET /exapps/testapp/user HTTP/1.1\r\nHost: x\r\n"
                            b"Cookie: oc_sessionPassphrase=\rFORGED\r\n\r\n")
    assert status == 400
    status, _ = raw_request(gw.port, b"GET /exapps/testapp/public HTTP/1.1\r\nHost: x\x1b[2J\r\n"
                            b"X-Forwarded-For: \xc2\x85FORGED\r\nConnection: close\r\n\r\n")
    assert status is not None
    raw_request(gw.port, b"GET /exapps/nosuch%0aFORGED/x HTTP/1.1\r\nHost: x\r\n"
                b"Connection: close\r\n\r\n")
    wait_for(lambda: "FORGED" in gw.ctl.log(), what="the URL in harp-ctl's log")
    for text in (gw.ctl.log(), *(d.log() for d in gw.dps)):
        assert forged_lines(text) == [], forged_lines(text)
        assert "\x1b" not in text and "\x85" not in text
    assert "/x\\x0aFORGED\\x0d\\x0a\\xc2\\x85FORGED" in gw.ctl.log()


def test_a_refused_protocol_version_logs_the_reason(ctl):
    dp = ProtoClient(sock(ctl), hello=False)
    dp.send(message("hello-other-proto", dp_id="old"))
    r = dp.recv(skip=("ping", "pong"))
    assert r["type"] == "error" and "required" in r["message"]
    wait_for(lambda: "closing" in ctl.log(), what="the closing line")
    line = next(l for l in ctl.log().splitlines() if "closing" in l)
    assert re.search(r"link \(no hello\): data plane speaks proto 999, this harp-ctl \d+: "
                     r"refused; closing$", line), line


def test_a_data_plane_refuses_a_control_plane_of_another_version(make_gateway):
    """The converse of the test above: a control plane that welcomes with another proto
    version is refused (logged once), the link retries on its backoff, and the last table keeps
    serving; the table that control plane sends is never applied."""
    gw = make_gateway()
    dp = gw.dps[0]
    assert gw.get("/exapps/testapp/public").status == 200
    path = sock(gw.ctl)
    gw.ctl.stop()
    other = FakeCtl(path, proto=PROTO_VERSION + 1,
                    after_welcome=[message("snapshot-empty", version=1000)])
    try:
        wait_for(lambda: len(other.hellos) >= 3, timeout=30, what="the data plane retrying")
        # Nothing but hellos: no ack of the table it sent, no event; the last table serves.
        assert {m["type"] for m in other.received} <= {"hello", "ping"}, other.received
        assert "table version 1000 applied" not in dp.log()
        assert gw.get("/exapps/testapp/public").status == 200, "the last table serves"
        assert all(h["proto"] == PROTO_VERSION and h["dp_id"] == "dp0" for h in other.hellos)
        refusal = (f"speaks proto {PROTO_VERSION + 1}, this harp-dp {PROTO_VERSION}: refused; "
                   f"serving table version")
        assert dp.log().count(refusal) == 1, dp.log()
    finally:
        other.stop()
    # The same control plane speaking this version is followed: its table applies.
    same = FakeCtl(path, after_welcome=[message("snapshot-empty", version=1000)])
    try:
        wait_for(lambda: any(m["type"] == "ack" and m["version"] == 1000 for m in same.received),
                 timeout=30, what="the table of a control plane of this version applied")
        assert "table version 1000 applied" in dp.log()
    finally:
        same.stop()
    gw.ctl.start()
    wait_for(dp.connected, timeout=30, what="the data plane back on harp-ctl")


# --- 12.7: user look-ups are bounded work --------------------------------------------------

def threads_of(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


@pytest.mark.attack("12.7: one thread and one Nextcloud call per anonymous request")
def test_a_flood_of_distinct_credentials_is_bounded(make_gateway):
    workers, cap, n = 4, 32, 400
    gw = make_gateway(env={"HP_USER_LOOKUP_WORKERS": workers, "HP_USER_LOOKUP_MAX": cap})
    users(gw.nc)
    gw.nc.delay = 0.5
    pid = gw.ctl.proc.pid
    base = threads_of(pid)
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], threads_of(pid))
            time.sleep(0.01)

    results = [None] * n
    go = threading.Barrier(n)

    def client(i):
        creds = ({"Cookie": f"oc_sessionPassphrase=flood-{i}"} if i % 2 else
                 {"Authorization": "Basic " + base64.b64encode(f"u{i}:p".encode()).decode()})
        go.wait()
        try:
            results[i] = gw.get("/exapps/testapp/public", creds).status
        except OSError as e:
            results[i] = repr(e)

    sampler = threading.Thread(target=sample)
    sampler.start()
    ts = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120 * MULT)
    stop.set()
    sampler.join()
    calls = gw.nc.count("user-info")
    print(f"threads {base} -> peak {peak[0]}; Nextcloud calls {calls}, at once "
          f"{gw.nc.max_inflight}; 503: {results.count(503)} of {n}")
    # Nextcloud never saw more calls at once than there are workers; the threads stayed few.
    assert peak[0] <= base + 4, (base, peak[0])
    assert gw.nc.max_inflight <= workers
    refused = gw.ctl.request("GET", "/api/v1/status").json()["user_lookups"]["refused"]
    assert set(results) <= {200, 503}, set(results)
    n503 = results.count(503)
    # Beyond the cap the requests were refused at once, never reaching Nextcloud.
    assert n503 >= n - calls and n503 > 0
    assert refused == n503
    assert calls <= n - n503
    # Once the flood is over, look-ups work again.
    r = gw.get("/exapps/testapp/user", {"Cookie": "oc_sessionPassphrase=sess-alice"})
    assert r.status == 200


@pytest.mark.attack("12.7: identical Authorization headers each cost a Nextcloud call")
def test_identical_authorization_headers_share_one_call(make_gateway):
    gw = make_gateway()
    users(gw.nc)
    gw.nc.delay = 1.0
    n = 30
    results = [None] * n
    go = threading.Barrier(n)

    def client(i):
        go.wait()
        results[i] = gw.get("/exapps/testapp/user", {"Authorization": ALICE}).status

    ts = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60 * MULT)
    assert results == [200] * n
    # All arrived within the one second the first call took (they were sent together); a
    # straggler would make a second call, never thirty.
    assert gw.nc.count("user-info") <= 2
    # Not cached (HaRP never caches Authorization-only answers): a later request asks again.
    before = gw.nc.count("user-info")
    assert gw.get("/exapps/testapp/user", {"Authorization": ALICE}).status == 200
    assert gw.nc.count("user-info") == before + 1
