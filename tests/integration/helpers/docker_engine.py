# SPDX-License-Identifier: AGPL-3.0-or-later
"""A real Docker engine for the tests: the running one when /var/run/docker.sock answers,
else a dockerd started here with its own socket, data and exec roots (stopped at the end).
Test images are built locally: a busybox root imported through the Engine API."""
import http.client
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.parse

SYSTEM_SOCKET = "/var/run/docker.sock"
IMAGE = "harp-test-exapp:1"
# The ExApp: busybox httpd on $APP_PORT serving /www (a heartbeat answering {"status": "ok"}).
CMD = '["/bin/sh","-c","exec /bin/httpd -f -p ${APP_PORT:-23000} -h /www"]'


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


class DockerAPI:
    """Direct calls to the engine, to set up and to check what harp did."""

    def __init__(self, sock):
        self.sock = sock

    def request(self, method, path, body=None, headers=None, timeout=60):
        c = _UnixConnection(self.sock, timeout)
        h = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    def json(self, method, path, body=None):
        st, data = self.request(method, path, body)
        return st, (json.loads(data) if data.strip().startswith((b"{", b"[")) else data)

    def ping(self):
        try:
            return self.request("GET", "/_ping", timeout=3)[0] == 200
        except OSError:
            return False

    def version(self):
        return self.json("GET", "/version")[1]

    def import_image(self, ref, files=None):
        """Imports a busybox root (plus <files>: {path: bytes}) as <ref>; returns its id."""
        repo, tag = ref.rsplit(":", 1)
        q = urllib.parse.urlencode([("fromSrc", "-"), ("repo", repo), ("tag", tag),
                                    ("changes", f"CMD {CMD}")])
        st, data = self.request("POST", f"/images/create?{q}", busybox_root(files),
                                {"Content-Type": "application/x-tar"}, timeout=120)
        assert st == 200, data
        return self.json("GET", f"/images/{ref}/json")[1]["Id"]

    def remove_container(self, name):
        self.request("DELETE", f"/containers/{name}?force=true&v=true")

    def remove_volume(self, name):
        self.request("DELETE", f"/volumes/{name}")

    def read_file(self, container, path):
        """A file's bytes from a container (GET archive), or None."""
        st, data = self.request("GET", f"/containers/{container}/archive?path={path}")
        if st != 200:
            return None
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            m = t.getmembers()[0]
            return t.extractfile(m).read()


def busybox_root(files=None):
    busybox = shutil.which("busybox") or "/bin/busybox"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        dirs = set()

        def add_dir(name):
            if name in dirs:
                return
            dirs.add(name)
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            t.addfile(ti)

        def add_file(name, data, mode=0o644):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = len(data), mode
            t.addfile(ti, io.BytesIO(data))

        for d in ("bin", "etc", "tmp", "www", "usr", "usr/local", "usr/local/share"):
            add_dir(d)
        with open(busybox, "rb") as f:
            add_file("bin/busybox", f.read(), 0o755)
        # A dynamically linked busybox brings its libraries along.
        for lib in shared_libraries(busybox):
            parts = lib.strip("/").split("/")
            for i in range(1, len(parts)):
                add_dir("/".join(parts[:i]))
            with open(lib, "rb") as f:
                add_file(lib.strip("/"), f.read(), 0o755)
        for applet in ("sh", "httpd", "cat", "mkdir", "ls", "sleep", "echo"):
            ti = tarfile.TarInfo(f"bin/{applet}")
            ti.type, ti.linkname = tarfile.SYMTYPE, "busybox"
            t.addfile(ti)
        add_file("etc/os-release", b'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.20.0\n')
        add_file("www/heartbeat", b'{"status": "ok"}\n')
        for name, data in (files or {}).items():
            add_file(name, data)
    return buf.getvalue()


def shared_libraries(binary):
    """The libraries ldd lists for <binary> (none for a static one)."""
    r = subprocess.run(["ldd", binary], capture_output=True, text=True)
    if r.returncode != 0:
        return []
    return [w for line in r.stdout.splitlines() for w in line.split()
            if w.startswith("/") and os.path.exists(w)]


class Engine:
    """The engine the tests use; stop() only stops a dockerd started here."""

    def __init__(self):
        self.proc = None
        self.dir = None
        if DockerAPI(SYSTEM_SOCKET).ping():
            self.sock = SYSTEM_SOCKET
        else:
            self._start()
        self.api = DockerAPI(self.sock)

    def _start(self):
        dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
        if not os.access(dockerd, os.X_OK):
            raise RuntimeError("dockerd is not installed (Debian package docker.io)")
        self.dir = tempfile.mkdtemp(prefix="harp-dockerd-", dir="/var/tmp")
        self.sock = os.path.join(self.dir, "docker.sock")
        self.log = open(os.path.join(self.dir, "dockerd.log"), "wb")
        self.proc = subprocess.Popen(
            [dockerd, "--host", f"unix://{self.sock}", "--data-root", f"{self.dir}/root",
             "--exec-root", f"{self.dir}/exec", "--pidfile", f"{self.dir}/docker.pid",
             "--iptables=false", "--ip6tables=false"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("dockerd exited: " + open(self.log.name).read()[-2000:])
            if DockerAPI(self.sock).ping():
                return
            time.sleep(0.2)
        raise RuntimeError("dockerd did not answer within 60 s")

    def stop(self):
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        if os.environ.get("HARP_KEEP_DOCKERD_LOG") == "1":  # tests/fresh.sh, to look into one
            shutil.copy(self.log.name, self.dir + ".log")
        # dockerd leaves its network namespaces bind-mounted under exec/netns
        netns = os.path.join(self.dir, "exec", "netns")
        for name in os.listdir(netns) if os.path.isdir(netns) else ():
            subprocess.run(["umount", "-l", os.path.join(netns, name)], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
