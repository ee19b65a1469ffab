"""Who is calling the API: a client identified by `clientId` and proven by its signature."""

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from cryptography.fernet import InvalidToken
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
    code: str  # INVALID_SIGNATURE, EXPIRED_TIMESTAMP, CLIENT_INACTIVE or KEY_UNREADABLE
    message: str


def authenticate_request(parameters: dict[str, str]) -> tuple[Client, SecretKey]:
    """Return the client that signed `parameters` and the key it used.

    Raises AuthenticationError: INVALID_SIGNATURE for a missing or wrong
    signature or an unknown client (deliberately the same answer),
    EXPIRED_TIMESTAMP for a timestamp outside the allowed window, and
    CLIENT_INACTIVE for a correctly signed request of an inactive client,
    KEY_UNREADABLE (logged) when no readable key matches and one of the client's
    keys is opened by no FIELD_ENCRYPTION_KEY: the request may be signed with it,
    and the platform's fault is not the client's wrong signature. Other clients
    are not concerned. The caller checks first that `timestamp` is present and
    numeric.
    """
    client_id = parameters.get("clientId", "")
    signature = parameters.get("signature", "")
    keys = cached(("api-keys", client_id), lambda: _active_keys(client_id)) if client_id else []
    now = timezone.now()
    keys = [(key, secret) for key, secret in keys if key.expires_at is None or key.expires_at > now]

    readable = [(key, secret) for key, secret in keys if secret is not None]
    key = next(
        (k for k, secret in readable if signature_matches(parameters, secret, signature)), None
    )
    if key is None and len(readable) < len(keys):
        raise _key_unreadable(client_id, [k for k, secret in keys if secret is None])
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


def _active_keys(client_id: str) -> list[tuple[SecretKey, str | None]]:
    """The client's active keys (with its Client joined) and their decrypted secrets,
    None for one that no configured FIELD_ENCRYPTION_KEY opens."""
    keys = SecretKey.objects.filter(client__client_id=client_id, is_active=True).select_related(
        "client"
    )
    return [(key, _secret_or_none(key)) for key in keys]


def _secret_or_none(key: SecretKey) -> str | None:
    try:
        return key.secret()
    except InvalidToken:
        return None


def _key_unreadable(client_id: str, keys: list[SecretKey]) -> AuthenticationError:
    logger.error(
        "API request of client %s refused: its secret key(s) %s are opened by no "
        "FIELD_ENCRYPTION_KEY (dropped before rotate_encryption_keys?)",
        client_id,
        ", ".join(key.fingerprint for key in keys),
    )
    return AuthenticationError(
        "KEY_UNREADABLE",
        "The platform cannot read this client's secret key, so it cannot check the "
        "signature. The platform's operators are alerted; contact support.",
    )


def _record_use(key: SecretKey) -> None:
    # One write a minute per key at most: the hot path stays read-only.
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_PRECISION:
        SecretKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now  # the cached copy too
