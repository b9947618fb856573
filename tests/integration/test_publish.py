# SPDX-License-Identifier: AGPL-3.0-or-later
"""The publisher as a data plane sees it over proto: a snapshot after hello, a delta for each
change with monotonic versions, look-ups of unknown app ids through Nextcloud's exapp-meta
(singleflight, 15 s negative cache, removed apps back only once enabled again), and protocol errors closing
only the offending link."""
import os
import stat
import threading
import time

import pytest

from harness import PROTO_VERSION, ProtoClient, run_ctl
from proto_frames import message


def meta(port=23001, routes=None):
    return {"exapp_token": "pub-token-secret", "exapp_version": "1.0.0", "host": "127.0.0.1",
            "port": port, "routes": routes or [{"url": "^/x$", "access_level": 0}]}


def sock(ctl):
    return os.path.join(ctl.state_dir, "ctl.sock")


def test_socket_is_private(ctl):
    assert stat.S_IMODE(os.stat(sock(ctl)).st_mode) == 0o600


def test_hello_is_welcomed_with_the_proto_version_then_the_state(ctl):
    """Both sides check the proto version at hello: harp-ctl answers a good one with `welcome`
    {proto} before anything else, then the snapshot (which has no `settings`), bans and
    engines."""
    dp = ProtoClient(sock(ctl))
    assert dp.welcome == {"type": "welcome", "proto": PROTO_VERSION}
    snap = dp.recv(skip=())
    assert snap["type"] == "snapshot" and "settings" not in snap
    assert {dp.recv(skip=())["type"], dp.recv(skip=())["type"]} == {"bans", "engines"}


def test_snapshot_then_deltas(ctl):
    ctl.secrets.append("pub-token-secret")
    assert ctl.request("POST", "/exapp_storage/a1", meta()).status == 204
    dp = ProtoClient(sock(ctl))
    snap = dp.recv()
    assert snap["type"] == "snapshot"
    assert [a["app_id"] for a in snap["exapps"]] == ["a1"]
    assert snap["exapps"][0]["exapp_token"] == "pub-token-secret"
    v0 = snap["version"]
    dp.send(message("ack", version=v0))

    assert ctl.request("POST", "/exapp_storage/A2", meta(23002)).status == 204
    d = dp.recv()  # propagation delays are measured in bench/, not asserted here
    assert d["type"] == "delta" and d["from"] == v0 and d["version"] > v0
    assert [a["app_id"] for a in d["upserts"]] == ["a2"] and d["deletes"] == []
    assert ctl.request("DELETE", "/exapp_storage/a1").status == 204
    d2 = dp.recv()
    assert d2["from"] == d["version"] and d2["version"] > d["version"]
    assert d2["upserts"] == [] and d2["deletes"] == ["a1"]
    dp.send(message("ack", version=d2["version"]))

    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        dps = ctl.request("GET", "/api/v1/dataplanes").json()["dataplanes"]
        if dps and dps[0]["applied_version"] == d2["version"]:
            break
        time.sleep(0.02)
    assert dps[0]["dp_id"] == "py-dp" and dps[0]["applied_version"] == d2["version"]
    r = ctl.cli("dp", "list")
    assert r.returncode == 0 and "py-dp" in r.stdout
    dp.close()


def test_two_data_planes_get_the_same_deltas(ctl):
    a, b = ProtoClient(sock(ctl), "dp-a"), ProtoClient(sock(ctl), "dp-b")
    a.recv(), b.recv()
    ctl.secrets.append("pub-token-secret")
    assert ctl.request("POST", "/exapp_storage/x", meta()).status == 204
    da, db = a.recv(), b.recv()
    assert da == db and da["type"] == "delta"


def test_versions_survive_a_restart(ctl):
    ctl.secrets.append("pub-token-secret")
    for i in range(3):
        assert ctl.request("POST", f"/exapp_storage/v{i}", meta()).status == 204
    v = ProtoClient(sock(ctl)).recv()["version"]
    ctl.stop()
    ctl.start()
    snap = ProtoClient(sock(ctl)).recv()
    assert snap["version"] == v and len(snap["exapps"]) == 3


@pytest.mark.parametrize("first", ["ack", "hello-other-proto", "snapshot-from-dp", "unknown-type"])
def test_protocol_errors_close_only_that_link(ctl, first):
    good = ProtoClient(sock(ctl), "good")
    good.recv()
    bad = ProtoClient(sock(ctl), hello=False)
    bad.send(message(first))
    with pytest.raises((EOFError, ConnectionResetError)):
        while True:
            bad.recv(skip=("ping", "pong", "error", "bans"))
    ctl.secrets.append("pub-token-secret")
    assert ctl.request("POST", "/exapp_storage/after", meta()).status == 204
    assert good.recv()["type"] == "delta"


def test_oversized_frame_closes_the_link(ctl):
    bad = ProtoClient(sock(ctl), hello=False)
    bad.sock.sendall(b"\x7f\xff\xff\xff{")
    with pytest.raises((EOFError, ConnectionResetError)):
        bad.recv()
    assert ctl.request("GET", "/heartbeat").status == 200


def test_second_control_plane_on_the_same_socket_is_refused(ctl, tmp_path):
    env = ctl.env()
    env["HP_STATE_DIR"] = str(tmp_path / "other")
    env["HP_CTL_SOCKET"] = sock(ctl)
    env["HP_CONTROL_ADDRESS"] = "127.0.0.1:1"
    r = run_ctl(["serve"], env, timeout=10)
    assert r.returncode == 1 and "another harp-ctl answers on" in r.stderr


def test_lookup_fetches_from_nextcloud_once_for_concurrent_askers(ctl_nc, fake_nc):
    ctl_nc.secrets.append("nc-app-token-secret")
    fake_nc.add_app("ncapp", 23010, [{"url": "^/p$", "access_level": 0,
                                      "bruteforce_protection": [401]}],
                    token="nc-app-token-secret")
    fake_nc.delay = 0.3
    dps = [ProtoClient(sock(ctl_nc), f"dp{i}") for i in range(3)]
    for d in dps:
        d.recv()
    for i, d in enumerate(dps):
        d.send(message("lookup", id=10 + i, app_id="NcApp"))
    for i, d in enumerate(dps):
        msgs = [d.recv(), d.recv()]
        reply = next(m for m in msgs if m["type"] == "lookup_reply")
        delta = next(m for m in msgs if m["type"] == "delta")
        assert msgs.index(delta) < msgs.index(reply), "the table arrives before the reply"
        assert reply["id"] == 10 + i and reply["found"] is True
        assert reply["exapp"]["port"] == 23010
        assert [a["app_id"] for a in delta["upserts"]] == ["ncapp"]
    assert fake_nc.count("exapp-meta") == 1
    call = fake_nc.calls[0]
    assert call[1] == "ncapp" and call[2]["harp-shared-key"] == ctl_nc.key
    stored = ctl_nc.request("GET", "/api/v1/exapps/ncapp").json()
    assert stored["routes"][0]["bruteforce_protection"] == [401]


def test_unknown_app_is_negatively_cached_and_registration_clears_it(ctl_nc, fake_nc):
    dp = ProtoClient(sock(ctl_nc))
    dp.recv()
    for i in range(3):
        dp.send(message("lookup", id=i, app_id="ghost"))
        r = dp.recv()
        assert r["type"] == "lookup_reply" and r["found"] is False and "error" not in r
    assert fake_nc.count("exapp-meta", "ghost") == 1, "one call per 15 s for a missing app"
    ctl_nc.secrets.append("pub-token-secret")
    assert ctl_nc.request("POST", "/exapp_storage/ghost", meta()).status == 204
    assert dp.recv()["type"] == "delta"
    dp.send(message("lookup", id=9, app_id="ghost"))
    assert dp.recv()["found"] is True


def test_removed_app_stays_removed_while_disabled_in_nextcloud(ctl_nc, fake_nc):
    """DELETE follows AppAPI's disable; exapp-meta answers for disabled apps too, so a removed
    app is only fetched again once AppAPI accepts a call signed as the app (it is enabled)."""
    fake_nc.add_app("gone", 23011)
    fake_nc.disabled.add("gone")
    ctl_nc.secrets.append("gone-token-secret")
    ctl_nc.secrets.append("pub-token-secret")
    assert ctl_nc.request("POST", "/exapp_storage/gone", meta()).status == 204
    assert ctl_nc.request("DELETE", "/exapp_storage/gone").status == 204
    dp = ProtoClient(sock(ctl_nc))
    dp.recv()
    dp.send(message("lookup", id=1, app_id="gone"))
    assert dp.recv()["found"] is False
    assert fake_nc.count("get-values", "gone") == 1
    ctl_nc.stop()
    ctl_nc.start()
    dp = ProtoClient(sock(ctl_nc))
    dp.recv()
    dp.send(message("lookup", id=2, app_id="gone"))
    assert dp.recv()["found"] is False, "removal survives a restart"
    fake_nc.disabled.discard("gone")
    ctl_nc.stop()  # a new negative cache
    ctl_nc.start()
    dp = ProtoClient(sock(ctl_nc))
    dp.recv()
    dp.send(message("lookup", id=3, app_id="gone"))
    msgs = [dp.recv(), dp.recv()]
    assert any(m["type"] == "lookup_reply" and m["found"] for m in msgs), "enabled again"


def test_nextcloud_errors_are_not_cached(ctl_nc, fake_nc):
    fake_nc.add_app("flaky", 23012)
    ctl_nc.secrets.append("flaky-token-secret")
    fake_nc.fail_status = 503
    dp = ProtoClient(sock(ctl_nc))
    dp.recv()
    dp.send(message("lookup", id=1, app_id="flaky"))
    r = dp.recv()
    assert r["found"] is False and "503" in r["error"]
    fake_nc.fail_status = None
    dp.send(message("lookup", id=2, app_id="flaky"))
    msgs = [dp.recv(), dp.recv()]
    assert any(m["type"] == "lookup_reply" and m["found"] for m in msgs)
    assert fake_nc.count("exapp-meta", "flaky") == 2
