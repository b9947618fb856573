# SPDX-License-Identifier: AGPL-3.0-or-later
"""harp-dp's refusals leave through one exit (request_fail) that names the reason in the
request's log line (reason=<name>, the names metrics and access logs will count), and a data
plane stopped while host names are being resolved exits cleanly: the resolver thread is joined
before the event loop's context is destroyed (issue 13, defect 4: it used to wake the
destroyed context, a use-after-free inside libwebsockets. ASan does not see into the
uninstrumented library, so a plain build runs under valgrind for this test)."""
import base64
import re
import shutil
import signal
import socket

from harness import HARP_DP, Dp, free_port, wait_for
from helpers.backends import raw_request

KEY = "test-shared-key-0123"


def refusal_line(dp, status, reason):
    pat = re.compile(r"request: \S+ \S+ -> (.*) client=\S+ reason=" + re.escape(reason) + "$",
                     re.M)
    for m in pat.finditer(dp.log()):
        if status is None or m.group(1).startswith(f"{status} "):
            return m.group(0)
    return None


def test_refusals_name_their_reason_in_the_log(gateway):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    gateway.register("deadapp", port=dead, routes=[{"url": ".*", "access_level": 0}])
    cases = [
        ("/exapps/testapp/none", 404, "no_route"),
        ("/exapps/unknown-app/x", 404, "unknown_app"),
        ("/exapps/testapp/admin/x", 403, "access_denied"),
        ("/exapps/app_api/info", 401, "bad_key"),
        ("/exapps/deadapp/x", 503, "upstream_unreachable"),
    ]
    for path, status, _ in cases:
        assert gateway.get(path).status == status, path
    # a malformed head, a traversal and an internal endpoint: 400 and two silent drops
    assert raw_request(gateway.port, b"GET /x HTTP/1.1\r\nHost: x\r\nNo colon\r\n\r\n",
                       timeout=3).startswith(b"HTTP/1.1 400 ")
    assert raw_request(gateway.port, b"GET /exapps/testapp/../x HTTP/1.1\r\nHost: x\r\n\r\n",
                       timeout=3) == b""
    assert raw_request(gateway.port, b"GET /exapps/testapp/init HTTP/1.1\r\nHost: x\r\n\r\n",
                       timeout=3) == b""
    cases += [(None, 400, "bad_request"), (None, None, "traversal"),
              (None, None, "internal_guard")]
    dp = gateway.dps[0]
    for _, status, reason in cases:
        wait_for(lambda: refusal_line(dp, status, reason) is not None,
                 what=f"reason={reason} logged")
    assert "reason=" not in "\n".join(l for l in dp.log().splitlines() if "-> public route" in l
                                     or "-> 200" in l), "a forwarded request is no refusal"


def sanitized():
    with open(HARP_DP, "rb") as f:
        return b"__asan_init" in f.read()


class CheckedDp(Dp):
    """A harp-dp under valgrind's memcheck (exit 99 on an invalid access), unless the build
    is already sanitized."""

    def command(self):
        if sanitized() or shutil.which("valgrind") is None:
            return super().command()
        return ["valgrind", "-q", "--error-exitcode=99", *super().command()]

    def start(self, wait=True):
        super().start(wait=False)
        wait_for(self.ready, timeout=120, what=f"{self.name} ready")
        return self


def test_stop_while_host_names_are_being_resolved(ctl):
    """Many distinct names queue up on the resolver thread; SIGTERM comes while it works
    through them. Repeated, so that the thread is caught between two look-ups."""
    port = free_port()
    for round_ in range(2):
        dp = CheckedDp(ctl, port, f"dp-round{round_}").start()
        socks = []
        for i in range(300):
            host = f"h{round_}-{i}.harp-resolver-test.invalid"
            head = (f"GET /exapps/sig/x HTTP/1.1\r\nHost: x\r\nEX-APP-ID: sig\r\n"
                    f"EX-APP-VERSION: 1\r\nEX-APP-HOST: {host}\r\nEX-APP-PORT: 9\r\n"
                    f"AUTHORIZATION-APP-API: {base64.b64encode(b'a:b').decode()}\r\n"
                    f"harp-shared-key: {KEY}\r\n\r\n")
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(head.encode())
            socks.append(s)
        wait_for(lambda: "harp-resolver-test.invalid does not resolve" in dp.log(),
                 timeout=30, what="the resolver at work")
        dp.proc.send_signal(signal.SIGTERM)
        rc = dp.proc.wait(timeout=120)
        for s in socks:
            s.close()
        assert rc == 0, f"harp-dp exited with {rc} after SIGTERM:\n{dp.log()[-4000:]}"
        assert "AddressSanitizer" not in dp.log()
