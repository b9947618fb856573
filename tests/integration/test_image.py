# SPDX-License-Identifier: AGPL-3.0-or-later
"""harp's container image (deploy/container/Containerfile), built from this checkout with a
real engine and run as HaRP's README runs HaRP's image: HP_SHARED_KEY, NC_INSTANCE_URL (the
fake Nextcloud), the Docker socket, a /certs bind mount, plus harp's state volume. Host
networking with ports from the kernel (the tests' dockerd runs without iptables, and parallel
runs must not clash). Then AppAPI drives it: its daemon check and a Docker ExApp deploy,
replayed from the captures; a data plane killed inside the container comes back; a restart
keeps the state; the container exits non-zero when the control plane dies.

No registry is reachable: a missing debian:bookworm-slim is made with debootstrap and
`docker import` (helpers/debian_base.py, cached per day under /var/tmp/harp-image-cache/).
The build, start-up and heal times are printed in the summary."""
import json
import os
import shutil
import subprocess
import time
import types
import uuid

import pytest

from harness import MULT, SRCDIR, capture_available, free_port, http_request, parse_capture
from helpers import debian_base
from helpers.docker_engine import IMAGE

pytestmark = pytest.mark.skipif(not capture_available(), reason="AppAPI captures not present")

RUN = f"harp-img-{os.getpid()}-{uuid.uuid4().hex[:6]}"  # names of what this run creates
TAG = f"{RUN}:test"
EXAPP_IMAGE = "ghcr.io/nextcloud/test-deploy:release-cpu"
HARP_UID = 990
MEASURED = {}


def until(pred, timeout, what):
    """Polls pred() until it returns a true value (returned); generous deadlines only."""
    deadline = time.monotonic() + timeout * MULT
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout * MULT:.0f} s waiting for {what}")


def captured_key():
    return parse_capture("01-daemon-check.txt")[0][2]["harp-shared-key"]


class Docker:
    """The docker CLI against the tests' engine."""

    def __init__(self, engine):
        self.engine = engine
        self.argv = ["docker", "-H", f"unix://{engine.sock}"]
        # The legacy builder: part of every engine, and --network host needs no entitlement.
        self.env = dict(os.environ, DOCKER_BUILDKIT="0")

    def run(self, *args, check=True, timeout=300, **kw):
        r = subprocess.run(self.argv + list(args), capture_output=True, text=True,
                           env=self.env, timeout=timeout * MULT, **kw)
        if check and r.returncode != 0:
            raise AssertionError(f"docker {' '.join(args[:3])}: rc {r.returncode}\n"
                                 f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
        return r

    def sh(self, container, script, user=None):
        """A bash script run inside the container (docker exec); its stdout."""
        u = ["-u", user] if user else []
        return self.run("exec", *u, container, "bash", "-c", script).stdout

    def inspect(self, container):
        return json.loads(self.run("inspect", container).stdout)[0]

    def dangling(self):
        return set(self.run("images", "-q", "--no-trunc", "-f", "dangling=true").stdout.split())


@pytest.fixture(scope="module")
def docker(request):
    if not shutil.which("docker"):
        pytest.skip("the docker CLI is not installed (Debian package docker.io)")
    try:
        engine = request.getfixturevalue("docker_engine")
    except RuntimeError as e:
        pytest.skip(f"no Docker engine can run here: {e}")
    return Docker(engine)


@pytest.fixture(scope="module")
def image(docker, request):
    """harp's image, built from the checkout; removed afterwards with what its build left
    (the builder stage), the base image aside."""
    have_base = docker.run("image", "inspect", debian_base.REF, check=False).returncode == 0
    if not have_base and debian_base.available():
        pytest.skip(f"{debian_base.REF} is missing and cannot be made: "
                    f"{debian_base.available()}")
    t = time.monotonic()
    if debian_base.ensure(docker.argv):
        MEASURED["base image imported"] = f"{time.monotonic() - t:.0f} s"
    before = docker.dangling()
    t = time.monotonic()
    r = docker.run("build", "--network", "host", "-f", "deploy/container/Containerfile",
                   "-t", TAG, ".", cwd=SRCDIR, check=False, timeout=3600)
    MEASURED["build (base image present, no build cache)"] = f"{time.monotonic() - t:.0f} s"
    if r.returncode == 0:  # again, with nothing changed: every step from the cache
        t = time.monotonic()
        docker.run("build", "--network", "host", "-f", "deploy/container/Containerfile",
                   "-t", TAG, ".", cwd=SRCDIR)
        MEASURED["build again, nothing changed"] = f"{time.monotonic() - t:.1f} s"
    left = docker.dangling() - before
    request.addfinalizer(lambda: [docker.run("rmi", "-f", i, check=False)
                                  for i in [TAG] + sorted(left)])
    assert r.returncode == 0, f"build failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    info = json.loads(docker.run("image", "inspect", TAG).stdout)[0]
    MEASURED["image size"] = f"{info['Size'] / 1e6:.0f} MB"
    return info


@pytest.fixture(scope="module")
def nc():
    from helpers.fake_nextcloud import FakeNextcloud
    fake = FakeNextcloud(captured_key())
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def harp(docker, image, nc, tmp_path_factory, request):
    """The container, started as HaRP's README starts HaRP's (host networking variant)."""
    h = types.SimpleNamespace(name=f"{RUN}-harp", volume=f"{RUN}-state", docker=docker,
                              certs=tmp_path_factory.mktemp("certs"), key=captured_key())
    h.ports = {v: free_port() for v in ("HP_EXAPPS_ADDRESS", "HP_EXAPPS_HTTPS_ADDRESS",
                                        "HP_FRP_ADDRESS", "HP_CONTROL_ADDRESS")}
    env = [f"-e{v}=127.0.0.1:{p}" for v, p in h.ports.items()]

    def cleanup():
        logs = docker.run("logs", h.name, check=False)
        print(f"--- container log ---\n{logs.stdout[-6000:]}{logs.stderr[-6000:]}")
        docker.run("rm", "-f", "-v", h.name, check=False)
        docker.run("volume", "rm", h.volume, check=False)
    request.addfinalizer(cleanup)
    t = time.monotonic()
    docker.run("run", "-d", "--name", h.name,
               "-e", f"HP_SHARED_KEY={h.key}", "-e", f"NC_INSTANCE_URL={nc.url}",
               *env, "-e", "HP_LOG_LEVEL=info",
               "-v", f"{docker.engine.sock}:/var/run/docker.sock",
               "-v", f"{h.certs}:/certs", "-v", f"{h.volume}:/var/lib/harp",
               "--network", "host", TAG)
    h.exapps = ("127.0.0.1", h.ports["HP_EXAPPS_ADDRESS"])
    h.control = ("127.0.0.1", h.ports["HP_CONTROL_ADDRESS"])
    until(lambda: answers(h.control, "/heartbeat", h), 120, "the control plane's /heartbeat")
    MEASURED["docker run to the control plane's /heartbeat"] = f"{time.monotonic() - t:.2f} s"
    until(lambda: answers(h.exapps, "/exapps/app_api/heartbeat", h), 120,
          "AppAPI's heartbeat through a data plane")
    MEASURED["docker run to /exapps/app_api/heartbeat"] = f"{time.monotonic() - t:.2f} s"
    h.ndp = min(int(docker.sh(h.name, "nproc")), 4)
    return h


def answers(addr, path, h):
    try:
        r = http_request(addr, "GET", path, headers={"harp-shared-key": h.key}, timeout=5)
    except OSError:
        return False
    return r.status == 200 and r.json() == {"status": "ok"}


def dataplanes(h):
    """{dp_id: (pid, when it connected)} from the control plane, or None."""
    try:
        r = http_request(h.control, "GET", "/api/v1/dataplanes",
                         headers={"harp-shared-key": h.key}, timeout=5)
    except OSError:
        return None
    if r.status != 200:
        return None
    now = time.time()
    return {d["dp_id"]: (d["pid"], now - d["connected_seconds"])
            for d in r.json()["dataplanes"]}


def test_runs_as_harp_with_the_sockets_group(harp):
    d = harp.docker
    until(lambda: len(dataplanes(harp) or {}) == harp.ndp, 60, f"{harp.ndp} data planes")
    sock_gid = os.stat(d.engine.sock).st_gid
    for pid in [1] + [pid for pid, _ in dataplanes(harp).values()]:
        status = d.sh(harp.name, f"cat /proc/{pid}/status")
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        assert fields["Uid"].split()[:2] == [str(HARP_UID)] * 2, status
        assert str(sock_gid) in fields["Groups"].split(), status
        assert int(fields["CapEff"], 16) == 0, status
    # The FRP certificates were generated into the /certs bind mount, by harp.
    for f in ("ca.crt", "server.crt", "client.crt", "client.key"):
        assert (harp.certs / "frp" / f).stat().st_uid == HARP_UID, f
    # The CLI works as typed in the container (docker exec NAME harp-ctl ...).
    assert '"state_dir": "/var/lib/harp"' in d.run("exec", harp.name, "harp-ctl", "status",
                                                   "--json").stdout
    out = d.run("exec", harp.name, "/usr/lib/harp/healthcheck", check=False)
    assert out.returncode == 0 and out.stdout.strip() == "healthy", out


def test_appapi_daemon_check(harp):
    """01: the Admin UI's check of a saved daemon; 02: the setup checks (ping and /info)."""
    for name in ("01-daemon-check.txt", "02-setupchecks.txt"):
        for method, target, headers, body in parse_capture(name):
            headers = {k: v for k, v in headers.items() if k != "Host"}
            r = http_request(harp.exapps, method, target, body, headers, timeout=60)
            if target.endswith("/_ping"):
                assert (r.status, r.body) == (200, b"OK"), (target, r)
            else:
                assert r.status == 200 and r.json()["version"], (target, r)


def test_docker_exapp_deploy_through_the_container(harp):
    """03/04: AppAPI's test deploy (pull, create, certificates, start, heartbeat, init,
    enable, register) and its removal, through the container onto the engine, under the
    replay's per-run names (test_docker_replay.renamed)."""
    from test_docker_replay import DEPLOY, expect, renamed, send
    api = harp.docker.engine.api
    image, container = renamed(EXAPP_IMAGE), f"nc_app_{DEPLOY}"
    repo, tag = image.rsplit(":", 1)
    assert api.request("POST", f"/images/{IMAGE}/tag?repo={repo}&tag={tag}")[0] == 201
    gw = types.SimpleNamespace(port=harp.exapps[1], app_port=str(free_port()), stored=set(),
                               api=api)
    try:
        for name in ("03-test-deploy-register.txt", "04-test-deploy-unregister.txt"):
            state = {"container": container, "gpu": False,
                     "exists": api.json("GET", f"/containers/{container}/json")[0] == 200}
            for method, target, headers, body in parse_capture(name):
                expect(gw, method, target, send(gw, method, target, headers, body), state)
            if name.startswith("03"):
                c = api.json("GET", f"/containers/{container}/json")[1]
                assert c["State"]["Running"] and c["Config"]["Image"] == image
        assert api.json("GET", f"/containers/{container}/json")[0] == 404
    finally:
        api.remove_container(container)
        api.remove_volume(f"{container}_data")
        api.request("DELETE", f"/images/{image}")


def test_killed_data_plane_is_back(harp):
    """Each data plane in turn (dp1 serves the FRP frontend too) killed inside the container:
    the time from the kill to its successor's connection to the control plane is measured."""
    until(lambda: len(dataplanes(harp) or {}) == harp.ndp, 60, f"{harp.ndp} data planes")
    heal = []
    for dp_id in sorted(dataplanes(harp)):
        old_pid = dataplanes(harp)[dp_id][0]
        killed = float(harp.docker.sh(harp.name, f"date +%s.%N; kill -KILL {old_pid}"))

        def back():
            d = dataplanes(harp)
            return d if d and dp_id in d and d[dp_id][0] != old_pid else None
        new = until(back, 30, f"{dp_id} back with a new pid")
        heal.append(new[dp_id][1] - killed)
        assert len(new) == harp.ndp
        until(lambda: answers(harp.exapps, "/exapps/app_api/heartbeat", harp), 30,
              "the ExApps frontend")
    MEASURED["data plane killed to its successor connected"] = \
        ", ".join(f"{t:.2f} s" for t in heal)
    logs = harp.docker.run("logs", harp.name).stderr
    assert "harp-dp dp1 (pid" in logs and "restarting it" in logs


def test_restart_keeps_state_and_stop_exits_zero(harp):
    d = harp.docker
    hk = {"harp-shared-key": harp.key}
    r = http_request(harp.control, "POST", "/api/v1/bans", {"ip": "192.0.2.7", "seconds": 3600},
                     hk)
    assert r.status == 201, r
    ca = (harp.certs / "frp" / "ca.crt").read_bytes()
    d.run("stop", "-t", "30", harp.name, timeout=120)
    assert d.inspect(harp.name)["State"]["ExitCode"] == 0
    t = time.monotonic()
    d.run("start", harp.name)
    until(lambda: answers(harp.exapps, "/exapps/app_api/heartbeat", harp), 120, "restart")
    MEASURED["docker start (existing state) to /exapps/app_api/heartbeat"] = \
        f"{time.monotonic() - t:.2f} s"
    bans = http_request(harp.control, "GET", "/api/v1/bans", headers=hk).json()["bans"]
    assert [b["ip"] for b in bans] == ["192.0.2.7"]
    assert (harp.certs / "frp" / "ca.crt").read_bytes() == ca


def test_docker_health_and_control_plane_exit(harp):
    d = harp.docker
    until(lambda: d.inspect(harp.name)["State"]["Health"]["Status"] == "healthy", 120,
          "Docker's health status healthy")
    ctl = d.sh(harp.name, "for p in /proc/[0-9]*; do if grep -qx harp-ctl $p/comm 2>/dev/null;"
               " then echo ${p#/proc/}; fi; done").split()
    assert len(ctl) == 1, ctl
    d.sh(harp.name, f"kill -KILL {ctl[0]}")
    until(lambda: not d.inspect(harp.name)["State"]["Running"], 60, "the container to exit")
    assert d.inspect(harp.name)["State"]["ExitCode"] != 0
    assert "harp-ctl exited with status" in d.run("logs", harp.name).stderr


def daemon_check(port, where):
    """AppAPI's daemon check (the captured ping) through <port>, until it answers 200."""
    method, target, headers, body = parse_capture("01-daemon-check.txt")[0]
    headers = {k: v for k, v in headers.items() if k != "Host"}

    def ping():
        try:
            r = http_request(("127.0.0.1", port), method, target, body, headers, timeout=10)
        except OSError:
            return None
        return r if r.status == 200 else None
    return until(ping, 120, f"AppAPI's ping through {where}")


def test_readme_line_with_published_ports(docker, image, request):
    """HaRP's README line as it is (bridge network, ports 8780 and 8782 published, here on
    ports the engine picks), named volumes for /certs and the state: AppAPI's daemon check
    through the published port."""
    name = f"{RUN}-bridge"

    def cleanup():
        docker.run("rm", "-f", "-v", name, check=False)
        docker.run("volume", "rm", f"{name}-certs", f"{name}-state", check=False)
    request.addfinalizer(cleanup)
    docker.run("run", "-e", f"HP_SHARED_KEY={captured_key()}",
               "-e", "NC_INSTANCE_URL=http://nextcloud.local",
               "-v", f"{docker.engine.sock}:/var/run/docker.sock",
               "-v", f"{name}-certs:/certs", "-v", f"{name}-state:/var/lib/harp",
               "--name", name, "-h", "appapi-harp", "--restart", "unless-stopped",
               "-p", "127.0.0.1::8780", "-p", "127.0.0.1::8782", "-d", TAG)
    port = int(docker.run("port", name, "8780/tcp").stdout.split()[0].rsplit(":", 1)[1])
    assert daemon_check(port, "the published port").body == b"OK"


def test_compose_service(docker, image, tmp_path, request):
    """deploy/compose.yaml's appapi-harp service as written (environment, hostname, volumes,
    restart policy, the nextcloud network), brought up with docker-compose. Changed for this
    engine only: the image is the one built here (not built again), the ports are picked by
    the engine, the socket is the tests' engine's, the network and volumes carry this run's
    name, and Nextcloud's own services (their images cannot be pulled here) are left out."""
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.skip("docker-compose is not installed (Debian package docker-compose)")
    import yaml  # python3-yaml, a dependency of docker-compose
    with open(os.path.join(SRCDIR, "deploy", "compose.yaml")) as f:
        spec = yaml.safe_load(f)
    svc = spec["services"]["appapi-harp"]
    assert svc["environment"] == ["HP_SHARED_KEY=${HP_SHARED_KEY:?set it in .env}",
                                  "NC_INSTANCE_URL=http://app"]
    assert svc["volumes"] == ["/var/run/docker.sock:/var/run/docker.sock", "certs:/certs",
                              "harp:/var/lib/harp"]
    assert [p.split("#")[0].strip() for p in svc["ports"]] == ["127.0.0.1:8780:8780", "8782:8782"]
    assert spec["networks"]["default"]["name"] == "nextcloud"
    svc.update(image=TAG, ports=["127.0.0.1::8780", "127.0.0.1::8782"])
    svc["volumes"][0] = f"{docker.engine.sock}:/var/run/docker.sock"
    for k in ("build", "depends_on"):
        svc.pop(k)
    spec["services"] = {"appapi-harp": svc}
    spec["networks"]["default"]["name"] = f"{RUN}-nextcloud"
    (tmp_path / "compose.yaml").write_text(yaml.safe_dump(spec))
    env = dict(os.environ, DOCKER_HOST=f"unix://{docker.engine.sock}")
    argv = [compose, "-p", f"{RUN}-compose", "-f", str(tmp_path / "compose.yaml")]

    def run(*args, extra=None):
        r = subprocess.run(argv + list(args), capture_output=True, text=True, timeout=300 * MULT,
                           env=dict(env, **(extra or {})))
        return r
    r = run("config")
    assert r.returncode != 0 and "set it in .env" in r.stderr, r  # the key is required
    key = captured_key()
    request.addfinalizer(lambda: run("down", "-v", extra={"HP_SHARED_KEY": key}))
    r = run("up", "-d", extra={"HP_SHARED_KEY": key})
    assert r.returncode == 0, r.stdout + r.stderr
    r = run("port", "appapi-harp", "8780", extra={"HP_SHARED_KEY": key})
    port = int(r.stdout.strip().rsplit(":", 1)[1])
    assert daemon_check(port, "the compose service").body == b"OK"
    c = docker.inspect(f"{RUN}-compose_appapi-harp_1")
    assert c["Config"]["Hostname"] == "appapi-harp"
    assert c["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert f"{RUN}-nextcloud" in c["NetworkSettings"]["Networks"]


@pytest.fixture(scope="module", autouse=True)
def report(request):
    yield
    tr = request.config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None and MEASURED:
        tr.write_line("")
        for k, v in MEASURED.items():
            tr.write_line(f"image: {k}: {v}")
