"""What identifies the gateways to clients: the SSH host key and the FTPS certificate.

Clients pin these fingerprints when they first connect; the gateway accounts' admin list
shows them and `make run` prints them (`manage.py gateway_fingerprints`).
"""

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from django.conf import settings

from batches.gateway.host_key import sftp_host_key_fingerprint


@dataclass(frozen=True)
class GatewayIdentity:
    ssh_host_key: str  # SHA256:... as OpenSSH prints it
    certificate: str  # SHA-256 of the DER certificate, AB:CD:... as openssl and curl print it
    plain_ftp_allowed: bool


def gateway_identity() -> GatewayIdentity:
    return GatewayIdentity(
        ssh_host_key=sftp_host_key_fingerprint(),
        certificate=certificate_fingerprint(settings.FTPS_CERTIFICATE),
        plain_ftp_allowed=settings.FTPS_ALLOW_PLAIN_FTP,
    )


def certificate_fingerprint(certificate_pem: str) -> str:
    """`openssl x509 -noout -fingerprint -sha256` of the first certificate of the PEM text."""
    certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    digest = certificate.fingerprint(hashes.SHA256())
    return ":".join(f"{byte:02X}" for byte in digest)
