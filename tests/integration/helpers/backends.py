# SPDX-License-Identifier: AGPL-3.0-or-later
"""Small ExApp backends for the tests: an HTTP server that echoes what it received and can
stream large bodies, and a WebSocket echo server. Both run in threads of the test process on
loopback ports the kernel picks."""
import asyncio
import hashlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default 5 drops bursts of connections

PATTERN = bytes(range(256)) * 256  # 64 KiB


def pattern_sha256(size):
    h = hashlib.sha256()
    left = size
    while left:
        n = min(left, len(PATTERN))
        h.update(PATTERN[:n])
        left -= n
    return h.hexdigest()


class HttpBackend:
    def __init__(self):
        self.requests = []
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def read_body(self):
                h = hashlib.sha256()
                n = 0
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b""):
                                pass
                            break
                        left = size
                        while left:
                            data = self.rfile.read(min(left, 1 << 20))
                            h.update(data)
                            left -= len(data)
                            n += len(data)
                        self.rfile.readline()
                else:
                    left = int(self.headers.get("Content-Length") or 0)
                    while left:
                        data = self.rfile.read(min(left, 1 << 20))
                        if not data:
                            break
                        h.update(data)
                        left -= len(data)
                        n += len(data)
                return n, h.hexdigest()

            def handle_any(self):
                url = urlsplit(self.path)
                q = parse_qs(url.query)
                if self.headers.get("Expect", "").lower() == "100-continue":
                    self.send_response_only(100)
                    self.end_headers()
                n, digest = self.read_body()
                rec = {"method": self.command, "path": self.path,
                       "headers": [[k, v] for k, v in self.headers.items()],
                       "body_len": n, "body_sha256": digest}
                backend.requests.append(rec)
                if url.path.endswith("/big"):
                    return self.send_big(int(q["size"][0]))
                if "/status/" in url.path:
                    status = int(url.path.rsplit("/", 1)[1])
                    self.send_response(status)
                    if status not in (204, 304):
                        self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if url.path.endswith("/chunked"):
                    self.send_response(200)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for part in (b"hello ", b"chunked ", b"world"):
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                    self.wfile.write(b"0\r\n\r\n")
                    return
                if url.path.endswith("/slow"):
                    time.sleep(float(q["s"][0]))
                body = json.dumps(rec).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Backend-Unknown", "kept")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def send_big(self, size):
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(size))
                self.end_headers()
                left = size
                while left:
                    n = min(left, len(PATTERN))
                    self.wfile.write(PATTERN[:n])
                    left -= n

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any
            do_OPTIONS = do_PROPFIND = handle_any

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def last(self):
        return self.requests[-1]

    def header(self, rec, name):
        vals = [v for k, v in rec["headers"] if k.lower() == name.lower()]
        return vals

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class WsBackend:
    """Echoes every message; "close:<code>" makes it close with that code and reason "bye"."""

    def __init__(self):
        import websockets
        self.loop = asyncio.new_event_loop()
        self.seen = []
        ready = threading.Event()

        async def handler(ws, path=None):
            self.seen.append({"path": getattr(ws, "path", path),
                              "subprotocol": ws.subprotocol,
                              "headers": dict(ws.request_headers)})
            try:
                async for msg in ws:
                    if isinstance(msg, str) and msg.startswith("close:"):
                        await ws.close(int(msg[6:]), "bye")
                        return
                    await ws.send(msg)
            except websockets.ConnectionClosed:
                pass

        async def main():
            self.server = await websockets.serve(handler, "127.0.0.1", 0,
                                                 subprotocols=["chat", "other"],
                                                 max_size=None)
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()
            await self.server.wait_closed()

        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(main(),),
                                       daemon=True)
        self.thread.start()
        ready.wait(10)

    def stop(self):
        self.loop.call_soon_threadsafe(self.server.close)


class RawBackend:
    """A TCP server whose every connection is handed to <behave>(sock, request_head_bytes):
    the function answers (or not) with raw bytes; the connection is closed when it returns."""

    def __init__(self, behave):
        self.behave = behave
        self.heads = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn):
        with conn:
            conn.settimeout(10)
            head = b""
            try:
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    head += chunk
                self.heads.append(head)
                self.behave(conn, head)
            except OSError:
                pass

    def stop(self):
        self.sock.close()


def raw_request(port, data, timeout=5.0, read_all=True):
    """Sends raw bytes; returns what came back before the peer closed or the timeout."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
            if not read_all and b"\r\n\r\n" in out:
                break
        return out
    finally:
        s.close()
