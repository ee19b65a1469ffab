"""Notifications as CSV, streamed: a million rows never held in memory at once.

The rows are read NOTIFICATION_EXPORT_CHUNK_ROWS at a time (`.iterator()`: a
server-side cursor on PostgreSQL), each chunk's deliveries in one more query, and
written out as the chunk's text before the next chunk is read. Cells are written
spreadsheet-safe, as result files are (clients/spreadsheet_safe.py).
"""

import io
import zoneinfo
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from itertools import islice

from django.conf import settings
from django.db.models import QuerySet

from clients.media import medium_choices
from clients.spreadsheet_safe import spreadsheet_writer
from notifications.models import Delivery, Notification

_NOTIFICATION_COLUMNS = (
    "id",
    "reference",
    "client__client_id",
    "application__code",
    "source",
    "status",
    "created_at",
    "client__time_zone",
)


def export_header(*, time_zone: str | None) -> list[str]:
    """The header row: the creation time's column names its time zone when there is one."""
    created = f"created ({time_zone})" if time_zone else "created (each client's time zone)"
    header = ["clientNotifRefId", "client", "appType", "source", "status", created]
    for code, _label in medium_choices():
        header += [f"{code} status", f"{code} recipient"]
    return header


def notifications_csv(
    *,
    notifications: QuerySet[Notification],
    time_zone: str | None,
    on_done: Callable[[int], None] = lambda rows: None,
) -> Iterator[str]:
    """The CSV text of `notifications` (in their order), a chunk of rows at a time.

    Times are in `time_zone` when every client of the export has that one; with None, each
    in its own client's time zone, with the offset written. `on_done(rows)` is called after
    the last row.
    """
    media = [code for code, _label in medium_choices()]
    zones: dict[str, zoneinfo.ZoneInfo] = {}
    rows = 0
    buffer = io.StringIO()
    writer = spreadsheet_writer(buffer)
    writer.writerow(export_header(time_zone=time_zone))
    yield buffer.getvalue()
    chunk_rows = settings.NOTIFICATION_EXPORT_CHUNK_ROWS
    records = notifications.values_list(*_NOTIFICATION_COLUMNS).iterator(chunk_size=chunk_rows)
    for chunk in _chunks(records, chunk_rows):
        deliveries = _deliveries_of([row[0] for row in chunk])
        buffer = io.StringIO()
        writer = spreadsheet_writer(buffer)
        for pk, reference, client, application, source, status, created, zone in chunk:
            if zone not in zones:
                zones[zone] = zoneinfo.ZoneInfo(zone)
            local = created.astimezone(zones[zone])
            cells = [reference, client, application, source, status, _time(local, time_zone)]
            by_medium = deliveries.get(pk, {})
            for code in media:
                cells += by_medium.get(code, ("", ""))
            writer.writerow(cells)
        rows += len(chunk)
        yield buffer.getvalue()
    on_done(rows)


def _chunks(records: Iterable, size: int) -> Iterator[list]:
    records = iter(records)
    while chunk := list(islice(records, size)):
        yield chunk


def _deliveries_of(notification_ids: list[int]) -> dict[int, dict[str, tuple[str, str]]]:
    found: dict[int, dict[str, tuple[str, str]]] = {}
    for notification_id, medium, status, recipient in Delivery.objects.filter(
        notification_id__in=notification_ids
    ).values_list("notification_id", "medium", "status", "recipient"):
        found.setdefault(notification_id, {})[medium] = (status, recipient)
    return found


def _time(local: datetime, time_zone: str | None) -> str:
    if time_zone:
        return local.strftime("%Y-%m-%d %H:%M:%S")
    return local.isoformat(sep=" ", timespec="seconds")
