#!/usr/bin/env python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""Times a registration burst against one harp-ctl: 500 POST /exapp_storage by 4 concurrent
writers, as in the durability test (tests/integration/test_persistence.py). Prints seconds.
usage: audit_burst.py HARP_CTL_BINARY"""
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

N, WRITERS, KEY = 500, 4, "bench-shared-key-0123"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def body(i):
    return json.dumps({"exapp_token": f"tok-{i}", "exapp_version": "1.0.0", "host": "127.0.0.1",
                       "port": 23000 + i % 1000,
                       "routes": [{"url": f"^/r{i}/.*", "access_level": 1,
                                   "bruteforce_protection": [401]}]})


def main():
    binary = sys.argv[1]
    work = tempfile.mkdtemp(prefix="harp-bench-audit-")
    port = free_port()
    env = dict(os.environ, HP_SHARED_KEY=KEY, NC_INSTANCE_URL="http://127.0.0.1:9",
               HP_STATE_DIR=f"{work}/state", HP_CONTROL_ADDRESS=f"127.0.0.1:{port}",
               HP_CERTS_DIR=f"{work}/certs", HP_CTL_SOCKET=f"{work}/ctl.sock",
               HP_DOCKER_SOCKET=f"{work}/no-docker.sock", HP_LOG_LEVEL="error")
    p = subprocess.Popen([binary, "serve", "--allow-empty"], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/heartbeat")
            if c.getresponse().status == 200:
                break
        except OSError:
            time.sleep(0.05)
    nexti = iter(range(N))
    lock = threading.Lock()

    def writer():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                i = next(nexti, None)
            if i is None:
                return
            c.request("POST", f"/exapp_storage/app{i}", body(i),
                      {"harp-shared-key": KEY, "Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            assert r.status == 204, r.status

    t0 = time.monotonic()
    ts = [threading.Thread(target=writer) for _ in range(WRITERS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print(f"{time.monotonic() - t0:.3f}")
    p.terminate()
    p.wait()
    subprocess.run(["rm", "-rf", work])


main()
