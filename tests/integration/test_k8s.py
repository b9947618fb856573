# SPDX-License-Identifier: AGPL-3.0-or-later
"""HaRP's /k8s/exapp/* endpoints (spec 4.8-4.9) against the Kubernetes API double: the
objects harp creates, every status row and message, and AppAPI's whole deploy sequence with
a request routed through harp-dp to the ExApp."""
import json
import os

import pytest

from harness import http_request, wait_for
from helpers.k8s_api import K8sDouble

NS = "nextcloud-exapps"
ROUTES = [{"url": "^/public", "access_level": 0, "bruteforce_protection": []}]


@pytest.fixture
def double(tmp_path):
    d = K8sDouble(str(tmp_path / "k8s"))
    d.add("namespaces", "", {"metadata": {"name": NS}})
    yield d
    d.stop()


def k8s_env(d, **extra):
    env = {"HP_K8S_ENABLED": "true", "HP_K8S_API_SERVER": d.url, "HP_K8S_CA_FILE": d.ca_file,
           "HP_K8S_BEARER_TOKEN_FILE": d.token_file}
    env.update(extra)
    return env


@pytest.fixture
def k8s(make_gateway, double):
    gw = make_gateway(env=k8s_env(double, HP_K8S_STORAGE_CLASS="fast",
                                  HP_K8S_DEFAULT_STORAGE_SIZE="2Gi",
                                  HP_K8S_HOST_ALIASES="nc.local:10.0.0.5,cloud:10.0.0.5,x:10.0.0.6,bad"),
                      register=False)
    gw.double = double
    return gw


def call(ctl, action, body):
    return ctl.request("POST", f"/k8s/exapp/{action}", body)


def via_dp(gw, action, body):
    return gw.get(f"/exapps/app_api/k8s/exapp/{action}", method="POST", body=body,
                  headers={"harp-shared-key": gw.ctl.key})


def deploy(d, name="nc-app-skel"):
    return d.get("deployments", NS, name)


CREATE = {"name": "skel", "image": "ghcr.io/nextcloud/skel:1.0",
          "environment_variables": ["APP_ID=skel", "APP_PORT=23000", "NOVALUE", "", "A=b=c"],
          "compute_device": "cuda", "resource_limits": {"memory": 536870913, "nanoCPUs": 1500000},
          "mount_points": [{"source": "/x", "target": "/y"}], "start_container": True}


def test_create_objects(k8s):
    d = k8s.double
    r = call(k8s.ctl, "create", CREATE)
    assert r.status == 201 and r.json() == {"name": "nc-app-skel"}, r
    pvc = d.get("persistentvolumeclaims", NS, "nc-app-skel-data")
    assert pvc["metadata"]["labels"] == {"app.kubernetes.io/name": "nc-app-skel",
                                         "app.kubernetes.io/part-of": "nc-app-skel",
                                         "app.kubernetes.io/component": "exapp-data"}
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert pvc["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert pvc["spec"]["storageClassName"] == "fast"
    dep = deploy(d)
    labels = {"app": "nc-app-skel", "app.kubernetes.io/name": "nc-app-skel",
              "app.kubernetes.io/part-of": "nc-app-skel", "app.kubernetes.io/component": "exapp"}
    assert dep["metadata"]["labels"] == labels
    assert dep["spec"]["replicas"] == 0
    assert dep["spec"]["selector"] == {"matchLabels": {"app": "nc-app-skel"}}
    tmpl = dep["spec"]["template"]
    assert tmpl["metadata"]["labels"] == labels
    c, = tmpl["spec"]["containers"]
    assert c["name"] == "app" and c["image"] == CREATE["image"]
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["env"] == [{"name": "APP_ID", "value": "skel"}, {"name": "APP_PORT", "value": "23000"},
                        {"name": "NOVALUE", "value": ""}, {"name": "A", "value": "b=c"}]
    assert c["volumeMounts"] == [{"name": "data", "mountPath": "/nc_app_skel_data"}]
    want = {"memory": "513Mi", "cpu": "2m", "nvidia.com/gpu": "1"}
    assert c["resources"] == {"limits": want, "requests": want}
    assert tmpl["spec"]["volumes"] == [{"name": "data",
                                        "persistentVolumeClaim": {"claimName": "nc-app-skel-data"}}]
    assert tmpl["spec"]["hostAliases"] == [{"ip": "10.0.0.5", "hostnames": ["nc.local", "cloud"]},
                                           {"ip": "10.0.0.6", "hostnames": ["x"]}]
    assert "mount_points are ignored" in k8s.ctl.log()
    # Again: the PVC's 409 is success, the Deployment's is not.
    r = call(k8s.ctl, "create", CREATE)
    assert r.status == 409 and r.text == "Deployment 'nc-app-skel' already exists."


def test_create_names_roles_rocm(k8s):
    d = k8s.double
    body = {"name": "My_App", "instance_id": "Inst1", "role_suffix": "Worker.A",
            "image_id": "img:2", "compute_device": "rocm",
            "resource_limits": {"memory": "1Gi", "cpu": "250m"}}
    r = call(k8s.ctl, "create", body)
    assert r.status == 201 and r.json() == {"name": "nc-app-inst1-my-app-worker-a"}, r
    dep = d.get("deployments", NS, "nc-app-inst1-my-app-worker-a")
    lab = dep["metadata"]["labels"]
    assert lab["app.kubernetes.io/part-of"] == "nc-app-inst1-my-app"
    assert lab["app.kubernetes.io/instance"] == "Inst1"
    assert lab["app.kubernetes.io/role"] == "worker-a"
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "img:2" and "hostAliases" in dep["spec"]["template"]["spec"]
    assert c["resources"]["limits"] == {"memory": "1Gi", "cpu": "250m", "amd.com/gpu": "1"}
    assert c["volumeMounts"][0]["mountPath"] == "/nc_app_Inst1_My_App_data"
    assert d.get("persistentvolumeclaims", NS, "nc-app-inst1-my-app-data") is not None
    # No limits at all: no resources key.
    r = call(k8s.ctl, "create", {"name": "plain", "image": "i"})
    c = deploy(d, "nc-app-plain")["spec"]["template"]["spec"]["containers"][0]
    assert r.status == 201 and "resources" not in c and c["env"] == []


def test_create_errors(k8s):
    d = k8s.double
    assert call(k8s.ctl, "create", {"name": "x"}).text == \
        "Payload validation error: image_id: Field required"
    r = call(k8s.ctl, "create", {"name": "x", "image": "i", "compute_device": "tpu"})
    assert r.status == 400 and "compute_device" in r.text
    d.mode = "500"
    r = call(k8s.ctl, "create", {"name": "x", "image": "i"})
    assert r.status == 503 and r.text == "Failed to create PVC 'nc-app-x-data': Status 500"
    d.mode = "ok"
    d.objects.pop(("namespaces", "", NS))   # the namespace is gone: PVC create answers 404
    r = call(k8s.ctl, "create", {"name": "x", "image": "i"})
    assert r.status == 503 and r.text == "Failed to create PVC 'nc-app-x-data': Status 404"


def test_configuration_errors(make_gateway, double, tmp_path):
    body = {"name": "a"}
    gw = make_gateway(register=False)  # HP_K8S_ENABLED unset
    for action in ("exists", "create", "start", "stop", "wait_for_start", "remove", "expose"):
        b = dict(body, image="i", port=1)
        r = call(gw.ctl, action, b)
        assert r.status == 503 and r.text == "Kubernetes backend is disabled in HaRP.", (action, r)
    # The body is validated first.
    r = call(gw.ctl, "exists", b"{nope")
    assert r.status == 400 and r.text == "Invalid JSON body"
    assert call(gw.ctl, "exists", {}).text == "Payload validation error: name: Field required"
    assert call(gw.ctl, "install_certificates", body).status == 204
    r = call(gw.ctl, "install_certificates", dict(body, install_frp_certs="maybe"))
    assert r.status == 400 and "install_frp_certs" in r.text
    r = call(gw.ctl, "install_certificates", dict(body, system_certs_bundle=5))
    assert r.status == 400 and "system_certs_bundle" in r.text
    r = gw.ctl.request("GET", "/info").json()
    assert r["kubernetes"] == {"enabled": False}
    noserver = make_gateway(register=False, env={"HP_K8S_ENABLED": "true",
                                                 "HP_K8S_BEARER_TOKEN": "t"})
    r = call(noserver.ctl, "exists", body)
    assert r.status == 503 and r.text == "Kubernetes API server is not configured."
    notoken = make_gateway(register=False, env={
        "HP_K8S_ENABLED": "true", "HP_K8S_API_SERVER": double.url,
        "HP_K8S_BEARER_TOKEN_FILE": str(tmp_path / "absent")})
    r = call(notoken.ctl, "exists", body)
    assert r.status == 503 and r.text == "Kubernetes token is not configured."


def test_exists_start_stop_and_api_errors(k8s):
    d, ctl = k8s.double, k8s.ctl
    assert call(ctl, "exists", {"name": "skel"}).json() == {"exists": False}
    r = call(ctl, "start", {"name": "skel"})
    assert r.status == 404 and r.text == "Deployment 'nc-app-skel' not found."
    r = call(ctl, "stop", {"name": "skel"})
    assert r.status == 404 and r.text == "Deployment 'nc-app-skel' not found."
    assert call(ctl, "create", {"name": "skel", "image": "i"}).status == 201
    assert call(ctl, "exists", {"name": "skel"}).json() == {"exists": True}
    assert call(ctl, "start", {"name": "skel"}).status == 204
    assert deploy(d)["spec"]["replicas"] == 1
    assert call(ctl, "start", {"name": "skel"}).status == 204  # never "already"
    patch = [r for r in d.requests if r[0] == "PATCH"][-1]
    assert patch[3]["Content-Type"] == "application/strategic-merge-patch+json"
    assert json.loads(patch[2]) == {"spec": {"replicas": 1}}
    assert call(ctl, "stop", {"name": "skel"}).status == 204
    assert deploy(d)["spec"]["replicas"] == 0 and d.list("pods", NS) == []
    d.mode = "500"
    r = call(ctl, "exists", {"name": "skel"})
    assert r.status == 503 and r.text == "Error checking deployment 'nc-app-skel': Status 500"
    r = call(ctl, "start", {"name": "skel"})
    assert r.status == 503 and "'nc-app-skel': Status 500" in r.text
    r = call(ctl, "wait_for_start", {"name": "skel"})
    assert r.status == 503 and "Status 500" in r.text
    r = call(ctl, "remove", {"name": "skel"})
    assert r.status == 503 and r.text == "Failed to delete deployment 'nc-app-skel': Status 500"
    d.mode = "ok"
    # A wrong token: the API's 401 is "other".
    harp_token = d.token_file
    d.token_file = harp_token + ".api"
    d.set_token("rotated")
    r = call(ctl, "exists", {"name": "skel"})
    assert r.status == 503 and r.text == "Error checking deployment 'nc-app-skel': Status 401"
    # The token file rotates: harp reads it again at the next call.
    with open(harp_token, "w") as f:
        f.write("rotated\n")
    assert call(ctl, "exists", {"name": "skel"}).json() == {"exists": True}
    auth = [r[3].get("Authorization") for r in d.requests][-1]
    assert auth == "Bearer rotated"


def test_connection_errors(make_gateway, double, tmp_path):
    from harness import free_port
    # Nothing listens: 503 "Error communicating with Kubernetes API".
    gw = make_gateway(register=False, env=k8s_env(double,
                      HP_K8S_API_SERVER=f"https://127.0.0.1:{free_port()}"))
    r = call(gw.ctl, "exists", {"name": "a"})
    assert r.status == 503 and r.text == "Error communicating with Kubernetes API"
    # A CA that did not sign the server's certificate: TLS fails, the same answer; with
    # HP_K8S_VERIFY_SSL=false it is not checked.
    other = K8sDouble(str(tmp_path / "other"))
    try:
        gw = make_gateway(register=False, env=k8s_env(double, HP_K8S_CA_FILE=other.ca_file))
        r = call(gw.ctl, "exists", {"name": "a"})
        assert r.status == 503 and r.text == "Error communicating with Kubernetes API"
        assert gw.ctl.request("GET", "/info").json()["kubernetes"]["reachable"] is False
        gw = make_gateway(register=False, env=k8s_env(double, HP_K8S_CA_FILE=other.ca_file,
                                                      HP_K8S_VERIFY_SSL="false"))
        assert call(gw.ctl, "exists", {"name": "a"}).json() == {"exists": False}
        info = gw.ctl.request("GET", "/info").json()["kubernetes"]
        assert info == {"enabled": True, "api_server": double.url, "reachable": True}
    finally:
        other.stop()


@pytest.mark.parametrize("script,want", [
    ([("ContainerCreating", 0.3), ("RunningNotReady", 0.3), ("Ready", None)],
     {"started": True, "status": "running", "health": "ready", "reason": None, "message": None}),
    ([("PodInitializing", 0.3), ("Succeeded", None)],
     {"started": True, "status": "succeeded", "health": "ready", "reason": None, "message": None}),
    ([("Pending", 0.3), ("Failed", None)],
     {"started": False, "status": "Failed", "health": "not_ready", "reason": "Evicted",
      "message": "The node was low on resource"}),
    ([("Unknown", None)],
     {"started": False, "status": "Unknown", "health": "not_ready", "reason": None,
      "message": None}),
    ([("ContainerCreating", 0.3), ("ErrImagePull", None)],
     {"started": False, "status": "ErrImagePull", "health": "image_error",
      "reason": "ErrImagePull", "message": "image pull failed"}),
    ([("ImagePullBackOff", None)],
     {"started": False, "status": "ImagePullBackOff", "health": "image_error",
      "reason": "ImagePullBackOff", "message": "Back-off pulling"}),
    ([("InvalidImageName", None)],
     {"started": False, "status": "InvalidImageName", "health": "image_error",
      "reason": "InvalidImageName", "message": "invalid image"}),
])
def test_wait_for_start_rows(k8s, script, want):
    d, ctl = k8s.double, k8s.ctl
    d.pod_script["nc-app-skel"] = script
    assert call(ctl, "create", {"name": "skel", "image": "i"}).status == 201
    assert call(ctl, "start", {"name": "skel"}).status == 204
    r = call(ctl, "wait_for_start", {"name": "skel"})
    assert r.status == 200 and r.json() == want
    assert list(r.json()) == ["started", "status", "health", "reason", "message"]


def test_wait_for_start_crashloop_times_out(k8s):
    """Once a waiting reason other than the image's shows, 90 s are left."""
    d, ctl = k8s.double, k8s.ctl
    d.pod_script["nc-app-skel"] = [("CrashLoopBackOff", None)]
    assert call(ctl, "create", {"name": "skel", "image": "i"}).status == 201
    assert call(ctl, "start", {"name": "skel"}).status == 204
    import time
    t0 = time.monotonic()
    r = http_request(ctl.addr, "POST", "/k8s/exapp/wait_for_start", {"name": "skel"},
                     {"harp-shared-key": ctl.key}, timeout=300)
    assert r.status == 200 and r.json() == {"started": False, "status": "Running",
                                            "health": "timeout", "reason": None, "message": None}
    assert time.monotonic() - t0 >= 89


def test_remove(k8s):
    d, ctl = k8s.double, k8s.ctl
    assert call(ctl, "create", {"name": "skel", "image": "i"}).status == 201
    # A Service harp did not make is left alone.
    d.add("services", NS, {"metadata": {"name": "nc-app-skel"}, "spec": {"ports": [{"port": 1}]}})
    assert call(ctl, "remove", {"name": "skel"}).status == 204
    assert deploy(d) is None and d.get("services", NS, "nc-app-skel") is not None
    assert d.get("persistentvolumeclaims", NS, "nc-app-skel-data") is not None
    # Again: 404s are fine.
    assert call(ctl, "remove", {"name": "skel", "remove_data": "yes"}).status == 204
    assert d.get("persistentvolumeclaims", NS, "nc-app-skel-data") is None
    r = call(ctl, "remove", {"name": "skel", "remove_data": "perhaps"})
    assert r.status == 400 and "remove_data" in r.text


def test_appapi_sequence(k8s):
    """AppAPI 34's Kubernetes deploy: create, expose, start, wait_for_start, requests through
    harp-dp to the ExApp, stop, remove without and with data; every call through harp-dp as
    AppAPI makes it (/exapps/app_api/k8s/exapp/..., no docker-engine-port)."""
    d, ctl, nc = k8s.double, k8s.ctl, k8s.nc
    nc.add_app("skel", 9, routes=ROUTES, host="nextcloud-thinks-here")
    ctl.secrets.append("skel-token-secret")
    assert via_dp(k8s, "exists", {"name": "skel"}).json() == {"exists": False}
    assert via_dp(k8s, "create", dict(CREATE, compute_device="cpu")).status == 201
    r = via_dp(k8s, "expose", {"name": "skel", "port": k8s.backend.port, "expose_type": "clusterip",
                             "upstream_host": "127.0.0.1"})
    assert r.status == 200, r
    assert r.json() == {"appId": "skel", "host": "127.0.0.1", "port": k8s.backend.port,
                        "exposeType": "clusterip", "serviceName": "nc-app-skel",
                        "namespace": NS}
    svc = d.get("services", NS, "nc-app-skel")
    assert svc["spec"]["type"] == "ClusterIP" and svc["spec"]["selector"] == {"app": "nc-app-skel"}
    assert svc["spec"]["ports"][0]["targetPort"] == k8s.backend.port
    assert svc["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "harp"
    assert via_dp(k8s, "install_certificates", {"name": "skel", "system_certs_bundle": None}).status == 204
    assert via_dp(k8s, "start", {"name": "skel"}).status == 204
    assert via_dp(k8s, "wait_for_start", {"name": "skel"}).json()["health"] == "ready"
    version = ctl.request("GET", "/api/v1/status").json()["table_version"]
    wait_for(lambda: k8s.dps[0].applied(version), what="table applied")
    r = k8s.get("/exapps/skel/public/hello")
    assert r.status == 200, r
    assert k8s.backend.requests and k8s.backend.requests[-1]["path"] == "/public/hello"
    assert via_dp(k8s, "stop", {"name": "skel"}).status == 204
    assert deploy(d)["spec"]["replicas"] == 0
    assert via_dp(k8s, "remove", {"name": "skel", "remove_data": False}).status == 204
    assert deploy(d) is None and d.get("services", NS, "nc-app-skel") is None
    assert d.get("persistentvolumeclaims", NS, "nc-app-skel-data") is not None
    assert via_dp(k8s, "create", dict(CREATE, compute_device="cpu")).status == 201
    assert via_dp(k8s, "remove", {"name": "skel", "remove_data": True}).status == 204
    assert d.get("persistentvolumeclaims", NS, "nc-app-skel-data") is None


def test_waits_block_nothing_else(k8s):
    """While one wait_for_start waits on a pod that never becomes ready, 50 other control
    calls take their usual time, another wait ends, and the data plane's requests go on."""
    import statistics
    import threading
    import time
    d, ctl = k8s.double, k8s.ctl
    d.pod_script["nc-app-stuck"] = [("RunningNotReady", None)]
    for app in ("stuck", "quick"):
        assert call(ctl, "create", {"name": app, "image": "i"}).status == 201
        assert call(ctl, "start", {"name": app}).status == 204

    def latency():
        t = time.monotonic()
        assert call(ctl, "exists", {"name": "stuck"}).json() == {"exists": True}
        return time.monotonic() - t

    baseline = [latency() for _ in range(50)]
    result = {}

    def wait():
        result["r"] = http_request(ctl.addr, "POST", "/k8s/exapp/wait_for_start",
                                   {"name": "stuck"}, {"harp-shared-key": ctl.key}, timeout=600)
    th = threading.Thread(target=wait)
    th.start()
    polls = lambda: sum(1 for r in d.requests if "/pods" in r[1])  # noqa: E731
    wait_for(lambda: polls() >= 2, timeout=60, what="the wait polls")
    during = [latency() for _ in range(50)]
    assert call(ctl, "wait_for_start", {"name": "quick"}).json()["started"] is True
    assert k8s.ctl.request("GET", "/info").status == 200
    assert th.is_alive() and "r" not in result
    assert statistics.median(during) <= 5 * statistics.median(baseline) + 0.05, (baseline, during)
    # The wait went on polling meanwhile, once a second.
    assert polls() >= 3
    for name, (born, _) in list(d.pod_birth.items()):
        if name.startswith("nc-app-stuck"):
            d.pod_birth[name] = (born, [("Ready", None)])
    th.join(120)
    assert result["r"].json()["health"] == "ready"


def test_stop_ends_waits(k8s):
    """SIGTERM ends a wait_for_start in progress: harp-ctl stops in time."""
    import threading
    d, ctl = k8s.double, k8s.ctl
    d.pod_script["nc-app-stuck"] = [("ContainerCreating", None)]
    assert call(ctl, "create", {"name": "stuck", "image": "i"}).status == 201
    assert call(ctl, "start", {"name": "stuck"}).status == 204
    result = {}

    def wait():
        try:
            result["r"] = http_request(ctl.addr, "POST", "/k8s/exapp/wait_for_start",
                                       {"name": "stuck"}, {"harp-shared-key": ctl.key},
                                       timeout=600)
        except OSError as e:
            result["r"] = e
    th = threading.Thread(target=wait)
    th.start()
    wait_for(lambda: sum(1 for r in d.requests if "/pods" in r[1]) >= 2, timeout=60,
             what="the wait polls")
    assert ctl.stop() == 0
    th.join(60)
    r = result["r"]
    assert isinstance(r, OSError) or (r.status, r.text) == (503, "harp-ctl is stopping")


def test_each_failing_call(k8s):
    """The 503 of each Kubernetes call that answers an unexpected status."""
    d, ctl, nc = k8s.double, k8s.ctl, k8s.nc
    d.fail[("create", "deployments")] = 500
    r = call(ctl, "create", {"name": "skel", "image": "i"})
    assert r.status == 503 and r.text == "Failed to create deployment 'nc-app-skel': Status 500"
    d.fail.clear()
    assert call(ctl, "create", {"name": "skel", "image": "i"}).status == 201
    nc.add_app("skel", 9, routes=ROUTES)
    ctl.secrets.append("skel-token-secret")
    d.fail[("get", "services")] = 403
    r = call(ctl, "expose", {"name": "skel", "port": 1})
    assert r.status == 503 and r.text == "Failed to read service 'nc-app-skel': Status 403"
    d.fail.clear()
    assert call(ctl, "expose", {"name": "skel", "port": 1}).status == 200
    d.fail[("delete", "persistentvolumeclaims")] = 500
    r = call(ctl, "remove", {"name": "skel", "remove_data": True})
    assert r.status == 503 and r.text == "Failed to delete PVC 'nc-app-skel-data': Status 500"
    d.fail = {("delete", "services"): 500}
    r = call(ctl, "remove", {"name": "skel"})
    assert r.status == 503 and r.text == "Failed to delete service 'nc-app-skel': Status 500"
    d.fail.clear()
    assert call(ctl, "remove", {"name": "skel", "remove_data": True}).status == 204
    assert d.get("services", NS, "nc-app-skel") is None


def test_api_timeout_is_500(k8s):
    """A call the API server does not answer within 60 s: HaRP's generic 500."""
    d, ctl = k8s.double, k8s.ctl
    d.mode = "stall"
    try:
        r = http_request(ctl.addr, "POST", "/k8s/exapp/exists", {"name": "skel"},
                         {"harp-shared-key": ctl.key}, timeout=300)
    finally:
        d.mode = "ok"
    assert r.status == 500 and r.text == "500: Internal Server Error"
