"""The app configured as in production, in a subprocess: settings are read once, at import.

`production_env` holds the README's production variables that the security settings
depend on; the database, Redis and batch storage keep their defaults under a temporary
KOKATTO_VAR_DIR, since nothing here connects to them.
"""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

from kokatto_site.local_secrets import new_ec_private_key_pem, new_ed25519_pem, self_signed_pem

PROJECT = Path(__file__).resolve().parents[2]
HOST = "notif.example.com"
ONE_YEAR = 365 * 24 * 3600


def production_env(var_dir: Path, **overrides) -> dict[str, str]:
    """The production variables (DEBUG unset, so off), with `overrides` on top."""
    env = {
        "PATH": os.environ["PATH"],
        "KOKATTO_VAR_DIR": str(var_dir),
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "RECIPIENT_HASH_KEY": secrets.token_urlsafe(50),
        "METRICS_TOKEN": secrets.token_urlsafe(32),
        "ALLOWED_HOSTS": HOST,
        "CSRF_TRUSTED_ORIGINS": f"https://{HOST}",
        **gateway_identity_env(),
    }
    env.update({name: str(value) for name, value in overrides.items()})
    return env


def gateway_identity_env() -> dict[str, str]:
    """The gateways' SSH host key and FTPS certificate, set as production sets them."""
    key = new_ec_private_key_pem()
    return {
        "SFTP_HOST_KEY": new_ed25519_pem(),
        "FTPS_CERTIFICATE": self_signed_pem(key),
        "FTPS_PRIVATE_KEY": key,
    }


def make_run_env(var_dir: Path) -> dict[str, str]:
    """What `make run` sets: DEBUG=true and nothing else."""
    return {"PATH": os.environ["PATH"], "KOKATTO_VAR_DIR": str(var_dir), "DEBUG": "true"}


def manage(env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


# Runs in the subprocess: each request through Django's test client (the whole
# middleware stack), printed back as status, headers and cookies.
_ANSWER = """
import json, sys
import django
django.setup()
from django.test import Client
answers = []
for request in json.loads(sys.argv[1]):
    response = Client().get(
        request["path"], secure=request["secure"], headers=request["headers"], HTTP_HOST=sys.argv[2]
    )
    cookies = {name: dict(morsel.items()) for name, morsel in response.cookies.items()}
    answers.append(
        {"status": response.status_code, "headers": dict(response.headers), "cookies": cookies}
    )
print(json.dumps(answers))
"""


def answers(env: dict[str, str], *requests: dict, host: str = HOST) -> list[dict]:
    """How the app configured by `env` answers each GET to `host`: {path, secure?, headers?}."""
    requests_ = [{"secure": False, "headers": {}, **request} for request in requests]
    result = subprocess.run(
        [sys.executable, "-c", _ANSWER, json.dumps(requests_), host],
        cwd=PROJECT,
        env={**env, "DJANGO_SETTINGS_MODULE": "kokatto_site.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])
