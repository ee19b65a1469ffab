"""Encryption at rest for secrets the platform must be able to read back.

API secret keys (to verify HMAC signatures) and batch archive passwords (to
open clients' 7z files) cannot be hashed, so they are stored as Fernet tokens
keyed by settings.FIELD_ENCRYPTION_KEYS. The first key encrypts; every key
decrypts, so an operator can rotate by prepending a new key.
"""

from functools import lru_cache

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in keys])


def encrypt_text(plaintext: str) -> str:
    """Return a Fernet token (ASCII text) holding `plaintext`."""
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).encrypt(plaintext.encode()).decode()


def decrypt_text(token: str) -> str:
    """Return the plaintext of a token made by `encrypt_text`.

    Raises cryptography.fernet.InvalidToken if no configured key opens it.
    """
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).decrypt(token.encode()).decode()
