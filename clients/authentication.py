"""Who is calling the API: a client identified by `clientId` and proven by its signature."""

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from clients.config_cache import cached
from clients.models import Client, SecretKey
from clients.signing import sign, signature_matches

logger = logging.getLogger(__name__)

# Signing against this when the client is unknown keeps the response time the
# same as for a known client with a wrong signature.
_DECOY_SECRET = secrets.token_urlsafe(32)
LAST_USED_PRECISION = timedelta(minutes=1)


@dataclass
class AuthenticationError(Exception):
    code: str  # INVALID_SIGNATURE, EXPIRED_TIMESTAMP or CLIENT_INACTIVE
    message: str


def authenticate_request(parameters: dict[str, str]) -> tuple[Client, SecretKey]:
    """Return the client that signed `parameters` and the key it used.

    Raises AuthenticationError: INVALID_SIGNATURE for a missing or wrong
    signature or an unknown client (deliberately the same answer),
    EXPIRED_TIMESTAMP for a timestamp outside the allowed window, and
    CLIENT_INACTIVE for a correctly signed request of an inactive client.
    The caller checks first that `timestamp` is present and numeric.
    """
    client_id = parameters.get("clientId", "")
    signature = parameters.get("signature", "")
    keys = cached(("api-keys", client_id), lambda: _active_keys(client_id)) if client_id else []
    now = timezone.now()
    keys = [(key, secret) for key, secret in keys if key.expires_at is None or key.expires_at > now]

    key = next((k for k, secret in keys if signature_matches(parameters, secret, signature)), None)
    if key is None:
        if not keys:
            sign(parameters, _DECOY_SECRET)
        # Enough to investigate, never the secret or the whole signature.
        logger.warning(
            "API signature check failed: clientId=%r signature=%r… (%d usable keys)",
            client_id[:32],
            signature[:6],
            len(keys),
        )
        raise AuthenticationError("INVALID_SIGNATURE", "The signature is missing or wrong.")

    skew = abs(time.time() - int(parameters["timestamp"]))
    if skew > settings.API_TIMESTAMP_TOLERANCE_SECONDS:
        raise AuthenticationError(
            "EXPIRED_TIMESTAMP",
            f"The timestamp is {int(skew)} s away from the server's clock; "
            f"at most {settings.API_TIMESTAMP_TOLERANCE_SECONDS} s is accepted.",
        )
    client = key.client
    if not client.is_active:
        raise AuthenticationError("CLIENT_INACTIVE", f"Client {client.client_id} is inactive.")
    _record_use(key)
    return client, key


def _active_keys(client_id: str) -> list[tuple[SecretKey, str]]:
    """The client's active keys (with its Client joined) and their decrypted secrets."""
    keys = SecretKey.objects.filter(client__client_id=client_id, is_active=True).select_related(
        "client"
    )
    return [(key, key.secret()) for key in keys]


def _record_use(key: SecretKey) -> None:
    # One write a minute per key at most: the hot path stays read-only.
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_PRECISION:
        SecretKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now  # the cached copy too
