"""Secrets that a single machine can make for itself when none is configured.

`make run` and `make test` need no exported variables, so on first start the
Django SECRET_KEY and the field-encryption key are generated into `var/` and
read from there afterwards. A deployment on several machines sets both in the
environment instead: every machine must share them.
"""

import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet


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
    raw = configured or read_or_create_secret(fallback_path, lambda: Fernet.generate_key().decode())
    return [key.strip() for key in raw.split(",") if key.strip()]


def django_secret_key(configured: str, fallback_path: Path) -> str:
    return configured or read_or_create_secret(fallback_path, lambda: secrets.token_urlsafe(50))
