"""Accepting, looking up and cancelling notifications: what the API (and batches) call.

A notification and one PENDING delivery per medium are committed together in
one transaction; that committed row is the delivery pipeline's work order.
"""

from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone

from clients.config_cache import cached
from clients.models import Application, Client
from notifications.events import events_record
from notifications.models import (
    Delivery,
    DeliveryStatus,
    Notification,
    NotificationStatus,
    Source,
)
from notifications.tasks import enqueue_dispatch
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
    deliveries: list[Delivery]


@dataclass(frozen=True)
class ApplicationSchema:
    """What accepting a notification needs of its application, read once and cached."""

    application: Application
    fields: list  # clients.models.Field rows
    recipients: dict[str, str]  # medium -> name of the field holding its address


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
    schema = cached(
        ("application-schema", client.pk, application_code),
        lambda: _application_schema(client, application_code),
    )
    application = _active_application(schema, client, application_code)
    recipients = _validated_recipients(schema, reference, values)
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
            # Work is queued only once the outbox rows are committed.
            transaction.on_commit(enqueue_dispatch)
    except IntegrityError:
        # The reference is taken: by this same request earlier (a retry) or another.
        existing = Notification.objects.get(client=client, reference=reference)
        return _retry_of(existing, application, values)
    return CreateResult(notification=notification, created=True, deliveries=deliveries)


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


def _application_schema(client: Client, code: str) -> ApplicationSchema | None:
    application = client.applications.filter(code=code).first()
    if application is None:
        return None
    fields = list(application.fields.all())
    names = {field.pk: field.name for field in fields}
    recipients = {
        medium: names[field_pk]
        for medium, field_pk in application.media.values_list("medium", "recipient_field_id")
    }
    return ApplicationSchema(application=application, fields=fields, recipients=recipients)


def _active_application(schema: ApplicationSchema | None, client: Client, code: str):
    if schema is None:
        raise IntakeError("UNKNOWN_APP_TYPE", f"Client {client.client_id} has no appType {code!r}.")
    if not schema.application.is_active:
        raise IntakeError("CLIENT_INACTIVE", f"Application {code} is inactive.")
    return schema.application


def _validated_recipients(
    schema: ApplicationSchema, reference: str, values: dict[str, str]
) -> dict[str, str]:
    """Validate everything; return {medium: normalised recipient} for media with an address."""
    errors = {}
    if problems := reference_errors(reference):
        errors["clientNotifRefId"] = problems
    result = validate_parameters(
        fields=schema.fields, values=values, application_code=schema.application.code
    )
    errors.update(result.errors)
    recipients = {
        medium: result.values[field_name]
        for medium, field_name in schema.recipients.items()
        if field_name in result.values
    }
    if not errors and not recipients:
        names = ", ".join(sorted(schema.recipients.values()))
        errors["recipient"] = [f"Give at least one recipient: {names or 'no medium is set up'}."]
    if errors:
        raise IntakeError("VALIDATION_ERROR", "Some parameters are missing or invalid.", errors)
    return recipients


def _retry_of(existing: Notification, application: Application, values: dict) -> CreateResult:
    if existing.application_id == application.pk and existing.params == values:
        return CreateResult(
            notification=existing, created=False, deliveries=list(existing.deliveries.all())
        )
    raise IntakeError(
        "DUPLICATE_REFERENCE",
        f"clientNotifRefId {existing.reference!r} was already used with other parameters.",
    )
