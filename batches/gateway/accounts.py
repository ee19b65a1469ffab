"""Gateway accounts: creating them, and deciding whether a login is let in.

Used by the admin, `create_sftp_account` and the gateway servers. A refused
login says nothing about why to the client; the reason is logged.
"""

import ipaddress
import logging
from collections.abc import Callable

from django.contrib.auth.hashers import check_password, make_password
from django.core.exceptions import ValidationError
from django.db import transaction

from batches.gateway.audit import gateway_event_record
from batches.gateway.ban_models import LoginFailureReason
from batches.gateway.defender import (
    gateway_login_failed,
    gateway_login_refusal,
    gateway_login_succeeded,
)
from batches.gateway.protocols import GatewayProtocol
from batches.gateway.public_keys import blob_fingerprint
from batches.models import (
    GatewayAccount,
    GatewayAction,
    GatewayOutcome,
    GatewayPublicKey,
    network_list,
)
from clients.models import Client

logger = logging.getLogger("batches.gateway")

# Checked when the username is unknown (or has no password), so that the answer
# takes as long as for a known one.
_DUMMY_HASH = make_password("not a password of any account")
# A wrong password or key: which of the two is known only to the caller.
WRONG_CREDENTIAL = "wrong credential"


def gateway_account_create(
    *,
    client: Client,
    username: str,
    password: str | None = None,
    public_keys: tuple[str, ...] | list[str] = (),
    protocols: tuple[str, ...] | list[str] = (GatewayProtocol.SFTP,),
    allowed_networks: str = "",
) -> GatewayAccount:
    """A new enabled account; ValidationError (one message) for any bad input."""
    if not password and not public_keys:
        raise ValidationError("Give a password or a public key: an account needs one to log in.")
    unknown = set(protocols) - set(GatewayProtocol.values)
    if unknown or not protocols:
        raise ValidationError(
            f"Unknown protocol {', '.join(sorted(unknown)) or '(none)'}: "
            f"choose from {', '.join(GatewayProtocol.values)}."
        )
    if GatewayAccount.objects.filter(username=username).exists():
        raise ValidationError(f"The username {username!r} is taken.")
    account = GatewayAccount(
        client=client,
        username=username,
        password=make_password(password) if password else "",
        sftp_allowed=GatewayProtocol.SFTP in protocols,
        ftps_allowed=GatewayProtocol.FTPS in protocols,
        allowed_networks=allowed_networks,
    )
    account.full_clean()
    keys = [GatewayPublicKey(key=line) for line in public_keys]
    for key in keys:
        key.full_clean(exclude=["account"])
    with transaction.atomic():
        account.save()
        for key in keys:
            key.account = account
            key.save()
    logger.info("Gateway account %s created for client %s", username, client)
    return account


def gateway_account_authenticate(
    *,
    username: str,
    password: str | None = None,
    public_key: bytes | None = None,
    protocol: str,
    address: str,
    admit: Callable[[GatewayAccount], object] | None = None,
) -> GatewayAccount | None:
    """The account if this login may go in (by password, or by the SSH wire blob of a key).

    `admit`, called with the account once its login is otherwise allowed, may still turn
    it away by answering something falsy (the gateway's session limit, which logs and
    records its own refusal): the credential was right, so that is not scored.

    Every protocol's logins come here, so the brute-force defence (batches/gateway/
    defender.py) sees them all: a banned address or user name is refused before any
    credential is checked, and each refused login scores against both. Each login
    decided on its credential is stored as a gateway event (batches/gateway/audit.py);
    one refused by a ban is only logged, so a flood while banned adds no rows.
    """
    if banned := gateway_login_refusal(address=address, username=username):
        logger.warning("Gateway login refused: user %r from %s: %s", username, address, banned)
        return None
    account = GatewayAccount.objects.select_related("client").filter(username=username).first()
    if password is not None:
        # Always one hash check, against a dummy for an unknown user or one with no password.
        matches = check_password(
            password, account.password if account and account.password else _DUMMY_HASH
        )
        credential_ok = matches and bool(account and account.password)
    elif public_key is not None:
        credential_ok = _holds_key(account, public_key)
    else:
        credential_ok = False
    refusal = _refusal(account, credential_ok, protocol, address)
    if refusal:
        if refusal == WRONG_CREDENTIAL:
            refusal = (
                LoginFailureReason.WRONG_PASSWORD
                if password is not None
                else LoginFailureReason.WRONG_KEY
            )
        logger.warning(
            "Gateway login refused: user %r from %s over %s: %s",
            username,
            address,
            protocol,
            refusal.label,
        )
        gateway_login_failed(address=address, username=username, protocol=protocol, reason=refusal)
        gateway_event_record(
            action=GatewayAction.LOGIN_REFUSED,
            protocol=protocol,
            address=address,
            username=username,
            account=account,
            outcome=GatewayOutcome.REFUSED,
            reason=refusal.label,
        )
        return None
    if admit is not None and not admit(account):
        return None
    gateway_login_succeeded(address=address, username=username, protocol=protocol)
    gateway_event_record(
        action=GatewayAction.LOGIN,
        protocol=protocol,
        address=address,
        username=username,
        account=account,
    )
    logger.info(
        "Gateway login: user %r (client %s) from %s over %s",
        username,
        account.client,
        address,
        protocol,
    )
    return account


def gateway_key_offered(*, username: str, public_key: bytes, protocol: str, address: str) -> bool:
    """Whether a key offered by an SSH client would let it in, before it proves it holds it.

    SSH asks this first (and paramiko again before checking the signature): nothing is
    logged here; the login is decided and logged by `gateway_account_authenticate`
    once the signature is verified.
    """
    if gateway_login_refusal(address=address, username=username):
        return False
    account = GatewayAccount.objects.select_related("client").filter(username=username).first()
    return not _refusal(account, _holds_key(account, public_key), protocol, address)


def _holds_key(account: GatewayAccount | None, public_key: bytes) -> bool:
    """Whether `public_key` (its SSH wire blob) is one of the account's authorised keys."""
    return bool(account) and account.keys.filter(fingerprint=blob_fingerprint(public_key)).exists()


def _refusal(account, credential_ok: bool, protocol: str, address: str):
    """Why the login is refused (WRONG_CREDENTIAL for a wrong password or key), or None.

    Checked after the credential, so the time taken does not tell a reason from another.
    """
    if account is None:
        return LoginFailureReason.UNKNOWN_USER
    if not credential_ok:
        return WRONG_CREDENTIAL
    if not account.enabled or not account.client.is_active:
        return LoginFailureReason.DISABLED_ACCOUNT
    if protocol not in account.protocols():
        return LoginFailureReason.PROTOCOL_NOT_ALLOWED
    if not address_allowed(account, address):
        return LoginFailureReason.ADDRESS_NOT_ALLOWED
    return None


def address_allowed(account: GatewayAccount, address: str) -> bool:
    networks = network_list(account.allowed_networks)
    if not networks:
        return True
    try:
        source = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(source in ipaddress.ip_network(network, strict=False) for network in networks)


def password_set(account: GatewayAccount, password: str) -> None:
    account.password = make_password(password)
    account.save(update_fields=["password", "updated_at"])
