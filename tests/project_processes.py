"""The project run as processes of its own (gunicorn, manage.py), for the tests that need
a real server: a free loopback port, and the environment of such a process."""

import os
import secrets
import socket
from pathlib import Path

from cryptography.fernet import Fernet

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def project_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """A project process's environment: its own SQLite file and var/ in `tmp_path`, fresh
    keys, DEBUG off over plain http (as behind a TLS-terminating proxy), `settings` on top.
    The test's own database, Redis and settings module are never passed on."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'kokatto.sqlite3'}",
        KOKATTO_VAR_DIR=str(tmp_path / "var"),
        SECRET_KEY=secrets.token_urlsafe(32),
        FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        DEBUG="false",
        SECURE_SSL_REDIRECT="false",
        **settings,
    )
    return env
