# SPDX-License-Identifier: AGPL-3.0-or-later
import os

import pytest

from harness import HARP_CTL, Ctl


def pytest_sessionstart(session):
    if not os.access(HARP_CTL, os.X_OK):
        raise pytest.UsageError(f"{HARP_CTL} is not built (set HARP_BUILDDIR)")


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
