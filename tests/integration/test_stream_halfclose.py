# SPDX-License-Identifier: AGPL-3.0-or-later
"""Half-close through harp-dp (RFC 9112 9.6), with real sockets: a client that shuts its
sending side after its request(s) still gets every response whole; a backend that closes after
its response is not an error; in a WebSocket the client's end of input reaches the backend
while the backend's direction stays open."""
import hashlib
import socket

import pytest

from harness import MULT
from helpers.stream_backend import StreamBackend, read_exact, header

ROUTES = [{"url": ".*", "access_level": 0}]
WAIT = 30 * MULT
BIG = 3 * 1024 * 1024 + 7


def big(b, c, head, rest):
    n = int(header(head, "Content-Length") or 0)
    body, rest = read_exact(c, n, rest)
    payload = hashlib.sha256(body).hexdigest().encode() + b"\n" + b"z" * BIG
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(payload))
    c.sendall(payload)
    return True, rest


def then_close(b, c, head, rest):
    """Closes once its response is out; with ?announced it says so (Connection: close)."""
    extra = b"Connection: close\r\n" if b"?announced" in head else b""
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n" + extra + b"\r\ndone")
    c.close()
    b.event("closed").set()
    return False, rest


def ws(b, c, head, rest):
    c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\n\r\n")
    c.settimeout(WAIT)
    got = rest
    while True:
        data = c.recv(65536)
        if not data:
            break
        got += data
    b.got["ws"] = got  # the client's end of input arrived
    # the other direction is still open: the backend answers after the client's end
    c.sendall(b"after your end: " + got)
    c.shutdown(socket.SHUT_WR)
    return False, b""


@pytest.fixture
def half_closing(make_gateway):
    """A gateway and the backend registered behind it; the backend stops after the test."""
    gw = make_gateway(register=False)
    be = StreamBackend({"/big": big, "/close": then_close, "/ws": ws})
    gw.register(app_id="hcapp", port=be.port, routes=ROUTES)
    yield gw, be
    be.stop()


def read_all(s):
    buf = b""
    while True:
        data = s.recv(1 << 20)
        if not data:
            return buf
        buf += data


def responses(buf):
    """Splits Content-Length framed responses."""
    out = []
    while buf:
        head, _, rest = buf.partition(b"\r\n\r\n")
        n = int(header(head + b"\r\n", "Content-Length"))
        out.append((head, rest[:n]))
        buf = rest[n:]
    return out


def test_client_half_close_after_request_gets_the_whole_response(half_closing):
    gw, be = half_closing
    s = socket.create_connection(("127.0.0.1", gw.port))
    s.settimeout(WAIT)
    body = b"q" * 100000
    s.sendall(b"POST /exapps/hcapp/big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
              % len(body) + body)
    s.shutdown(socket.SHUT_WR)  # as nc -N or a Docker hijacked stream does
    (head, got), = responses(read_all(s))  # whole, then the gateway closes
    assert head.startswith(b"HTTP/1.1 200")
    assert got == hashlib.sha256(body).hexdigest().encode() + b"\n" + b"z" * BIG
    s.close()


def test_pipelined_requests_before_the_half_close_are_all_answered(half_closing):
    gw, be = half_closing
    s = socket.create_connection(("127.0.0.1", gw.port))
    s.settimeout(WAIT)
    s.sendall(b"GET /exapps/hcapp/big HTTP/1.1\r\nHost: x\r\n\r\n" * 2 +
              b"GET /exapps/hcapp/close HTTP/1.1\r\nHost: x\r\n\r\n")
    s.shutdown(socket.SHUT_WR)
    got = responses(read_all(s))
    assert [h.split(b"\r\n")[0] for h, _ in got] == [b"HTTP/1.1 200 OK"] * 3
    assert len(got[0][1]) == len(got[1][1]) > BIG and got[2][1] == b"done"
    s.close()


def test_backend_closing_after_its_response_is_not_an_error(half_closing):
    gw, be = half_closing
    s = socket.create_connection(("127.0.0.1", gw.port))
    s.settimeout(WAIT)
    # Unannounced, the client connection stays and the next request gets a new upstream;
    # the close must have happened before that request (one racing with it is the
    # keep-alive race every proxy has). Announced (Connection: close), the header reaches
    # the client, whose connection then ends after the whole response.
    be.event("closed").set()
    for target in (b"/close", b"/close", b"/close?announced"):
        be.event("closed").wait(WAIT)
        be.event("closed").clear()
        s.sendall(b"GET /exapps/hcapp" + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        buf = b""
        while not buf.endswith(b"done"):
            data = s.recv(4096)
            assert data, "the client connection stays open until the whole response"
            buf += data
        assert buf.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Connection: close" in buf and s.recv(4096) == b""
    s.close()
    log = gw.dps[0].log()
    assert " 502 " not in log and "bad_gateway" not in log, log[-2000:]


def test_websocket_directions_close_independently(half_closing):
    gw, be = half_closing
    s = socket.create_connection(("127.0.0.1", gw.port))
    s.settimeout(WAIT)
    s.sendall(b"GET /exapps/hcapp/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
              b"Upgrade: websocket\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    assert buf.startswith(b"HTTP/1.1 101")
    s.sendall(b"last words")
    s.shutdown(socket.SHUT_WR)  # the client's direction ends; the backend's goes on
    rest = buf.split(b"\r\n\r\n", 1)[1] + read_all(s)
    assert rest == b"after your end: last words"
    assert be.got["ws"] == b"last words"
    s.close()
