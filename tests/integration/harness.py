# SPDX-License-Identifier: AGPL-3.0-or-later
"""Starts the real harp binaries on loopback with a temporary state directory and talks to
them over HTTP. Ports come from the kernel; readiness is polled, never slept for."""
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import threading
import time

from proto_frames import PROTO_VERSION, frame, message, split

BUILDDIR = os.environ.get("HARP_BUILDDIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SRCDIR = os.environ.get("HARP_SRCDIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
HARP_CTL = os.path.join(BUILDDIR, "harp-ctl", "harp-ctl")
# the number of the newest migration (numbers may have gaps while branches are merged)
SCHEMA_VERSION = max(int(f.split("_")[0]) for f in os.listdir(os.path.join(SRCDIR, "schema"))
                     if f.endswith(".sql"))
MULT = float(os.environ.get("HP_TEST_TIMEOUT_MULTIPLIER", "1"))
CAPTURES = os.path.join(SRCDIR, "tests", "fixtures", "appapi-captures", "appapi-33.0.0")


def tunnel_port(lo=23000, hi=23999):
    """A free port in the range the FRP frontend gives ExApps' tunnels."""
    while True:
        p = random.randint(lo, hi)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
                return p
            except OSError:
                continue


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout * MULT
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def base_env(**extra):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS"):
        if k in os.environ:
            env[k] = os.environ[k]
    # Under AddressSanitizer freed memory stays resident in its quarantine; keep it small so
    # that RSS bounds measure the program, not the sanitizer. Ignored by normal builds.
    env.setdefault("ASAN_OPTIONS", "quarantine_size_mb=1:thread_local_quarantine_size_kb=64")
    env.update({k: str(v) for k, v in extra.items() if v is not None})
    return env


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} {self.body[:200]!r}>"


def http_request(addr, method, path, body=None, headers=None, timeout=10.0):
    host, port = addr
    conn = http.client.HTTPConnection(host, port, timeout=timeout * MULT)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


# The first line of an AddressSanitizer, LeakSanitizer or ThreadSanitizer report.
SANITIZER_REPORTS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "WARNING: ThreadSanitizer")


class Process:
    """A harp program started with a log file of its own; SIGTERM at stop must exit 0."""

    name = "process"

    def command(self):
        raise NotImplementedError

    def env(self):
        raise NotImplementedError

    def ready(self):
        raise NotImplementedError

    def start(self, wait=True):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), env=contained(self.env()), stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        if wait:
            wait_for(self.ready, what=f"{self.name} ready")
        return self

    def check_alive(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")

    def check_sanitizers(self):
        """A sanitizer's report in the program's stderr (its log) fails the test, whatever
        the exit status: a process killed with SIGKILL never reports one through it."""
        log = self.log()
        for mark in SANITIZER_REPORTS:
            assert mark not in log, f"{self.name}: {mark} report:\n{log}"

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None:
                self.check_sanitizers()
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=30 * MULT)
        self.check_sanitizers()
        assert rc == 0, f"{self.name} exited with {rc} after SIGTERM:\n{self.log()}"
        return rc

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30 * MULT)
        self.check_sanitizers()

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""


class Ctl(Process):
    """One `harp-ctl serve` process. Its log is kept in <workdir>/harp-ctl.log."""

    name = "harp-ctl"

    def __init__(self, workdir, key="test-shared-key-0123", env=None, port=None):
        self.workdir = str(workdir)
        self.state_dir = os.path.join(self.workdir, "state")
        self.key = key
        self.port = port or free_port()
        self.extra_env = env or {}
        self.proc = None
        self.log_path = os.path.join(self.workdir, "harp-ctl.log")
        self.secrets = [key]

    @property
    def addr(self):
        return ("127.0.0.1", self.port)

    def env(self):
        e = base_env(HP_SHARED_KEY=self.key, NC_INSTANCE_URL="http://127.0.0.1:9",
                     HP_STATE_DIR=self.state_dir, HP_CONTROL_ADDRESS=f"127.0.0.1:{self.port}",
                     HP_LOG_LEVEL="debug",
                     # No Docker engine and no certificates unless a test gives them.
                     HP_DOCKER_SOCKET=os.path.join(self.workdir, "no-docker.sock"),
                     HP_CERTS_DIR=os.path.join(self.workdir, "certs"))
        e.update({k: str(v) for k, v in self.extra_env.items()})
        return {k: v for k, v in e.items() if v != "__unset__"}

    def command(self):
        return [HARP_CTL, "serve"]

    def ready(self):
        self.check_alive()
        try:
            return http_request(self.addr, "GET", "/heartbeat", timeout=1).status == 200
        except OSError:
            return False

    def request(self, method, path, body=None, headers=None, key=True):
        h = {}
        if key is True:
            h["harp-shared-key"] = self.key
        elif isinstance(key, str):
            h["harp-shared-key"] = key
        h.update(headers or {})
        return http_request(self.addr, method, path, body, h)

    def cli(self, *args, key=True, env=None, timeout=30):
        e = base_env(HP_CONTROL_ADDRESS=f"127.0.0.1:{self.port}", HP_STATE_DIR=self.state_dir)
        if key is True:
            e["HP_SHARED_KEY"] = self.key
        elif isinstance(key, str):
            e["HP_SHARED_KEY"] = key
        e.update(env or {})
        return subprocess.run([HARP_CTL, *args], env=e, capture_output=True, text=True,
                              timeout=timeout * MULT, stdin=subprocess.DEVNULL)


def contained(env):
    """<env> with HP_CERTS_DIR set: a harp-ctl started without it would generate its FRP
    certificates into the machine's /certs. Tests never write outside their temporary
    directories."""
    if env is None or "HP_CERTS_DIR" in env:
        return env
    import tempfile
    return dict(env, HP_CERTS_DIR=tempfile.mkdtemp(prefix="harp-test-certs-"))


def run_ctl(args, env, timeout=30):
    return subprocess.run([HARP_CTL, *args], env=contained(env), capture_output=True, text=True,
                          timeout=timeout * MULT, stdin=subprocess.DEVNULL)


def parse_capture(name):
    """The requests of one AppAPI capture file: [(method, target, headers, body or None)]."""
    path = os.path.join(CAPTURES, name)
    with open(path) as f:
        text = f.read()
    out = []
    for block in text.split("\n--- seq ")[1:]:
        lines = block.split("\n")[1:]
        method, target, _ = lines[0].split(" ", 2)
        headers, i = {}, 1
        while lines[i]:
            k, v = lines[i].split(": ", 1)
            if k.lower() != "content-length":  # bodies are pretty-printed in the captures
                headers[k] = v
            i += 1
        rest = "\n".join(lines[i + 1:])
        rest = rest.split("\n=> stand-in replied")[0].strip()
        body = None if rest == "<no body>" else rest
        out.append((method, target, headers, body))
    return out


def capture_available():
    return os.path.isdir(CAPTURES)


class ProtoClient:
    """A data plane's side of proto, in Python: for testing harp-ctl's publisher. With <hello>
    it says hello (the fixture case "hello") and takes harp-ctl's welcome."""

    def __init__(self, path, dp_id="py-dp", version=0, hello=True, timeout=5.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout * MULT)
        self.sock.connect(path)
        self.buf = b""
        if hello:
            self.send(message("hello", dp_id=dp_id, pid=os.getpid(), version=version))
            self.welcome = self.recv(skip=("ping", "pong"))
            assert self.welcome == {"type": "welcome", "proto": PROTO_VERSION}, self.welcome

    def send(self, msg):
        self.sock.sendall(frame(msg))

    def recv(self, skip=("ping", "pong", "bans", "engines")):
        while True:
            msg, self.buf = split(self.buf)
            while msg is None:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise EOFError("control plane closed the link")
                msg, self.buf = split(self.buf + chunk)
            if msg["type"] not in skip:
                return msg

    def close(self):
        self.sock.close()


class FakeCtl:
    """A control plane's side of proto, in Python: listens on <path> (a data plane's
    HP_CTL_SOCKET) and answers each hello with welcome {proto} then the messages of
    <after_welcome>; records what data planes send."""

    def __init__(self, path, proto=PROTO_VERSION, after_welcome=()):
        import threading
        self.path, self.proto, self.after = path, proto, list(after_welcome)
        self.hellos, self.received, self.conns = [], [], []
        if os.path.exists(path):
            os.unlink(path)
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.lsock.bind(path)
        self.lsock.listen(16)
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        import threading
        while not self.stopping:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._link, args=(c,), daemon=True).start()

    def _link(self, c):
        buf = b""
        try:
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    return
                buf += chunk
                msg, buf = split(buf)
                while msg is not None:
                    self.received.append(msg)
                    if msg["type"] == "hello":
                        self.hellos.append(msg)
                        c.sendall(frame(message("welcome", proto=self.proto)) +
                                  b"".join(frame(m) for m in self.after))
                    msg, buf = split(buf)
        except OSError:
            return

    def stop(self):
        self.stopping = True
        self.lsock.close()
        for c in self.conns:
            c.close()
        if os.path.exists(self.path):
            os.unlink(self.path)


# HARP_DP_BUILDDIR: harp-dp from another tree (the ThreadSanitizer run checks harp-ctl's threads
# with the one-thread data plane of the ASan tree).
HARP_DP = os.path.join(os.environ.get("HARP_DP_BUILDDIR") or BUILDDIR, "harp-dp", "harp-dp")


class Dp(Process):
    """One `harp-dp` process beside a Ctl; several may share `port`."""

    def __init__(self, ctl, port, name, env=None, args=None):
        self.args = list(args or [])
        self.ctl = ctl
        self.port = port
        self.name = name
        self.extra_env = env or {}
        self.log_path = os.path.join(ctl.workdir, f"harp-dp-{name}.log")
        self.proc = None

    def env(self):
        e = self.ctl.env()
        e["HP_EXAPPS_ADDRESS"] = f"127.0.0.1:{self.port}"
        e.update({k: str(v) for k, v in self.extra_env.items()})
        return e

    def command(self):
        return [HARP_DP, "--id", self.name, *self.args]

    def ready(self):
        return self.connected()

    def connected(self):
        self.check_alive()
        try:
            dps = self.ctl.request("GET", "/api/v1/dataplanes").json()["dataplanes"]
        except OSError:
            return False
        return any(d["dp_id"] == self.name and d["applied_version"] == d["table_version"]
                   for d in dps)

    def applied(self, version):
        dps = self.ctl.request("GET", "/api/v1/dataplanes").json()["dataplanes"]
        return any(d["dp_id"] == self.name and d["applied_version"] >= version for d in dps)

    def rss_peak_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0



def exapp_body(i, port=23000):
    """The <i>th of a series of distinct ExApp registrations (POST /exapp_storage/APP)."""
    return {"exapp_token": f"tok-{i}-secret", "exapp_version": f"1.{i}.0", "host": "127.0.0.1",
            "port": port + (i % 1000),
            "routes": [{"url": f"^/r{i}/.*", "access_level": i % 3,
                        "bruteforce_protection": [401]}]}


def kill9_during_a_burst(ctl, at_least=200, writers=4):
    """Registrations posted by <writers> threads until <ctl> is killed with SIGKILL, once at
    least <at_least> were acknowledged: {app_id: body} of those acknowledged."""
    acked = {}
    lock = threading.Lock()
    stop = threading.Event()

    def writer(w):
        i = 0
        while not stop.is_set():
            app_id, b = f"w{w}-{i}", exapp_body(i)
            try:
                r = http_request(ctl.addr, "POST", f"/exapp_storage/{app_id}", b,
                                 {"harp-shared-key": ctl.key}, timeout=5)
            except OSError:
                return
            if r.status == 204:
                with lock:
                    acked[app_id] = b
            i += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20 * MULT
    while len(acked) < at_least and time.monotonic() < deadline:
        time.sleep(0.01)
    ctl.kill9()
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) >= at_least, "the burst was too slow to be meaningful"
    return acked
