"""The append-only status history of deliveries."""

from collections.abc import Iterable

from django.db import connection
from django.utils import timezone

from notifications.models import Delivery, DeliveryEvent


def events_record(*, deliveries: Iterable[Delivery], old_status: str, detail: str) -> None:
    """Append one event per delivery, from `old_status` to the delivery's current status."""
    DeliveryEvent.objects.bulk_create(
        DeliveryEvent(
            delivery=delivery, old_status=old_status, new_status=delivery.status, detail=detail
        )
        for delivery in deliveries
    )


def events_record_for_ids(
    *, delivery_ids: list[int], old_status: str, new_status: str, detail: str
) -> None:
    """Append one event per delivery id, each from `old_status` to `new_status`."""
    events_insert([(pk, old_status, new_status, detail) for pk in delivery_ids])


def events_insert(events: list[tuple[int, str, str, str]]) -> None:
    """Append events given as (delivery id, old status, new status, detail), in one statement.

    On PostgreSQL the statement has one parameter a column (arrays, unnested), so
    its text is the same for any number of events: psycopg converts it once,
    where an INSERT of hundreds of parameters is parsed again each time.
    """
    if not events:
        return
    if connection.vendor != "postgresql":
        DeliveryEvent.objects.bulk_create(
            DeliveryEvent(delivery_id=pk, old_status=old, new_status=new, detail=detail)
            for pk, old, new, detail in events
        )
        return
    ids, olds, news, details = zip(*events, strict=True)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO notifications_deliveryevent"
            " (delivery_id, at, old_status, new_status, detail)"
            " SELECT v.delivery_id, %s, v.old_status, v.new_status, v.detail"
            " FROM unnest(CAST(%s AS bigint[]), CAST(%s AS varchar[]), CAST(%s AS varchar[]),"
            " CAST(%s AS text[])) AS v (delivery_id, old_status, new_status, detail)",
            [
                timezone.now(),
                list(ids),
                [str(status) for status in olds],
                [str(status) for status in news],
                list(details),
            ],
        )


def event_record(*, delivery_id: int, old_status: str, new_status: str, detail: str) -> None:
    DeliveryEvent.objects.create(
        delivery_id=delivery_id, old_status=old_status, new_status=new_status, detail=detail
    )
