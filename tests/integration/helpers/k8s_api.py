# SPDX-License-Identifier: AGPL-3.0-or-later
"""A Kubernetes API server double for the tests (stdlib + python3-cryptography), faithful to
the REST semantics harp relies on, and good enough for `kubectl` create/get/patch/delete:

- HTTPS with its own CA (generated in the test's directory: `ca_file`), bearer-token auth
  against `token_file`, re-read at every request (rotate it between calls); 401 Status else;
- typed objects (namespaces, nodes, deployments, pods, services, persistentvolumeclaims) with
  `resourceVersion`, `uid`, `creationTimestamp`; 201 on create, 409 AlreadyExists, 404
  NotFound, all errors as `Status` bodies; list with `labelSelector` (equality and set-based);
  PATCH as strategic-merge or merge patch (maps merged, `null` deletes); DELETE answers 200;
- a Deployment controller stand-in: `spec.replicas` pods labelled from the template whose
  status follows `pod_script[<deployment>]`, a list of (stage, seconds) pairs (the last stage
  lasts forever): Pending, ContainerCreating, PodInitializing, RunningNotReady, Ready,
  Succeeded, Failed, Unknown, ErrImagePull, ImagePullBackOff, InvalidImageName,
  CrashLoopBackOff;
- Services get a ClusterIP, NodePort/LoadBalancer a nodePort (30000+); a LoadBalancer's
  ingress appears `lb_delay` seconds after creation (None: never);
- SelfSubjectAccessReview: allowed unless (verb, resource) is in `denied`;
- `mode`: "ok", "stall" (requests hang until the mode changes) or "500"; `fail` maps
  (verb, resource) to a status that call answers with (a Status body).

`calls` records (verb, resource) of every authenticated API request (get/list/create/patch/
delete/update), the verbs a Role must grant; `requests` records (method, path, body, headers).
"""
import copy
import datetime
import json
import os
import re
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

DEFAULT_SCRIPT = [("ContainerCreating", 0.3), ("RunningNotReady", 0.3), ("Ready", None)]

# resource -> (group, version, kind, namespaced, short names)
RESOURCES = {
    "namespaces": ("", "v1", "Namespace", False, ["ns"]),
    "nodes": ("", "v1", "Node", False, ["no"]),
    "pods": ("", "v1", "Pod", True, ["po"]),
    "services": ("", "v1", "Service", True, ["svc"]),
    "persistentvolumeclaims": ("", "v1", "PersistentVolumeClaim", True, ["pvc"]),
    "deployments": ("apps", "v1", "Deployment", True, ["deploy"]),
    "selfsubjectaccessreviews": ("authorization.k8s.io", "v1", "SelfSubjectAccessReview",
                                 False, []),
}
VERBS = ["create", "delete", "get", "list", "patch", "update"]


def make_ca(directory):
    """Writes ca.crt, server.crt, server.key (for 127.0.0.1 and localhost) into <directory>."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    now = datetime.datetime.utcnow() - datetime.timedelta(days=1)
    later = now + datetime.timedelta(days=30)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "k8s-double-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(later)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(later)
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    paths = {n: os.path.join(directory, n) for n in ("ca.crt", "server.crt", "server.key")}
    with open(paths["ca.crt"], "wb") as f:
        f.write(ca.public_bytes(pem))
    with open(paths["server.crt"], "wb") as f:
        f.write(cert.public_bytes(pem))
    with open(paths["server.key"], "wb") as f:
        f.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return paths


def _split_terms(sel):
    terms, depth, cur = [], 0, ""
    for ch in sel:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        terms.append(cur.strip())
    return terms


def selector_matches(sel, labels):
    """Kubernetes label selector semantics: k=v, k==v, k!=v, k in (..), k notin (..), k, !k."""
    labels = labels or {}
    for t in _split_terms(sel or ""):
        m = re.fullmatch(r"(\S+)\s+(in|notin)\s+\((.*)\)", t)
        if m:
            vals = {v.strip() for v in m.group(3).split(",")}
            has = m.group(1) in labels and labels[m.group(1)] in vals
            if (m.group(2) == "in") != has:
                return False
            continue
        m = re.fullmatch(r"([^=!\s]+)\s*(==|=|!=)\s*(\S*)", t)
        if m:
            k, op, v = m.groups()
            if op == "!=":
                if labels.get(k) == v:
                    return False
            elif labels.get(k) != v:
                return False
            continue
        if t.startswith("!"):
            if t[1:].strip() in labels:
                return False
        elif t not in labels:
            return False
    return True


def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _now():
    return datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")


class K8sDouble:
    def __init__(self, directory, token="k8s-token-1"):
        os.makedirs(directory, exist_ok=True)
        self.dir = directory
        paths = make_ca(directory)
        self.ca_file = paths["ca.crt"]
        self.token_file = os.path.join(directory, "token")
        self.set_token(token)
        self.lock = threading.Lock()
        self.objects = {}   # (resource, namespace or "", name) -> object
        self.rv = 100
        self.node_ports = 30000
        self.cluster_ips = 10
        self.pod_script = {}    # deployment name -> [(stage, seconds), ...]
        self.pod_birth = {}     # pod name -> monotonic creation time
        self.lb_delay = 0.5
        self.lb_ingress = {"ip": "203.0.113.10"}
        self.denied = set()     # (verb, resource) SSAR answers "not allowed"
        self.mode = "ok"
        self.fail = {}          # (verb, resource) -> status
        self.calls = []
        self.requests = []
        self.inflight = 0
        self.add("namespaces", "", {"metadata": {"name": "default"}})
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                double._handle(self)

            do_POST = do_PATCH = do_DELETE = do_PUT = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.request_queue_size = 256
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(paths["server.crt"], paths["server.key"])
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.mode = "ok"
        self.server.shutdown()
        self.server.server_close()

    def set_token(self, token):
        tmp = self.token_file + ".new"
        with open(tmp, "w") as f:
            f.write(token + "\n")
        os.replace(tmp, self.token_file)

    # --- objects ---------------------------------------------------------------------------

    def add(self, resource, ns, obj):
        """Creates <obj> directly (setup); returns the stored copy."""
        with self.lock:
            return self._create(resource, ns, copy.deepcopy(obj))

    def get(self, resource, ns, name):
        with self.lock:
            o = self.objects.get((resource, ns if RESOURCES[resource][3] else "", name))
            return self._view(resource, o) if o else None

    def list(self, resource, ns=None):
        with self.lock:
            return [self._view(resource, o) for (r, n, _), o in sorted(self.objects.items())
                    if r == resource and (ns is None or n == ns)]

    def add_node(self, name, addresses, ready=True, labels=None):
        return self.add("nodes", "", {
            "metadata": {"name": name, "labels": labels or {}},
            "status": {"addresses": [{"type": t, "address": a} for t, a in addresses],
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}})

    def verbs(self):
        """The set of (verb, resource) harp used."""
        with self.lock:
            return set(self.calls)

    def _next_rv(self):
        self.rv += 1
        return str(self.rv)

    def _create(self, resource, ns, obj):
        group, version, kind, namespaced, _ = RESOURCES[resource]
        ns = ns if namespaced else ""
        md = obj.setdefault("metadata", {})
        if not md.get("name") and md.get("generateName"):
            md["name"] = md["generateName"] + uuid.uuid4().hex[:5]
        key = (resource, ns, md.get("name"))
        if key in self.objects:
            return None
        obj["apiVersion"] = f"{group}/{version}" if group else version
        obj["kind"] = kind
        if namespaced:
            md["namespace"] = ns
        md["uid"] = str(uuid.uuid4())
        md["creationTimestamp"] = _now()
        md["resourceVersion"] = self._next_rv()
        if resource == "services":
            self._allocate(obj)
            obj["_born"] = time.monotonic()
        if resource == "persistentvolumeclaims":
            obj["status"] = {"phase": "Bound"}
        if resource == "deployments":
            obj.setdefault("spec", {}).setdefault("replicas", 1)
        self.objects[key] = obj
        if resource == "deployments":
            self._reconcile(ns, md["name"])
        return obj

    def _allocate(self, svc):
        spec = svc.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        if spec.get("clusterIP") != "None":
            self.cluster_ips += 1
            spec["clusterIP"] = f"10.96.0.{self.cluster_ips}"
        for p in spec.get("ports", []):
            p.setdefault("protocol", "TCP")
            p.setdefault("targetPort", p.get("port"))
            if spec["type"] in ("NodePort", "LoadBalancer") and not p.get("nodePort"):
                self.node_ports += 1
                p["nodePort"] = self.node_ports
        svc["status"] = {"loadBalancer": {}}

    def _view(self, resource, o):
        o = copy.deepcopy(o)
        born = o.pop("_born", None)
        if resource == "services" and o["spec"].get("type") == "LoadBalancer" and \
                self.lb_delay is not None and time.monotonic() - born >= self.lb_delay:
            o["status"] = {"loadBalancer": {"ingress": [dict(self.lb_ingress)]}}
        if resource == "pods":
            o["status"] = self._pod_status(o)
        return o

    def _reconcile(self, ns, name):
        """The Deployment controller: as many pods as spec.replicas."""
        d = self.objects.get(("deployments", ns, name))
        want = int((d or {}).get("spec", {}).get("replicas") or 0)
        pods = sorted(k for k, p in self.objects.items()
                      if k[0] == "pods" and k[1] == ns and p.get("_owner") == name)
        for k in pods[want:]:
            del self.objects[k]
        for i in range(len(pods), want):
            tmpl = d["spec"].get("template", {})
            pname = f"{name}-{uuid.uuid4().hex[:10]}-{i}"
            pod = {"apiVersion": "v1", "kind": "Pod", "_owner": name,
                   "metadata": {"name": pname, "namespace": ns,
                                "labels": dict(tmpl.get("metadata", {}).get("labels", {})),
                                "uid": str(uuid.uuid4()), "creationTimestamp": _now(),
                                "resourceVersion": self._next_rv()},
                   "spec": copy.deepcopy(tmpl.get("spec", {}))}
            self.pod_birth[pname] = (time.monotonic(), list(self.pod_script.get(name,
                                                                                DEFAULT_SCRIPT)))
            self.objects[("pods", ns, pname)] = pod

    def _pod_status(self, pod):
        born, script = self.pod_birth.get(pod["metadata"]["name"], (time.monotonic(), []))
        age, stage = time.monotonic() - born, "Pending"
        for stage, secs in script:
            if secs is None or age < secs:
                break
            age -= secs
        waiting = {"ErrImagePull": "image pull failed", "ImagePullBackOff": "Back-off pulling",
                   "InvalidImageName": "invalid image", "CrashLoopBackOff": "back-off restarting",
                   "ContainerCreating": None, "PodInitializing": None}
        cs = {"name": "app", "ready": stage == "Ready", "restartCount": 0}
        st = {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}]}
        if stage in waiting:
            cs["state"] = {"waiting": {"reason": stage}}
            if waiting[stage]:
                cs["state"]["waiting"]["message"] = waiting[stage]
            if stage == "CrashLoopBackOff":
                st["phase"] = "Running"
            st["containerStatuses"] = [cs]
        elif stage in ("RunningNotReady", "Ready"):
            st["phase"] = "Running"
            cs["state"] = {"running": {"startedAt": _now()}}
            st["containerStatuses"] = [cs]
            if stage == "Ready":
                st["conditions"] = [{"type": "Ready", "status": "True"}]
        elif stage in ("Succeeded", "Failed", "Unknown"):
            st["phase"] = stage
            if stage == "Failed":
                st["reason"], st["message"] = "Evicted", "The node was low on resource"
            cs["state"] = {"terminated": {"exitCode": 0 if stage == "Succeeded" else 1}}
            st["containerStatuses"] = [cs]
        return st

    # --- HTTP ------------------------------------------------------------------------------

    def _send(self, h, code, obj):
        data = json.dumps(obj).encode()
        h.send_response(code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _status(self, h, code, reason, message, name=None, kind=None):
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "code": code}
        if name is not None:
            body["details"] = {"name": name, "kind": kind}
        self._send(h, code, body)

    def _handle(self, h):
        n = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(n) if n else b""
        u = urlsplit(h.path)
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        with self.lock:
            self.requests.append((h.command, u.path, raw, dict(h.headers)))
        while self.mode == "stall":
            time.sleep(0.05)
        if self.mode == "500":
            return self._status(h, 500, "InternalError", "Internal error occurred: test mode")
        with open(self.token_file) as f:
            token = f.read().strip()
        if h.headers.get("Authorization") != f"Bearer {token}":
            return self._status(h, 401, "Unauthorized", "Unauthorized")
        path = u.path.rstrip("/")
        if path in ("/api", "/apis", "/version") or re.fullmatch(r"/apis?(/[^/]+)?/v1", path):
            return self._discovery(h, path)
        m = re.fullmatch(r"/(?:api/v1|apis/([^/]+)/v1)(?:/namespaces/([^/]+)(?=/))?"
                         r"/([a-z]+)(?:/([^/]+))?", path)
        if not m or m.group(3) not in RESOURCES or RESOURCES[m.group(3)][0] != (m.group(1) or ""):
            return self._status(h, 404, "NotFound", "the server could not find the requested "
                                "resource")
        _, ns, resource, name = m.groups()
        group, _, kind, namespaced, _ = RESOURCES[resource]
        if namespaced and ns is None and h.command != "GET":
            return self._status(h, 404, "NotFound", "namespace required")
        ns = ns or ""
        verb = {"GET": "get" if name else "list", "POST": "create", "PATCH": "patch",
                "DELETE": "delete", "PUT": "update"}.get(h.command)
        with self.lock:
            self.calls.append((verb, resource))
        if (verb, resource) in self.fail:
            return self._status(h, self.fail[(verb, resource)], "InternalError", "scripted")
        if raw and "protobuf" in (h.headers.get("Content-Type") or ""):
            return self._status(h, 415, "UnsupportedMediaType", "only JSON bodies are served")
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return self._status(h, 400, "BadRequest", "invalid JSON")
        qual = f"{resource}.{group}" if group else resource
        with self.lock:
            if resource == "selfsubjectaccessreviews" and verb == "create":
                ra = (body or {}).get("spec", {}).get("resourceAttributes", {})
                allowed = (ra.get("verb"), ra.get("resource")) not in self.denied
                body["status"] = {"allowed": allowed}
                body.update(apiVersion="authorization.k8s.io/v1", kind="SelfSubjectAccessReview")
                return self._send(h, 201, body)
            if namespaced and ns and ("namespaces", "", ns) not in self.objects and verb != "list":
                return self._status(h, 404, "NotFound", f'namespaces "{ns}" not found', ns,
                                    "namespaces")
            key = (resource, ns if namespaced else "", name)
            if verb == "list":
                items = [self._view(resource, o) for (r, n, _), o in sorted(self.objects.items())
                         if r == resource and (not ns or n == ns)
                         and selector_matches(q.get("labelSelector"),
                                              o.get("metadata", {}).get("labels"))]
                for i in items:
                    i.pop("_owner", None)
                return self._send(h, 200, {"kind": kind + "List", "apiVersion":
                                           f"{group}/v1" if group else "v1",
                                           "metadata": {"resourceVersion": str(self.rv)},
                                           "items": items})
            if verb == "create":
                if not isinstance(body, dict) or not body.get("metadata", {}).get("name") and \
                        not body.get("metadata", {}).get("generateName"):
                    return self._status(h, 422, "Invalid", "metadata.name: Required value")
                o = self._create(resource, ns, body)
                if o is None:
                    nm = body["metadata"]["name"]
                    return self._status(h, 409, "AlreadyExists",
                                        f'{qual} "{nm}" already exists', nm, resource)
                return self._send(h, 201, self._view(resource, o))
            o = self.objects.get(key)
            if o is None:
                return self._status(h, 404, "NotFound", f'{qual} "{name}" not found', name,
                                    resource)
            if verb == "get":
                v = self._view(resource, o)
                v.pop("_owner", None)
                return self._send(h, 200, v)
            if verb in ("patch", "update"):
                ct = (h.headers.get("Content-Type") or "").split(";")[0]
                if verb == "patch" and ct not in ("application/strategic-merge-patch+json",
                                                  "application/merge-patch+json"):
                    return self._status(h, 415, "UnsupportedMediaType",
                                        f"the body of the request was in an unknown format: {ct}")
                if not isinstance(body, dict):
                    return self._status(h, 400, "BadRequest", "invalid patch")
                keep = {k: v for k, v in o.items() if k.startswith("_")}
                new = merge_patch(o, body) if verb == "patch" else dict(body)
                new.update(keep)
                new["metadata"] = dict(new.get("metadata", {}), name=name,
                                       uid=o["metadata"]["uid"],
                                       creationTimestamp=o["metadata"]["creationTimestamp"],
                                       resourceVersion=self._next_rv())
                if namespaced:
                    new["metadata"]["namespace"] = ns
                self.objects[key] = new
                if resource == "deployments":
                    self._reconcile(ns, name)
                v = self._view(resource, new)
                v.pop("_owner", None)
                return self._send(h, 200, v)
            if verb == "delete":
                del self.objects[key]
                if resource == "deployments":
                    for k in [k for k, p in self.objects.items()
                              if k[0] == "pods" and k[1] == ns and p.get("_owner") == name]:
                        del self.objects[k]
                if resource == "namespaces":
                    for k in [k for k in self.objects if k[1] == name]:
                        del self.objects[k]
                o = self._view(resource, o)
                o.pop("_owner", None)
                return self._send(h, 200, o)
        return self._status(h, 405, "MethodNotAllowed", "method not allowed")

    def _discovery(self, h, path):
        if path == "/version":
            return self._send(h, 200, {"major": "1", "minor": "32", "gitVersion": "v1.32.0-double",
                                       "platform": "linux/amd64"})
        if path == "/api":
            return self._send(h, 200, {"kind": "APIVersions", "versions": ["v1"],
                                       "serverAddressByClientCIDRs": [
                                           {"clientCIDR": "0.0.0.0/0",
                                            "serverAddress": f"127.0.0.1:{self.port}"}]})
        groups = sorted({g for g, *_ in RESOURCES.values() if g})
        if path == "/apis":
            return self._send(h, 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": [{"groupVersion": f"{g}/v1", "version": "v1"}],
                 "preferredVersion": {"groupVersion": f"{g}/v1", "version": "v1"}}
                for g in groups]})
        group = "" if path == "/api/v1" else path.split("/")[2]
        if group and group not in groups:
            return self._status(h, 404, "NotFound", "the server could not find the requested "
                                "resource")
        res = [{"name": r, "singularName": k.lower(), "namespaced": nsd, "kind": k,
                "verbs": ["create"] if r == "selfsubjectaccessreviews" else VERBS + ["watch"],
                "shortNames": sn}
               for r, (g, _, k, nsd, sn) in RESOURCES.items() if g == group]
        return self._send(h, 200, {"kind": "APIResourceList", "apiVersion": "v1",
                                   "groupVersion": f"{group}/v1" if group else "v1",
                                   "resources": res})
