# SPDX-License-Identifier: AGPL-3.0-or-later
import os

import pytest

from harness import HARP_CTL, Ctl, wait_for


# Paths on the machine the suite must not create (it works in temporary directories only).
_OUTSIDE = ("/certs", "/var/lib/harp")
_existed = {}


def pytest_sessionstart(session):
    if not os.access(HARP_CTL, os.X_OK):
        raise pytest.UsageError(f"{HARP_CTL} is not built (set HARP_BUILDDIR)")
    _existed.update({p: os.path.exists(p) for p in _OUTSIDE})


def _written_outside():
    return [p for p in _OUTSIDE if not _existed.get(p, True) and os.path.exists(p)]


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    if _written_outside():
        session.exitstatus = 1


@pytest.fixture
def ctl_factory(tmp_path):
    """Makes Ctl instances; at teardown stops them (SIGTERM must exit 0) and checks that no
    secret a test registered ever reached a log."""
    made = []

    def make(**kw):
        workdir = kw.pop("workdir", None) or tmp_path / f"ctl{len(made)}"
        os.makedirs(workdir, exist_ok=True)
        c = Ctl(workdir, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop()
        log = c.log()
        for s in c.secrets:
            assert s not in log, f"secret {s[:4]}... found in the log of harp-ctl"


@pytest.fixture
def ctl(ctl_factory):
    return ctl_factory().start()


@pytest.fixture
def fake_nc():
    from helpers.fake_nextcloud import FakeNextcloud
    nc = FakeNextcloud("test-shared-key-0123")
    yield nc
    nc.stop()


@pytest.fixture
def ctl_nc(ctl_factory, fake_nc):
    """A control plane whose Nextcloud is the fake one."""
    return ctl_factory(env={"NC_INSTANCE_URL": fake_nc.url + "/index.php/"}).start()


class Gateway:
    """harp-ctl + fake Nextcloud + N harp-dp on one port + an HTTP backend registered as
    ExApp "testapp" with PUBLIC, USER and ADMIN routes."""

    ROUTES = [
        {"url": "^/public", "access_level": 0, "bruteforce_protection": [401]},
        {"url": "^/ws$", "access_level": 0},
        {"url": "^/user", "access_level": 1},
        {"url": "^/admin", "access_level": 2},
    ]
    TOKEN = "testapp-token-secret"

    def __init__(self, ctl, nc, backend, dps):
        self.ctl, self.nc, self.backend, self.dps = ctl, nc, backend, dps
        self.port = dps[0].port

    def register(self, app_id="testapp", port=None, routes=None, token=None):
        body = {"exapp_token": token or self.TOKEN, "exapp_version": "1.2.3",
                "host": "127.0.0.1", "port": port or self.backend.port,
                "routes": self.ROUTES if routes is None else routes}
        self.ctl.secrets.append(body["exapp_token"])
        r = self.ctl.request("POST", f"/exapp_storage/{app_id}", body)
        assert r.status == 204, r
        version = self.ctl.request("GET", "/api/v1/status").json()["table_version"]
        for d in self.dps:
            wait_for(lambda: d.applied(version), what="table applied")
        return version

    def get(self, path, headers=None, method="GET", body=None):
        from harness import http_request
        return http_request(("127.0.0.1", self.port), method, path, body, headers or {})


@pytest.fixture
def make_gateway(ctl_factory, fake_nc):
    from harness import Dp, free_port
    from helpers.backends import HttpBackend
    made = []

    def make(ndp=1, env=None, register=True, key="test-shared-key-0123", dp_args=None):
        fake_nc.key = key
        ctl = ctl_factory(key=key,
                          env=dict({"NC_INSTANCE_URL": fake_nc.url}, **(env or {}))).start()
        port = free_port()
        dps = [Dp(ctl, port, f"dp{i}", env=env, args=dp_args if i == 0 else None).start()
               for i in range(ndp)]
        backend = HttpBackend()
        gw = Gateway(ctl, fake_nc, backend, dps)
        made.append(gw)
        if register:
            gw.register()
        return gw

    yield make
    for gw in made:
        for d in gw.dps:
            d.stop()
            for s in gw.ctl.secrets:
                assert s not in d.log(), f"secret {s[:4]}... in the log of {d.name}"
        gw.backend.stop()


@pytest.fixture
def gateway(make_gateway):
    return make_gateway()


@pytest.fixture
def ws_backend():
    from helpers.backends import WsBackend
    b = WsBackend()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def docker_engine():
    """A real Docker engine (started for the session when none runs) with the test image."""
    from helpers.docker_engine import IMAGE, Engine
    eng = Engine()
    eng.api.import_image(IMAGE)
    yield eng
    eng.stop()


# Attacks: tests marked @pytest.mark.attack("12.N: what") replay one attack of the security
# review against real processes and assert the refusal. The summary counts them.
_attacks = {"tried": 0, "held": 0}


def pytest_configure(config):
    config.addinivalue_line("markers", "attack(name): replays an attack; counted in the summary")


def pytest_runtest_logreport(report):
    if report.when != "call" or "attack" not in report.keywords:
        return
    _attacks["tried"] += 1
    if report.passed:
        _attacks["held"] += 1


def pytest_terminal_summary(terminalreporter):
    for p in _written_outside():
        terminalreporter.write_line(f"error: the tests created {p} outside their directories")
    if _attacks["tried"]:
        terminalreporter.write_line(
            f"attacks: {_attacks['tried']} tried, {_attacks['held']} held, "
            f"{_attacks['tried'] - _attacks['held']} got through")
