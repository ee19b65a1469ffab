"""Encryption at rest for secrets the platform must be able to read back.

API secret keys (to verify HMAC signatures) and batch archive passwords (to
open clients' 7z files) cannot be hashed, so they are stored as Fernet tokens
keyed by settings.FIELD_ENCRYPTION_KEYS. The first key encrypts; every key
decrypts, so an operator can rotate by prepending a new key, re-encrypting what
is stored (`manage.py rotate_encryption_keys`, clients/key_rotation.py), and then
dropping the old key.

Every column holding such tokens is an EncryptedTextField: rotation and the
deploy check find them all through it, so a new encrypted column is rotated
without being listed anywhere else.
"""

from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.apps import apps
from django.conf import settings
from django.db import models


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in keys])


@lru_cache(maxsize=4)
def _first_key(key: str) -> Fernet:
    return Fernet(key.encode())


def encrypt_text(plaintext: str) -> str:
    """Return a Fernet token (ASCII text) holding `plaintext`."""
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).encrypt(plaintext.encode()).decode()


def decrypt_text(token: str) -> str:
    """Return the plaintext of a token made by `encrypt_text`.

    Raises cryptography.fernet.InvalidToken if no configured key opens it.
    """
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).decrypt(token.encode()).decode()


class TokenState(Enum):
    CURRENT = "encrypted with the first key"
    OLD_KEY = "encrypted with another configured key"
    UNREADABLE = "opened by no configured key"


def token_state(token: str) -> TokenState:
    """Which of the configured keys opens `token`.

    A Fernet token does not name its key, so the first key alone is tried, then
    all of them: an HMAC-SHA256 check per key, a few microseconds each.
    """
    try:
        _first_key(settings.FIELD_ENCRYPTION_KEYS[0]).decrypt(token.encode())
        return TokenState.CURRENT
    except InvalidToken:
        pass
    try:
        decrypt_text(token)
    except InvalidToken:
        return TokenState.UNREADABLE
    return TokenState.OLD_KEY


def reencrypt_text(token: str) -> str:
    """`token`'s plaintext encrypted with the first key (its original timestamp kept).

    Raises InvalidToken if no configured key opens it.
    """
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).rotate(token.encode()).decode()


class EncryptedTextField(models.TextField):
    """A text column holding Fernet tokens made by `encrypt_text` (never plaintext).

    Encrypting and decrypting stay explicit in the model's methods; this class
    marks the column for rotation and the deploy check. `client_lookup` is the
    lookup from the model to its client's clientId, to name the client of a
    value that cannot be decrypted. To migrations it is a plain TextField.
    """

    def __init__(self, *args, client_lookup: str = "client__client_id", **kwargs):
        self.client_lookup = client_lookup
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, _, args, kwargs = super().deconstruct()
        return name, "django.db.models.TextField", args, kwargs


@dataclass(frozen=True)
class EncryptedColumn:
    model: type[models.Model]
    field: EncryptedTextField

    @property
    def label(self) -> str:
        return f"{self.model._meta.db_table}.{self.field.column}"


def encrypted_columns() -> list[EncryptedColumn]:
    """Every EncryptedTextField of every installed model, in a stable order."""
    return [
        EncryptedColumn(model, field)
        for model in apps.get_models()
        for field in model._meta.local_fields
        if isinstance(field, EncryptedTextField)
    ]
