"""Encryption keys for the key-rotation tests: an old one configured first, a new one ready."""

import io
from dataclasses import dataclass

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

# A client home on local disk for batches, and the API as clients 8002 and 8003 call it.
from tests.api.conftest import api, api_8003  # noqa: F401
from tests.batches.conftest import batch_home  # noqa: F401


@dataclass
class EncryptionKeys:
    settings: object
    old: str
    new: str

    def configure(self, *keys: str) -> None:
        """FIELD_ENCRYPTION_KEY as an operator sets it, e.g. `new,old`."""
        self.settings.FIELD_ENCRYPTION_KEYS = list(keys)


@pytest.fixture
def encryption_keys(settings):
    keys = EncryptionKeys(settings, Fernet.generate_key().decode(), Fernet.generate_key().decode())
    keys.configure(keys.old)
    return keys


def lost_key_token(plaintext: str) -> str:
    """A token made with a key that is configured nowhere (one dropped too early)."""
    return Fernet(Fernet.generate_key()).encrypt(plaintext.encode()).decode()


def rotate(*args: str, fails: bool = False) -> str:
    """Run `manage.py rotate_encryption_keys`; returns what it printed, then its error
    (which makes manage.py exit 1) if it `fails`."""
    out = io.StringIO()
    if not fails:
        call_command("rotate_encryption_keys", *args, stdout=out)
        return out.getvalue()
    with pytest.raises(CommandError) as failed:
        call_command("rotate_encryption_keys", *args, stdout=out)
    return f"{out.getvalue()}\n{failed.value}"
