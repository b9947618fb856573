# SPDX-License-Identifier: AGPL-3.0-or-later
"""AppAPI's Docker endpoints and the Docker engine proxy against a real dockerd: every call goes
through harp-dp, as AppAPI's does, and what harp did is checked on the engine itself."""
import json
import os
import threading
import time
import urllib.parse

import pytest

from harness import free_port, http_request, wait_for
from helpers.docker_engine import IMAGE

RUN = os.urandom(3).hex()

KEY = "docker-test-key-0123"


@pytest.fixture
def dgw(make_gateway, docker_engine, tmp_path):
    """A gateway whose local engine (port 24000) is the test engine; its FRP certificates
    are generated into <tmp>/certs/frp."""
    certs = tmp_path / "certs"
    gw = make_gateway(key=KEY, register=False,
                      env={"HP_DOCKER_SOCKET": docker_engine.sock, "HP_CERTS_DIR": str(certs)})
    gw.engine = docker_engine
    gw.certs = certs / "frp"
    gw.created = []
    # Data planes learn the engines (address, API range) from the control plane.
    wait_for(lambda: "engines: 1 known" in gw.dps[0].log(), what="engines pushed")
    yield gw
    for name in gw.created:
        docker_engine.api.remove_container(name)
        docker_engine.api.remove_volume(name + "_data")


def call(gw, action, body, port="24000", raw=None):
    headers = {"harp-shared-key": KEY, "Content-Type": "application/json"}
    if port is not None:
        headers["docker-engine-port"] = port
    data = raw if raw is not None else json.dumps(body).encode()
    return http_request(("127.0.0.1", gw.port), "POST", f"/exapps/app_api/docker/exapp/{action}",
                        data, headers, timeout=150)


def proxy(gw, method, path, port="24000", body=None, headers=None):
    h = {"harp-shared-key": KEY, "docker-engine-port": port}
    h.update(headers or {})
    return http_request(("127.0.0.1", gw.port), method, "/exapps/app_api" + path, body, h,
                        timeout=60)


def name_of(gw, app):
    """An app name with this run's suffix: the engine may be the machine's own."""
    app = f"{app}-{RUN}"
    gw.created.append(f"nc_app_{app}")
    return app


def test_lifecycle_with_exact_answers(dgw):
    api = dgw.engine.api
    app = name_of(dgw, "lifecycle-app")
    c = f"nc_app_{app}"
    body = {"name": app, "instance_id": "", "image_id": IMAGE, "network_mode": "bridge",
            "environment_variables": ["APP_ID=lifecycle-app", "APP_PORT=23001"],
            "restart_policy": "no", "compute_device": "cpu",
            "mount_points": [{"source": "/tmp", "target": "/hosttmp", "mode": "ro"}],
            "resource_limits": {"memory": 256 * 1024 * 1024, "nanoCPUs": 500000000},
            "start_container": True}
    r = call(dgw, "create", body)
    assert r.status == 201, r
    created = r.json()
    assert created["name"] == c and len(created["id"]) == 64
    assert r.headers["content-type"] == "application/json; charset=utf-8"

    st, info = api.json("GET", f"/containers/{c}/json")
    assert st == 200 and info["Id"] == created["id"]
    assert info["Config"]["Image"] == IMAGE and info["Config"]["Hostname"] == app
    assert "APP_ID=lifecycle-app" in info["Config"]["Env"]
    hc = info["HostConfig"]
    assert hc["NetworkMode"] == "bridge" and hc["RestartPolicy"]["Name"] == "no"
    assert hc["Memory"] == 256 * 1024 * 1024 and hc["NanoCpus"] == 500000000
    mounts = {m["Target"]: m for m in hc["Mounts"]}
    assert mounts[f"/{c}_data"]["Type"] == "volume" and mounts[f"/{c}_data"]["Source"] == f"{c}_data"
    assert mounts["/hosttmp"]["Type"] == "bind" and mounts["/hosttmp"]["ReadOnly"] is True
    assert info["State"]["Status"] == "created"  # not started by create
    assert api.json("GET", f"/volumes/{c}_data")[0] == 200

    r = call(dgw, "create", body)
    assert (r.status, r.text) == (409, f"Container with name '{c}' already exists.")

    r = call(dgw, "exists", {"name": app, "instance_id": ""})
    assert (r.status, r.json()) == (200, {"exists": True, "image_ref": IMAGE})

    r = call(dgw, "start", {"name": app})
    assert (r.status, r.body) == (204, b"")
    r = call(dgw, "start", {"name": app})
    assert (r.status, r.text) == (200, "Container already started")
    r = call(dgw, "wait_for_start", {"name": app})
    assert (r.status, r.json()) == (200, {"started": True, "status": "running", "health": None})

    r = call(dgw, "stop", {"name": app})
    assert (r.status, r.body) == (204, b"")
    r = call(dgw, "stop", {"name": app})
    assert (r.status, r.text) == (200, "Container already stopped")
    r = call(dgw, "wait_for_start", {"name": app})
    assert r.json() == {"started": False, "status": "exited", "health": None,
                        "reason": "non-recoverable state: exited"}

    r = call(dgw, "remove", {"name": app, "instance_id": "", "remove_data": False})
    assert (r.status, r.body) == (204, b"")
    assert api.json("GET", f"/containers/{c}/json")[0] == 404
    assert api.json("GET", f"/volumes/{c}_data")[0] == 200  # data kept
    r = call(dgw, "remove", {"name": app, "remove_data": True})  # container gone: still 204
    assert r.status == 204
    assert api.json("GET", f"/volumes/{c}_data")[0] == 404
    r = call(dgw, "exists", {"name": app})
    assert (r.status, r.json()) == (200, {"exists": False})


def test_names_with_instance_and_role(dgw):
    api = dgw.engine.api
    inst = f"inst{RUN}"
    body = {"name": "multi", "instance_id": inst, "role_suffix": "worker", "image_id": IMAGE}
    dgw.created.append(f"nc_app_{inst}_multi_worker")
    dgw.created.append(f"nc_app_{inst}_multi")  # volume nc_app_<inst>_multi_data
    r = call(dgw, "create", body)
    assert r.status == 201 and r.json()["name"] == f"nc_app_{inst}_multi_worker"
    st, info = api.json("GET", f"/containers/nc_app_{inst}_multi_worker/json")
    assert st == 200
    assert info["HostConfig"]["NetworkMode"] == "bridge"  # the default
    assert info["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert any(m["Source"] == f"nc_app_{inst}_multi_data" for m in info["HostConfig"]["Mounts"])


def test_custom_network_alias_and_gpu_requests(dgw):
    api = dgw.engine.api
    net = f"harp-test-net-{RUN}"
    app, app2 = name_of(dgw, "aliased"), name_of(dgw, "rocm-app")
    api.request("POST", "/networks/create", {"Name": net, "CheckDuplicate": True})
    try:
        r = call(dgw, "create", {"name": app, "image_id": IMAGE, "network_mode": net,
                                 "compute_device": "cuda"})
        assert r.status == 201, r
        info = api.json("GET", f"/containers/nc_app_{app}/json")[1]
        assert app in info["NetworkSettings"]["Networks"][net]["Aliases"]
        dr = info["HostConfig"]["DeviceRequests"]
        assert dr[0]["Driver"] == "nvidia" and dr[0]["Count"] == -1
        assert dr[0]["Capabilities"] == [["compute", "utility"]]
        r = call(dgw, "create", {"name": app2, "image_id": IMAGE, "compute_device": "rocm"})
        assert r.status == 201
        devs = api.json("GET", f"/containers/nc_app_{app2}/json")[1]["HostConfig"]["Devices"]
        assert {(d["PathOnHost"], d["PathInContainer"], d["CgroupPermissions"]) for d in devs} == \
            {("/dev/kfd", "/dev/kfd", "rwm"), ("/dev/dri", "/dev/dri", "rwm")}
    finally:
        for c in (f"nc_app_{app}", f"nc_app_{app2}"):
            api.remove_container(c)
        api.request("DELETE", f"/networks/{net}")


def test_unknown_container(dgw):
    ghost = name_of(dgw, "ghost")
    gone = f"Container 'nc_app_{ghost}' not found."
    assert call(dgw, "start", {"name": ghost}).text == gone
    r = call(dgw, "stop", {"name": ghost})
    assert (r.status, r.text) == (404, gone)
    r = call(dgw, "wait_for_start", {"name": ghost})
    assert (r.status, r.json()) == (200, {"started": False, "status": "not_found",
                                          "reason": "container not found"})
    r = call(dgw, "install_certificates", {"name": ghost})
    assert (r.status, r.text) == (404, gone)
    assert call(dgw, "remove", {"name": ghost, "remove_data": True}).status == 204


@pytest.mark.parametrize("action,body,field", [
    ("exists", {}, "name"),
    ("exists", {"name": None}, "name"),
    ("exists", {"name": 5}, "name"),
    ("exists", {"name": "a/../../x"}, "name"),
    ("exists", {"name": "ok", "instance_id": "a b"}, "instance_id"),
    ("exists", {"name": "ok", "role_suffix": 7}, "role_suffix"),
    ("create", {"name": "ok"}, "image_id"),
    ("create", {"name": "ok", "image_id": ""}, "image_id"),
    ("create", {"name": "ok", "image_id": IMAGE, "network_mode": None}, "network_mode"),
    ("create", {"name": "ok", "image_id": IMAGE, "compute_device": "tpu"}, "compute_device"),
    ("create", {"name": "ok", "image_id": IMAGE, "environment_variables": "A=1"},
     "environment_variables"),
    ("create", {"name": "ok", "image_id": IMAGE, "environment_variables": ["A=1", 2]},
     "environment_variables.1"),
    ("create", {"name": "ok", "image_id": IMAGE, "mount_points": [{"source": "/x"}]},
     "mount_points.0"),
    ("create", {"name": "ok", "image_id": IMAGE, "resource_limits": {"memory": "lots"}},
     "resource_limits.memory"),
    ("remove", {"name": "ok", "remove_data": "perhaps"}, "remove_data"),
    ("install_certificates", {"name": "ok", "system_certs_bundle": 3}, "system_certs_bundle"),
    ("install_certificates", {"name": "ok", "install_frp_certs": []}, "install_frp_certs"),
    ("image_remove", {}, "image_ref"),
    ("image_remove", {"image_ref": ""}, "image_ref"),
    ("exists", [], "body"),
])
def test_bad_payloads_name_the_field(dgw, action, body, field):
    r = call(dgw, action, body)
    assert r.status == 400, r
    assert r.text.startswith(f"Payload validation error: {field}: "), r.text
    assert dgw.engine.api.json("GET", "/containers/nc_app_ok/json")[0] == 404


def test_engine_port_header_and_json(dgw):
    r = call(dgw, "exists", {"name": "x"}, port=None)
    assert (r.status, r.text) == (400, "Missing 'docker-engine-port' header.")
    for bad in ("abc", "0", "65536", "1.5", "1__0"):
        r = call(dgw, "exists", {"name": "x"}, port=bad)
        assert (r.status, r.text) == (400, f"Invalid 'docker-engine-port' header value: {bad}")
    r = call(dgw, "exists", None, raw=b"{not json")
    assert (r.status, r.text) == (400, "Invalid JSON body")
    # Python int(): spaces, a sign and digit separators are accepted.
    for ok in ("24_000", "+24000", " 24000 "):
        assert call(dgw, "exists", {"name": "x"}, port=ok).json() == {"exists": False}


def test_engine_down_is_503_naming_the_port(dgw):
    port = free_port()
    for action, body in (("exists", {"name": "x"}), ("create", {"name": "x", "image_id": IMAGE}),
                         ("start", {"name": "x"}), ("wait_for_start", {"name": "x"}),
                         ("remove", {"name": "x"}), ("image_remove", {"image_ref": "a:b"}),
                         ("install_certificates", {"name": "x"})):
        r = call(dgw, action, body, port=str(port))
        assert (r.status, r.text) == (503, f"Could not connect to Docker Engine on port {port}"), \
            action


def test_install_certificates_into_a_stopped_container(dgw):
    api = dgw.engine.api
    app = name_of(dgw, "certs-app")
    assert call(dgw, "create", {"name": app, "image_id": IMAGE}).status == 201
    bundle = ("# header\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
              "junk\n-----BEGIN CERTIFICATE-----\nBBBB\nCCCC\n-----END CERTIFICATE-----\n")
    r = call(dgw, "install_certificates", {"name": app, "instance_id": "",
                                           "system_certs_bundle": bundle,
                                           "install_frp_certs": True})
    assert (r.status, r.body) == (204, b"")
    c = f"nc_app_{app}"
    d = "/usr/local/share/ca-certificates"  # os-release says alpine
    assert api.read_file(c, f"{d}/custom_ca_cert_0.crt") == \
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"
    assert api.read_file(c, f"{d}/custom_ca_cert_1.crt") == \
        b"-----BEGIN CERTIFICATE-----\nBBBB\nCCCC\n-----END CERTIFICATE-----"
    assert api.read_file(c, f"{d}/custom_ca_cert_2.crt") is None
    for name in ("ca.crt", "client.crt", "client.key"):
        assert api.read_file(c, f"/certs/frp/{name}") == (dgw.certs / name).read_bytes()
    assert api.read_file(c, "/certs/frp/server.key") is None
    # Stopped before the call, so stopped again after it.
    assert api.json("GET", f"/containers/{c}/json")[1]["State"]["Status"] == "exited"


def test_install_certificates_skips_what_is_absent(dgw):
    api = dgw.engine.api
    app = name_of(dgw, "nocerts-app")
    assert call(dgw, "create", {"name": app, "image_id": IMAGE}).status == 201
    assert call(dgw, "start", {"name": app}).status == 204
    r = call(dgw, "install_certificates", {"name": app, "system_certs_bundle": None,
                                           "install_frp_certs": False})
    assert r.status == 204
    c = f"nc_app_{app}"
    assert api.read_file(c, "/certs/frp/ca.crt") is None
    assert api.read_file(c, "/usr/local/share/ca-certificates/custom_ca_cert_0.crt") is None
    # Running before the call: still running.
    assert api.json("GET", f"/containers/{c}/json")[1]["State"]["Status"] == "running"


def test_wait_for_start_blocks_nothing_else(dgw):
    app = name_of(dgw, "slow-start")
    assert call(dgw, "create", {"name": app, "image_id": IMAGE}).status == 201
    result = {}

    def wait():
        result["r"] = call(dgw, "wait_for_start", {"name": app})

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(1.0)
    assert t.is_alive()  # "created": still polling
    for _ in range(5):
        assert call(dgw, "exists", {"name": app}).json()["exists"] is True
        r = http_request(("127.0.0.1", dgw.port), "GET", "/exapps/app_api/info", None,
                         {"harp-shared-key": KEY})
        assert r.status == 200
    assert t.is_alive()  # they were answered while wait_for_start went on polling
    assert call(dgw, "start", {"name": app}).status == 204
    t.join(timeout=30)
    assert result["r"].json() == {"started": True, "status": "running", "health": None}


def test_image_remove(dgw):
    api = dgw.engine.api
    image_id = api.import_image("harp-test-remove:1", {"www/extra": b"x"})
    size = api.json("GET", f"/images/{image_id}/json")[1]["Size"]
    # A second tag: removing it only untags (no layer deleted): bytes_freed 0.
    assert api.request("POST", f"/images/{image_id}/tag?repo=harp-test-remove&tag=2")[0] == 201
    r = call(dgw, "image_remove", {"image_ref": "harp-test-remove:2"})
    assert (r.status, r.json()) == (200, {"deleted": True, "bytes_freed": 0})
    # In use by a container: 409 from the engine.
    app = name_of(dgw, "uses-image")
    assert call(dgw, "create", {"name": app, "image_id": "harp-test-remove:1"}).status == 201
    r = call(dgw, "image_remove", {"image_ref": "harp-test-remove:1"})
    assert r.json() == {"deleted": False, "reason": "in_use"}
    assert call(dgw, "remove", {"name": app, "remove_data": True}).status == 204
    r = call(dgw, "image_remove", {"image_ref": "harp-test-remove:1"})
    assert (r.status, r.json()) == (200, {"deleted": True, "bytes_freed": size})
    assert api.json("GET", f"/images/{image_id}/json")[0] == 404
    r = call(dgw, "image_remove", {"image_ref": "harp-test-remove:1"})
    assert r.json() == {"deleted": True, "bytes_freed": 0, "reason": "not_found"}
    # References are escaped whole (a '/' stays inside one path segment) and must be ones.
    r = call(dgw, "image_remove", {"image_ref": "nextcloud/no-such-image:1"})
    assert r.json() == {"deleted": True, "bytes_freed": 0, "reason": "not_found"}
    for bad in ("../../containers/x", "a b", "/abs", "x?y"):
        r = call(dgw, "image_remove", {"image_ref": bad})
        assert r.status == 400 and r.text.startswith("Payload validation error: image_ref: ")


def test_proxy_allow_list(dgw):
    api = dgw.engine.api
    app = name_of(dgw, "proxied")
    assert call(dgw, "create", {"name": app, "image_id": IMAGE}).status == 201
    assert call(dgw, "start", {"name": app}).status == 204
    c = f"nc_app_{app}"
    r = proxy(dgw, "GET", "/v1.44/_ping")
    assert (r.status, r.body) == (200, b"OK")
    assert proxy(dgw, "HEAD", "/v1.44/_ping").status == 200
    assert proxy(dgw, "GET", "/_ping").body == b"OK"
    r = proxy(dgw, "GET", f"/v1.44/images/{IMAGE}/json")
    assert r.status == 200 and r.json()["RepoTags"] == [IMAGE]
    r = proxy(dgw, "GET", f"/v1.44/containers/{c}/json")
    assert r.status == 200 and r.json()["Name"] == f"/{c}"
    r = proxy(dgw, "GET", f"/v1.44/containers/{c}/logs?stdout=true&stderr=true&tail=10")
    assert r.status == 200
    # Image pull (here an import, the same endpoint): the engine's progress stream passes.
    from helpers.docker_engine import busybox_root
    q = urllib.parse.urlencode({"fromSrc": "-", "repo": "harp-test-pulled", "tag": "1"})
    r = proxy(dgw, "POST", f"/v1.44/images/create?{q}", body=busybox_root(),
              headers={"Content-Type": "application/x-tar"})
    assert r.status == 200 and b'"status"' in r.body
    assert api.json("GET", "/images/harp-test-pulled:1/json")[0] == 200
    api.request("DELETE", "/images/harp-test-pulled:1")

    denied = [("POST", "/v1.44/containers/create?name=nc_app_evil"),
              ("POST", f"/v1.44/containers/{c}/exec"),
              ("DELETE", f"/v1.44/containers/{c}"),
              ("POST", f"/v1.44/containers/{c}/stop"),
              ("GET", "/v1.44/containers/other/json"),
              ("GET", "/v1.44/version"),
              ("GET", "/v1.44/info")]
    for method, path in denied:
        body = b'{"Image": "harp-test-exapp:1", "Cmd": ["id"]}' if method == "POST" else None
        r = proxy(dgw, method, path, body=body, headers={"Content-Type": "application/json"})
        assert r.status == 403, (method, path)
        assert b"403 Forbidden" in r.body
    assert api.json("GET", "/containers/nc_app_evil/json")[0] == 404
    assert api.json("GET", f"/containers/{c}/json")[1]["State"]["Status"] == "running"
    assert api.json("GET", f"/containers/{c}/json")[1]["ExecIDs"] is None
    # /docker/... with the header goes to the control API, not to the engine.
    assert call(dgw, "exists", {"name": app}).json()["exists"] is True


def test_proxy_rewrites_api_versions_into_the_engines_range(dgw):
    api = dgw.engine.api
    v = api.version()
    lo, hi = v["MinAPIVersion"], v["ApiVersion"]
    maj, mnr = (int(x) for x in hi.split("."))
    above = f"{maj}.{mnr + 3}"
    # The engine refuses a version above its own...
    st, body = api.request("GET", f"/v{above}/_ping")
    assert st == 400 and b"too new" in body
    # ...and below its minimum.
    st, body = api.request("GET", "/v1.0/_ping")
    assert st == 400 and b"too old" in body
    # Through harp both are answered, in the engine's nearest accepted version.
    assert proxy(dgw, "GET", f"/v{above}/_ping").body == b"OK"
    assert proxy(dgw, "GET", "/v1.0/_ping").body == b"OK"
    r = proxy(dgw, "GET", f"/v{above}/images/{IMAGE}/json")
    assert r.status == 200 and r.json()["RepoTags"] == [IMAGE]
    log = dgw.engine.api  # noqa: F841 (the engine saw only accepted versions: checked above)
    # A version inside the range is passed as it is.
    assert proxy(dgw, "GET", f"/v{lo}/_ping").body == b"OK"


def test_exapp_created_here_is_routed_end_to_end(dgw):
    api = dgw.engine.api
    app = name_of(dgw, "e2e-app")
    port = free_port()
    r = call(dgw, "create", {"name": app, "image_id": IMAGE, "network_mode": "host",
                             "environment_variables": [f"APP_PORT={port}", f"APP_ID={app}"]})
    assert r.status == 201
    assert call(dgw, "start", {"name": app}).status == 204
    assert call(dgw, "wait_for_start", {"name": app}).json()["started"] is True
    dgw.register(app_id=app, port=port, routes=[{"url": "^/heartbeat$", "access_level": 0}])
    # AppAPI's heartbeat: a signed request (spec 5.5), the ExApp reached at 127.0.0.1:<port>.
    signed = {"EX-APP-ID": app, "EX-APP-VERSION": "1.0.0", "AA-VERSION": "33.0.0",
              "AUTHORIZATION-APP-API": "OnNlY3JldA==", "harp-shared-key": KEY,
              "ex-app-port": str(port), "ex-app-host": "127.0.0.1"}

    def up():
        r = dgw.get(f"/exapps/{app}/heartbeat", headers=signed)
        return r.status == 200 and r.json() == {"status": "ok"}

    wait_for(up, what="the ExApp container answers through harp-dp")
    assert call(dgw, "stop", {"name": app}).status == 204
    r = dgw.get(f"/exapps/{app}/heartbeat", headers=signed)
    assert r.status == 503


def test_engines_registry_and_cli(dgw):
    ctl, api = dgw.ctl, dgw.engine.api
    r = ctl.cli("engine", "list")
    assert r.returncode == 0, r.stderr
    line = [x for x in r.stdout.splitlines() if x.startswith("local")][0]
    assert "24000" in line and "socket" in line and "yes" in line
    assert api.version()["Version"] in line

    # A second name for the same engine, on a port of its own, by its socket address.
    r = ctl.cli("engine", "add", "second", "--port", "24010", "--address",
                f"unix://{dgw.engine.sock}")
    assert r.returncode == 0, r.stderr
    assert "port 24010" in r.stdout
    r = ctl.cli("engine", "ping", "second", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["reachable"] is True
    assert call(dgw, "exists", {"name": "nothing"}, port="24010").json() == {"exists": False}
    wait_for(lambda: proxy(dgw, "GET", "/v1.44/_ping", port="24010").body == b"OK",
             what="data plane proxies to the new engine")

    # Without an address: the FRP tunnel port, first free from 24001; nothing listens there.
    r = ctl.cli("engine", "add", "remote1")
    assert r.returncode == 0 and "port 24001" in r.stdout and "FRP tunnel" in r.stdout
    r = ctl.cli("engine", "ping", "24001")
    assert r.returncode == 1 and "unreachable" in r.stderr
    r = call(dgw, "exists", {"name": "x"}, port="24001")
    assert (r.status, r.text) == (503, "Could not connect to Docker Engine on port 24001")

    r = ctl.cli("engine", "add", "remote1")
    assert r.returncode == 1 and "already exists" in r.stderr
    r = ctl.cli("engine", "add", "other", "--port", "24010")
    assert r.returncode == 1 and "24010" in r.stderr
    r = ctl.cli("engine", "add", "bad", "--address", "http://x")
    assert r.returncode == 1 and "unix:///path or tcp://" in r.stderr
    r = ctl.cli("engine", "add", "bad", "--address", "tcp://docker.example:2375")
    assert r.returncode == 1 and "IP" in r.stderr
    r = ctl.cli("engine", "add", "bad/name")
    assert r.returncode == 1
    r = ctl.cli("engine", "add", "x", "--port", "25000")
    assert r.returncode == 2

    r = ctl.cli("engine", "list", "--json")
    names = {e["name"]: e for e in json.loads(r.stdout)["engines"]}
    assert set(names) == {"local", "second", "remote1"}
    assert names["remote1"]["kind"] == "tunnel" and names["remote1"]["reachable"] is False
    assert names["second"]["api_version"] == api.version()["ApiVersion"]

    assert ctl.cli("engine", "rm", "second").returncode == 0
    r = ctl.cli("engine", "rm", "second")
    assert r.returncode == 1 and "no engine" in r.stderr
    r = call(dgw, "exists", {"name": "x"}, port="24010")
    assert r.status == 503
    # Engines persist across a restart of the control plane.
    ctl.stop()
    ctl.start()
    r = ctl.cli("engine", "list", "--json")
    assert {e["name"] for e in json.loads(r.stdout)["engines"]} == {"local", "remote1"}
