"""Secrets that a single machine can make for itself when none is configured.

`make run` and `make test` need no exported variables, so on first start the
Django SECRET_KEY and the field-encryption key are generated into `var/` and
read from there afterwards. A deployment on several machines sets both in the
environment instead: every machine must share them. Which ones were read from
`var/` is remembered (`secrets_read_from_var`), so that `check --deploy` can
refuse them in production.
"""

import datetime
import ipaddress
import os
import secrets
from pathlib import Path

from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID
from django.core.exceptions import ImproperlyConfigured

_read_from_var: dict[str, str] = {}  # setting name -> the file it was read from
# The gateways' identity (SSH host key, FTPS certificate and key) read from `var/`: its own
# list, refused by the batches app's deploy check (batches/checks.py).
_gateway_identity_from_var: dict[str, str] = {}
# A generated FTPS certificate's lifetime: clients pin it, so it should outlive the machine.
GENERATED_CERTIFICATE_DAYS = 3650


def read_or_create_secret(path: Path, make_secret) -> str:
    """Return the secret stored at `path`, creating it (mode 0600) if absent."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    secret = make_secret()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process (web server or worker) won the race: use its secret.
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret


def field_encryption_keys(configured: str, fallback_path: Path) -> list[str]:
    """The Fernet keys from FIELD_ENCRYPTION_KEY (comma-separated), or from `var/`."""
    raw = configured or _from_var(
        "FIELD_ENCRYPTION_KEY", fallback_path, lambda: Fernet.generate_key().decode()
    )
    return [key.strip() for key in raw.split(",") if key.strip()]


def django_secret_key(configured: str, fallback_path: Path) -> str:
    return configured or _from_var("SECRET_KEY", fallback_path, lambda: secrets.token_urlsafe(50))


def sftp_host_key(configured: str, fallback_path: Path) -> str:
    """The SFTP gateway's ed25519 host key (OpenSSH PEM), from SFTP_HOST_KEY or `var/`."""
    if configured:
        return configured
    _gateway_identity_from_var["SFTP_HOST_KEY"] = str(fallback_path)
    return read_or_create_secret(fallback_path, new_ed25519_pem)


def ftps_certificate(
    certificate: str, private_key: str, certificate_path: Path, key_path: Path
) -> tuple[str, str]:
    """The FTPS gateway's certificate and private key (PEM text), from the environment or
    generated once into `var/`: an ECDSA P-256 key and a self-signed certificate for
    localhost and 127.0.0.1, made from the key actually stored (so two processes starting
    at once agree)."""
    if certificate and private_key:
        return certificate, private_key
    if certificate or private_key:
        raise ImproperlyConfigured("Set both FTPS_CERTIFICATE and FTPS_PRIVATE_KEY, or neither.")
    _gateway_identity_from_var["FTPS_CERTIFICATE"] = str(certificate_path)
    _gateway_identity_from_var["FTPS_PRIVATE_KEY"] = str(key_path)
    # Stripped: as read back from the files afterwards.
    key_pem = read_or_create_secret(key_path, new_ec_private_key_pem).strip()
    certificate_pem = read_or_create_secret(certificate_path, lambda: self_signed_pem(key_pem))
    return certificate_pem.strip(), key_pem


def new_ec_private_key_pem() -> str:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


def self_signed_pem(key_pem: str, days: int = GENERATED_CERTIFICATE_DAYS) -> str:
    """A self-signed server certificate of `key_pem` for localhost and 127.0.0.1."""
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Kokatto gateway (generated)")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def new_ed25519_pem() -> str:
    return (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        .decode()
    )


def secrets_read_from_var() -> dict[str, str]:
    """The secrets (setting name -> file) this process read from `var/`, not the environment."""
    return dict(_read_from_var)


def gateway_identity_read_from_var() -> dict[str, str]:
    """The gateway identity settings (name -> file) this process read from `var/`."""
    return dict(_gateway_identity_from_var)


def _from_var(name: str, path: Path, make_secret) -> str:
    _read_from_var[name] = str(path)
    return read_or_create_secret(path, make_secret)
