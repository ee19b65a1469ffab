"""Issuing and retiring the secret keys that sign a client's API requests."""

import hashlib
import secrets

from django.db import IntegrityError, transaction
from django.utils import timezone

from clients.encryption import encrypt_text
from clients.models import MAX_ACTIVE_SECRET_KEYS, Client, SecretKey

SECRET_BYTES = 32
MIN_SECRET_LENGTH = 32


class SecretKeyError(Exception):
    """A key could not be issued; the message says why, for operators."""


def generate_secret() -> str:
    """A new secret: 32 random bytes, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(SECRET_BYTES)


def fingerprint_of(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


@transaction.atomic
def secret_key_create(*, client: Client, secret: str | None = None) -> tuple[SecretKey, str]:
    """Issue a secret key for `client` and return it with its plaintext secret.

    The plaintext is returned once, here; afterwards only its fingerprint is
    shown. `secret` is for the demo data's well-known key; otherwise a random
    one is generated. Expired active keys are retired first, freeing their
    slot. Raises SecretKeyError when the client is inactive or already has two
    active keys.
    """
    client = Client.objects.select_for_update().get(pk=client.pk)
    if not client.is_active:
        raise SecretKeyError(f"Client {client.client_id} is inactive.")
    if secret is not None and len(secret) < MIN_SECRET_LENGTH:
        raise SecretKeyError(f"A secret key has at least {MIN_SECRET_LENGTH} characters.")

    now = timezone.now()
    client.secret_keys.filter(is_active=True, expires_at__lte=now).update(
        is_active=False, deactivated_at=now
    )
    used_slots = set(client.secret_keys.filter(is_active=True).values_list("slot", flat=True))
    free_slots = [slot for slot in range(1, MAX_ACTIVE_SECRET_KEYS + 1) if slot not in used_slots]
    if not free_slots:
        raise _limit_reached(client)

    secret = secret or generate_secret()
    key = SecretKey(
        client=client,
        slot=free_slots[0],
        secret_encrypted=encrypt_text(secret),
        fingerprint=fingerprint_of(secret),
    )
    try:
        # SQLite has no row locks: a concurrent issue is caught by the slot constraint.
        with transaction.atomic():
            key.save()
    except IntegrityError:
        raise _limit_reached(client) from None
    return key, secret


def secret_key_deactivate(*, key: SecretKey) -> bool:
    """Retire `key` for good. Returns False if it was already inactive."""
    changed = SecretKey.objects.filter(pk=key.pk, is_active=True).update(
        is_active=False, deactivated_at=timezone.now()
    )
    return changed == 1


def _limit_reached(client: Client) -> SecretKeyError:
    return SecretKeyError(
        f"Client {client.client_id} already has {MAX_ACTIVE_SECRET_KEYS} active secret keys; "
        "deactivate one before issuing another."
    )
