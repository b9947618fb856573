# SPDX-License-Identifier: AGPL-3.0-or-later
"""A small frpc for the tests, written from the protocol notes: TLS (optionally with a client
certificate and the 0x17 first byte), yamux with flow control both ways, token login with
metas, the AES-CFB control stream, tcp proxies whose work connections are piped to a local
TCP port or Unix socket. Runs on threads; /usr/bin/python3 with python3-cryptography."""
import hashlib
import json
import os
import socket
import ssl
import struct
import threading
import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
try:
    from cryptography.hazmat.decrepit.ciphers.modes import CFB
except ImportError:
    from cryptography.hazmat.primitives.ciphers.modes import CFB

HDR = struct.Struct(">BBHII")
DATA, WINDOW_UPDATE, PING, GO_AWAY = 0, 1, 2, 3
SYN, ACK, FIN, RST = 1, 2, 4, 8
MY_WINDOW = 6 * 1024 * 1024  # frpc's MaxStreamWindowSize
INITIAL = 256 * 1024


def msg(t, obj):
    b = json.dumps(obj, separators=(",", ":")).encode()
    return t.encode() + struct.pack(">q", len(b)) + b


class TlsSocket:
    """TLS over memory BIOs with one lock around the SSL object: OpenSSL objects must not be
    read and written from two threads at once (the reader thread and the writers)."""

    def __init__(self, raw, ctx):
        self.raw, self.lock = raw, threading.Lock()
        self.inc, self.outg = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.outg, server_hostname="harp.nc")
        self.pending = bytearray()
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                data = self.raw.recv(65536)
                if not data:
                    raise EOFError("closed during the TLS handshake")
                self.inc.write(data)
        self._flush()

    def _flush(self):
        out = self.outg.read()
        if out:
            try:
                self.raw.sendall(out)
            except OSError:
                pass  # the peer is gone; the reader sees the end

    def settimeout(self, t):
        self.raw.settimeout(t)

    def sendall(self, b):
        with self.lock:
            self.obj.write(b)
            self._flush()

    def read(self, n):
        while len(self.pending) < n:
            with self.lock:
                try:
                    self.pending.extend(self.obj.read(65536))
                    continue
                except ssl.SSLWantReadError:
                    self._flush()
                except (ssl.SSLError, ssl.SSLZeroReturnError):
                    break
            data = self.raw.recv(65536)
            if not data:
                break
            with self.lock:
                self.inc.write(data)
        out = bytes(self.pending[:n])
        del self.pending[:n]
        return out

    def shutdown(self, how):
        self.raw.shutdown(how)

    def close(self):
        self.raw.close()


class Stream:
    def __init__(self, client, sid):
        self.c, self.id = client, sid
        self.buf = bytearray()
        self.fin = False
        self.send_window = INITIAL
        self.consumed = 0
        self.cv = threading.Condition()

    def write(self, data):
        data = memoryview(bytes(data))
        while data:
            with self.cv:
                while self.send_window == 0 and not self.fin and not self.c.closed:
                    self.cv.wait(1)
                if self.c.closed:
                    raise EOFError("session closed")
                n = min(len(data), self.send_window, 16384)
                self.send_window -= n
            self.c.send(HDR.pack(0, DATA, 0, self.id, n) + bytes(data[:n]))
            data = data[n:]

    def read(self, n=65536, exact=False):
        with self.cv:
            while (len(self.buf) < (n if exact else 1)) and not self.fin and not self.c.closed:
                self.cv.wait(1)
            if exact and len(self.buf) < n:
                raise EOFError("stream ended")
            out = bytes(self.buf[:n])
            del self.buf[:n]
            self.consumed += len(out)
            grant = self.consumed >= MY_WINDOW // 2
            if grant:
                delta, self.consumed = self.consumed, 0
        if grant:
            self.c.send(HDR.pack(0, WINDOW_UPDATE, 0, self.id, delta))
        return out

    def close(self):
        self.c.send(HDR.pack(0, WINDOW_UPDATE, FIN, self.id, 0))


class Frpc:
    def __init__(self, port, token="test-shared-key-0123", tls=None, first_byte=False,
                 pool_count=1, run_id=""):
        """tls: None (plain) or dict(ca=..., cert=..., key=...) (cert/key may be absent)."""
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.local = raw.getsockname()
        if first_byte:
            raw.sendall(b"\x17")
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.load_verify_locations(tls["ca"])
            if tls.get("cert"):
                ctx.load_cert_chain(tls["cert"], tls["key"])
            raw = TlsSocket(raw, ctx)
        raw.settimeout(None)
        self.sock = raw
        self.wlock = threading.Lock()
        self.streams = {}
        self.next_id = 1
        self.closed = False
        self.key = hashlib.pbkdf2_hmac("sha1", b"", b"frp", 64, 16)
        self.proxies = {}    # name -> ("tcp", port) or ("unix", path)
        self.responses = []  # NewProxyResp bodies
        self.resp_cv = threading.Condition()
        self.work_streams = []
        self.silent_work = False  # never answer on work streams (frpc with its socket down)
        self.pool_count, self.token, self.run_id = pool_count, token, run_id
        threading.Thread(target=self._reader, daemon=True).start()

    # --- yamux ---
    def send(self, b):
        with self.wlock:
            self.sock.sendall(b)

    def open(self):
        sid = self.next_id
        self.next_id += 2
        st = self.streams[sid] = Stream(self, sid)
        self.send(HDR.pack(0, WINDOW_UPDATE, SYN, sid, MY_WINDOW - INITIAL))
        return st

    def _read_exact(self, f, n):
        b = f.read(n)
        if b is None or len(b) < n:
            raise EOFError
        return b

    def _reader(self):
        f = self.sock if isinstance(self.sock, TlsSocket) else self.sock.makefile("rb")
        try:
            while True:
                v, t, fl, sid, ln = HDR.unpack(self._read_exact(f, 12))
                if t == PING:
                    if fl & SYN:
                        self.send(HDR.pack(0, PING, ACK, 0, ln))
                    continue
                if t == GO_AWAY:
                    break
                body = self._read_exact(f, ln) if t == DATA and ln else b""
                st = self.streams.get(sid)
                if st is None:
                    continue
                with st.cv:
                    if t == WINDOW_UPDATE:
                        st.send_window += ln
                    st.buf.extend(body)
                    if fl & (FIN | RST):
                        st.fin = True
                    st.cv.notify_all()
        except (EOFError, OSError, ValueError):
            pass
        self.closed = True
        for st in list(self.streams.values()):
            with st.cv:
                st.cv.notify_all()

    # --- frp ---
    def login(self, meta_token=None):
        ts = int(time.time())
        body = {"version": "0.61.1", "os": "linux", "arch": "amd64",
                "privilege_key": hashlib.md5((str(ts)).encode()).hexdigest(), "timestamp": ts}
        if self.run_id:
            body["run_id"] = self.run_id
        body.update({"metas": {"token": self.token if meta_token is None else meta_token},
                     "client_spec": {}, "pool_count": self.pool_count})
        self.ctl = self.open()
        self.ctl.write(msg("o", body))
        t, resp = self._read_msg(self.ctl)
        assert t == "1", t
        if resp.get("error"):
            return resp
        self.run_id = resp["run_id"]
        self.enc_iv = os.urandom(16)
        self.enc = Cipher(algorithms.AES(self.key), CFB(self.enc_iv)).encryptor()
        iv = self.ctl.read(16, exact=True)
        self.dec = Cipher(algorithms.AES(self.key), CFB(iv)).decryptor()
        self.enc_iv_sent = False
        threading.Thread(target=self._control, daemon=True).start()
        return resp

    def _read_msg(self, st, dec=None):
        rd = (lambda n: dec.update(st.read(n, exact=True))) if dec else \
            (lambda n: st.read(n, exact=True))
        t = rd(1).decode()
        n = struct.unpack(">q", rd(8))[0]
        return t, json.loads(rd(n))

    def control_send(self, t, body):
        data = self.enc.update(msg(t, body))
        if not self.enc_iv_sent:
            # The IV goes out with the first encrypted bytes.
            data = self.enc_iv + data
            self.enc_iv_sent = True
        self.ctl.write(data)

    def _control(self):
        try:
            while True:
                t, m = self._read_msg(self.ctl, self.dec)
                if t == "r":
                    threading.Thread(target=self._work, daemon=True).start()
                elif t == "2":
                    with self.resp_cv:
                        self.responses.append(m)
                        self.resp_cv.notify_all()
        except (EOFError, OSError):
            pass

    def new_proxy(self, name, remote_port, target, timeout=10):
        """Registers a tcp proxy; <target> ("tcp", port) or ("unix", path). The answer."""
        self.proxies[name] = target
        self.control_send("p", {"proxy_name": name, "proxy_type": "tcp",
                                "remote_port": remote_port})
        deadline = time.monotonic() + timeout
        with self.resp_cv:
            while True:
                for r in self.responses:
                    if r["proxy_name"] == name:
                        self.responses.remove(r)
                        return r
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no NewProxyResp")
                self.resp_cv.wait(left)

    def _work(self):
        try:
            self._work_stream()
        except (OSError, EOFError, KeyError):
            pass  # the session or the local target went away

    def _work_stream(self):
        st = self.open()
        self.work_streams.append(st)
        st.write(msg("w", {"run_id": self.run_id}))
        try:
            t, sw = self._read_msg(st)
        except EOFError:
            return
        if self.silent_work:
            return
        kind, where = self.proxies[sw["proxy_name"]]
        if kind == "tcp":
            local = socket.create_connection(("127.0.0.1", where))
        else:
            local = socket.socket(socket.AF_UNIX)
            local.connect(where)

        def up():
            try:
                while True:
                    b = local.recv(65536)
                    if not b:
                        break
                    st.write(b)
            except (OSError, EOFError):
                pass
            try:
                st.close()
            except OSError:
                pass

        threading.Thread(target=up, daemon=True).start()
        try:
            while True:
                b = st.read()
                if not b:
                    break
                local.sendall(b)
        except (OSError, EOFError):
            pass
        try:
            local.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        local.close()

    def close(self):
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
