"""The append-only status history of deliveries."""

from collections.abc import Iterable

from django.db import connection
from django.utils import timezone

from notifications.models import Delivery, DeliveryEvent
from notifications.row_updates import json_rows


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

    On PostgreSQL the events come as one JSON parameter (json_to_recordset), so
    the statement's text is the same for any number of events and psycopg quotes
    one string, where an INSERT of hundreds of parameters is parsed again each time.
    """
    if not events:
        return
    if connection.vendor != "postgresql":
        DeliveryEvent.objects.bulk_create(
            DeliveryEvent(delivery_id=pk, old_status=old, new_status=new, detail=detail)
            for pk, old, new, detail in events
        )
        return
    rows = [
        {"delivery_id": pk, "old_status": str(old), "new_status": str(new), "detail": detail}
        for pk, old, new, detail in events
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO notifications_deliveryevent"
            " (delivery_id, at, old_status, new_status, detail)"
            " SELECT v.delivery_id, %s, v.old_status, v.new_status, v.detail"
            " FROM json_to_recordset(CAST(%s AS json))"
            " AS v (delivery_id bigint, old_status varchar, new_status varchar, detail text)",
            [timezone.now(), json_rows(rows)],
        )


def event_record(*, delivery_id: int, old_status: str, new_status: str, detail: str) -> None:
    DeliveryEvent.objects.create(
        delivery_id=delivery_id, old_status=old_status, new_status=new_status, detail=detail
    )
