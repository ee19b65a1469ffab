"""Keeping customers' personal data only as long as allowed (UU PDP 27/2022).

A finished notification (SENT, DELIVERED, FAILED or CANCELLED: nothing of it still to
send) is purged once its client's retention period (Client.retention_days, or
NOTIFICATION_RETENTION_DAYS) has passed since it was accepted: its parameters, its
deliveries' recipients, rendered texts and error texts (a provider's error may quote the
number), its status events' details, and the answers its client's callback URL gave (a
client's server may echo what it was sent). What stays: the reference, client and
application, source and batch line, statuses, media, provider ids, attempts, every
timestamp, and each recipient as a keyed hash (notifications/recipient_digest.py).
A notification still pending delivery is never touched, whatever its age.

It runs in chunks of RETENTION_CHUNK_SIZE notifications in id order, each one short transaction
(`SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL: a row a worker holds is left for the
next run). A purged row has `purged_at` set in the same transaction and is never
selected again, so a run killed anywhere is resumed by the next one, nothing done twice.
Each run walks the primary key from the start, through the rows purged before (a
sequential read of them, filtered): at hundreds of millions of rows, retention by
dropping monthly partitions replaces it (README "Scaling").
"""

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from clients.models import Client
from notifications.failures import failure_category
from notifications.models import (
    ClientCallback,
    Delivery,
    DeliveryEvent,
    Notification,
    NotificationStatus,
    PersonalDataAccess,
)
from notifications.recipient_digest import recipient_digest

FINISHED = [
    NotificationStatus.SENT,
    NotificationStatus.DELIVERED,
    NotificationStatus.FAILED,
    NotificationStatus.CANCELLED,
]

Counts = dict[str, int]


def retention_days(client: Client) -> int:
    """The client's own period, or the platform's default."""
    if client.retention_days is None:
        return settings.NOTIFICATION_RETENTION_DAYS
    return client.retention_days


def notification_purge_due(*, notification: Notification) -> datetime:
    """When the notification's personal data may be purged (once it is finished)."""
    return notification.created_at + timedelta(days=retention_days(notification.client))


def notifications_due(*, now: datetime) -> QuerySet[Notification]:
    """Every client's notifications past its period, finished, settled (unchanged for
    RECEIPT_WAIT_HOURS: a SENT one may still get its receipt, which would lock its delivery
    and then the notification, the purge's order reversed) and not purged yet.

    One condition a distinct period (clients are few), so that one pass in id order serves
    every client: a pass per client would walk the other clients' rows each time.
    """
    periods: dict[int, list[int]] = defaultdict(list)
    for client in Client.objects.only("pk", "retention_days"):
        periods[retention_days(client)].append(client.pk)
    past = Q(pk__in=[])
    for days, clients in periods.items():
        past |= Q(client_id__in=clients, created_at__lt=now - timedelta(days=days))
    settled = now - timedelta(hours=settings.RECEIPT_WAIT_HOURS)
    return Notification.objects.filter(
        past, status__in=FINISHED, updated_at__lt=settled, purged_at__isnull=True
    )


def notifications_purge(
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    on_chunk: Callable[[Counts], None] = lambda counts: None,
    max_chunks: int | None = None,
) -> Counts:
    """Purge every client's notifications past its period; returns what was purged.

    `on_chunk(counts)` is called after each chunk's commit with that chunk's counts.
    `dry_run` only counts the notifications due. `max_chunks` stops after that many chunks
    (a run cut short, as a kill would).
    """
    now = now or timezone.now()
    total: Counts = {"notifications": 0, "deliveries": 0, "events": 0, "callback answers": 0}
    due = notifications_due(now=now)
    if dry_run:
        total["notifications"] = due.count()
        return total
    # In id order, up to the newest notification old enough for the shortest period (found
    # through the created_at index): past it the primary-key walk would find nothing more.
    # Ids follow creation times; a row inserted a moment out of order (concurrent inserts)
    # beyond that bound waits for the next run.
    shortest = min((retention_days(c) for c in Client.objects.only("retention_days")), default=0)
    last = (
        Notification.objects.filter(created_at__lt=now - timedelta(days=shortest))
        .order_by("-created_at")
        .values_list("pk", flat=True)
        .first()
    )
    after, chunks = 0, 0
    while last is not None and (max_chunks is None or chunks < max_chunks):
        counts, after = _purge_chunk(due.filter(pk__gt=after, pk__lte=last), now=now)
        if counts is None:
            break
        chunks += 1
        for kind, count in counts.items():
            total[kind] += count
        on_chunk(counts)
    return total


@transaction.atomic
def _purge_chunk(due: QuerySet[Notification], *, now: datetime) -> tuple[Counts | None, int]:
    """Purge the first chunk of `due` in id order; returns its counts and its last id
    (None counts when nothing is left)."""
    ids = list(
        due.order_by("pk")
        .select_for_update(skip_locked=True)
        .values_list("pk", flat=True)[: settings.RETENTION_CHUNK_SIZE]
    )
    if not ids:
        return None, 0
    deliveries = [
        (pk, recipient_digest(recipient) if recipient else "", failure_category(last_error))
        for pk, recipient, last_error in Delivery.objects.filter(
            notification_id__in=ids
        ).values_list("pk", "recipient", "last_error")
    ]
    _deliveries_purge(deliveries)
    delivery_ids = [pk for pk, _digest, _error in deliveries]
    events = DeliveryEvent.objects.filter(delivery_id__in=delivery_ids).update(detail="")
    answers = (
        ClientCallback.objects.filter(notification_id__in=ids)
        .exclude(last_response="")
        .update(last_response="")
    )
    Notification.objects.filter(pk__in=ids).update(params={}, purged_at=now)
    counts = {
        "notifications": len(ids),
        "deliveries": len(deliveries),
        "events": events,
        "callback answers": answers,
    }
    return counts, ids[-1]


def _deliveries_purge(deliveries: list[tuple[int, str, str]]) -> None:
    """One UPDATE … FROM (VALUES …) for the chunk's deliveries (id, digest, error category):
    Django's bulk_update builds a CASE a row and cost most of the purge's time."""
    if not deliveries:
        return
    quote = connection.ops.quote_name
    rows = ", ".join(["(%s, %s, %s)"] * len(deliveries))
    table = quote(Delivery._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH purged (id, digest, error) AS (VALUES {rows}) "  # noqa: S608 (no value in the SQL)
            f"UPDATE {table} SET recipient = '', subject = '', body = '', html_body = '', "
            "recipient_digest = purged.digest, last_error = purged.error "
            f"FROM purged WHERE {table}.id = purged.id",
            [value for row in deliveries for value in row],
        )


def access_records_purge(
    *, now: datetime, dry_run: bool = False, on_chunk: Callable[[Counts], None] = lambda c: None
) -> Counts:
    """Delete the records of who read personal data older than
    PERSONAL_DATA_ACCESS_RETENTION_DAYS: they name staff and their addresses."""
    old = PersonalDataAccess.objects.filter(
        at__lt=now - timedelta(days=settings.PERSONAL_DATA_ACCESS_RETENTION_DAYS)
    )
    if dry_run:
        return {"access records": old.count()}
    deleted = rows_delete_in_chunks(old, on_chunk=lambda n: on_chunk({"access records": n}))
    return {"access records": deleted}


def rows_delete_in_chunks(
    rows: QuerySet, *, on_chunk: Callable[[int], None] = lambda count: None
) -> int:
    """Delete `rows` RETENTION_CHUNK_SIZE at a time (short transactions); returns how many."""
    deleted = 0
    model = rows.model
    while ids := list(rows.order_by("pk").values_list("pk", flat=True)[: _chunk_size()]):
        count = model._default_manager.filter(pk__in=ids).delete()[1].get(model._meta.label, 0)
        deleted += count
        on_chunk(count)
    return deleted


def _chunk_size() -> int:
    return settings.RETENTION_CHUNK_SIZE
