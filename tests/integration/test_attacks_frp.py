# SPDX-License-Identifier: AGPL-3.0-or-later
"""Attacks on the FRP frontend (harp-dp --frp) before and after login, replayed with raw
yamux frames: a DATA header declaring more than any window, frames that break the yamux
rules, more streams than a session may open, and connections that never log in."""
import socket
import ssl
import struct
import time

import pytest

from harness import MULT, wait_for

pytest.importorskip("cryptography")
from helpers.frpc import Frpc, msg  # noqa: E402
from test_frp import frp, tunnel_port  # noqa: E402,F401  (frp: the fixture)

HDR = struct.Struct(">BBHII")
DATA, WINDOW_UPDATE, PING, GO_AWAY = 0, 1, 2, 3
SYN, ACK, FIN, RST = 1, 2, 4, 8
MAX_STREAMS, MAX_STREAMS_ANON = 1024, 4


def frame(t, flags, sid, length, body=b""):
    return HDR.pack(0, t, flags, sid, length) + body


def vm(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def connect(gw, tls=False):
    s = socket.create_connection(("127.0.0.1", gw.frp_port), timeout=10 * MULT)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(gw.tls["ca"])
        ctx.load_cert_chain(gw.tls["cert"], gw.tls["key"])
        s = ctx.wrap_socket(s, server_hostname="harp.nc")
    return s


def read_until_closed(s, timeout=15):
    """Everything the server sends until it closes; AssertionError if it stays open."""
    got = b""
    deadline = time.monotonic() + timeout * MULT
    s.settimeout(0.5)
    while time.monotonic() < deadline:
        try:
            b = s.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            continue
        except (ConnectionResetError, ssl.SSLError, OSError):
            return got
        if not b:
            return got
        got += b
    raise AssertionError(f"the session stayed open (got {got[:64].hex()})")


def frames(data):
    out = []
    while len(data) >= 12:
        v, t, fl, sid, ln = HDR.unpack(data[:12])
        body = data[12:12 + ln] if t == DATA else b""
        data = data[12 + len(body):]
        out.append((t, fl, sid, ln))
    return out


def read_frames(s, want, timeout=10):
    """Frames from <s> until <want> of them arrived."""
    got = b""
    deadline = time.monotonic() + timeout * MULT
    s.settimeout(0.5)
    while len(frames(got)) < want and time.monotonic() < deadline:
        try:
            b = s.recv(65536)
        except socket.timeout:
            continue
        if not b:
            break
        got += b
    return frames(got)


@pytest.mark.attack("12.10: yamux DATA header of 1 GiB before login")
@pytest.mark.parametrize("tls", [False, True])
def test_data_header_over_any_window_before_login(frp, tls):
    gw = frp(tls=tls)
    dp = gw.dps[0]
    base = vm(dp.proc.pid, "VmRSS")
    s = connect(gw, tls)
    s.sendall(frame(WINDOW_UPDATE, SYN, 1, 0) + frame(DATA, 0, 1, 1 << 30))
    chunk, sent = b"\0" * (1 << 20), 0
    try:
        while sent < 64 << 20:
            s.sendall(chunk)
            sent += len(chunk)
    except OSError:
        pass  # closed by harp-dp, as it should
    got = read_until_closed(s)
    s.close()
    assert (GO_AWAY, 0, 0, 1) in frames(got) or sent < 64 << 20
    peak = vm(dp.proc.pid, "VmHWM")
    assert peak - base < 32 << 20, f"RSS {base >> 20} -> {peak >> 20} MiB"
    wait_for(lambda: "DATA frame over the maximum" in dp.log(), what="the protocol error logged")
    dp.check_alive()


@pytest.mark.attack("12.10: yamux DATA past the stream's receive window")
def test_data_past_the_window_of_a_parked_stream(frp):
    """A work stream waits for a user: its bytes stay unread. 256 KiB fit its window; one
    more byte is a protocol error that ends the session."""
    gw = frp(tls=False)
    c = Frpc(gw.frp_port)
    assert c.login().get("run_id")
    st = c.open()
    m = msg("w", {"run_id": c.run_id})
    c.send(frame(DATA, 0, st.id, len(m), m))
    left = (256 << 10) - len(m)
    while left > 0:
        n = min(left, 16384)
        c.send(frame(DATA, 0, st.id, n, b"x" * n))
        left -= n
    # The window is full but not exceeded: the control still answers.
    assert "error" not in c.new_proxy("parked", tunnel_port(), ("tcp", 1))
    assert not c.closed
    c.send(frame(DATA, 0, st.id, 1, b"y"))
    wait_for(lambda: c.closed, what="the session closed")
    assert "DATA past the receive window" in gw.dps[0].log()


BAD_FRAMES = {
    "version 1": HDR.pack(1, PING, SYN, 0, 1),
    "type 4": HDR.pack(0, 4, 0, 0, 0),
    "DATA on stream 0": frame(DATA, 0, 0, 0),
    "SYN on an even id": frame(WINDOW_UPDATE, SYN, 2, 0),
    "SYN on an open stream": frame(WINDOW_UPDATE, SYN, 1, 0),
    "window past 2^32-1": frame(WINDOW_UPDATE, 0, 1, 0xFFFFFFFF - (256 << 10) + 1),
    "DATA over the window of a new stream": frame(DATA, SYN, 3, (256 << 10) + 1),
}


@pytest.mark.attack("12.10: yamux frames that break the protocol close the session")
@pytest.mark.parametrize("name", sorted(BAD_FRAMES))
def test_protocol_violations_close_the_session(frp, name):
    gw = frp(tls=False)
    s = connect(gw)
    s.sendall(frame(WINDOW_UPDATE, SYN, 1, 0) + BAD_FRAMES[name])
    got = frames(read_until_closed(s))
    s.close()
    assert got[0] == (WINDOW_UPDATE, ACK, 1, 0)
    assert got[-1] == (GO_AWAY, 0, 0, 1), got
    wait_for(lambda: "protocol error from 127.0.0.1" in gw.dps[0].log(), what="logged")


@pytest.mark.attack("12.10: more yamux streams than a session may open")
def test_streams_over_the_cap_are_refused(frp):
    gw = frp(tls=False)
    # Before login: a few streams, then RST.
    s = connect(gw)
    s.sendall(b"".join(frame(WINDOW_UPDATE, SYN, 2 * i + 1, 0) for i in range(8)) +
              frame(PING, SYN, 0, 77))
    got = read_frames(s, 9)
    acks = [sid for t, fl, sid, ln in got if t == WINDOW_UPDATE and fl == ACK]
    rsts = [sid for t, fl, sid, ln in got if t == WINDOW_UPDATE and fl == RST]
    assert acks == [1, 3, 5, 7][:MAX_STREAMS_ANON] and rsts == [9, 11, 13, 15]
    assert (PING, ACK, 0, 77) in got  # the session lives on
    s.close()
    # After login: up to the cap, then RST; the client's control keeps working.
    c = Frpc(gw.frp_port)
    assert c.login().get("run_id")
    extra = [c.open() for _ in range(MAX_STREAMS + 50)]
    wait_for(lambda: sum(st.fin for st in extra) >= 50, what="streams over the cap refused")
    time.sleep(0.2)
    refused = sum(st.fin for st in extra)
    assert 50 <= refused <= 50 + 4  # the control and the pool's work streams count too
    assert all(st.fin for st in extra[-50:]) and not any(st.fin for st in extra[:900])
    assert not c.closed
    for st in extra[:100]:
        c.send(frame(WINDOW_UPDATE, RST, st.id, 0))  # frees their slots
    more = c.open()
    # The answer on the control comes after harp-dp took the SYN before it.
    assert "error" not in c.new_proxy("after-cap", tunnel_port(), ("tcp", 1))
    assert not more.fin, "a slot freed by RST is usable again"


@pytest.mark.attack("12.10: connections that never log in")
def test_sessions_without_login_are_capped_and_closed(frp):
    gw = frp(tls=False, env={"HP_FRP_MAX_PENDING": "4", "HP_FRP_LOGIN_TIMEOUT": "3s"})
    held = []
    for _ in range(4):
        s = connect(gw)
        s.sendall(frame(WINDOW_UPDATE, SYN, 1, 0))  # a stream, but never a Login
        assert read_frames(s, 1) == [(WINDOW_UPDATE, ACK, 1, 0)]
        held.append(s)
    t0 = time.monotonic()
    extra = connect(gw)
    read_until_closed(extra)  # refused
    extra.close()
    wait_for(lambda: "HP_FRP_MAX_PENDING" in gw.dps[0].log(), what="the refusal logged")
    # The deadline closes them, however long they keep sending pings.
    for s in held:
        s.sendall(frame(PING, SYN, 0, 1))
    for s in held:
        read_until_closed(s, timeout=20)
        s.close()
    assert time.monotonic() - t0 > 2
    wait_for(lambda: "no login in time" in gw.dps[0].log(), what="the deadline logged")
    # Then logins work, and a logged-in session outlives the deadline.
    c = Frpc(gw.frp_port)
    assert c.login().get("run_id")
    time.sleep(4)
    assert not c.closed
    assert "error" not in c.new_proxy("late", tunnel_port(), ("tcp", 1))


@pytest.mark.attack("12.10: a Login message over the size limit")
def test_oversize_login_message(frp):
    gw = frp(tls=False)
    s = connect(gw)
    # A message header declaring 1 GiB of JSON: the stream is reset at its header.
    s.sendall(frame(WINDOW_UPDATE, SYN, 1, 0) + frame(DATA, 0, 1, 9, b"o" + struct.pack(">q", 1 << 30)))
    got = read_frames(s, 2)
    assert (WINDOW_UPDATE, RST, 1, 0) in got
    s.sendall(frame(PING, SYN, 0, 5))
    assert (PING, ACK, 0, 5) in read_frames(s, 1)
    s.close()


@pytest.mark.attack("12.10: a client that reads nothing while flooding pings")
def test_ping_flood_from_a_client_that_does_not_read(frp):
    gw = frp(tls=False)
    dp = gw.dps[0]
    base = vm(dp.proc.pid, "VmRSS")
    s = connect(gw)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ping = frame(PING, SYN, 0, 1) * 4096
    s.settimeout(3 * MULT)
    sent = 0
    try:
        while sent < 256 << 20:
            s.sendall(ping)
            sent += len(ping)
    except (socket.timeout, OSError):
        pass  # harp-dp stopped reading: the pings stay in the kernel's buffers
    assert sent < 256 << 20
    peak = vm(dp.proc.pid, "VmHWM")
    assert peak - base < 32 << 20, f"RSS {base >> 20} -> {peak >> 20} MiB"
    s.close()
