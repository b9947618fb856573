# SPDX-License-Identifier: AGPL-3.0-or-later
"""The HTTPS frontend (HP_EXAPPS_HTTPS_ADDRESS, $HP_CERTS_DIR/cert.pem) takes a new
certificate when its file changes: new connections get it, open ones keep theirs."""
import hashlib
import os
import socket
import ssl
import subprocess

from harness import free_port, wait_for


def make_pem(d, name, cn):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={cn}", "-keyout", str(d / f"{name}.key"),
                    "-out", str(d / f"{name}.crt")], check=True, capture_output=True)
    return (d / f"{name}.crt").read_bytes() + (d / f"{name}.key").read_bytes()


def install(certs, pem):
    tmp = certs / ".cert.pem.tmp"
    tmp.write_bytes(pem)
    os.rename(tmp, certs / "cert.pem")


def fingerprint(pem):
    der = ssl.PEM_cert_to_DER_cert(pem.decode().split("-----BEGIN PRIVATE KEY-----")[0])
    return hashlib.sha256(der).hexdigest()


class Conn:
    """One keep-alive HTTPS connection."""

    def __init__(self, port):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10))
        self.cert = hashlib.sha256(self.s.getpeercert(binary_form=True)).hexdigest()

    def get(self, path):
        self.s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.s.recv(65536)
            assert chunk, "closed"
            head += chunk
        head, body = head.split(b"\r\n\r\n", 1)
        length = int([ln.split(b":")[1] for ln in head.split(b"\r\n")
                      if ln.lower().startswith(b"content-length:")][0])
        while len(body) < length:
            body += self.s.recv(65536)
        return head.split(b" ")[1]

    def close(self):
        self.s.close()


def test_https_certificate_reloads_when_its_file_changes(make_gateway, tmp_path):
    certs = tmp_path / "certs"
    certs.mkdir()
    a, b = make_pem(certs, "a", "a.example"), make_pem(certs, "b", "b.example")
    install(certs, a)
    port = free_port()
    gw = make_gateway(env={"HP_CERTS_DIR": str(certs),
                           "HP_EXAPPS_HTTPS_ADDRESS": f"127.0.0.1:{port}"})
    first = Conn(port)
    assert first.cert == fingerprint(a) and first.get("/exapps/testapp/public/1") == b"200"
    install(certs, b)
    second = Conn(port)  # the file is looked at before this connection is accepted
    assert second.cert == fingerprint(b) and second.get("/exapps/testapp/public/2") == b"200"
    wait_for(lambda: "HTTPS certificate" in gw.dps[0].log(), what="the reload logged")
    # The connection opened before goes on with its certificate.
    assert first.get("/exapps/testapp/public/3") == b"200"
    # A file that does not hold a certificate and its key is not taken.
    install(certs, b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    third = Conn(port)
    assert third.cert == fingerprint(b) and third.get("/exapps/testapp/public/4") == b"200"
    assert "previous one is kept" in gw.dps[0].log()
    install(certs, a)
    fourth = Conn(port)
    assert fourth.cert == fingerprint(a)
    for c in (first, second, third, fourth):
        c.close()
