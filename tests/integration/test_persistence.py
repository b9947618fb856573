# SPDX-License-Identifier: AGPL-3.0-or-later
"""Registrations live in SQLite: a restarted control plane knows every ExApp it acknowledged,
and a kill -9 in the middle of a burst loses none that got a 2xx."""
import os
import sqlite3
import stat

from harness import SCHEMA_VERSION, base_env, exapp_body, kill9_during_a_burst, run_ctl


body = exapp_body


def test_restart_keeps_every_registration(ctl_factory):
    c = ctl_factory().start()
    for i in range(5):
        assert c.request("POST", f"/exapp_storage/App{i}", body(i)).status == 204
    assert c.request("DELETE", "/exapp_storage/app3").status == 204
    before = c.request("GET", "/api/v1/exapps").json()
    c.stop()
    c.start()
    after = c.request("GET", "/api/v1/exapps").json()
    assert after == before
    assert [a["app_id"] for a in after["exapps"]] == ["app0", "app1", "app2", "app4"]
    assert f"(schema {SCHEMA_VERSION}, 4 ExApps)" in c.log()


def test_kill9_during_a_burst_loses_no_acknowledged_registration(ctl_factory):
    c = ctl_factory().start()
    acked = kill9_during_a_burst(c)

    db = sqlite3.connect(os.path.join(c.state_dir, "harp.db"))
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    c.start()
    stored = {a["app_id"]: a for a in c.request("GET", "/api/v1/exapps").json()["exapps"]}
    missing = [a for a in acked if a not in stored]
    assert missing == [], f"{len(missing)} acknowledged registrations lost"
    for app_id, b in acked.items():
        s = stored[app_id]
        assert (s["exapp_version"], s["port"]) == (b["exapp_version"], b["port"])
        assert s["routes"] == b["routes"]


def test_state_dir_is_created_private_and_database_is_0600(ctl_factory, tmp_path):
    c = ctl_factory()
    c.state_dir = str(tmp_path / "deep" / "er" / "state")
    c.start()
    assert stat.S_IMODE(os.stat(c.state_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(c.state_dir, "harp.db")).st_mode) == 0o600


def test_second_daemon_on_the_same_state_dir_is_refused(ctl_factory):
    c = ctl_factory().start()
    env = c.env()
    env["HP_CONTROL_ADDRESS"] = "127.0.0.1:1"  # never reached: the lock is taken first
    r = run_ctl(["serve"], env, timeout=10)
    assert r.returncode == 1
    assert "another harp-ctl serve is using" in r.stderr
    assert c.request("GET", "/api/v1/status").status == 200


def test_busy_control_port_is_a_clear_start_error(ctl_factory, tmp_path):
    c = ctl_factory().start()
    env = base_env(HP_SHARED_KEY="k", NC_INSTANCE_URL="http://n",
                   HP_STATE_DIR=str(tmp_path / "other"), HP_CONTROL_ADDRESS=f"127.0.0.1:{c.port}")
    r = run_ctl(["serve"], env, timeout=10)
    assert r.returncode == 1
    assert "HP_CONTROL_ADDRESS" in r.stderr and "cannot listen" in r.stderr


def test_database_from_a_newer_harp_is_refused_untouched(ctl_factory):
    c = ctl_factory().start()
    assert c.request("POST", "/exapp_storage/a", body(1)).status == 204
    c.stop()
    db_path = os.path.join(c.state_dir, "harp.db")
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()
    r = run_ctl(["serve"], c.env(), timeout=10)
    assert r.returncode == 1 and "newer than this harp" in r.stderr
    db = sqlite3.connect(db_path)
    assert db.execute("SELECT count(*) FROM exapps").fetchone()[0] == 1
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    db.commit()
    db.close()
    c.start()
    assert c.request("GET", "/api/v1/exapps/a").status == 200
