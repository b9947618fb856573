# SPDX-License-Identifier: AGPL-3.0-or-later
"""The one bound on harp-ctl's outbound HTTP calls (HP_OUTBOUND_MAX): Docker calls beyond it
are answered 503 with the documented text instead of piling up, and harp-ctl's threads stay
bounded while they wait."""
import http.server
import json
import os
import socketserver
import threading

import pytest

from harness import http_request, wait_for

MAX = 2
CALLS = 6


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class SlowEngine:
    """A Docker engine on a Unix socket: /version answers at once, container look-ups are held
    until release() (then 404), so harp-ctl's calls to it stay in progress."""

    def __init__(self, path):
        self.path = path
        self.release_ev = threading.Event()
        self.lock = threading.Lock()
        self.held = 0
        engine = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def address_string(self):
                return "unix"

            def log_message(self, *a):
                pass

            def answer(self, status, obj):
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path.endswith("/version"):
                    self.answer(200, {"Version": "27.0.0", "ApiVersion": "1.46",
                                      "MinAPIVersion": "1.24"})
                    return
                with engine.lock:
                    engine.held += 1
                engine.release_ev.wait(120)
                with engine.lock:
                    engine.held -= 1
                self.answer(404, {"message": "No such container"})

        self.server = _Server(path, Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def release(self):
        self.release_ev.set()

    def stop(self):
        self.release()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slow_engine(tmp_path):
    e = SlowEngine(str(tmp_path / "docker.sock"))
    yield e
    e.stop()


def tasks(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def test_docker_calls_beyond_the_bound_get_503_and_threads_stay_bounded(ctl_factory, slow_engine):
    ctl = ctl_factory(env={"HP_DOCKER_SOCKET": slow_engine.path,
                           "HP_OUTBOUND_MAX": str(MAX)}).start()
    st = ctl.request("GET", "/api/v1/status").json()
    assert st["outbound"]["max"] == MAX
    baseline = tasks(ctl.proc.pid)
    results = [None] * CALLS
    peak = [0]

    def call(i):
        results[i] = http_request(
            ctl.addr, "POST", "/docker/exapp/wait_for_start", {"name": f"app{i}"},
            {"harp-shared-key": ctl.key, "docker-engine-port": "24000"}, timeout=120)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(CALLS)]
    for t in threads:
        t.start()
    # MAX calls reach the engine and stay there (wait_for_start: up to 90 s); the others wait
    # for a slot, then get 503.
    def beyond_answered():
        peak[0] = max(peak[0], tasks(ctl.proc.pid))
        return sum(1 for r in results if r is not None) >= CALLS - MAX

    wait_for(beyond_answered, timeout=90, what="calls beyond the bound answered")
    assert slow_engine.held == MAX, "more calls reached the engine than HP_OUTBOUND_MAX"
    done = [r for r in results if r is not None]
    assert len(done) == CALLS - MAX
    for r in done:
        assert r.status == 503, r
        assert r.text == (f"Too many concurrent outbound calls (HP_OUTBOUND_MAX={MAX}): Docker "
                          "Engine on port 24000 not called, try again later"), r
    # One thread per API connection and nothing per waiting call besides.
    assert peak[0] <= baseline + CALLS + 2, (baseline, peak[0])
    st = ctl.request("GET", "/api/v1/status").json()["outbound"]
    assert st["running"] == MAX and st["refused"] >= CALLS - MAX, st
    slow_engine.release()
    for t in threads:
        t.join(120)
    for r in results:
        assert r is not None and r.status in (200, 503), r
    assert sum(1 for r in results if r.status == 200) == MAX
    assert "all 2 outbound calls (HP_OUTBOUND_MAX) still busy" in ctl.log()
    wait_for(lambda: tasks(ctl.proc.pid) <= baseline + 1, timeout=30, what="threads ended")
    st = ctl.request("GET", "/api/v1/status").json()["outbound"]
    assert st["running"] == 0, st
