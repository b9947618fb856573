# SPDX-License-Identifier: AGPL-3.0-or-later
"""A stand-in for Nextcloud's two harp endpoints, answering as a real Nextcloud 31 with
AppAPI 33 does (tests/fixtures/appapi-captures/nextcloud-replies-to-harp.txt):

- exapp-meta: 200 with the ExApp's meta for the right key and an exact (lower-case) app id;
  401 {"message":"Harp shared key is not valid"} for a wrong or missing key, an unknown app or
  an app id of another case.
- user-info: 200 {"user_id", "access_level"} (anonymous: "" and 0); 401 {"message":""} for a
  disabled user's Basic auth; 401 with the key message for a wrong key or unknown app.
- maintenance mode: 503 on both.

Tests change its state directly (apps, users, sessions, delay, fail_status) and read `calls`
and `max_inflight` (the most calls it ever served at once).
"""
import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default 5 drops bursts of connections

KEY_MESSAGE = {"message": "Harp shared key is not valid"}


class FakeNextcloud:
    def __init__(self, key):
        self.key = key
        self.apps = {}        # app id (lower-case) -> meta dict
        self.users = {}       # "user:password" -> (user_id, access_level, enabled)
        self.sessions = {}    # oc_sessionPassphrase -> (user_id, access_level)
        self.delay = 0.0
        self.fail_status = None   # e.g. 500, 503 (maintenance)
        self.calls = []           # (endpoint, app_id, headers)
        self.raw_headers = []     # the header lines of each call, as bytes
        self.inflight = 0
        self.max_inflight = 0
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                fake.handle(self)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def count(self, endpoint, app_id=None):
        with self.lock:
            return sum(1 for e, a, _ in self.calls if e == endpoint and (app_id is None or a == app_id))

    def add_app(self, app_id, port, routes=None, token=None, host="127.0.0.1", version="1.0.0"):
        self.apps[app_id] = {"exapp_token": token or f"{app_id}-token-secret",
                             "exapp_version": version, "host": host, "port": port,
                             "routes": routes or []}
        return self.apps[app_id]

    def handle(self, req):
        url = urlsplit(req.path)
        app_id = parse_qs(url.query).get("appId", [""])[0]
        headers = {k.lower(): v for k, v in req.headers.items()}
        endpoint = url.path.rsplit("/", 1)[-1]
        with self.lock:
            self.calls.append((endpoint, app_id, headers))
            # http.server decodes header bytes as Latin-1: encoding back gives the exact bytes
            self.raw_headers.append([(k.lower(), v.encode("latin-1", "replace"))
                                     for k, v in req.headers.items()])
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
        req.harp_inflight = True
        try:
            self.serve(req, url, app_id, headers, endpoint)
        finally:
            self.done(req)

    def done(self, req):
        """The call no longer counts as in flight: before its answer is sent, so that a client
        that sends its next call as soon as it has the answer is not counted twice."""
        with self.lock:
            if getattr(req, "harp_inflight", False):
                req.harp_inflight = False
                self.inflight -= 1

    def serve(self, req, url, app_id, headers, endpoint):
        if self.delay:
            time.sleep(self.delay)
        if url.path not in ("/index.php/apps/app_api/harp/exapp-meta",
                            "/index.php/apps/app_api/harp/user-info"):
            return self.reply(req, 404, {"message": "not found"})
        if self.fail_status:
            return self.reply(req, self.fail_status, {"message": "failure"})
        if headers.get("harp-shared-key") != self.key or app_id not in self.apps:
            return self.reply(req, 401, KEY_MESSAGE)
        if endpoint == "exapp-meta":
            return self.reply(req, 200, self.apps[app_id])
        return self.user_info(req, headers)

    def user_info(self, req, headers):
        auth = headers.get("authorization", "")
        if auth.startswith("Basic "):
            try:
                creds = base64.b64decode(auth[6:]).decode("utf-8", "replace")
            except ValueError:  # not base64: nobody
                creds = ""
            user = self.users.get(creds)
            if user is None:
                return self.reply(req, 200, {"user_id": "", "access_level": 0})
            user_id, level, enabled = user
            if not enabled:
                return self.reply(req, 401, {"message": ""})
            return self.reply(req, 200, {"user_id": user_id, "access_level": level})
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == "oc_sessionPassphrase" and value in self.sessions:
                user_id, level = self.sessions[value]
                return self.reply(req, 200, {"user_id": user_id, "access_level": level})
        return self.reply(req, 200, {"user_id": "", "access_level": 0})

    def reply(self, req, status, obj):
        body = json.dumps(obj, separators=(",", ":")).encode()
        self.done(req)
        req.send_response(status)
        req.send_header("Content-Type", "application/json; charset=utf-8")
        req.send_header("Content-Length", str(len(body)))
        req.send_header("Connection", "close")
        req.end_headers()
        req.wfile.write(body)
        req.close_connection = True
