"""Secrets that a single machine can make for itself when none is configured.

`make run` and `make test` need no exported variables, so on first start the
Django SECRET_KEY and the field-encryption key are generated into `var/` and
read from there afterwards. A deployment on several machines sets both in the
environment instead: every machine must share them. Which ones were read from
`var/` is remembered (`secrets_read_from_var`), so that `check --deploy` can
refuse them in production.
"""

import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

_read_from_var: dict[str, str] = {}  # setting name -> the file it was read from


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
    return configured or read_or_create_secret(fallback_path, new_ed25519_pem)


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


def _from_var(name: str, path: Path, make_secret) -> str:
    _read_from_var[name] = str(path)
    return read_or_create_secret(path, make_secret)
