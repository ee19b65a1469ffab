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
import random
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from notifications.backends import backends_for
from notifications.backends.base import SENT, TRANSIENT, SendResult
from notifications.events import event_record, events_record_for_ids
from notifications.media import get_medium
from notifications.models import (
    Delivery,
    DeliveryStatus,
    Notification,
    NotificationStatus,
)
from notifications.status import notification_refresh_status
from templates_app.models import ContentTemplate
from templates_app.rendering import prepare
from templates_app.validation import PART_ESCAPES_HTML, field_formats

logger = logging.getLogger(__name__)


class NoTemplate(Exception):
    """The delivery's application has no template for its medium."""


def dispatch_due(*, limit: int | None = None) -> int:
    """Claim up to `limit` due deliveries and send each. Returns how many were claimed."""
    claimed = deliveries_claim(limit=limit or settings.DELIVERY_CHUNK_SIZE)
    for delivery_id in claimed:
        delivery_send(delivery_id=delivery_id)
    return len(claimed)


def deliveries_claim(*, limit: int) -> list[int]:
    """Lease up to `limit` deliveries that are due, or whose lease expired; return their ids."""
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
            attempts=F("attempts") + 1,
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
    return claimed


def _lock_ids(queryset, limit: int) -> list[int]:
    if connection.features.has_select_for_update_skip_locked:
        queryset = queryset.select_for_update(skip_locked=True, of=("self",))
    return list(queryset.values_list("id", flat=True)[:limit])


def delivery_send(*, delivery_id: int) -> str:
    """Render (once) and send one claimed delivery, then record the outcome.

    Returns the outcome ("sent", "transient", "permanent"), or "skipped" when
    the delivery is no longer this worker's to send.
    """
    delivery = Delivery.objects.select_related(
        "notification__application", "notification__client"
    ).get(pk=delivery_id)
    if delivery.status != DeliveryStatus.SENDING:
        return "skipped"
    now = timezone.now()
    expires_at = delivery.notification.expires_at
    if expires_at is not None and now >= expires_at:
        return _record(delivery, EXPIRED_RESULT, provider="")
    if get_medium(delivery.medium).held_in_quiet_hours:
        held_until = delivery.notification.client.quiet_hours_end_after(now)
        if held_until is not None:
            return _hold(delivery, held_until)
    if delivery.template_version_id is None:
        try:
            delivery_render(delivery=delivery)
        except NoTemplate as exc:
            return _record(delivery, SendResult.permanent(str(exc)), provider="")
        event_record(
            delivery.pk,
            DeliveryStatus.SENDING,
            DeliveryStatus.SENDING,
            f"rendered with template version {delivery.template_version.number}",
        )
    backends = backends_for(delivery.medium)
    backend = backends[_backend_index(delivery.attempts, len(backends))]
    try:
        result = backend.send(delivery)
    except Exception as exc:
        # A backend bug must not leave the delivery stuck in SENDING.
        logger.exception("Backend %s failed on delivery %s", backend.name, delivery.pk)
        result = SendResult.transient(f"{type(exc).__name__}: {exc}")
    return _record(delivery, result, provider=backend.name, backend_count=len(backends))


# Not a provider's answer: the platform's own decision not to send late.
EXPIRED_RESULT = SendResult("expired", error="expiresAt passed before it could be sent")


def _backend_index(attempts: int, backend_count: int) -> int:
    """Failover: DELIVERY_MAX_ATTEMPTS attempts on each backend, in the configured order."""
    return min((attempts - 1) // settings.DELIVERY_MAX_ATTEMPTS, backend_count - 1)


def _record(
    delivery: Delivery, result: SendResult, *, provider: str, backend_count: int = 1
) -> str:
    now = timezone.now()
    changes = {"lease_expires_at": None, "updated_at": now, "last_error": result.error}
    if result.outcome == SENT:
        new_status = DeliveryStatus.SENT
        changes.update(
            sent_at=now, provider=provider, provider_message_id=result.provider_message_id
        )
        detail = f"sent by {provider}" + (
            f" as {result.provider_message_id}" if result.provider_message_id else ""
        )
    elif result.outcome == EXPIRED_RESULT.outcome:
        new_status = DeliveryStatus.EXPIRED
        detail = "not sent: expiresAt passed"
    elif (
        result.outcome == TRANSIENT
        and delivery.attempts < settings.DELIVERY_MAX_ATTEMPTS * backend_count
    ):
        # Each backend starts its own backoff from the base delay.
        retry_at = now + retry_delay((delivery.attempts - 1) % settings.DELIVERY_MAX_ATTEMPTS + 1)
        failure = f"attempt {delivery.attempts} by {provider} failed ({result.error})"
        expires_at = delivery.notification.expires_at
        if expires_at is not None and retry_at >= expires_at:
            new_status = DeliveryStatus.EXPIRED
            detail = f"{failure}; a retry would come after expiresAt"
        else:
            new_status = DeliveryStatus.PENDING
            changes["next_attempt_at"] = retry_at
            detail = f"{failure}; retry at {retry_at:%H:%M:%S}"
    else:
        new_status = DeliveryStatus.FAILED
        by = f", last by {provider}" if provider else ""
        detail = f"failed after {delivery.attempts} attempt(s){by}: {result.error}"
    with transaction.atomic():
        # The attempt number proves the lease is still ours: a worker that
        # claimed it again after our lease ran out has incremented it.
        updated = Delivery.objects.filter(
            pk=delivery.pk, status=DeliveryStatus.SENDING, attempts=delivery.attempts
        ).update(status=new_status, **changes)
        if not updated:
            logger.warning("Delivery %s was claimed by another worker meanwhile", delivery.pk)
            return "skipped"
        event_record(delivery.pk, DeliveryStatus.SENDING, new_status, detail)
        notification_refresh_status(notification_id=delivery.notification_id)
    return result.outcome


def _hold(delivery: Delivery, until) -> str:
    """Put a delivery back until the client's quiet hours end; the claim was no attempt."""
    expires_at = delivery.notification.expires_at
    if expires_at is not None and until >= expires_at:
        return _record(delivery, EXPIRED_RESULT, provider="")
    with transaction.atomic():
        updated = Delivery.objects.filter(
            pk=delivery.pk, status=DeliveryStatus.SENDING, attempts=delivery.attempts
        ).update(
            status=DeliveryStatus.PENDING,
            next_attempt_at=until,
            attempts=F("attempts") - 1,
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


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff with ±20% jitter, so retries of many deliveries spread out."""
    base = settings.DELIVERY_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0)
    seconds = min(base, settings.DELIVERY_RETRY_MAX_SECONDS) * random.uniform(0.8, 1.2)  # noqa: S311
    return timedelta(seconds=seconds)


@transaction.atomic
def delivery_render(*, delivery: Delivery) -> Delivery:
    """Render the delivery's content with its template's current version and record both.

    The rendered text and the version are stored on the delivery, so what was
    sent stays known after the template changes. Raises NoTemplate.
    """
    notification = delivery.notification
    application = notification.application
    template = ContentTemplate.objects.filter(
        application=application, medium=delivery.medium
    ).first()
    version = template.versions.order_by("-number").first() if template else None
    if version is None:
        raise NoTemplate(f"{application} has no {delivery.medium} template.")
    fields = field_formats(application)
    for part, escape_html in PART_ESCAPES_HTML.items():
        text = getattr(version, part)
        setattr(delivery, part, prepare(text, fields, escape_html=escape_html)(notification.params))
    delivery.template_version = version
    delivery.save(update_fields=["subject", "body", "html_body", "template_version", "updated_at"])
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
