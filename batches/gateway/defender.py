"""Brute-force defence of the file-transfer gateway, like SFTPGo's defender.

The SFTP and FTPS servers call three functions: `gateway_login_refusal` before
checking any credential, then `gateway_login_failed` or `gateway_login_succeeded`.
State is in the database (`GatewayScore`, one row per source; `GatewayLoginFailure`,
the admin's list), so every gateway machine behind a load balancer sees the same bans.

Each failure scores against its source address and its user name (FAILURE_POINTS).
An unknown user name scores 2 against the address and nothing against the name: there
is no account to protect, and a flood of invented names must not add rows. A source
whose score reaches GATEWAY_BAN_THRESHOLD within GATEWAY_BAN_WINDOW_SECONDS of its
first failure is banned for GATEWAY_BAN_SECONDS, doubled on each repeat ban up to
GATEWAY_BAN_MAX_SECONDS. An IPv6 address is scored by its /64: one subscriber gets a
whole /64 and can rotate through it at will.
"""

import ipaddress
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.admin.models import DELETION, LogEntry
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from batches.gateway.ban_models import (
    GatewayLoginFailure,
    GatewayScore,
    LoginFailureReason,
    ScoreKind,
)

# (points against the address, points against the user name) per reason.
FAILURE_POINTS = {
    LoginFailureReason.WRONG_PASSWORD: (1, 1),
    LoginFailureReason.WRONG_KEY: (1, 1),
    LoginFailureReason.UNKNOWN_USER: (2, 0),
    LoginFailureReason.DISABLED_ACCOUNT: (1, 1),
    LoginFailureReason.ADDRESS_NOT_ALLOWED: (1, 1),
    LoginFailureReason.PROTOCOL_NOT_ALLOWED: (1, 1),
}

# The failure path prunes when the id of the failure it records is a multiple of this:
# the ids come from one database sequence, so that is every PRUNE_EVERY failures over
# all gateway machines together, with no counter of its own.
PRUNE_EVERY = 100

USERNAME_MAX_LENGTH = GatewayScore._meta.get_field("value").max_length


def address_key(address: str) -> str:
    """The source an address scores against: itself (IPv4) or its /64 (IPv6).

    An IPv4-mapped IPv6 address (::ffff:192.0.2.1, as a dual-stack socket reports
    an IPv4 peer) is its IPv4 address.
    """
    ip = ipaddress.ip_address(address)
    if ip.version == 6 and ip.ipv4_mapped:
        return str(ip.ipv4_mapped)
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def gateway_login_refusal(*, address: str, username: str) -> str | None:
    """Why a login from this address for this user name is refused now, or None.

    One query on the (kind, value) index. It only reads: an attempt while banned does not
    extend the ban, so a locked-out client knows when it may try again, and a flood of
    refused attempts writes nothing. The server should answer a refused client exactly as
    a failed one, so that a ban on a user name does not tell that the name exists.
    """
    bans = (
        GatewayScore.objects.filter(banned_until__gt=timezone.now())
        .filter(
            Q(kind=ScoreKind.ADDRESS, value=address_key(address))
            | Q(kind=ScoreKind.USERNAME, value=username[:USERNAME_MAX_LENGTH])
        )
        .order_by("kind")
        .values_list("kind", "value", "banned_until")
    )
    for kind, value, until in bans:
        return f"{ScoreKind(kind).label.lower()} {value} banned until {until.isoformat()}"
    return None


def gateway_login_failed(
    *, address: str, username: str, protocol: str, reason: LoginFailureReason
) -> list[GatewayScore]:
    """Record a failed login and score it; returns the bans it started (usually none)."""
    now = timezone.now()
    username = username[:USERNAME_MAX_LENGTH]
    failure = GatewayLoginFailure.objects.create(
        address=address, username=username, protocol=protocol, reason=reason, created_at=now
    )
    address_points, username_points = FAILURE_POINTS[LoginFailureReason(reason)]
    scored = [(ScoreKind.ADDRESS, address_key(address), address_points)]
    if username_points and username:
        scored.append((ScoreKind.USERNAME, username, username_points))
    started = [
        ban
        for kind, value, points in scored
        if (ban := _score_add(kind=kind, value=value, points=points, now=now)) is not None
    ]
    if failure.pk % PRUNE_EVERY == 0:
        gateway_defender_prune(
            older_than=now - timedelta(seconds=settings.GATEWAY_DEFENDER_KEEP_SECONDS)
        )
    return started


def gateway_login_succeeded(*, address: str, username: str, protocol: str) -> None:
    """Nothing to undo: a success clears no score (as django-axes here, kokatto_site/sign_in).

    Clearing the address's score would let an attacker holding one account reset the
    count of their guesses at every other; a user name's score expires with its window.
    """


@transaction.atomic
def _score_add(*, kind: str, value: str, points: int, now: datetime) -> GatewayScore | None:
    """Add points to one source, under its row lock; the row if this starts its ban.

    Each source in its own transaction: two gateways scoring the same address and user
    name never wait on each other in opposite orders.
    """
    row, _ = GatewayScore.objects.select_for_update().get_or_create(
        kind=kind, value=value, defaults={"window_started_at": now, "last_failure_at": now}
    )
    if row.banned_until and row.banned_until > now:
        return None  # checked before the ban began: the ban already counts it
    if row.window_started_at <= now - timedelta(seconds=settings.GATEWAY_BAN_WINDOW_SECONDS):
        row.score, row.window_started_at = 0, now
    row.score += points
    row.last_failure_at = now
    banned = row.score >= settings.GATEWAY_BAN_THRESHOLD
    if banned:
        row.ban_count += 1
        row.banned_until = now + ban_duration(row.ban_count)
        row.score, row.window_started_at = 0, now
    row.save()
    return row if banned else None


def ban_duration(ban_count: int) -> timedelta:
    """The first ban lasts GATEWAY_BAN_SECONDS, each repeat twice the last, up to the maximum."""
    seconds = settings.GATEWAY_BAN_SECONDS * 2 ** min(ban_count - 1, 32)
    return timedelta(seconds=min(seconds, settings.GATEWAY_BAN_MAX_SECONDS))


def gateway_defender_prune(*, older_than: datetime) -> int:
    """Delete what the defence no longer needs; returns how many rows went.

    Failed logins before `older_than`, and all but the newest GATEWAY_FAILURE_LOG_MAX_ROWS.
    Sources not banned now that were never banned and whose window has passed (their
    score would restart anyway), or whose last failure is before `older_than` (a repeat
    ban after that counts as a first). So the score table holds at most the sources that
    failed within one window plus those banned in the keep time, each having failed at
    least GATEWAY_BAN_THRESHOLD / 2 times.
    """
    now = timezone.now()
    failures = GatewayLoginFailure.objects.filter(created_at__lt=older_than).delete()[0]
    newest = GatewayLoginFailure.objects.order_by("-id").values_list("id", flat=True).first()
    if newest is not None:
        cutoff = newest - settings.GATEWAY_FAILURE_LOG_MAX_ROWS
        failures += GatewayLoginFailure.objects.filter(id__lte=cutoff).delete()[0]
    window_start = now - timedelta(seconds=settings.GATEWAY_BAN_WINDOW_SECONDS)
    scores = (
        GatewayScore.objects.exclude(banned_until__gt=now)
        .filter(
            Q(ban_count=0, window_started_at__lte=window_start) | Q(last_failure_at__lt=older_than)
        )
        .delete()[0]
    )
    return failures + scores


@transaction.atomic
def gateway_bans_lift(bans, *, by) -> int:
    """Lift these bans (GatewayScore rows) by deleting them, audit-logged; returns how many.

    The source starts afresh: its score and its count of past bans go with the row.
    """
    bans = list(bans)
    if bans:
        LogEntry.objects.log_actions(
            user_id=by.pk,
            queryset=bans,
            action_flag=DELETION,
            change_message="Lifted the gateway ban.",
        )
    GatewayScore.objects.filter(pk__in=[ban.pk for ban in bans]).delete()
    return len(bans)
