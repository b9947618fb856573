# SPDX-License-Identifier: AGPL-3.0-or-later
"""Renewed FRP client certificates reach the containers install_certificates wrote them into,
with no reinstall (real dockerd, as test_docker.py); remote engines get them with
`harp-ctl engine frpc NAME DIR`."""
import json
import subprocess

from harness import wait_for
from test_docker import call, dgw, name_of  # noqa: F401 (the fixture)
from helpers.docker_engine import IMAGE


def docker_cat(gw, container, path):
    r = subprocess.run(["docker", "-H", f"unix://{gw.engine.sock}", "exec", container, "cat",
                        path], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def status(gw):
    r = gw.ctl.cli("certs", "status", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_rotation_reaches_running_and_stopped_containers_without_a_reinstall(dgw):  # noqa: F811
    api = dgw.engine.api
    running, stopped, gone = (name_of(dgw, n) for n in ("deliver-run", "deliver-stop",
                                                         "deliver-gone"))
    for app in (running, stopped, gone):
        assert call(dgw, "create", {"name": app, "image_id": IMAGE}).status == 201
    assert call(dgw, "start", {"name": running}).status == 204
    for app in (running, stopped, gone):
        r = call(dgw, "install_certificates", {"name": app, "install_frp_certs": True})
        assert r.status == 204, r.text
    old = (dgw.certs / "client.crt").read_bytes()
    assert docker_cat(dgw, f"nc_app_{running}", "/certs/frp/client.crt") == old
    rows = status(dgw)["deliveries"]
    assert sorted(r["container"] for r in rows) == sorted(
        f"nc_app_{a}" for a in (running, stopped, gone))
    assert {r["port"] for r in rows} == {24000}
    api.remove_container(f"nc_app_{gone}")

    assert dgw.ctl.cli("certs", "rotate").returncode == 0
    new = (dgw.certs / "client.crt").read_bytes()
    assert new != old
    wait_for(lambda: docker_cat(dgw, f"nc_app_{running}", "/certs/frp/client.crt") == new,
             timeout=120, what="the renewed client certificate in the running container")
    for f in ("ca.crt", "client.key"):
        assert docker_cat(dgw, f"nc_app_{running}", f"/certs/frp/{f}") == \
            (dgw.certs / f).read_bytes()
    wait_for(lambda: api.read_file(f"nc_app_{stopped}", "/certs/frp/client.crt") == new,
             timeout=120, what="the renewed client certificate in the stopped container")
    assert api.json("GET", f"/containers/nc_app_{stopped}/json")[1]["State"]["Status"] != \
        "running"
    wait_for(lambda: len(status(dgw)["deliveries"]) == 2, timeout=120,
             what="the removed container forgotten")
    assert "renewed FRP client certificate written into" in dgw.ctl.log()
    out = dgw.ctl.cli("certs", "status").stdout
    assert f"container nc_app_{running} (engine port 24000)" in out
    # install_certificates without the FRP files: not one to deliver to.
    other = name_of(dgw, "deliver-none")
    assert call(dgw, "create", {"name": other, "image_id": IMAGE}).status == 201
    assert call(dgw, "install_certificates", {"name": other, "install_frp_certs": False}).status \
        == 204
    assert len(status(dgw)["deliveries"]) == 2


def test_engine_frpc_writes_the_renewed_files_for_a_remote_host(dgw, tmp_path):  # noqa: F811
    r = dgw.ctl.cli("engine", "add", "remote9", "--port", "24009")
    assert r.returncode == 0, r.stderr
    assert dgw.ctl.cli("certs", "rotate").returncode == 0
    out = tmp_path / "remote9"
    r = dgw.ctl.cli("engine", "frpc", "remote9", str(out), "--server", "127.0.0.1:8782")
    assert r.returncode == 0, r.stderr
    for f in ("ca.crt", "client.crt", "client.key"):
        assert (out / f).read_bytes() == (dgw.certs / f).read_bytes()
    # The remote engine is a client the rotation waits for until its tunnel is back.
    assert 24009 in status(dgw)["overlap"]["pending_clients"]
