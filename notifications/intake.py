"""Accepting, looking up and cancelling notifications: what the API (and batches) call.

A notification and one PENDING delivery per medium are committed together in
one transaction; that committed row is the delivery pipeline's work order.
"""

from dataclasses import dataclass, field
from datetime import datetime, time
from zoneinfo import ZoneInfo

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from clients.config_cache import cached
from clients.models import Application, Client
from clients.parameter_validation import (
    ParameterValidator,
    parse_moment,
    reference_errors,
    schedule_errors,
)
from notifications.bulk_insert import (
    EncodedNotifications,
    encode_new_notifications,
    insert_new_notifications,
    insert_one_notification_postgresql,
)
from notifications.client_callbacks import client_callback_queue
from notifications.dispatch_queue import enqueue_dispatch
from notifications.events import events_record
from notifications.metrics import accepted_count
from notifications.models import (
    Delivery,
    DeliveryStatus,
    Notification,
    NotificationStatus,
    Source,
)

# The longest address a delivery stores: a recipient field's value must fit it (email
# validation alone allows 320 characters).
RECIPIENT_MAX_LENGTH = Delivery._meta.get_field("recipient").max_length

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
    recipients: dict[str, str]  # medium -> name of the field holding its address
    validator: ParameterValidator  # of its fields


def notification_create(
    *,
    client: Client,
    application_code: str,
    reference: str,
    values: dict[str, str],
    send_at: str = "",
    expires_at: str = "",
    source: str = Source.API,
) -> CreateResult:
    """Accept a notification, or recognise a retry of an accepted one.

    `values` are the application's fields as the client sent them; `send_at`
    and `expires_at` the optional sendAt/expiresAt texts (Unix seconds or ISO
    8601; without an offset, in the client's time zone). Returns a
    CreateResult. Raises IntakeError with UNKNOWN_APP_TYPE, CLIENT_INACTIVE
    (inactive application), VALIDATION_ERROR (every problem at once), or
    DUPLICATE_REFERENCE (the reference was used with other parameters).
    """
    schema = cached(
        ("application-schema", client.pk, application_code),
        lambda: application_schema(client, application_code),
    )
    application = _active_application(schema, client, application_code)
    recipients, schedule = _validated(schema, client, reference, values, send_at, expires_at)
    columns = {
        "client_id": client.pk,
        "application_id": application.pk,
        "reference": reference,
        "params": values,
        "source": source,
        **schedule,  # send_at, expires_at
    }
    if connection.vendor == "postgresql":
        created = _insert_postgresql(columns, recipients, client, application)
    else:
        created = _insert_in_transaction(columns, recipients)
    if created is None:
        # The reference is taken: by this same request earlier (a retry) or another.
        existing = Notification.objects.get(client=client, reference=reference)
        return _retry_of(existing, application, values, schedule)
    notification, deliveries = created
    # Work is queued only once the outbox rows are committed.
    transaction.on_commit(enqueue_dispatch)
    accepted_count(client_id=client.client_id, source=source)
    return CreateResult(notification=notification, created=True, deliveries=deliveries)


def _insert_postgresql(
    columns: dict, recipients: dict[str, str], client: Client, application: Application
) -> tuple[Notification, list[Delivery]] | None:
    """The notification and its deliveries in one statement (bulk_insert.py); they are
    built here from what was stored, with no read back. None: the reference is taken."""
    now = timezone.now()
    next_attempt_at = columns["send_at"] or now
    stored = insert_one_notification_postgresql(
        notification=columns, recipients=recipients, next_attempt_at=next_attempt_at, now=now
    )
    if stored is None:
        return None
    notification_id, delivery_ids = stored
    notification = Notification(id=notification_id, **columns, created_at=now, updated_at=now)
    notification.client, notification.application = client, application
    deliveries = [
        Delivery(
            id=delivery_ids[medium],
            notification=notification,
            medium=medium,
            recipient=recipient,
            next_attempt_at=next_attempt_at,
            created_at=now,
            updated_at=now,
        )
        for medium, recipient in recipients.items()
    ]
    for row in (notification, *deliveries):
        row._state.adding, row._state.db = False, connection.alias
    return notification, deliveries


def _insert_in_transaction(
    columns: dict, recipients: dict[str, str]
) -> tuple[Notification, list[Delivery]] | None:
    """Other databases (SQLite): the ORM's INSERTs in one transaction. None: the
    reference is taken."""
    now = timezone.now()
    try:
        with transaction.atomic():
            notification = Notification.objects.create(**columns)
            deliveries = Delivery.objects.bulk_create(
                Delivery(
                    notification=notification,
                    medium=medium,
                    recipient=recipient,
                    next_attempt_at=columns["send_at"] or now,
                )
                for medium, recipient in recipients.items()
            )
    except IntegrityError:
        return None
    return notification, deliveries


@dataclass(slots=True)
class ValidNotification:
    """A notification that passed validation, not yet stored (batches insert many at once)."""

    application: Application
    reference: str
    values: dict[str, str]
    recipients: dict[str, str]  # medium -> address
    schedule: dict  # send_at, expires_at
    batch_line: int | None = None


def notification_validate(
    *,
    client: Client,
    schema: ApplicationSchema | None,
    application_code: str,
    reference: str,
    values: dict[str, str],
    send_at: str = "",
    expires_at: str = "",
) -> ValidNotification:
    """What notification_create checks, without storing anything; raises IntakeError."""
    application = _active_application(schema, client, application_code)
    recipients, schedule = _validated(schema, client, reference, values, send_at, expires_at)
    return ValidNotification(application, reference, values, recipients, schedule)


def notifications_encode(
    valid: list[ValidNotification],
) -> tuple[EncodedNotifications, list[ValidNotification]]:
    """Encode validated notifications for notifications_insert (where they were checked);
    returns too those repeating a reference earlier in `valid`, which are left out.

    Each item needs its batch_line: it is the item's key.
    """
    new, repeated, seen = [], [], set()
    for item in valid:
        if item.reference in seen:
            repeated.append(item)
        else:
            seen.add(item.reference)
            new.append(item)
    encoded = encode_new_notifications(
        [
            {
                "line": item.batch_line,
                "application_id": item.application.pk,
                "reference": item.reference,
                "params": item.values,
                **item.schedule,  # send_at, expires_at
                "recipients": item.recipients,
            }
            for item in new
        ]
    )
    return encoded, repeated


def notifications_insert(
    *, client: Client, encoded: EncodedNotifications, source: str, batch=None
) -> set[int]:
    """Store those of the encoded notifications whose reference is new for the client,
    with their PENDING deliveries, in bulk; return the lines stored (the others'
    references were used before, by any source).

    Runs in the caller's transaction (notifications/bulk_insert.py) and queues
    one dispatch after its commit. Raises IntegrityError when a reference is
    taken meanwhile.
    """
    stored = insert_new_notifications(
        encoded,
        common={
            "client_id": client.pk,
            "source": source,
            "batch_id": batch.pk if batch else None,
        },
        now=timezone.now(),
    )
    if stored:
        transaction.on_commit(enqueue_dispatch)
        accepted_count(client_id=client.client_id, source=source, count=len(stored))
    return stored


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
    client_callback_queue(notification_id=notification.pk)
    return notification


def application_schema(client: Client, code: str) -> ApplicationSchema | None:
    """The application `code` of `client` with its fields and media (None if it has none)."""
    application = client.applications.filter(code=code).first()
    if application is None:
        return None
    fields = list(application.fields.all())
    names = {field.pk: field.name for field in fields}
    recipients = {
        medium: names[field_pk]
        for medium, field_pk in application.media.values_list("medium", "recipient_field_id")
    }
    return ApplicationSchema(
        application=application,
        recipients=recipients,
        validator=ParameterValidator(fields, application.code),
    )


def _active_application(schema: ApplicationSchema | None, client: Client, code: str):
    if schema is None:
        raise IntakeError("UNKNOWN_APP_TYPE", f"Client {client.client_id} has no appType {code!r}.")
    if not schema.application.is_active:
        raise IntakeError("CLIENT_INACTIVE", f"Application {code} is inactive.")
    return schema.application


def _validated(schema, client, reference, values, send_at, expires_at):
    """Validate everything at once; return the recipients by medium and the schedule.

    Raises IntakeError VALIDATION_ERROR naming every bad parameter.
    """
    errors = {}
    schedule = {"send_at": None, "expires_at": None}
    for name, text, key in (
        ("sendAt", send_at, "send_at"),
        ("expiresAt", expires_at, "expires_at"),
    ):
        if text:
            try:
                schedule[key] = parse_moment(text, client.time_zone)
            except ValueError as exc:
                errors[name] = [str(exc)]
    recipients, parsed = _validated_recipients(schema, reference, values, errors)
    if schedule["expires_at"] is None:
        schedule["expires_at"] = _default_expiry(schema, client, parsed)
    if schedule["expires_at"] is not None:  # the only one schedule_errors checks
        errors.update(schedule_errors(schedule["send_at"], schedule["expires_at"], timezone.now()))
    if errors:
        raise IntakeError("VALIDATION_ERROR", "Some parameters are missing or invalid.", errors)
    return recipients, schedule


def _default_expiry(schema, client, parsed: dict) -> datetime | None:
    """The end of the day of the application's expiry field (e.g. dueDate), if it has one.

    `parsed`: the fields' validated values (a date field's is a datetime).
    """
    day = parsed.get(schema.application.expire_after_field)
    if not isinstance(day, datetime):
        return None
    end_of_day = datetime.combine(day.date(), time.max, tzinfo=ZoneInfo(client.time_zone))
    return end_of_day


def _validated_recipients(
    schema: ApplicationSchema, reference: str, values: dict[str, str], errors: dict
) -> tuple[dict[str, str], dict]:
    """Validate the reference and fields into `errors`; return {medium: recipient} and
    the fields' parsed values."""
    if problems := reference_errors(reference):
        errors["clientNotifRefId"] = problems
    result = schema.validator.validate(values)
    errors.update(result.errors)
    recipients = {
        medium: result.values[field_name]
        for medium, field_name in schema.recipients.items()
        if field_name in result.values
    }
    for medium, address in recipients.items():
        if len(address) > RECIPIENT_MAX_LENGTH:
            errors[schema.recipients[medium]] = [
                f"At most {RECIPIENT_MAX_LENGTH} characters (got {len(address)}): "
                "the longest address the platform sends to."
            ]
    if not errors and not recipients:
        names = ", ".join(sorted(schema.recipients.values()))
        errors["recipient"] = [f"Give at least one recipient: {names or 'no medium is set up'}."]
    return recipients, result.values


def _retry_of(
    existing: Notification, application: Application, values: dict, schedule: dict
) -> CreateResult:
    same_schedule = (existing.send_at, existing.expires_at) == (
        schedule["send_at"],
        schedule["expires_at"],
    )
    if existing.application_id == application.pk and existing.params == values and same_schedule:
        return CreateResult(
            notification=existing, created=False, deliveries=list(existing.deliveries.all())
        )
    raise IntakeError(
        "DUPLICATE_REFERENCE",
        f"clientNotifRefId {existing.reference!r} was already used with other parameters.",
    )
