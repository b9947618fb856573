# SPDX-License-Identifier: AGPL-3.0-or-later
"""The audit chain: every change is an entry, `audit verify` catches edits of the database
(an entry edited, removed, moved, a route changed without an entry, the whole chain rewritten
with fresh hashes), proofs check offline, and a kill -9 leaves a chain that verifies."""
import hashlib
import json
import os
import sqlite3
import stat
import time

import pytest

from harness import exapp_body, kill9_during_a_burst


body = exapp_body


def db_of(c):
    return sqlite3.connect(os.path.join(c.state_dir, "harp.db"))


def verify(c):
    r = c.cli("audit", "verify")
    return r.returncode, r.stdout + r.stderr


def populated(ctl_factory):
    """A stopped harp-ctl after five registrations, one removal and a ban."""
    c = ctl_factory().start()
    for i in range(5):
        assert c.request("POST", f"/exapp_storage/app{i}", body(i)).status == 204
    assert c.request("DELETE", "/exapp_storage/app3").status == 204
    assert c.request("POST", "/api/v1/bans", {"ip": "192.0.2.7"}).status in (200, 201)
    c.stop()
    return c


def seq_of(c, op, subject):
    db = db_of(c)
    (seq,) = db.execute("SELECT seq FROM audit_log WHERE op = ? AND subject = ?",
                        (op, subject)).fetchone()
    db.close()
    return seq


def test_every_change_is_an_entry_and_the_chain_verifies(ctl_factory):
    c = populated(ctl_factory)
    key = c.cli("audit", "key")
    assert key.returncode == 0 and len(key.stdout.strip()) == 64
    assert stat.S_IMODE(os.stat(os.path.join(c.state_dir, "audit_key.pem")).st_mode) == 0o600
    r = c.cli("audit", "log", "--json")
    assert r.returncode == 0, r.stderr
    log = json.loads(r.stdout)
    ops = [(e["actor"], e["op"], e["subject"]) for e in log]
    assert ops[0] == ("harp-ctl", "audit.start", "")
    assert [o for o in ops if o[1].startswith("exapp.")] == \
        [("appapi", "exapp.put", f"app{i}") for i in range(5)] + \
        [("appapi", "exapp.delete", "app3")]
    assert ("operator", "ban.put", "192.0.2.7") in ops
    put = next(e for e in log if e["subject"] == "app1")
    assert "tok-1-secret" not in r.stdout  # tokens are in the chain as their hash only
    assert put["effect"]["app"]["token_sha256"] == hashlib.sha256(b"tok-1-secret").hexdigest()
    assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
    only = json.loads(c.cli("audit", "log", "--json", "--app", "APP3").stdout)
    assert [e["op"] for e in only] == ["exapp.put", "exapp.delete"]
    later = json.loads(c.cli("audit", "log", "--json", "--since",
                             str(int(time.time()) + 3600)).stdout)
    assert later == []
    assert c.cli("audit", "log", "--since", "yesterday").returncode == 2
    rc, out = verify(c)
    assert rc == 0 and "audit chain intact" in out, out
    # the chain goes on across a restart
    c.start()
    assert c.request("POST", "/exapp_storage/app9", body(9)).status == 204
    c.stop()
    rc, out = verify(c)
    assert rc == 0, out


def tamper_edit(db, c):
    seq = seq_of(c, "exapp.put", "app2")
    eff = json.loads(db.execute("SELECT effect FROM audit_log WHERE seq = ?", (seq,)).fetchone()[0])
    eff["app"]["port"] = 9999
    db.execute("UPDATE audit_log SET effect = ? WHERE seq = ?",
               (json.dumps(eff, sort_keys=True, separators=(",", ":")), seq))
    return f"entry {seq}:"


def tamper_delete(db, c):
    seq = seq_of(c, "exapp.put", "app2")
    db.execute("DELETE FROM audit_log WHERE seq = ?", (seq,))
    return f"entry {seq} is missing"


def tamper_reorder(db, c):
    a = seq_of(c, "exapp.put", "app1")
    db.execute("UPDATE audit_log SET seq = -1 WHERE seq = ?", (a,))
    db.execute("UPDATE audit_log SET seq = ? WHERE seq = ?", (a, a + 1))
    db.execute("UPDATE audit_log SET seq = ? WHERE seq = -1", (a + 1,))
    return f"entry {a}:"


def tamper_route(db, c):
    db.execute("UPDATE exapp_routes SET access_level = 0 WHERE app_id = 'app2'")
    (v,) = db.execute("SELECT version FROM table_state").fetchone()
    return f"table version {v}: ExApp app2"


def canon(o):
    return json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def tamper_rewrite(db, c):
    """Edits an entry and recomputes every hash after it: only the signatures catch it."""
    seq = seq_of(c, "exapp.put", "app2")
    rows = db.execute("SELECT seq, at, actor, op, subject, version, effect, prev_hash FROM "
                      "audit_log ORDER BY seq").fetchall()
    prev = None
    for (s, at, actor, op, subject, version, effect, old_prev) in rows:
        eff = json.loads(effect)
        if s == seq:
            eff["app"]["routes"][0]["access_level"] = 0
        if prev is None:
            prev = old_prev
        entry = {"seq": s, "at": at, "actor": actor, "op": op, "subject": subject,
                 "version": version, "effect": eff, "prev": prev}
        h = hashlib.sha256(canon(entry).encode()).hexdigest()
        db.execute("UPDATE audit_log SET effect = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                   (canon(eff), prev, h, s))
        prev = h
    db.execute("UPDATE exapp_routes SET access_level = 0 WHERE app_id = 'app2'")
    (v,) = db.execute("SELECT min(version) FROM audit_versions WHERE seq >= ?", (seq,)).fetchone()
    return f"table version {v}:"


@pytest.mark.parametrize("tamper", [tamper_edit, tamper_delete, tamper_reorder, tamper_route,
                                    tamper_rewrite], ids=lambda f: f.__name__[7:])
def test_verify_names_the_tampered_entry_or_version(ctl_factory, tamper):
    c = populated(ctl_factory)
    assert verify(c)[0] == 0
    db = db_of(c)
    expect = tamper(db, c)
    db.commit()
    db.close()
    rc, out = verify(c)
    assert rc == 1 and "audit chain BROKEN" in out and expect in out, (expect, out)
    j = json.loads(c.cli("audit", "verify", "--json").stdout)
    assert j["ok"] is False and expect in j["error"]


def test_kill9_during_a_burst_leaves_a_chain_with_every_acknowledged_change(ctl_factory):
    c = ctl_factory().start()
    acked = kill9_during_a_burst(c)
    rc, out = verify(c)
    assert rc == 0, out
    log = json.loads(c.cli("audit", "log", "--json").stdout)
    logged = {e["subject"] for e in log if e["op"] == "exapp.put"}
    missing = [a for a in acked if a not in logged]
    assert missing == [], f"{len(missing)} acknowledged registrations missing from the chain"
    c.start()
    assert c.request("POST", "/exapp_storage/after", body(1)).status == 204
    c.stop()
    assert verify(c)[0] == 0


def acks_of(c, version):
    db = db_of(c)
    n = db.execute("SELECT count(*) FROM audit_acks WHERE version = ?", (version,)).fetchone()[0]
    db.close()
    return n


def check_proof(c, path, key):
    r = c.cli("audit", "check-proof", path, "--key", key)
    return r.returncode, r.stdout + r.stderr


def test_proof_after_1000_operations_and_two_acks_verifies_and_any_flipped_byte_fails(
        make_gateway, tmp_path):
    from harness import wait_for
    gw = make_gateway(ndp=2, register=False)
    c = gw.ctl
    for i in range(1000):  # 900 registrations of 300 apps, 100 removals
        if i % 10 == 9:
            assert c.request("DELETE", f"/exapp_storage/a{(i - 1) % 300}").status == 204
        else:
            b = body(i)
            c.secrets.append(b["exapp_token"])
            assert c.request("POST", f"/exapp_storage/a{i % 300}", b).status == 204
    version = c.request("GET", "/api/v1/status").json()["table_version"]
    wait_for(lambda: acks_of(c, version) == 2, what="two data planes' acknowledgements")
    key = c.cli("audit", "key").stdout.strip()
    proof = str(tmp_path / "proof.json")
    r = c.cli("audit", "proof", "--out", proof)
    assert r.returncode == 0, r.stderr
    rc, out = check_proof(c, proof, key)
    assert rc == 0 and f"table version {version} " in out and "co-signed by 2 data planes" in out, \
        out
    for d in gw.dps:
        assert "does not hash" not in d.log()
    # offline: no database, no key file
    os.rename(os.path.join(c.state_dir, "harp.db"), os.path.join(c.state_dir, "moved.db"))
    assert check_proof(c, proof, key)[0] == 0
    os.rename(os.path.join(c.state_dir, "moved.db"), os.path.join(c.state_dir, "harp.db"))
    other = "00" * 32
    assert check_proof(c, proof, other)[0] == 1
    data = open(proof, "rb").read()
    positions = sorted({0, 1, len(data) // 3, len(data) // 2, len(data) - 2, len(data) - 1,
                        data.index(b'"acks"') + 12, data.index(b'"sig"') + 8,
                        data.rindex(b'"dp_id"') + 9, data.index(b'"token_sha256"') + 20,
                        data.rindex(b'"chain_head"') + 15} |
                       set(range(0, len(data), max(1, len(data) // 40))))
    flipped = str(tmp_path / "flipped.json")
    for p in positions:
        with open(flipped, "wb") as f:
            f.write(data[:p] + bytes([data[p] ^ 0x01]) + data[p + 1:])
        rc, out = check_proof(c, flipped, key)
        assert rc == 1 and "proof INVALID" in out, (p, out)


def test_bytes_all_over_a_small_proof_matter(ctl_factory, tmp_path):
    """Every byte would take a process each (minutes under ASan): about 250 positions spread
    evenly over the whole file, one every few bytes."""
    c = ctl_factory().start()
    assert c.request("POST", "/exapp_storage/one", body(1)).status == 204
    c.stop()
    key = c.cli("audit", "key").stdout.strip()
    proof = str(tmp_path / "proof.json")
    assert c.cli("audit", "proof", "--out", proof).returncode == 0
    assert check_proof(c, proof, key)[0] == 0
    data = open(proof, "rb").read()
    flipped = str(tmp_path / "flipped.json")
    step = max(1, len(data) // 250)
    for p in list(range(0, len(data), step)) + [len(data) - 1]:
        with open(flipped, "wb") as f:
            f.write(data[:p] + bytes([data[p] ^ 0x01]) + data[p + 1:])
        rc, out = check_proof(c, flipped, key)
        assert rc == 1 and "proof INVALID" in out, (p, out)


def test_check_proof_reads_at_most_256_mib(ctl_factory, tmp_path):
    c = ctl_factory().start()
    assert c.request("POST", "/exapp_storage/one", body(1)).status == 204
    c.stop()
    key = c.cli("audit", "key").stdout.strip()
    proof = tmp_path / "proof.json"
    assert c.cli("audit", "proof", "--out", str(proof)).returncode == 0
    limit = 256 * 1024 * 1024
    at, past = tmp_path / "at.json", tmp_path / "past.json"
    for f, size in ((at, limit), (past, limit + 1)):
        f.write_bytes(proof.read_bytes())
        os.truncate(f, size)  # sparse: zeros after the proof
    rc, out = check_proof(c, str(at), key)
    assert rc == 1 and "proof INVALID" in out, out  # read whole, and refused for its bytes
    rc, out = check_proof(c, str(past), key)
    assert rc == 2 and "larger than a proof can be" in out, out
    assert check_proof(c, str(proof), key)[0] == 0


def test_pruning_behind_a_signed_checkpoint_keeps_the_chain_verifiable(ctl_factory, tmp_path):
    c = populated(ctl_factory)
    key = c.cli("audit", "key").stdout.strip()
    r = c.cli("audit", "prune", "--before", str(int(time.time()) + 10))
    assert r.returncode == 0 and "entries pruned" in r.stdout, r.stderr
    db = db_of(c)
    assert db.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM audit_checkpoint").fetchone()[0] == 1
    db.close()
    rc, out = verify(c)
    assert rc == 0 and "after a signed checkpoint" in out, out
    # the chain goes on from the checkpoint, and proofs start there
    c.start()
    assert c.request("POST", "/exapp_storage/later", body(7)).status == 204
    c.stop()
    rc, out = verify(c)
    assert rc == 0, out
    proof = str(tmp_path / "p.json")
    assert c.cli("audit", "proof", "--out", proof).returncode == 0
    rc, out = check_proof(c, proof, key)
    assert rc == 0, out
    # the checkpoint is signed: its table cannot be edited
    db = db_of(c)
    tbl = json.loads(db.execute("SELECT tbl FROM audit_checkpoint").fetchone()[0])
    tbl["app1"]["port"] = 1
    db.execute("UPDATE audit_checkpoint SET tbl = ?", (canon(tbl),))
    db.commit()
    db.close()
    rc, out = verify(c)
    assert rc == 1 and "checkpoint" in out, out


def test_a_broken_chain_is_not_pruned(ctl_factory):
    c = populated(ctl_factory)
    db = db_of(c)
    expect = tamper_edit(db, c)
    db.commit()
    db.close()
    r = c.cli("audit", "prune", "--before", str(int(time.time()) + 10))
    assert r.returncode == 1 and "not pruned" in r.stderr and expect in r.stderr, r.stderr
    assert expect in verify(c)[1]


def test_retention_setting_limits(ctl_factory):
    c = ctl_factory()
    r = c.cli("config", "check", env=dict(c.env(), HP_AUDIT_RETENTION_DAYS="36501"))
    assert r.returncode == 2 and "HP_AUDIT_RETENTION_DAYS" in r.stderr
    r = c.cli("config", "check", env=dict(c.env(), HP_AUDIT_RETENTION_DAYS="36500"))
    assert r.returncode == 0, r.stderr
    # a daemon with retention prunes nothing recent and keeps a verifiable chain
    c.extra_env["HP_AUDIT_RETENTION_DAYS"] = "1"
    c.start()
    assert c.request("POST", "/exapp_storage/app1", body(1)).status == 204
    c.stop()
    assert verify(c)[0] == 0
    assert "pruned" not in c.log()


def test_operator_timeouts_are_entries_and_outlive_re_registration(ctl_factory):
    """Timeouts an operator sets (harp-ctl exapp set) change the published table: each is an
    entry holding the app as published after it, a re-registration by AppAPI keeps them in
    its entry too, and a timeout changed in the database without an entry is caught."""
    c = ctl_factory().start()
    assert c.request("POST", "/exapp_storage/app1", body(1)).status == 204
    r = c.cli("exapp", "set", "app1", "--idle-timeout", "30m")
    assert r.returncode == 0, r.stderr
    r = c.cli("exapp", "set", "app1", "--route", "^/r1/.*", "--connect-timeout", "5s")
    assert r.returncode == 0, r.stderr
    assert c.request("POST", "/exapp_storage/app1", body(1)).status == 204  # AppAPI again
    rc, out = verify(c)
    assert rc == 0, out
    log = json.loads(c.cli("audit", "log", "--json").stdout)
    entries = log["entries"] if isinstance(log, dict) else log
    sets = [e for e in entries if e["op"] == "exapp.timeouts"]
    assert [e["subject"] for e in sets] == ["app1", "app1"]
    assert [e["effect"]["set"] for e in sets] == [{"idle": 1800000}, {"connect": 5000}]
    assert sets[1]["effect"]["route"] == "^/r1/.*"
    last_put = [e for e in entries if e["op"] == "exapp.put"][-1]
    assert last_put["effect"]["app"]["timeouts"]["idle"] == 1800000
    c.stop()
    db = db_of(c)
    db.execute("UPDATE exapp_timeouts SET ms = 1000 WHERE app_id = 'app1' AND kind = 'idle'")
    db.commit()
    db.close()
    rc, out = verify(c)
    assert rc == 1 and "ExApp app1" in out, out
