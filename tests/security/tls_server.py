"""A client's https server on a loopback address, with a certificate for its host name.

A test certificate authority signs the server's certificate for `host_name`; a test
trusts it through SSL_CERT_FILE (read by OpenSSL whenever the HTTP client makes a context).
The server records the name each connection asked for (SNI) and each request's Host.
"""

import contextlib
import datetime
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _certificate(subject: str, key, issuer_name, issuer_key, *, ca: bool, dns_name: str = ""):
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if dns_name:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(obj) -> bytes:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_test_ca_and_server_certificate(directory: Path, host_name: str) -> tuple[Path, Path]:
    """(the CA's certificate file, the server's certificate-and-key file)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Kokatto test CA")])
    ca = _certificate("Kokatto test CA", ca_key, ca_name, ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    server = _certificate(host_name, key, ca_name, ca_key, ca=False, dns_name=host_name)
    ca_file, server_file = directory / "ca.pem", directory / "server.pem"
    ca_file.write_bytes(_pem(ca))
    server_file.write_bytes(_pem(server) + _pem(key))
    return ca_file, server_file


class TlsServer:
    """`keep_alive`: answer in HTTP/1.1 and keep each connection for the next request
    (HTTP/1.0 otherwise: a connection a request)."""

    def __init__(self, host: str, certificate_file: Path, *, keep_alive: bool = False):
        self.server_names: list[str | None] = []
        self.hosts: list[str] = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                peer.hosts.append(self.headers["Host"])
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate_file)
        context.sni_callback = lambda sock, name, ctx: self.server_names.append(name)
        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.handle_error = lambda *args: None  # a refused handshake: the test's point
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def tls_server(host: str, certificate_file: Path, *, keep_alive: bool = False):
    server = TlsServer(host, certificate_file, keep_alive=keep_alive)
    try:
        yield server
    finally:
        server.stop()
