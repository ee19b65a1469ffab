"""Accepting, looking up and cancelling notifications: what the API (and batches) call.

A notification and one PENDING delivery per medium are committed together in
one transaction; that committed row is the delivery pipeline's work order.
"""

from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone

from clients.models import Application, Client
from notifications.events import events_record
from notifications.models import (
    Delivery,
    DeliveryStatus,
    Notification,
    NotificationStatus,
    Source,
)
from notifications.validation import reference_errors, validate_parameters

# Deliveries in these states have left (or may be leaving) the platform.
ALREADY_SENT = {
    DeliveryStatus.SENDING,
    DeliveryStatus.SENT,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.UNDELIVERED,
}


@dataclass
class IntakeError(Exception):
    """A request the platform refuses; `code` is the API's error code."""

    code: str
    message: str
    errors: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class CreateResult:
    notification: Notification
    created: bool  # False: an identical earlier request (a retry); nothing was created


def notification_create(
    *,
    client: Client,
    application_code: str,
    reference: str,
    values: dict[str, str],
    source: str = Source.API,
) -> CreateResult:
    """Accept a notification, or recognise a retry of an accepted one.

    `values` are the application's fields as the client sent them. Returns a
    CreateResult. Raises IntakeError with UNKNOWN_APP_TYPE, CLIENT_INACTIVE
    (inactive application), VALIDATION_ERROR (every problem at once), or
    DUPLICATE_REFERENCE (the reference was used with other parameters).
    """
    application = _active_application(client, application_code)
    recipients = _validated_recipients(application, reference, values)

    existing = Notification.objects.filter(client=client, reference=reference).first()
    if existing is not None:
        return _retry_of(existing, application, values)
    try:
        with transaction.atomic():
            notification = Notification.objects.create(
                client=client,
                application=application,
                reference=reference,
                params=values,
                source=source,
            )
            deliveries = Delivery.objects.bulk_create(
                Delivery(notification=notification, medium=medium, recipient=recipient)
                for medium, recipient in recipients.items()
            )
            events_record(deliveries=deliveries, old_status="", detail=f"accepted via {source}")
    except IntegrityError:
        # A concurrent request with this reference committed first.
        existing = Notification.objects.get(client=client, reference=reference)
        return _retry_of(existing, application, values)
    return CreateResult(notification=notification, created=True)


def notification_get(*, client: Client, reference: str) -> Notification:
    """The client's notification with this reference; raises IntakeError NOT_FOUND."""
    notification = Notification.objects.filter(client=client, reference=reference).first()
    if notification is None:
        raise IntakeError("NOT_FOUND", f"No notification with clientNotifRefId {reference!r}.")
    return notification


@transaction.atomic
def notification_cancel(*, notification: Notification) -> Notification:
    """Cancel every delivery not yet sent; returns the cancelled notification.

    Idempotent for an already cancelled notification. Raises IntakeError
    NOT_CANCELLABLE when any delivery has been (or is being) sent, or when
    nothing is left to stop.
    """
    notification = Notification.objects.select_for_update().get(pk=notification.pk)
    if notification.status == NotificationStatus.CANCELLED:
        return notification
    deliveries = list(notification.deliveries.select_for_update())
    pending = [d for d in deliveries if d.status == DeliveryStatus.PENDING]
    if any(d.status in ALREADY_SENT for d in deliveries) or not pending:
        raise IntakeError(
            "NOT_CANCELLABLE",
            "Something was already sent for this notification; it cannot be cancelled.",
        )
    changed = Delivery.objects.filter(
        pk__in=[d.pk for d in pending], status=DeliveryStatus.PENDING
    ).update(status=DeliveryStatus.CANCELLED, updated_at=timezone.now())
    if changed != len(pending):
        # A dispatcher claimed one between our read and our update.
        transaction.set_rollback(True)
        raise IntakeError("NOT_CANCELLABLE", "A delivery of this notification is being sent.")
    for delivery in pending:
        delivery.status = DeliveryStatus.CANCELLED
    events_record(
        deliveries=pending, old_status=DeliveryStatus.PENDING, detail="cancelled by client"
    )
    notification.status = NotificationStatus.CANCELLED
    notification.save(update_fields=["status", "updated_at"])
    return notification


def _active_application(client: Client, code: str) -> Application:
    application = (
        client.applications.filter(code=code)
        .prefetch_related("fields", "media__recipient_field")
        .first()
    )
    if application is None:
        raise IntakeError("UNKNOWN_APP_TYPE", f"Client {client.client_id} has no appType {code!r}.")
    if not application.is_active:
        raise IntakeError("CLIENT_INACTIVE", f"Application {code} is inactive.")
    return application


def _validated_recipients(
    application: Application, reference: str, values: dict[str, str]
) -> dict[str, str]:
    """Validate everything; return {medium: normalised recipient} for media with an address."""
    errors = {}
    if problems := reference_errors(reference):
        errors["clientNotifRefId"] = problems
    result = validate_parameters(
        fields=application.fields.all(), values=values, application_code=application.code
    )
    errors.update(result.errors)
    media = list(application.media.all())
    recipients = {
        medium.medium: result.values[medium.recipient_field.name]
        for medium in media
        if medium.recipient_field.name in result.values
    }
    if not errors and not recipients:
        names = ", ".join(sorted(medium.recipient_field.name for medium in media))
        errors["recipient"] = [f"Give at least one recipient: {names or 'no medium is set up'}."]
    if errors:
        raise IntakeError("VALIDATION_ERROR", "Some parameters are missing or invalid.", errors)
    return recipients


def _retry_of(existing: Notification, application: Application, values: dict) -> CreateResult:
    if existing.application_id == application.pk and existing.params == values:
        return CreateResult(notification=existing, created=False)
    raise IntakeError(
        "DUPLICATE_REFERENCE",
        f"clientNotifRefId {existing.reference!r} was already used with other parameters.",
    )
