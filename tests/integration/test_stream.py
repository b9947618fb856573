# SPDX-License-Identifier: AGPL-3.0-or-later
"""Responses pass through harp-dp as they arrive, framed as RFC 9112 says: server-sent events
and chunked bodies chunk by chunk (never held back for more), Expect: 100-continue, 1xx interim
responses, trailers, HEAD, responses without a body (204, 304) and close-delimited ones. Real
sockets on both sides: a scripted backend (helpers/stream_backend.py) and a raw client."""
import socket
import time

import pytest

from harness import MULT
from helpers.stream_backend import StreamBackend, read_exact, read_head, header

ROUTES = [{"url": ".*", "access_level": 0}]
WAIT = 30 * MULT  # generous: how long a side waits for the other before the test fails


def ordered_events(b, c, head, rest):
    """Three events; each next one only after the client said it got the previous one."""
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n")
    for i in range(3):
        ev = f"data: event {i}\n\n".encode()
        b.times[f"written{i}"] = time.monotonic()
        c.sendall(b"%x\r\n%s\r\n" % (len(ev), ev))
        if not b.event(f"got{i}").wait(WAIT):
            b.times["held_back"] = i
            break
    c.sendall(b"0\r\n\r\n")
    return True, rest


def ordered_chunks(b, c, head, rest):
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n")
    for i in range(3):
        line = b'{"token": %d}\n' % i
        c.sendall(b"%x\r\n%s\r\n" % (len(line), line))
        if not b.event(f"chunk{i}").wait(WAIT):
            break
    c.sendall(b"0\r\n\r\n")
    return True, rest


def expect_continue(b, c, head, rest):
    n = int(header(head, "Content-Length"))
    b.got["expect"] = header(head, "Expect")
    b.times["head_at_backend"] = time.monotonic()
    c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    body, rest = read_exact(c, n, rest)
    b.got["body"] = body
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    return True, rest


def interim(b, c, head, rest):
    c.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
              b"HTTP/1.1 102 Processing\r\n\r\n")
    b.event("interim_sent").wait(WAIT)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal")
    return True, rest


TRAILED = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"
           b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Checksum: abc123\r\nX-Other: 1\r\n\r\n")


def trailers(b, c, head, rest):
    c.sendall(TRAILED)
    return True, rest


def head_resp(b, c, head, rest):
    method = head.split(b" ")[0]
    if b"chunked" in head.split(b"\r\n")[0]:
        framing = b"Transfer-Encoding: chunked\r\n"
    else:
        framing = b"Content-Length: 12345\r\n"
    c.sendall(b"HTTP/1.1 200 OK\r\n" + framing + b"\r\n")
    if method != b"HEAD":
        c.sendall(b"x" * 12345 if b"Content-Length" in framing else b"0\r\n\r\n")
    return True, rest


def no_body(b, c, head, rest):
    status = head.split(b" ")[1].rsplit(b"/", 1)[1]  # /nobody/204
    # Content-Length on a 304 is the representation's length: no body follows
    c.sendall(b"HTTP/1.1 " + status + b" X\r\nContent-Length: 99\r\n\r\n")
    return True, rest


def close_delimited(b, c, head, rest):
    version = b"HTTP/1.0" if b"/v10" in head else b"HTTP/1.1"
    c.sendall(version + b" 200 OK\r\nContent-Type: text/plain\r\n\r\n")
    for i in range(3):
        c.sendall(b"part %d;" % i)
        if not b.event(f"part{i}").wait(WAIT):
            break
    c.shutdown(socket.SHUT_WR)  # the end of the body
    return False, rest


def echo_len(b, c, head, rest):
    body = b"keep-alive works"
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    return True, rest


SCRIPTS = {"/events": ordered_events, "/chunks": ordered_chunks, "/expect": expect_continue,
           "/interim": interim, "/trailers": trailers, "/head": head_resp, "/nobody": no_body,
           "/close": close_delimited, "/ok": echo_len}


@pytest.fixture
def streaming(make_gateway):
    """A gateway and the backend registered behind it; the backend stops after the test."""
    gw = make_gateway(register=False)
    be = StreamBackend(SCRIPTS)
    gw.register(app_id="streamapp", port=be.port, routes=ROUTES)
    yield gw, be
    be.stop()


def connect(gw):
    s = socket.create_connection(("127.0.0.1", gw.port))
    s.settimeout(WAIT)
    return s


def recv_until(s, buf, marker):
    while marker not in buf:
        data = s.recv(65536)
        if not data:
            raise AssertionError(f"EOF before {marker!r}: {buf!r}")
        buf += data
    return buf


def get_ok(s):
    """A keep-alive request on <s> after the one under test: the framing was understood."""
    s.sendall(b"GET /exapps/streamapp/ok HTTP/1.1\r\nHost: x\r\n\r\n")
    head, rest = read_head(s)
    assert head is not None and head.startswith(b"HTTP/1.1 200"), head
    body, _ = read_exact(s, 16, rest)
    assert body == b"keep-alive works"


def test_sse_events_pass_one_by_one(streaming):
    gw, be = streaming
    s = connect(gw)
    s.sendall(b"GET /exapps/streamapp/events HTTP/1.1\r\nHost: x\r\n"
              b"Accept: text/event-stream\r\n\r\n")
    buf, delays = b"", []
    for i in range(3):
        buf = recv_until(s, buf, f"data: event {i}\n\n".encode())
        delays.append(time.monotonic() - be.times[f"written{i}"])
        be.event(f"got{i}").set()  # the backend writes the next event only now
    buf = recv_until(s, buf, b"\r\n0\r\n\r\n")
    print(f"SSE: each event reached the client {[f'{d * 1000:.2f}' for d in delays]} ms "
          "after the backend wrote it")
    assert "held_back" not in be.times
    assert max(delays) < 5 * MULT, "generous: an event is never held for more input"
    get_ok(s)
    s.close()


def test_chunked_response_passes_chunk_by_chunk(streaming):
    gw, be = streaming
    s = connect(gw)
    s.sendall(b"GET /exapps/streamapp/chunks HTTP/1.1\r\nHost: x\r\n\r\n")
    buf = b""
    for i in range(3):
        buf = recv_until(s, buf, b'{"token": %d}\n' % i)
        be.event(f"chunk{i}").set()
    recv_until(s, buf, b"\r\n0\r\n\r\n")
    get_ok(s)
    s.close()


def test_expect_100_continue(streaming):
    gw, be = streaming
    s = connect(gw)
    body = b"b" * 50000
    s.sendall(b"POST /exapps/streamapp/expect HTTP/1.1\r\nHost: x\r\n"
              b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
    # the body is sent only after the backend's 100 came through
    buf = recv_until(s, b"", b"\r\n\r\n")
    assert buf.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), buf
    s.sendall(body)
    head, rest = read_head(s, buf[len(b"HTTP/1.1 100 Continue\r\n\r\n"):])
    assert head.startswith(b"HTTP/1.1 200"), head
    got, _ = read_exact(s, len(body), rest)
    assert got == body and be.got["body"] == body
    assert be.got["expect"] == "100-continue", "the expectation reaches the ExApp"
    get_ok(s)
    s.close()


def test_interim_responses_pass_before_the_final_one(streaming):
    gw, be = streaming
    s = connect(gw)
    s.sendall(b"GET /exapps/streamapp/interim HTTP/1.1\r\nHost: x\r\n\r\n")
    buf = recv_until(s, b"", b"HTTP/1.1 102 Processing\r\n\r\n")
    assert buf == (b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
                   b"HTTP/1.1 102 Processing\r\n\r\n"), "both, as they are, before the final"
    be.event("interim_sent").set()
    buf = recv_until(s, b"", b"final")
    assert buf == b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal"
    get_ok(s)
    s.close()


def test_trailers_pass_byte_exact(streaming):
    gw, be = streaming
    s = connect(gw)
    s.sendall(b"GET /exapps/streamapp/trailers HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n")
    buf = recv_until(s, b"", b"X-Other: 1\r\n\r\n")
    assert buf == TRAILED
    get_ok(s)
    s.close()


def test_head_responses_have_no_body(streaming):
    gw, be = streaming
    s = connect(gw)
    for target in (b"/exapps/streamapp/head", b"/exapps/streamapp/head?chunked"):
        s.sendall(b"HEAD " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        head, rest = read_head(s)
        assert head is not None and head.startswith(b"HTTP/1.1 200") and rest == b"", head
        get_ok(s)  # the connection was not waiting for 12345 bytes
    s.close()


def test_204_and_304_have_no_body(streaming):
    gw, be = streaming
    s = connect(gw)
    for status in (b"204", b"304"):
        s.sendall(b"GET /exapps/streamapp/nobody/" + status + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        head, rest = read_head(s)
        assert head.startswith(b"HTTP/1.1 " + status) and rest == b"", head
        get_ok(s)
    s.close()


def test_close_delimited_responses_pass_and_close(streaming):
    gw, be = streaming
    for version in (b"v11", b"v10"):
        for i in range(3):
            be.event(f"part{i}").clear()
        s = connect(gw)
        s.sendall(b"GET /exapps/streamapp/close/" + version + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        buf = b""
        for i in range(3):
            buf = recv_until(s, buf, b"part %d;" % i)  # streamed, not held until the end
            be.event(f"part{i}").set()
        while True:
            data = s.recv(65536)
            if not data:
                break
            buf += data
        assert buf.endswith(b"\r\n\r\npart 0;part 1;part 2;"), buf
        assert b"Content-Length" not in buf and b"chunked" not in buf
        s.close()
