# SPDX-License-Identifier: AGPL-3.0-or-later
"""An operator's front proxy in front of a data plane, with the mistakes `harp-ctl doctor`
must find: a stripped /exapps/ prefix, dropped headers (Upgrade, harp-shared-key) and a
short read timeout. It connects to the data plane from 127.0.0.2 and, unless told not to,
appends the client's address to X-Forwarded-For, as nginx's $proxy_add_x_forwarded_for does.
One request per connection; the answer is relayed until the upstream
closes or its Content-Length is complete."""
import socket
import threading


class FrontProxy:
    SOURCE = "127.0.0.2"

    def __init__(self, upstream_port, strip_prefix=False, drop=(), read_timeout=None, xff=True):
        self.upstream = ("127.0.0.1", upstream_port)
        self.strip_prefix = strip_prefix
        self.drop = {h.lower() for h in drop}
        self.read_timeout = read_timeout
        self.xff = xff
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c, _[0]), daemon=True).start()

    def _serve(self, c, peer):
        try:
            c.settimeout(30)
            head = b""
            while b"\r\n\r\n" not in head:
                b = c.recv(65536)
                if not b:
                    return
                head += b
            head, body = head.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ", 2)
            if self.strip_prefix and target.startswith("/exapps/"):
                target = target[len("/exapps"):]
            headers = [l for l in lines[1:] if l.split(":", 1)[0].strip().lower() not in self.drop]
            if "upgrade" in self.drop:  # as a proxy without WebSocket support: HTTP/1.0 style
                headers = [l for l in headers if l.split(":", 1)[0].strip().lower() != "connection"]
                headers.append("Connection: close")
            if self.xff:
                prior = [l.split(":", 1)[1].strip() for l in headers
                         if l.split(":", 1)[0].strip().lower() == "x-forwarded-for"]
                headers = [l for l in headers
                           if l.split(":", 1)[0].strip().lower() != "x-forwarded-for"]
                headers.append("X-Forwarded-For: " + ", ".join(prior + [peer]))
            req = "\r\n".join([f"{method} {target} {version}"] + headers) + "\r\n\r\n"
            u = socket.create_connection(self.upstream, timeout=30,
                                         source_address=(self.SOURCE, 0))
            u.settimeout(self.read_timeout if self.read_timeout is not None else 300)
            u.sendall(req.encode("latin-1") + body)
            try:
                answer = self._read_answer(u)
            except socket.timeout:
                answer = (b"HTTP/1.1 504 Gateway Time-out\r\nContent-Length: 0\r\n"
                          b"Connection: close\r\n\r\n")
            u.close()
            c.sendall(answer)
        except OSError:
            pass
        finally:
            c.close()

    @staticmethod
    def _read_answer(u):
        data = b""
        while b"\r\n\r\n" not in data:
            b = u.recv(65536)
            if not b:
                return data
            data += b
        head, rest = data.split(b"\r\n\r\n", 1)
        length = None
        for line in head.decode("latin-1").split("\r\n")[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == "content-length":
                length = int(v.strip())
        while length is None or len(rest) < length:
            b = u.recv(65536)
            if not b:
                break
            rest += b
        return head + b"\r\n\r\n" + rest

    def stop(self):
        self.stopped = True
        self.sock.close()
