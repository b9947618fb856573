# SPDX-License-Identifier: AGPL-3.0-or-later
"""Attacks on the control plane's API, its store and start-up, and on the client IP (issue 12:
items 5, 6, 11, 15, 17, 18), replayed against the real processes: forged X-Forwarded-For
chains, oversize routing tables, control characters in ExApp metadata, hostile key files, the
operator API reached through the public frontend, and a deleted database."""
import pytest

from harness import wait_for
from helpers.backends import raw_request

KEY = "test-shared-key-0123"


def bans(gw):
    return gw.ctl.request("GET", "/api/v1/bans").json()["bans"]


def dropped(gw, headers=""):
    out = raw_request(gw.port, f"GET /exapps/testapp/public/x HTTP/1.1\r\nHost: x\r\n"
                      f"Connection: close\r\n{headers}\r\n".encode(), timeout=5)
    return out == b""


# --- 12.5: the client IP behind a trusted proxy ---------------------------------------------

@pytest.mark.attack("12.5: 100 forged X-Forwarded-For entries choose the banned IP")
@pytest.mark.parametrize("lines", [1, 2])
def test_forged_forwarded_for_chain_cannot_choose_the_ip(make_gateway, lines):
    gw = make_gateway(env={"HP_BLACKLIST_COUNT": "2", "HP_BLACKLIST_WINDOW": "60",
                           "HP_TRUSTED_PROXY_IPS": "127.0.0.1"})
    forged = [f"6.6.{i // 250}.{i % 250 + 1}" for i in range(100)]
    real = "198.51.100.7"  # what the trusted proxy appended: the client's address
    if lines == 1:
        xff = "X-Forwarded-For: " + ", ".join(forged + [real]) + "\r\n"
    else:  # the forged chain in the client's line, the proxy's entry on a line of its own
        xff = "X-Forwarded-For: " + ", ".join(forged) + "\r\nX-Forwarded-For: " + real + "\r\n"
    for _ in range(2):
        out = raw_request(gw.port, b"GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                          + xff.encode() + b"\r\n", timeout=5)
        assert out.startswith(b"HTTP/1.1 404"), out[:100]
    wait_for(lambda: any(b["ip"] == real for b in bans(gw)), timeout=10, what=f"{real} banned")
    assert [b["ip"] for b in bans(gw)] == [real], "no forged entry was counted"
    wait_for(lambda: dropped(gw, f"X-Forwarded-For: {real}\r\n"), timeout=5,
             what="the ban reaching the data plane")
    assert not dropped(gw, f"X-Forwarded-For: {forged[36]}\r\n"), "forged addresses not banned"
