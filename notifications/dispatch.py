"""Getting deliveries out of the door: claim, render, send, record.

The database is the source of truth (a transactional outbox): a delivery is
committed PENDING with its notification, and workers claim due deliveries in
chunks. A claim is a lease: the delivery turns SENDING until
`lease_expires_at`; a worker that dies mid-chunk leaves its deliveries to be
claimed again when the lease runs out. On PostgreSQL the claim uses
SELECT … FOR UPDATE SKIP LOCKED, so workers on many machines never take the
same delivery; SQLite serialises writers, so there one claim runs at a time.

A delivery recorded SENT is never claimed again. One whose worker died after
handing it to the provider but before recording it is sent again with the same
idempotency key, which providers that support one use to drop the duplicate.
"""

import logging
import time
from datetime import timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from clients.config_cache import cached
from notifications.backends import backends_for
from notifications.backends.base import SENT, TRANSIENT, SendResult
from notifications.backoff import retry_delay
from notifications.events import event_record, events_record_for_ids
from notifications.media import get_medium
from notifications.models import (
    Delivery,
    DeliveryEvent,
    DeliveryStatus,
    Notification,
    NotificationStatus,
)
from notifications.status import notification_refresh_status, notifications_refresh_statuses
from templates_app.models import ContentTemplate
from templates_app.rendering import prepare
from templates_app.validation import PART_ESCAPES_HTML, field_formats

logger = logging.getLogger(__name__)


# Outcomes are recorded in groups of this many sends, or at least this often.
RECORD_EVERY = 20
RECORD_AFTER_SECONDS = 2.0


class NoTemplate(Exception):
    """The delivery's application has no template for its medium."""


class Claim(NamedTuple):
    delivery_id: int
    claim: int  # the delivery's claim counter under this claim: proof the claim is still ours


def dispatch_due(*, limit: int | None = None) -> int:
    """Claim up to `limit` due deliveries and send each. Returns how many were claimed."""
    claims = deliveries_claim(limit=limit or settings.DELIVERY_CHUNK_SIZE)
    # One read for the whole chunk; each send still checks its own claim.
    deliveries = _with_notification(Delivery.objects.filter(pk__in=[c.delivery_id for c in claims]))
    by_id = {delivery.pk: delivery for delivery in deliveries}
    outcomes, recorded_at = [], time.monotonic()
    for claim in claims:
        outcome = _send_claimed(by_id[claim.delivery_id], claim.claim)
        if isinstance(outcome, Outcome):
            outcomes.append(outcome)
        # Recording in groups saves transactions; recording often keeps short
        # the window in which a crash leaves a sent delivery unrecorded.
        if len(outcomes) >= RECORD_EVERY or time.monotonic() - recorded_at > RECORD_AFTER_SECONDS:
            _record_many(outcomes)
            outcomes, recorded_at = [], time.monotonic()
    _record_many(outcomes)
    return len(claims)


def _with_notification(queryset):
    return queryset.select_related("notification__application", "notification__client").order_by()


def deliveries_claim(*, limit: int) -> list[Claim]:
    """Lease up to `limit` deliveries that are due, or whose lease expired."""
    now = timezone.now()
    with transaction.atomic():
        due = _lock_ids(
            Delivery.objects.filter(
                status=DeliveryStatus.PENDING, next_attempt_at__lte=now
            ).order_by("next_attempt_at", "id"),
            limit,
        )
        stale = []
        if len(due) < limit:
            stale = _lock_ids(
                Delivery.objects.filter(
                    status=DeliveryStatus.SENDING, lease_expires_at__lt=now
                ).order_by("lease_expires_at", "id"),
                limit - len(due),
            )
        claimed = due + stale
        if not claimed:
            return []
        Delivery.objects.filter(pk__in=claimed).update(
            status=DeliveryStatus.SENDING,
            lease_expires_at=now + timedelta(seconds=settings.DELIVERY_LEASE_SECONDS),
            claims=F("claims") + 1,
            updated_at=now,
        )
        events_record_for_ids(due, DeliveryStatus.PENDING, DeliveryStatus.SENDING, "claimed")
        events_record_for_ids(
            stale,
            DeliveryStatus.SENDING,
            DeliveryStatus.SENDING,
            "claimed again: the previous worker's lease expired",
        )
        Notification.objects.filter(
            deliveries__pk__in=claimed, status=NotificationStatus.ACCEPTED
        ).update(status=NotificationStatus.PROCESSING, updated_at=now)
        return [
            Claim(*row)
            for row in Delivery.objects.filter(pk__in=claimed)
            .order_by("id")
            .values_list("id", "claims")
        ]


def _lock_ids(queryset, limit: int) -> list[int]:
    if connection.features.has_select_for_update_skip_locked:
        queryset = queryset.select_for_update(skip_locked=True, of=("self",))
    return list(queryset.values_list("id", flat=True)[:limit])


def delivery_send(*, delivery_id: int, claim: int) -> str:
    """Render (once) and send one claimed delivery, then record the outcome.

    `claim` is the claim number the claim gave it. Returns the outcome
    ("sent", "transient", "permanent", "expired", "held"), or "skipped" when
    the delivery is no longer this claim's to send.
    """
    delivery = _with_notification(Delivery.objects).get(pk=delivery_id)
    outcome = _send_claimed(delivery, claim)
    if isinstance(outcome, str):
        return outcome
    if outcome is None or not _record_many([outcome]):
        return "skipped"
    return outcome.result.outcome


def _send_claimed(delivery: Delivery, claim: int) -> "Outcome | str | None":
    """Send one claimed delivery; returns its Outcome to record, None when the
    claim has lapsed, or "held" when quiet hours put it back."""
    if delivery.status != DeliveryStatus.SENDING or delivery.claims != claim:
        return None
    now = timezone.now()
    expires_at = delivery.notification.expires_at
    if expires_at is not None and now >= expires_at:
        return Outcome(delivery, EXPIRED_RESULT, provider="")
    if get_medium(delivery.medium).held_in_quiet_hours:
        held_until = delivery.notification.client.quiet_hours_end_after(now)
        if held_until is not None:
            return _hold(delivery, held_until)
    content = {}
    if delivery.template_version_id is None:
        try:
            content = rendered_content(delivery)
        except NoTemplate as exc:
            return Outcome(delivery, SendResult.permanent(str(exc)), provider="")
    # A chunk can take longer than the lease it was claimed with; a worker whose
    # lease ran out must not send what another worker may have claimed since.
    # So each send first renews this claim's lease and counts the attempt, and
    # goes ahead only if the claim is still valid. (The rendering is stored when
    # the outcome is recorded.)
    renewed = Delivery.objects.filter(
        pk=delivery.pk, status=DeliveryStatus.SENDING, claims=claim, lease_expires_at__gt=now
    ).update(
        lease_expires_at=now + timedelta(seconds=settings.DELIVERY_LEASE_SECONDS),
        attempts=F("attempts") + 1,
    )
    if not renewed:
        return None
    delivery.attempts += 1
    for name, value in content.items():
        setattr(delivery, name, value)
    backends = backends_for(delivery.medium)
    backend = backends[_backend_index(delivery.attempts, len(backends))]
    try:
        result = backend.send(delivery)
    except Exception as exc:
        # A backend bug must not leave the delivery stuck in SENDING.
        logger.exception("Backend %s failed on delivery %s", backend.name, delivery.pk)
        result = SendResult.transient(f"{type(exc).__name__}: {exc}")
    rendered = (
        f"; rendered with template version {content['template_version'].number}" if content else ""
    )
    return Outcome(delivery, result, backend.name, len(backends), rendered)


# Not a provider's answer: the platform's own decision not to send late.
EXPIRED_RESULT = SendResult("expired", error="expiresAt passed before it could be sent")


def _backend_index(attempts: int, backend_count: int) -> int:
    """Failover: DELIVERY_MAX_ATTEMPTS attempts on each backend, in the configured order."""
    return min((attempts - 1) // settings.DELIVERY_MAX_ATTEMPTS, backend_count - 1)


class Outcome(NamedTuple):
    """What became of one claimed delivery, waiting to be recorded."""

    delivery: Delivery
    result: SendResult
    provider: str
    backend_count: int = 1
    note: str = ""


def _record(delivery: Delivery, result: SendResult, *, provider: str, **options) -> str:
    """Record one outcome now; returns the outcome, or "skipped" if the claim lapsed."""
    recorded = _record_many([Outcome(delivery, result, provider, **options)])
    return result.outcome if recorded else "skipped"


def _record_many(outcomes: list[Outcome]) -> int:
    """Store outcomes, their events and their notifications' statuses in one transaction.

    Returns how many were recorded: one whose claim lapsed meanwhile (another
    worker claimed it again after our lease ran out) is left to that worker.
    """
    if not outcomes:
        return 0
    now = timezone.now()
    events, notifications = [], {}
    with transaction.atomic():
        for outcome in outcomes:
            delivery = outcome.delivery
            new_status, changes, detail = _outcome_changes(outcome, now)
            # The claim number proves the claim is still ours.
            updated = Delivery.objects.filter(
                pk=delivery.pk, status=DeliveryStatus.SENDING, claims=delivery.claims
            ).update(status=new_status, **changes)
            if not updated:
                logger.warning("Delivery %s was claimed by another worker meanwhile", delivery.pk)
                continue
            events.append(
                DeliveryEvent(
                    delivery_id=delivery.pk,
                    old_status=DeliveryStatus.SENDING,
                    new_status=new_status,
                    detail=detail + outcome.note,
                )
            )
            notifications[delivery.notification_id] = bool(
                delivery.notification.client.callback_url
            )
        DeliveryEvent.objects.bulk_create(events)
        if notifications:
            notifications_refresh_statuses(
                notification_ids=sorted(notifications), wants_callbacks=notifications
            )
    return len(events)


def _outcome_changes(outcome: Outcome, now) -> tuple[str, dict, str]:
    """The delivery's new status, the fields to store and the event's detail."""
    delivery, result, provider = outcome.delivery, outcome.result, outcome.provider
    changes = {"lease_expires_at": None, "updated_at": now, "last_error": result.error}
    if delivery.template_version_id is not None:
        changes.update(
            subject=delivery.subject,
            body=delivery.body,
            html_body=delivery.html_body,
            template_version_id=delivery.template_version_id,
        )
    if result.outcome == SENT:
        changes.update(
            sent_at=now, provider=provider, provider_message_id=result.provider_message_id
        )
        detail = f"sent by {provider}" + (
            f" as {result.provider_message_id}" if result.provider_message_id else ""
        )
        return DeliveryStatus.SENT, changes, detail
    if result.outcome == EXPIRED_RESULT.outcome:
        return DeliveryStatus.EXPIRED, changes, "not sent: expiresAt passed"
    if (
        result.outcome == TRANSIENT
        and delivery.attempts < settings.DELIVERY_MAX_ATTEMPTS * outcome.backend_count
    ):
        # Each backend starts its own backoff from the base delay.
        retry_at = now + retry_delay((delivery.attempts - 1) % settings.DELIVERY_MAX_ATTEMPTS + 1)
        failure = f"attempt {delivery.attempts} by {provider} failed ({result.error})"
        expires_at = delivery.notification.expires_at
        if expires_at is not None and retry_at >= expires_at:
            return DeliveryStatus.EXPIRED, changes, f"{failure}; a retry would come after expiresAt"
        changes["next_attempt_at"] = retry_at
        return DeliveryStatus.PENDING, changes, f"{failure}; retry at {retry_at:%H:%M:%S}"
    detail = (
        f"failed after {delivery.attempts} attempt(s), last by {provider}: {result.error}"
        if provider
        else f"failed: {result.error}"
    )
    return DeliveryStatus.FAILED, changes, detail


def _hold(delivery: Delivery, until) -> str:
    """Put a delivery back until the client's quiet hours end (no attempt was made)."""
    expires_at = delivery.notification.expires_at
    if expires_at is not None and until >= expires_at:
        return _record(delivery, EXPIRED_RESULT, provider="")
    with transaction.atomic():
        updated = Delivery.objects.filter(
            pk=delivery.pk, status=DeliveryStatus.SENDING, claims=delivery.claims
        ).update(
            status=DeliveryStatus.PENDING,
            next_attempt_at=until,
            lease_expires_at=None,
            updated_at=timezone.now(),
        )
        if updated:
            event_record(
                delivery.pk,
                DeliveryStatus.SENDING,
                DeliveryStatus.PENDING,
                f"held for the client's quiet hours until {until:%Y-%m-%d %H:%M %Z}",
            )
    return "held"


def rendered_content(delivery: Delivery) -> dict:
    """The delivery's subject, body and HTML body rendered with its template's current version.

    Returns the Delivery fields to store, the version included, so what was sent
    stays known after the template changes. Raises NoTemplate. Workers keep the
    current version for API_CONFIG_CACHE_SECONDS: an edit reaches them within that.
    """
    notification = delivery.notification
    version, fields = cached(
        ("template", notification.application_id, delivery.medium),
        lambda: _current_template(notification.application, delivery.medium),
    )
    if version is None:
        raise NoTemplate(f"{notification.application} has no {delivery.medium} template.")
    content = {
        part: prepare(getattr(version, part), fields, escape_html=escape_html)(notification.params)
        for part, escape_html in PART_ESCAPES_HTML.items()
    }
    return {**content, "template_version": version}


def _current_template(application, medium):
    template = ContentTemplate.objects.filter(application=application, medium=medium).first()
    version = template.versions.order_by("-number").first() if template else None
    return version, field_formats(application)


def delivery_render(*, delivery: Delivery) -> Delivery:
    """Render the delivery's content now and store it with the template version."""
    content = rendered_content(delivery)
    for name, value in content.items():
        setattr(delivery, name, value)
    delivery.save(update_fields=[*content, "updated_at"])
    return delivery


@transaction.atomic
def delivery_retry(*, delivery: Delivery, detail: str) -> bool:
    """Give a FAILED delivery a fresh set of attempts now. Returns False if it was not FAILED."""
    updated = Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.FAILED).update(
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=timezone.now(),
        updated_at=timezone.now(),
    )
    if updated:
        event_record(delivery.pk, DeliveryStatus.FAILED, DeliveryStatus.PENDING, detail)
        notification_refresh_status(notification_id=delivery.notification_id)
    return bool(updated)
