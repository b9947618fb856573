"""Metrics: data planes send their counters to harp-ctl every second, and GET /metrics (on the
control address, and alone on HP_METRICS_ADDRESS) shows the whole deployment in Prometheus
text format; a real Prometheus scrapes it and promtool finds nothing to lint."""
import json
import os
import select
import shutil
import socket
import subprocess
import urllib.parse
import urllib.request

import pytest

from harness import free_port, http_request, tunnel_port, wait_for
from helpers.frpc import Frpc

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def parse(text):
    """{(name, frozenset(labels)): value} of a Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, value = line.rsplit(" ", 1)
        if "{" in head:
            name, rest = head.split("{", 1)
            labels = {}
            for part in _split_labels(rest[:-1]):
                k, v = part.split("=", 1)
                labels[k] = json.loads(v)
            out[(name, frozenset(labels.items()))] = float(value)
        else:
            out[(head, frozenset())] = float(value)
    return out


def _split_labels(s):
    parts, cur, quoted, esc = [], "", False, False
    for ch in s:
        if esc:
            cur += ch
            esc = False
        elif ch == "\\":
            cur += ch
            esc = True
        elif ch == '"':
            cur += ch
            quoted = not quoted
        elif ch == "," and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        parts.append(cur)
    return parts


def total(samples, name, **labels):
    """The sum of <name>'s samples whose labels include <labels>."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def raw(port, data, source="127.0.0.1", timeout=10):
    """Sends <data> from <source> and returns the status of the answer (0: closed without)."""
    s = socket.socket()
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    s.sendall(data)
    got = b""
    try:
        while b"\r\n" not in got:
            b = s.recv(65536)
            if not b:
                break
            got += b
    except ConnectionResetError:
        pass
    s.close()
    return int(got.split()[1]) if got.startswith(b"HTTP/1.1 ") else 0


def get(port, path, source="127.0.0.1", headers=""):
    return raw(port, f"GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n"
               .encode(), source)


@pytest.fixture
def deployment(make_gateway, tmp_path):
    maddr = f"127.0.0.1:{free_port()}"
    frp_port = free_port()
    gw = make_gateway(ndp=2, dp_args=["--frp"], env={
        "HP_METRICS_ADDRESS": maddr, "HP_BLACKLIST_COUNT": "3", "HP_BAN_REPLY_429": "true",
        "HP_FRP_ADDRESS": f"127.0.0.1:{frp_port}", "HP_CERTS_DIR": str(tmp_path / "certs"),
        "HP_LOG_LEVEL": "info"})
    gw.metrics_addr = maddr
    gw.frp_port = frp_port
    d = tmp_path / "certs" / "frp"
    gw.tls = {"ca": str(d / "ca.crt"), "cert": str(d / "client.crt"), "key": str(d / "client.key")}
    return gw


def scrape(addr, headers=None):
    host, port = addr.rsplit(":", 1)
    return http_request((host, int(port)), "GET", "/metrics", None, headers or {})


def scenario(gw):
    """Requests of known outcomes through both data planes; returns what they must count."""
    port = gw.port
    gw.nc.sessions["sess-user"] = ("alice", 1)
    gw.nc.add_app("testapp", 1)  # user-info answers 401 for apps it does not know
    dead = free_port()
    gw.register("deadapp", port=dead)
    expect = {"public_2xx": 0, "user_2xx": 0, "refusals": {}}

    def refused(reason, n=1):
        expect["refusals"][reason] = expect["refusals"].get(reason, 0) + n

    for i in range(20):
        assert get(port, f"/exapps/testapp/public/{i}") == 200
        expect["public_2xx"] += 1
    cookie = "Cookie: oc_sessionPassphrase=sess-user\r\n"
    for _ in range(4):
        assert get(port, "/exapps/testapp/user/x", headers=cookie) == 200
        expect["user_2xx"] += 1
    # Each kind of refusal from an address of its own, fewer than HP_BLACKLIST_COUNT times:
    # some count towards a ban.
    for _ in range(2):
        assert get(port, "/exapps/testapp/admin/x", headers=cookie, source="127.0.0.2") == 403
    refused("access_denied", 2)
    for _ in range(2):
        assert get(port, "/exapps/testapp/nothing", source="127.0.0.3") == 404
    refused("no_route", 2)
    for _ in range(2):
        assert get(port, "/exapps/nosuchapp/x", source="127.0.0.4") == 404
    refused("unknown_app", 2)
    for _ in range(2):
        assert raw(port, b"GARBAGE\r\n\r\n", source="127.0.0.6") == 400
    refused("bad_request", 2)
    assert raw(port, b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", source="127.0.0.7") == 505
    refused("bad_version")
    big = "X-Big: " + "a" * 70000 + "\r\n"
    assert raw(port, f"GET /exapps/testapp/public HTTP/1.1\r\nHost: x\r\n{big}\r\n".encode(),
               source="127.0.0.8") == 431
    refused("too_large")
    for _ in range(2):
        assert get(port, "/exapps/deadapp/public/x", source="127.0.0.9") == 503
    refused("upstream_unreachable", 2)
    # Three 401s of a brute-force-protected route from one address ban it.
    for _ in range(3):
        assert get(port, "/exapps/testapp/public/status/401", source="127.0.0.5") == 401
    wait_for(lambda: "127.0.0.5" in gw.ctl.cli("ban", "list").stdout, what="the ban")
    banned = 0
    for _ in range(40):
        s = get(port, "/exapps/testapp/public/x", source="127.0.0.5")
        assert s in (200, 429)
        if s == 200:
            expect["public_2xx"] += 1
        else:
            banned += 1
        if banned == 4:
            break
    assert banned == 4
    refused("banned", 4)
    return expect


def test_a_scenario_counted_across_two_data_planes(deployment):
    gw = deployment
    c = Frpc(gw.frp_port, tls=gw.tls)
    c.login()
    r = c.new_proxy("exapp-metrics", tunnel_port(), ("tcp", gw.backend.port))
    assert "error" not in r, r
    wait_for(lambda: json.loads(gw.ctl.cli("tunnel", "list", "--json").stdout)["tunnels"],
             what="the tunnel reported")
    expect = scenario(gw)

    wait_for(lambda: all(total(parse(scrape(gw.metrics_addr).body.decode()),
                               "harp_refusals_total", reason=r) == n
                         for r, n in expect["refusals"].items()), what="the refusals counted")
    r = scrape(gw.metrics_addr)
    assert r.status == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    s = parse(r.body.decode())
    # Every reason appears for each data plane, zero included.
    for dp in ("dp0", "dp1"):
        assert total(s, "harp_dataplane_up", dp=dp) == 1
        for reason in ("no_route", "unknown_app", "access_denied", "bad_key", "banned",
                       "bad_request", "too_large", "upstream_unreachable", "upstream_timeout",
                       "ctl_unavailable"):
            assert ("harp_refusals_total", frozenset({("dp", dp), ("reason", reason)})) in s
    for reason in ("bad_key", "upstream_timeout", "ctl_unavailable"):
        assert total(s, "harp_refusals_total", reason=reason) == 0
    requests = {}
    for (n, ls), v in s.items():
        if n == "harp_requests_total":
            d = dict(ls)
            key = (d["app"], d["level"], d["class"])
            requests[key] = requests.get(key, 0) + v
    assert requests[("testapp", "public", "2xx")] == expect["public_2xx"]
    assert requests[("testapp", "user", "2xx")] == expect["user_2xx"]
    assert requests[("testapp", "admin", "4xx")] == 2
    assert requests[("deadapp", "public", "5xx")] == 2
    assert requests[("-", "none", "4xx")] == 2 + 2 + 1 + 4  # unknown app, 400, 431, 429
    assert requests[("-", "none", "5xx")] == 1  # 505
    assert total(s, "harp_upstream_connect_errors_total", app="deadapp") == 2
    # Durations: one sample per request of the app, buckets cumulative.
    count = total(s, "harp_request_duration_seconds_count", app="testapp")
    assert count == sum(v for (a, _, _), v in requests.items() if a == "testapp")
    assert total(s, "harp_request_duration_seconds_bucket", app="testapp", le="+Inf") == count
    assert total(s, "harp_request_duration_seconds_sum", app="testapp") > 0
    # Sessions: the first user request of each data plane asks harp-ctl, the rest hit the cache.
    misses = total(s, "harp_session_cache_misses_total")
    assert 1 <= misses <= 2 + 2 and total(s, "harp_session_cache_hits_total") == 6 - misses
    ui = total(s, "harp_nextcloud_calls_total", call="user_info", outcome="ok")
    assert 1 <= ui <= misses  # harp-ctl keeps answered sessions too
    assert total(s, "harp_nextcloud_call_duration_seconds_count", call="user_info") == ui
    assert total(s, "harp_nextcloud_calls_total", call="exapp_meta", outcome="not_found") >= 1
    assert total(s, "harp_client_received_bytes_total") > 65536  # the 431 head at least
    assert total(s, "harp_client_sent_bytes_total") > 0
    # The ban and the failures behind it.
    assert total(s, "harp_bans_active") == 1 and total(s, "harp_bans_total") == 1
    assert total(s, "harp_failures_total") >= 3
    # Tables, links, tunnels.
    version = gw.ctl.request("GET", "/api/v1/status").json()["table_version"]
    assert total(s, "harp_table_version") == version
    for dp in ("dp0", "dp1"):
        assert total(s, "harp_dataplane_table_version", dp=dp) == version
        assert ("harp_dataplane_propagation_seconds",
                frozenset({("dp", dp)})) in s
    assert total(s, "harp_tunnels_up", dp="dp0") == 1 and total(s, "harp_tunnels_up", dp="dp1") == 0
    assert total(s, "harp_open_connections", kind="client") >= 0
    # Certificates: the FRP CA and its leaves, seconds to expiry.
    assert 0 < total(s, "harp_certificate_expiry_seconds", cert="frp_ca")
    c.close()
    # promtool's lint finds nothing.
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=r.body, capture_output=True,
                       timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == b"" and p.stderr.strip() == b"", \
        (p.stdout, p.stderr)


def test_a_real_prometheus_scrapes_it(deployment, tmp_path):
    gw = deployment
    for i in range(7):
        assert get(gw.port, f"/exapps/testapp/public/{i}") == 200
    for _ in range(2):
        assert get(gw.port, "/exapps/testapp/nothing") == 404
    web = free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                   "scrape_configs:\n  - job_name: harp\n    static_configs:\n"
                   f"      - targets: ['{gw.metrics_addr}']\n")
    log = open(tmp_path / "prometheus.log", "wb")
    p = subprocess.Popen([PROMETHEUS, f"--config.file={cfg}",
                          f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                          f"--web.listen-address=127.0.0.1:{web}", "--log.level=warn"],
                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()

    def query(q):
        url = f"http://127.0.0.1:{web}/api/v1/query?" + urllib.parse.urlencode({"query": q})
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                res = json.load(r)["data"]["result"]
        except OSError:
            return None
        return float(res[0]["value"][1]) if res else None

    try:
        wait_for(lambda: query('sum(harp_requests_total{app="testapp",level="public",'
                               'class="2xx"})') == 7, what="Prometheus sees the requests")
        assert query('sum(harp_refusals_total{reason="no_route"})') == 2
        assert query('count(harp_dataplane_up == 1)') == 2
        assert query('up{job="harp"}') == 1
        assert query('count(harp_refusals_total{dp="dp0"})') >= 20
    finally:
        p.terminate()
        p.wait(timeout=30)


def test_metrics_on_the_control_address_need_the_key_or_loopback(deployment):
    gw = deployment
    # A direct client on loopback needs no key.
    r = gw.ctl.request("GET", "/metrics", key=False)
    assert r.status == 200 and b"harp_dataplane_up" in r.body
    # Through a data plane the key is needed.
    r = http_request(("127.0.0.1", gw.port), "GET", "/exapps/app_api/metrics", None, {})
    assert r.status != 200 and b"harp_dataplane_up" not in r.body
    r = http_request(("127.0.0.1", gw.port), "GET", "/exapps/app_api/metrics", None,
                     {"harp-shared-key": gw.ctl.key + "x"})
    assert r.status != 200 and b"harp_dataplane_up" not in r.body
    r = http_request(("127.0.0.1", gw.port), "GET", "/exapps/app_api/metrics", None,
                     {"harp-shared-key": gw.ctl.key})
    assert r.status == 200 and b"harp_dataplane_up" in r.body
    # HP_METRICS_ADDRESS serves /metrics alone.
    host, port = gw.metrics_addr.rsplit(":", 1)
    assert http_request((host, int(port)), "GET", "/api/v1/status", None, {}).status == 404
    assert http_request((host, int(port)), "POST", "/metrics", "x", {}).status == 405


def test_metrics_address_invalid_is_refused(ctl_factory, fake_nc):
    c = ctl_factory(env={"NC_INSTANCE_URL": fake_nc.url})
    r = c.cli("config", "check", env={"NC_INSTANCE_URL": fake_nc.url,
                                      "HP_METRICS_ADDRESS": "nowhere"})
    assert r.returncode != 0 and "HP_METRICS_ADDRESS" in (r.stdout + r.stderr)


def test_metrics_address_holds_slow_and_greedy_clients(deployment):
    """HP_METRICS_ADDRESS takes at most 64 connections, each with at most 32 KiB of request;
    clients that stall hold no thread: the others are answered meanwhile."""
    gw = deployment
    host, port = gw.metrics_addr.rsplit(":", 1)
    addr = (host, int(port))

    def finish(s):
        """The rest of the request on <s>: its status line, or None when closed unanswered."""
        try:
            s.sendall(b"ics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, BrokenPipeError):
            return None
        return data.split(b"\r\n")[0] if data else None

    # 70 clients that send part of a request and stall: the first 64 are taken (the kernel
    # queues connections in order), the 6 after them closed unanswered.
    slow = []
    try:
        for _ in range(70):
            s = socket.create_connection(addr, timeout=10)
            s.sendall(b"GET /metr")
            slow.append(s)
        def closed(s):
            r, _, _ = select.select([s], [], [], 0)
            if not r:
                return False
            try:
                return s.recv(1, socket.MSG_PEEK) == b""
            except ConnectionResetError:
                return True

        wait_for(lambda: all(closed(s) for s in slow[64:]), what="the 6 past the limit closed")
        assert not any(closed(s) for s in slow[:64])
        # The control address is another server.
        assert gw.ctl.request("GET", "/api/v1/status").status == 200
        # The 64th is answered while the 63 before it still stall.
        assert finish(slow[63]) == b"HTTP/1.1 200 OK"
        answers = [finish(s) for s in slow[:63]]
    finally:
        for s in slow:
            s.close()
    assert answers == [b"HTTP/1.1 200 OK"] * 63

    def answered():
        try:
            return scrape(gw.metrics_addr).status == 200
        except OSError:
            return False

    wait_for(answered, what="a scrape after the slow clients")
    # A request head one past 32 KiB is refused; one well within is answered.
    r = scrape(gw.metrics_addr, {"X-Pad": "x" * (32 * 1024)})
    assert r.status in (413, 431), r.status
    assert scrape(gw.metrics_addr, {"X-Pad": "x" * 1024}).status == 200
