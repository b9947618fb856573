# SPDX-License-Identifier: AGPL-3.0-or-later
"""The benchmark's Nextcloud: user-info says the session cookie "bench-session" is user
"bench" (level 1); everything else is unknown (401, as Nextcloud answers). usage: PORT"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        user = "oc_sessionPassphrase=bench-session" in self.headers.get("Cookie", "")
        if self.path.startswith("/index.php/apps/app_api/harp/user-info") and user:
            status, body = 200, {"user_id": "bench", "access_level": 1}
        else:
            status, body = 401, {"message": "Harp shared key is not valid"}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
