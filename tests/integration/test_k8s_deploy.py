# SPDX-License-Identifier: AGPL-3.0-or-later
"""harp on a cluster: deploy/kubernetes renders with kustomize, its Role grants exactly the
calls harp makes (as the API double saw them), and the operators' commands
`harp-ctl k8s status` and `harp-ctl exapp show`."""
import json
import os
import shutil
import subprocess

import pytest
import yaml

from harness import SRCDIR
from helpers.k8s_api import K8sDouble
from test_k8s import NS, ROUTES, call, k8s_env

KUBECTL = shutil.which("kubectl")
SSAR = ("create", "selfsubjectaccessreviews")


@pytest.fixture
def double(tmp_path):
    d = K8sDouble(str(tmp_path / "k8s"))
    d.add("namespaces", "", {"metadata": {"name": NS}})
    d.add_node("n1", [("InternalIP", "10.0.0.1")])
    yield d
    d.stop()


@pytest.fixture
def k8s(make_gateway, double):
    gw = make_gateway(env=k8s_env(double), register=False)
    gw.double = double
    return gw


def rendered():
    out = subprocess.run([KUBECTL, "kustomize", os.path.join(SRCDIR, "deploy", "kubernetes")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def granted(docs):
    rules = set()
    for d in docs:
        if d["kind"] in ("Role", "ClusterRole"):
            for r in d["rules"]:
                for res in r["resources"]:
                    for v in r["verbs"]:
                        rules.add((v, res))
    return rules


def exercise(gw):
    """Every endpoint and path of harp that calls Kubernetes."""
    d, ctl, nc = gw.double, gw.ctl, gw.nc
    for app in ("a", "b", "c", "m"):
        nc.add_app(app, 9, routes=ROUTES)
        ctl.secrets.append(f"{app}-token-secret")
    assert call(ctl, "exists", {"name": "a"}).status == 200
    assert call(ctl, "create", {"name": "a", "image": "i"}).status == 201
    assert call(ctl, "expose", {"name": "a", "port": 1, "expose_type": "nodeport"}).status == 200
    assert call(ctl, "expose", {"name": "b", "port": 1}).status == 200
    assert call(ctl, "expose", {"name": "c", "port": 1, "expose_type": "loadbalancer"}).status == 200
    assert call(ctl, "expose", {"name": "m", "port": 1, "expose_type": "manual",
                                "upstream_host": "h"}).status == 200
    assert call(ctl, "start", {"name": "a"}).status == 204
    assert call(ctl, "wait_for_start", {"name": "a"}).json()["started"] is True
    assert call(ctl, "stop", {"name": "a"}).status == 204
    assert call(ctl, "remove", {"name": "a", "remove_data": True}).status == 204
    ctl.secrets.append("z-token")
    assert ctl.request("POST", "/exapp_storage/z", {"exapp_token": "z-token", "exapp_version": "1",
                                                    "host": "h", "port": 1}).status == 204
    r = ctl.cli("k8s", "status", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_kustomize_renders_and_role_is_exact(k8s):
    docs = rendered()
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == ["ClusterRole", "ClusterRoleBinding", "ConfigMap", "Namespace", "Namespace",
                     "Role", "RoleBinding", "Service", "ServiceAccount", "StatefulSet"]
    sts = next(d for d in docs if d["kind"] == "StatefulSet")
    containers = {c["name"]: c for c in sts["spec"]["template"]["spec"]["containers"]}
    assert set(containers) == {"harp-ctl", "harp-dp"}
    for c in containers.values():
        assert any(m["mountPath"] == "/run/harp" for m in c["volumeMounts"])  # the socket
        assert c["resources"]["requests"] and ("livenessProbe" in c)
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "state"
    svc = next(d for d in docs if d["kind"] == "Service")
    assert {p["port"] for p in svc["spec"]["ports"]} == {8780, 8782}
    status = exercise(k8s)
    used = k8s.double.verbs() - {SSAR}
    assert used == granted(docs), (sorted(used), sorted(granted(docs)))
    # `k8s status` asks about exactly these.
    assert {(p["verb"], p["resource"]) for p in status["permissions"]} == used


def test_k8s_status(k8s):
    d, ctl = k8s.double, k8s.ctl
    r = ctl.cli("k8s", "status")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "reachable:   yes" in r.stdout and "version:     v1.32.0-double" in r.stdout
    assert f"namespace:   {NS} (present)" in r.stdout
    rows = [x.split() for x in r.stdout.splitlines() if x.startswith("  ")]
    assert ["list", "pods", "yes"] in rows and ["patch", "deployments.apps", "yes"] in rows
    d.denied.add(("delete", "persistentvolumeclaims"))
    r = ctl.cli("k8s", "status", "--json")
    perms = {(p["verb"], p["resource"]): p["allowed"] for p in json.loads(r.stdout)["permissions"]}
    assert perms[("delete", "persistentvolumeclaims")] is False
    assert all(v for k, v in perms.items() if k != ("delete", "persistentvolumeclaims"))
    r = ctl.cli("k8s", "status")
    assert r.returncode == 1
    line = [x for x in r.stdout.splitlines() if "persistentvolumeclaims" in x and "delete" in x]
    assert line and line[0].rstrip().endswith("no")
    d.objects.pop(("namespaces", "", NS))
    r = ctl.cli("k8s", "status")
    assert r.returncode == 1 and f"namespace:   {NS} (absent)" in r.stdout
    ssar = [json.loads(x[2]) for x in d.requests if x[1].endswith("selfsubjectaccessreviews")]
    assert ssar[0]["spec"]["resourceAttributes"]["namespace"] == NS
    assert ctl.cli("k8s").returncode == 2 and "usage: harp-ctl k8s status" in \
        ctl.cli("k8s", "--help").stdout


def test_k8s_status_disabled(ctl):
    r = ctl.cli("k8s", "status")
    assert r.returncode == 1 and "error:       Kubernetes backend is disabled in HaRP." in r.stdout


def test_exapp_show_names_the_upstream(k8s):
    k8s.nc.add_app("np", 9, routes=ROUTES)
    k8s.ctl.secrets.append("np-token-secret")
    r = call(k8s.ctl, "expose", {"name": "np", "port": 1, "expose_type": "nodeport",
                                 "node_name": "n1"})
    assert r.status == 200
    port = r.json()["port"]
    out = k8s.ctl.cli("exapp", "show", "np")
    assert out.returncode == 0, out.stderr
    assert f"host:      10.0.0.1\nport:      {port}\n" in out.stdout
    assert f"k8s:       nodeport, Service nc-app-np in namespace {NS}, node n1" in out.stdout
    j = json.loads(k8s.ctl.cli("exapp", "show", "np", "--json").stdout)
    assert j["kubernetes"]["expose_type"] == "nodeport"
    assert j["kubernetes"]["upstream"] == "10.0.0.1"
