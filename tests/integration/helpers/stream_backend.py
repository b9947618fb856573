# SPDX-License-Identifier: AGPL-3.0-or-later
"""A scripted ExApp backend on raw sockets for the streaming and timeout tests: each request's
path picks a script that writes the response byte by byte as the test wants it (events with
pauses, interim responses, trailers, close-delimited bodies, half-closes). Runs in threads of
the test process on a loopback port the kernel picks."""
import socket
import threading
import time


def read_head(sock, buf=b""):
    """Reads until the blank line; returns (head, rest) or (None, buf) on EOF."""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            return None, buf
        buf += data
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head + b"\r\n\r\n", rest


def read_exact(sock, n, buf=b""):
    while len(buf) < n:
        data = sock.recv(65536)
        if not data:
            break
        buf += data
    return buf[:n], buf[n:]


def header(head, name):
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == name.lower().encode():
            return v.strip().decode()
    return None


class StreamBackend:
    """scripts: {path prefix: fn(backend, sock, head, rest) -> bool keep-alive}."""

    def __init__(self, scripts):
        self.scripts = scripts
        self.events = {}  # name -> threading.Event, for tests that wait on each other
        self.times = {}   # name -> time.monotonic() of a write or read
        self.got = {}     # name -> bytes the backend read
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def event(self, name):
        return self.events.setdefault(name, threading.Event())

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        rest = b""
        try:
            while True:
                head, rest = read_head(c, rest)
                if head is None:
                    break
                path = head.split(b" ")[1].decode()
                script = next(fn for p, fn in self.scripts.items() if path.startswith(p))
                keep, rest = script(self, c, head, rest)
                if not keep:
                    break
        except (OSError, StopIteration):
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def stop(self):
        self.stopped = True
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


def sse_every(seconds, count=None, first_delay=0.0):
    """text/event-stream, chunked: one event every <seconds> (count events, then the end)."""
    def script(b, c, head, rest):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                  b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n")
        time.sleep(first_delay)
        i = 0
        while count is None or i < count:
            ev = f"id: {i}\ndata: event {i}\n\n".encode()
            c.sendall(b"%x\r\n%s\r\n" % (len(ev), ev))
            i += 1
            time.sleep(seconds)
        c.sendall(b"0\r\n\r\n")
        return True, rest
    return script
