# SPDX-License-Identifier: AGPL-3.0-or-later
"""AppAPI 33's Docker flows, replayed from the captures in order against harp with a real
engine doing the work: each answer must be the one the contract gives. The images AppAPI
names are the local test image under those names (no registry is reachable, so the pulls
themselves fail at the engine; they must still reach it). The engine may be the machine's own:
every name the replay creates there (apps, containers, volumes, the network, image tags) carries
this run's suffix, so it never touches, or removes, anything it did not make."""
import json
import os

import pytest

from harness import capture_available, free_port, http_request, parse_capture
from helpers.docker_engine import IMAGE

pytestmark = pytest.mark.skipif(not capture_available(), reason="captures not present")

CAPTURE_PORT = "23000"
RUN = os.urandom(3).hex()
DEPLOY, PROBE, NETWORK = f"test-deploy-{RUN}", f"harp-probe-{RUN}", f"nextcloud-{RUN}"
RENAMES = (("test-deploy", DEPLOY), ("harp-probe", PROBE), ('"nextcloud"', f'"{NETWORK}"'))


def renamed(text):
    """The captured text with this run's app, image and network names."""
    for old, new in RENAMES:
        text = text.replace(old, new)
    return text


IMAGES = [renamed(r) for r in (
    "ghcr.io/nextcloud/test-deploy:release-cpu", "ghcr.io/nextcloud/test-deploy:release-cuda",
    "registry.local:5000/nextcloud/test-deploy:release-cpu", "ghcr.io/example/harp-probe:1.0-cpu")]


def ca_bundle():
    path = "/etc/ssl/certs/ca-certificates.crt"
    if os.path.exists(path):
        with open(path) as f:
            return f.read()
    return "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"


@pytest.fixture
def rgw(make_gateway, docker_engine, tmp_path):
    api = docker_engine.api
    for ref in IMAGES:
        repo, tag = ref.rsplit(":", 1)
        st, _ = api.request("POST", f"/images/{IMAGE}/tag?repo={repo}&tag={tag}")
        assert st == 201
    api.request("POST", "/networks/create", {"Name": NETWORK, "CheckDuplicate": True})

    def make(capture):
        key = parse_capture(capture)[0][2]["harp-shared-key"]  # the captured AppAPI's key
        gw = make_gateway(key=key, register=False,
                          env={"HP_DOCKER_SOCKET": docker_engine.sock,
                               "HP_CERTS_DIR": str(tmp_path / "certs")})
        gw.api = api
        gw.app_port = str(free_port())
        gw.stored = set()
        return gw

    yield make
    for c in (f"nc_app_{DEPLOY}", f"nc_app_{PROBE}"):
        api.remove_container(c)
        api.remove_volume(c + "_data")
    api.request("DELETE", f"/networks/{NETWORK}")
    for ref in IMAGES:
        api.request("DELETE", f"/images/{ref}")


def send(gw, method, target, headers, body):
    """One captured request, with the ExApp port moved to a free one and the CA bundle, which
    the capture summarises, replaced by a real one."""
    target = renamed(target)
    headers = {k: renamed(v.replace(CAPTURE_PORT, gw.app_port)) for k, v in headers.items()}
    headers.pop("Host", None)
    data = None
    if body is not None:
        obj = json.loads(body)
        if "system_certs_bundle" in obj:
            obj["system_certs_bundle"] = ca_bundle()
        data = renamed(json.dumps(obj).replace(CAPTURE_PORT, gw.app_port)).encode()
    return http_request(("127.0.0.1", gw.port), method, target, data, headers, timeout=150)


def expect(gw, method, target, r, state):
    """The contract's answer to one request (spec 4.7, 5.3, 5.5)."""
    path = target.split("?")[0]
    what = f"{method} {target} -> {r.status} {r.body[:200]!r}"
    if path.startswith("/exapps/app_api/v1.44/images/create"):
        assert r.status not in (401, 403), what  # reached the engine (which cannot pull here)
    elif path.startswith("/exapps/app_api/v1.44/"):
        assert r.status == 200, what
        if "/containers/" in path:
            assert r.json()["State"]["Running"] is True
    elif path.endswith("/docker/exapp/exists"):
        assert r.status == 200 and r.json()["exists"] is state["exists"], what
    elif path.endswith("/docker/exapp/create"):
        assert r.status == 201 and r.json()["name"] == state["container"], what
        state["exists"] = True
    elif path.endswith("/docker/exapp/install_certificates") and state["gpu"]:
        # Copying needs the container running; the engine cannot start it without a GPU.
        assert (r.status, r.text) == (503, "Failed to start container: Status 500"), what
    elif path.endswith("/docker/exapp/install_certificates"):
        assert (r.status, r.body) == (204, b""), what
    elif path.endswith("/docker/exapp/start"):
        if state["gpu"]:
            assert (r.status, r.text) == (503, f"Error starting container '{state['container']}'"
                                               " via Docker Engine: Status 500"), what
            return "stop"
        assert (r.status, r.text) in ((204, ""), (200, "Container already started")), what
    elif path.endswith("/docker/exapp/stop"):
        assert (r.status, r.text) in ((204, ""), (200, "Container already stopped")), what
    elif path.endswith("/docker/exapp/wait_for_start"):
        assert (r.status, r.json()) == (200, {"started": True, "status": "running",
                                              "health": None}), what
    elif path.endswith("/docker/exapp/remove"):
        assert r.status == 204, what
        state["exists"] = False
    elif "/exapp_storage/" in path and method == "POST":
        assert r.status == 204, what
        gw.stored.add(path)
    elif "/exapp_storage/" in path:
        # 404 when AppAPI never pushed the app (its init did not reach 100 %): logged as info.
        assert r.status == (204 if path in gw.stored else 404), what
        gw.stored.discard(path)
    elif path.endswith("/heartbeat"):
        assert r.status == 200 and r.json() == {"status": "ok"}, what  # from the container
    elif path.endswith("/init") or path.endswith("/enabled"):
        # The test image's httpd has no such handlers: its own 404/501 (AppAPI counts a
        # 404/501 init as done), never a gateway refusal.
        assert r.status in (404, 405, 501) and b"HaRP" not in r.body, what
    else:
        raise AssertionError(f"unexpected request in the capture: {what}")


def replay(gw, files, gpu=False):
    for name in files:
        app = PROBE if "11-" in name or "14-" in name else DEPLOY
        state = {"container": f"nc_app_{app}", "gpu": gpu,
                 "exists": gw.api.json("GET", f"/containers/nc_app_{app}/json")[0] == 200}
        for method, target, headers, body in parse_capture(name):
            r = send(gw, method, target, headers, body)
            if expect(gw, method, target, r, state) == "stop":
                return


def test_test_deploy_register_then_unregister(rgw):
    rgw = rgw("03-test-deploy-register.txt")
    replay(rgw, ["03-test-deploy-register.txt"])
    assert rgw.api.json("GET", f"/containers/nc_app_{DEPLOY}/json")[1]["State"]["Running"]
    replay(rgw, ["04-test-deploy-unregister.txt"])
    assert rgw.api.json("GET", f"/containers/nc_app_{DEPLOY}/json")[0] == 404
    assert rgw.api.json("GET", f"/volumes/nc_app_{DEPLOY}_data")[0] == 200  # data kept


def test_exapp_register_then_unregister_removing_data(rgw):
    rgw = rgw("11-docker-exapp-register-init-200.txt")
    replay(rgw, ["11-docker-exapp-register-init-200.txt"])
    c = rgw.api.json("GET", f"/containers/nc_app_{PROBE}/json")[1]
    assert c["Config"]["Image"] == IMAGES[3]
    replay(rgw, ["14-docker-exapp-unregister-rm-data.txt"])
    assert rgw.api.json("GET", f"/containers/nc_app_{PROBE}/json")[0] == 404
    assert rgw.api.json("GET", f"/volumes/nc_app_{PROBE}_data")[0] == 404


@pytest.mark.parametrize("capture", ["16-registry-local-test-deploy.txt",
                                     "17-registry-remap-test-deploy.txt"])
def test_registry_mapping(rgw, capture):
    rgw = rgw(capture)
    replay(rgw, [capture])
    assert rgw.api.json("GET", f"/containers/nc_app_{DEPLOY}/json")[0] == 404


def test_direct_connect_cuda(rgw):
    # Created as asked (network alias, the GPU request); this machine has no NVIDIA runtime,
    # so the engine refuses to start it and AppAPI gets the contract's 503s.
    rgw = rgw("18-exapp-direct-cuda-test-deploy.txt")
    replay(rgw, ["18-exapp-direct-cuda-test-deploy.txt"], gpu=True)
    c = rgw.api.json("GET", f"/containers/nc_app_{DEPLOY}/json")[1]
    assert c["HostConfig"]["DeviceRequests"][0]["Driver"] == "nvidia"
    assert DEPLOY in c["NetworkSettings"]["Networks"][NETWORK]["Aliases"]
