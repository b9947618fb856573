# SPDX-License-Identifier: AGPL-3.0-or-later
"""A stand-in for Nextcloud's two harp endpoints, answering as a real Nextcloud 31 with
AppAPI 33 does (tests/fixtures/appapi-captures/nextcloud-replies-to-harp.txt):

- exapp-meta: 200 with the ExApp's meta for the right key and an exact (lower-case) app id;
  401 {"message":"Harp shared key is not valid"} for a wrong or missing key, an unknown app or
  an app id of another case.
- user-info: 200 {"user_id", "access_level"} (anonymous: "" and 0); 401 {"message":""} for a
  disabled user's Basic auth; 401 with the key message for a wrong key or unknown app.
- maintenance mode: 503 on both.

And one AppAPI endpoint an ExApp calls signed with its secret, which harp-ctl uses to learn
whether an app it removed is enabled again (docs/compat.md):

- POST /ocs/v2.php/apps/app_api/api/v1/ex-app/config/get-values with EX-APP-ID,
  EX-APP-VERSION and AUTHORIZATION-APP-API = base64("<user>:<secret>"): AppAPI's
  AppAPIService::validateExAppRequestToNC refuses (401) an unknown app, a wrong secret and a
  disabled app (unless it is initialising); a version other than the one it holds makes it
  store that version, disable the app and refuse. Otherwise the OCS answer with the values
  asked for (AppConfigController::getAppConfigValues), none here. Nextcloud's exapp-meta
  answers for disabled apps as for enabled ones.

Tests change its state directly (apps, disabled, users, sessions, delay, fail_status) and read
`calls`
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
CONFIG_GET_VALUES = "/ocs/v2.php/apps/app_api/api/v1/ex-app/config/get-values"


class FakeNextcloud:
    def __init__(self, key):
        self.key = key
        self.apps = {}        # app id (lower-case) -> meta dict
        self.disabled = set()  # app ids AppAPI holds disabled (exapp-meta answers them too)
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

            def do_POST(self):
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
        headers = {k.lower(): v for k, v in req.headers.items()}
        app_id = parse_qs(url.query).get("appId", [headers.get("ex-app-id", "")])[0]
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
        if self.fail_status:
            return self.reply(req, self.fail_status, {"message": "failure"})
        if (req.command, url.path) == ("POST", CONFIG_GET_VALUES):
            return self.config_get_values(req, headers)
        if req.command != "GET" or url.path not in ("/index.php/apps/app_api/harp/exapp-meta",
                                                    "/index.php/apps/app_api/harp/user-info"):
            return self.reply(req, 404, {"message": "not found"})
        if headers.get("harp-shared-key") != self.key or app_id not in self.apps:
            return self.reply(req, 401, KEY_MESSAGE)
        if endpoint == "exapp-meta":
            return self.reply(req, 200, self.apps[app_id])
        return self.user_info(req, headers)

    def config_get_values(self, req, headers):
        length = int(headers.get("content-length", "0"))
        body = json.loads(req.rfile.read(length) or b"{}")
        app_id = headers.get("ex-app-id", "")
        try:
            _, _, secret = base64.b64decode(headers.get("authorization-app-api", "")).decode() \
                .partition(":")
        except ValueError:
            secret = None
        app = self.apps.get(app_id)
        if app is None or secret != app["exapp_token"] or app_id in self.disabled:
            return self.reply(req, 401, {"message": "AppAPI authentication failed"})
        if headers.get("ex-app-version", "") != app["exapp_version"]:
            app["exapp_version"] = headers.get("ex-app-version", "")
            self.disabled.add(app_id)
            return self.reply(req, 401, {"message": "AppAPI authentication failed"})
        if not isinstance(body.get("configKeys"), list):
            return self.reply(req, 400, {"ocs": {"meta": {"status": "failure", "statuscode": 400,
                                                          "message": ""}, "data": []}})
        # the app stores no configuration here: no values to answer
        return self.reply(req, 200, {"ocs": {"meta": {"status": "ok", "statuscode": 200,
                                                      "message": "OK"}, "data": []}})

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
