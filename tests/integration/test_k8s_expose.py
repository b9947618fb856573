# SPDX-License-Identifier: AGPL-3.0-or-later
"""POST /k8s/exapp/expose (spec 4.9.7) with its four types, and the Kubernetes upstream
resolution (spec 4.10) with harp's two improvements: expose options kept across restarts,
and no Kubernetes call for Docker ExApps."""
import json

import pytest

from harness import http_request, wait_for
from helpers.k8s_api import K8sDouble
from test_k8s import NS, ROUTES, call, k8s_env

KEY = "test-shared-key-0123"


@pytest.fixture
def double(tmp_path):
    d = K8sDouble(str(tmp_path / "k8s"))
    d.add("namespaces", "", {"metadata": {"name": NS}})
    d.add_node("n1", [("InternalIP", "10.0.0.1")], ready=False)
    d.add_node("n2", [("InternalIP", "10.0.0.2"), ("ExternalIP", "198.51.100.2")],
               labels={"zone": "a"})
    d.add_node("n3", [("Hostname", "n3.local")], labels={"zone": "b"})
    yield d
    d.stop()


@pytest.fixture
def k8s(make_gateway, double):
    gw = make_gateway(env=k8s_env(double), register=False)
    gw.double = double
    return gw


def expose(gw, app, **kw):
    gw.nc.add_app(app, 9, routes=ROUTES, host="nc-host")
    gw.ctl.secrets.append(f"{app}-token-secret")
    return call(gw.ctl, "expose", dict({"name": app, "port": 23000}, **kw))


def stored(gw, app):
    r = gw.ctl.request("GET", f"/api/v1/exapps/{app}")
    return (r.json()["host"], r.json()["port"]) if r.status == 200 else None


@pytest.mark.parametrize("opts,host", [
    ({}, "10.0.0.2"),                                   # Ready nodes first
    ({"node_address_type": "ExternalIP"}, "198.51.100.2"),
    ({"node_name": "n1"}, "10.0.0.1"),                  # the named node, even not Ready
    ({"node_label_selector": "zone in (b)"}, "n3.local"),  # no IP: its Hostname
    ({"upstream_host": "edge.example"}, "edge.example"),
])
def test_nodeport(k8s, opts, host):
    r = expose(k8s, "np", expose_type="nodeport", **opts)
    assert r.status == 200, r
    svc = k8s.double.get("services", NS, "nc-app-np")
    port = svc["spec"]["ports"][0]["nodePort"]
    assert r.json() == {"appId": "np", "host": host, "port": port, "exposeType": "nodeport",
                        "serviceName": "nc-app-np", "namespace": NS}
    assert stored(k8s, "np") == (host, port)


def test_nodeport_service_fields_and_errors(k8s):
    d = k8s.double
    r = expose(k8s, "np", expose_type="nodeport", node_port=30555, service_port=8080,
               external_traffic_policy="Local", service_annotations={"a/b": "c"},
               service_labels={"team": "x", "app.kubernetes.io/instance": "mine"},
               instance_id="", role_suffix="")
    assert r.status == 200 and r.json()["port"] == 30555, r
    svc = d.get("services", NS, "nc-app-np")
    assert svc["spec"]["type"] == "NodePort" and svc["spec"]["externalTrafficPolicy"] == "Local"
    assert svc["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": 23000,
                                     "nodePort": 30555, "protocol": "TCP"}]
    assert svc["metadata"]["annotations"] == {"a/b": "c"}
    assert svc["metadata"]["labels"] == {
        "app": "nc-app-np", "app.kubernetes.io/name": "nc-app-np",
        "app.kubernetes.io/part-of": "nc-app-np", "app.kubernetes.io/component": "exapp",
        "app.kubernetes.io/managed-by": "harp", "team": "x",
        "app.kubernetes.io/instance": "mine"}
    # The Service exists (409): it is reused unchanged.
    r = expose(k8s, "np", expose_type="nodeport", node_port=30999)
    assert r.status == 200 and r.json()["port"] == 30555
    r = expose(k8s, "none", expose_type="nodeport", node_name="absent")
    assert r.status == 503 and r.text == "No node address found for the NodePort Service."
    d.add("services", NS, {"metadata": {"name": "nc-app-cip"}, "spec": {"ports": [{"port": 1}]}})
    r = expose(k8s, "cip", expose_type="nodeport")
    assert r.status == 503 and r.text == "Service has no nodePort assigned."


def test_clusterip_and_loadbalancer(k8s):
    d = k8s.double
    r = expose(k8s, "c", service_port=80)
    svc = d.get("services", NS, "nc-app-c")
    assert r.json()["host"] == svc["spec"]["clusterIP"] and r.json()["port"] == 80
    assert r.json()["exposeType"] == "clusterip" and "externalTrafficPolicy" not in svc["spec"]
    d.add("services", NS, {"metadata": {"name": "nc-app-h"},
                           "spec": {"clusterIP": "None", "ports": [{"port": 5}]}})
    r = expose(k8s, "h")
    assert r.json()["host"] == f"nc-app-h.{NS}.svc" and r.json()["port"] == 5
    d.lb_delay = 0.5
    r = expose(k8s, "lb", expose_type="loadbalancer", load_balancer_ip="203.0.113.10",
               external_traffic_policy="Cluster", wait_interval_seconds=0.1)
    assert r.status == 200 and r.json()["host"] == "203.0.113.10" and r.json()["port"] == 23000
    svc = d.get("services", NS, "nc-app-lb")
    assert svc["spec"]["loadBalancerIP"] == "203.0.113.10"
    assert svc["spec"]["externalTrafficPolicy"] == "Cluster"
    d.lb_delay = None
    r = expose(k8s, "lb2", expose_type="loadbalancer", wait_timeout_seconds=0.3,
               wait_interval_seconds=0.1)
    assert r.status == 503
    assert r.text == "Timed out waiting for LoadBalancer address for Service 'nc-app-lb2'"
    d.mode = "500"
    r = expose(k8s, "e")
    assert r.status == 503 and r.text == "Failed to create service 'nc-app-e': Status 500"


def test_manual(k8s, make_gateway):
    d = k8s.double
    assert call(k8s.ctl, "create", {"name": "m", "image": "i"}).status == 201
    r = expose(k8s, "m", expose_type="manual", upstream_host="10.1.1.1", upstream_port=8000)
    assert r.json() == {"appId": "m", "host": "10.1.1.1", "port": 8000, "exposeType": "manual",
                        "serviceName": "nc-app-m", "namespace": NS}
    assert d.get("deployments", NS, "nc-app-m")["metadata"]["annotations"] == {
        "appapi.nextcloud.com/expose-type": "manual",
        "appapi.nextcloud.com/upstream-host": "10.1.1.1",
        "appapi.nextcloud.com/upstream-port": "8000"}
    assert d.get("services", NS, "nc-app-m") is None
    r = expose(k8s, "m", expose_type="manual")
    assert r.status == 400 and "upstream_host" in r.text
    # Without Kubernetes: manual works, the other types do not.
    off = make_gateway(register=False)
    r = expose(off, "m2", expose_type="manual", upstream_host="h")
    assert r.status == 200 and r.json()["port"] == 23000 and stored(off, "m2") == ("h", 23000)
    r = expose(off, "m2")
    assert r.status == 503 and r.text == "Kubernetes backend is disabled in HaRP."


def test_metadata_errors(k8s):
    r = call(k8s.ctl, "expose", {"name": "ghost", "port": 1, "expose_type": "manual",
                                 "upstream_host": "h"})
    assert r.status == 404 and r.text == "No ExApp metadata for 'ghost'"
    k8s.nc.fail_status = 500
    r = expose(k8s, "x", expose_type="manual", upstream_host="h")
    assert r.status == 503 and r.text == "Failed to fetch metadata for 'x'"


@pytest.mark.parametrize("field,value", [
    ("port", 0), ("port", 65536), ("port", None), ("port", "x"), ("upstream_port", 65536),
    ("service_port", 0), ("node_port", 29999), ("node_port", 32768),
    ("expose_type", "ingress"), ("external_traffic_policy", "Both"),
    ("wait_timeout_seconds", 600.5), ("wait_timeout_seconds", -1),
    ("wait_interval_seconds", 0.09), ("wait_interval_seconds", 10.5),
    ("node_address_type", "Hostname"), ("upstream_host", "h" * 256),
    ("node_name", "n" * 254), ("node_label_selector", "s" * 256),
    ("service_labels", {"a": 1}), ("service_annotations", ["x"]), ("load_balancer_ip", 5),
])
def test_expose_validation(k8s, field, value):
    body = {"name": "v", "port": 23000, field: value}
    r = call(k8s.ctl, "expose", body)
    assert r.status == 400 and r.text.startswith(f"Payload validation error: {field}: "), r


def test_expose_limits_accepted(k8s):
    r = expose(k8s, "v", expose_type="manual", upstream_host="h" * 255, port="65535",
               wait_timeout_seconds=600, wait_interval_seconds="0.1")
    assert r.status == 200 and r.json()["port"] == 65535


# --- upstream resolution (4.10) -----------------------------------------------------------

def push(gw, app, host="nc-host", port=9):
    gw.ctl.secrets.append(f"{app}-token")
    return gw.ctl.request("POST", f"/exapp_storage/{app}",
                          {"exapp_token": f"{app}-token", "exapp_version": "1", "host": host,
                           "port": port, "routes": ROUTES})


def test_storage_push_resolves(k8s):
    d = k8s.double
    d.add("services", NS, {"metadata": {"name": "nc-app-a"},
                           "spec": {"type": "NodePort", "ports": [{"port": 80}]}})
    assert push(k8s, "A").status == 204
    port = d.get("services", NS, "nc-app-a")["spec"]["ports"][0]["nodePort"]
    assert stored(k8s, "a") == ("10.0.0.2", port)
    # By the part-of label.
    d.add("services", NS, {"metadata": {"name": "other",
                                        "labels": {"app.kubernetes.io/part-of": "nc-app-b"}},
                           "spec": {"ports": [{"port": 81}]}})
    assert push(k8s, "b").status == 204
    assert stored(k8s, "b") == (d.get("services", NS, "other")["spec"]["clusterIP"], 81)
    # No Service: the manual annotations of a Deployment with the part-of label.
    d.add("deployments", NS, {"metadata": {"name": "nc-app-c-worker", "labels": {
        "app.kubernetes.io/part-of": "nc-app-c"}, "annotations": {
        "appapi.nextcloud.com/expose-type": "manual",
        "appapi.nextcloud.com/upstream-host": "man.host",
        "appapi.nextcloud.com/upstream-port": "7000"}}, "spec": {"replicas": 0}})
    assert push(k8s, "c").status == 204 and stored(k8s, "c") == ("man.host", 7000)
    # A LoadBalancer without ingress yet, and nothing at all: Nextcloud's host and port.
    d.lb_delay = None
    d.add("services", NS, {"metadata": {"name": "nc-app-d"},
                           "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}})
    assert push(k8s, "d").status == 204 and stored(k8s, "d") == ("nc-host", 9)
    assert push(k8s, "e").status == 204 and stored(k8s, "e") == ("nc-host", 9)
    d.mode = "500"
    r = push(k8s, "f")
    assert r.status == 503 and r.text == "K8s API error during Service lookup for 'f'"
    assert stored(k8s, "f") is None


def test_cache_miss_resolves_and_routes(k8s):
    """An app the data plane does not know is looked up in Nextcloud, then its upstream in
    Kubernetes, and the request reaches it there."""
    d = k8s.double
    d.add("deployments", NS, {"metadata": {"name": "nc-app-miss", "annotations": {
        "appapi.nextcloud.com/expose-type": "manual",
        "appapi.nextcloud.com/upstream-host": "127.0.0.1",
        "appapi.nextcloud.com/upstream-port": str(k8s.backend.port)}}, "spec": {"replicas": 0}})
    k8s.nc.add_app("miss", 9, routes=ROUTES, host="unreachable.invalid")
    k8s.ctl.secrets.append("miss-token-secret")
    r = k8s.get("/exapps/miss/public/x")
    assert r.status == 200, r
    assert stored(k8s, "miss") == ("127.0.0.1", k8s.backend.port)


def test_nodeport_resolves_the_same_after_restart(k8s):
    """HaRP forgets node_name at a restart and picks the default node; harp keeps it."""
    d, ctl = k8s.double, k8s.ctl
    r = expose(k8s, "keep", expose_type="nodeport", node_name="n2",
               node_address_type="ExternalIP")
    assert r.status == 200 and r.json()["host"] == "198.51.100.2"
    port = r.json()["port"]
    ctl.stop()
    ctl.start()
    creates = sum(1 for m, p, *_ in d.requests if m == "POST" and p.endswith("/services"))
    # AppAPI pushes the app with Nextcloud's host after the restart.
    assert push(k8s, "keep").status == 204
    assert stored(k8s, "keep") == ("198.51.100.2", port)
    # And a cache miss resolves the same (DELETE drops it; the data plane asks again).
    assert ctl.request("DELETE", "/exapp_storage/keep").status == 204

    def asked():
        k8s.get("/exapps/keep/public/x")
        return stored(k8s, "keep") is not None
    wait_for(asked, timeout=30, what="look-up")
    assert stored(k8s, "keep") == ("198.51.100.2", port)
    assert sum(1 for m, p, *_ in d.requests if m == "POST" and p.endswith("/services")) == creates
    # The expose options are state: an audit entry, and the chain verifies.
    log = json.loads(ctl.cli("audit", "log", "--app", "keep", "--json").stdout)
    entries = log["entries"] if isinstance(log, dict) else log
    (e,) = [e for e in entries if e["op"] == "k8s.expose"]
    assert (e["effect"]["kind"], e["effect"]["node_name"]) == ("nodeport", "n2")
    r = ctl.cli("audit", "verify")
    assert r.returncode == 0, r.stdout + r.stderr


def test_docker_apps_cost_no_kubernetes_call(make_gateway, double, docker_engine):
    """An ExApp created through /docker/exapp/create is a Docker one: its pushes and look-ups
    make no Kubernetes call (HaRP makes up to four that find nothing)."""
    gw = make_gateway(register=False, env=dict(k8s_env(double),
                                               HP_DOCKER_SOCKET=docker_engine.sock))
    wait_for(lambda: "engines: 1 known" in gw.dps[0].log(), what="engines pushed")
    from helpers.docker_engine import IMAGE
    r = http_request(gw.ctl.addr, "POST", "/docker/exapp/create",
                     {"name": "dock", "image_id": IMAGE},
                     {"harp-shared-key": KEY, "docker-engine-port": "24000"}, timeout=120)
    try:
        assert r.status == 201, r
        before = len(double.requests)
        assert push(gw, "dock").status == 204
        assert stored(gw, "dock") == ("nc-host", 9)
        assert len(double.requests) == before
        # Another app with no record costs the look-ups HaRP makes.
        assert push(gw, "other").status == 204
        assert len(double.requests) > before
    finally:
        docker_engine.api.remove_container("nc_app_dock")
        docker_engine.api.remove_volume("nc_app_dock_data")
