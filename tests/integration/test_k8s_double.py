# SPDX-License-Identifier: AGPL-3.0-or-later
"""The Kubernetes API double (helpers/k8s_api.py) answers kubectl as a cluster does, so the
tests of harp's Kubernetes backend run against Kubernetes' semantics, not harp's guesses."""
import json
import os
import shutil
import subprocess

import pytest

from helpers.k8s_api import K8sDouble, selector_matches

KUBECTL = shutil.which("kubectl")


@pytest.fixture
def double(tmp_path):
    d = K8sDouble(str(tmp_path / "k8s"))
    d.add("namespaces", "", {"metadata": {"name": "nextcloud-exapps"}})
    yield d
    d.stop()


def kubeconfig(tmp_path, d, token_file=None):
    path = tmp_path / "kubeconfig"
    path.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: d, cluster: {{server: "{d.url}", certificate-authority: "{d.ca_file}"}}}}]
users: [{{name: u, user: {{tokenFile: "{token_file or d.token_file}"}}}}]
contexts: [{{name: c, context: {{cluster: d, user: u, namespace: nextcloud-exapps}}}}]
current-context: c
""")
    return str(path)


def kubectl(tmp_path, d, *args, stdin=None, token_file=None):
    return subprocess.run([KUBECTL, "--kubeconfig", kubeconfig(tmp_path, d, token_file),
                           "--cache-dir", str(tmp_path / "cache"), *args], input=stdin,
                          capture_output=True, text=True, timeout=120)


DEPLOY = {"apiVersion": "apps/v1", "kind": "Deployment",
          "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}},
          "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                   "template": {"metadata": {"labels": {"app": "web"}},
                                "spec": {"containers": [{"name": "app", "image": "x:1"}]}}}}


def test_selectors():
    labels = {"app": "web", "tier": "front"}
    assert selector_matches("app=web", labels) and selector_matches("app==web,tier", labels)
    assert not selector_matches("app!=web", labels) and selector_matches("app!=db", labels)
    assert selector_matches("app in (db, web)", labels)
    assert not selector_matches("app notin (db,web)", labels)
    assert selector_matches("!missing", labels) and not selector_matches("!tier", labels)
    assert not selector_matches("app=web,tier=back", labels)


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_kubectl_create_get_patch_delete(tmp_path, double):
    r = kubectl(tmp_path, double, "version", "-o", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["serverVersion"]["gitVersion"] == "v1.32.0-double"
    r = kubectl(tmp_path, double, "create", "--validate=false", "-f", "-",
                stdin=json.dumps(DEPLOY))
    assert r.returncode == 0 and "deployment.apps/web created" in r.stdout, r.stderr
    r = kubectl(tmp_path, double, "create", "--validate=false", "-f", "-",
                stdin=json.dumps(DEPLOY))
    assert r.returncode != 0 and "(AlreadyExists)" in r.stderr
    r = kubectl(tmp_path, double, "get", "deployment", "web", "-o", "json")
    obj = json.loads(r.stdout)
    assert obj["spec"]["replicas"] == 0 and obj["metadata"]["namespace"] == "nextcloud-exapps"
    rv = int(obj["metadata"]["resourceVersion"])
    r = kubectl(tmp_path, double, "patch", "deployment", "web", "-p", '{"spec":{"replicas":2}}')
    assert r.returncode == 0 and "patched" in r.stdout, r.stderr
    r = kubectl(tmp_path, double, "patch", "deployment", "web", "--type=merge", "-p",
                '{"metadata":{"annotations":{"a":"b"}}}')
    assert r.returncode == 0, r.stderr
    obj = json.loads(kubectl(tmp_path, double, "get", "deploy", "web", "-o", "json").stdout)
    assert obj["spec"]["replicas"] == 2 and obj["metadata"]["annotations"] == {"a": "b"}
    assert obj["metadata"]["labels"] == {"app": "web", "tier": "front"}
    assert int(obj["metadata"]["resourceVersion"]) > rv
    # The controller stand-in made two pods; set-based and equality selectors pick them.
    r = kubectl(tmp_path, double, "get", "pods", "-l", "app in (web,db)", "-o", "name")
    assert len(r.stdout.split()) == 2 and r.stdout.startswith("pod/web-"), r.stderr
    r = kubectl(tmp_path, double, "get", "pods", "-l", "app!=web", "-o", "name")
    assert r.stdout.strip() == ""
    r = kubectl(tmp_path, double, "delete", "deployment", "web")
    assert r.returncode == 0 and 'deployment.apps "web" deleted' in r.stdout, r.stderr
    r = kubectl(tmp_path, double, "get", "deployment", "web")
    assert r.returncode != 0 and 'deployments.apps "web" not found' in r.stderr
    assert double.list("pods") == []


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_kubectl_services_and_auth(tmp_path, double):
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
           "spec": {"type": "NodePort", "selector": {"app": "web"},
                    "ports": [{"name": "http", "port": 80, "targetPort": 23000}]}}
    r = kubectl(tmp_path, double, "create", "--validate=false", "-f", "-", stdin=json.dumps(svc))
    assert r.returncode == 0, r.stderr
    obj = json.loads(kubectl(tmp_path, double, "get", "svc", "s", "-o", "json").stdout)
    assert 30000 <= obj["spec"]["ports"][0]["nodePort"] <= 32767
    assert obj["spec"]["clusterIP"].startswith("10.96.")
    # A wrong token is refused with a 401 Status; a rotated token file is read again.
    bad = tmp_path / "bad-token"
    bad.write_text("nope\n")
    r = kubectl(tmp_path, double, "get", "svc", token_file=str(bad))
    assert r.returncode != 0 and "Unauthorized" in r.stderr
    double.set_token("rotated-token")
    r = kubectl(tmp_path, double, "get", "svc", "s", "-o", "name")
    assert r.returncode == 0 and r.stdout.strip() == "service/s", r.stderr
    bad.write_text("rotated-token\n")
    assert kubectl(tmp_path, double, "get", "svc", token_file=str(bad)).returncode == 0
    assert ("create", "services") in double.verbs() and ("get", "services") in double.verbs()


def test_status_bodies_modes_and_lb(tmp_path, double):
    import ssl
    import urllib.request
    import urllib.error
    ctx = ssl.create_default_context(cafile=double.ca_file)

    def call(method, path, body=None, token="k8s-token-1"):
        req = urllib.request.Request(double.url + path, method=method,
                                     data=json.dumps(body).encode() if body else None,
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=60) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    st, body = call("GET", "/apis/apps/v1/namespaces/nextcloud-exapps/deployments/x")
    assert st == 404 and body["kind"] == "Status" and body["reason"] == "NotFound"
    assert call("GET", "/api/v1/nodes", token="bad")[0] == 401
    double.lb_delay = 0.5
    svc = {"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer",
                                                "ports": [{"port": 80}]}}
    assert call("POST", "/api/v1/namespaces/nextcloud-exapps/services", svc)[0] == 201
    st, body = call("GET", "/api/v1/namespaces/nextcloud-exapps/services/lb")
    assert body["status"]["loadBalancer"] == {}
    import time
    time.sleep(0.6)
    st, body = call("GET", "/api/v1/namespaces/nextcloud-exapps/services/lb")
    assert body["status"]["loadBalancer"]["ingress"] == [{"ip": "203.0.113.10"}]
    double.mode = "500"
    st, body = call("GET", "/api/v1/nodes")
    assert st == 500 and body["reason"] == "InternalError"
    double.mode = "ok"
    ssar = {"spec": {"resourceAttributes": {"namespace": "nextcloud-exapps", "verb": "delete",
                                            "group": "apps", "resource": "deployments"}}}
    double.denied.add(("delete", "deployments"))
    st, body = call("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", ssar)
    assert st == 201 and body["status"]["allowed"] is False
