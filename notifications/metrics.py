"""The notification pipeline's Prometheus metrics, counted where each event happens.

Labels stay few: a client's clientId (tens to hundreds), a source, a medium, a provider
(a channel backend's name) and a delivery status; never a reference or a recipient.
Counters move only once the transaction that records the event commits, so a rolled
back accept or send counts nothing. /metrics (kokatto_site/metrics.py) exposes them.
"""

from datetime import datetime

from django.db import transaction
from prometheus_client import Counter, Histogram

from notifications.models import Delivery, DeliveryStatus

NOTIFICATIONS_ACCEPTED = Counter(
    "kokatto_notifications_accepted",
    "Notifications accepted, by client (clientId) and source (api or batch).",
    ["client", "source"],
)
DELIVERIES = Counter(
    "kokatto_deliveries",
    "Deliveries that reached a status (sent, delivered, undelivered, failed, expired), "
    "by medium and provider.",
    ["medium", "provider", "status"],
)
SEND_SECONDS = Histogram(
    "kokatto_send_duration_seconds",
    "Time one send took (a backend handing one delivery to its provider), by medium and provider.",
    ["medium", "provider"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30),
)

# Statuses a delivery reaches that are counted: a delivery put back or held waits again.
COUNTED_STATUSES = {
    DeliveryStatus.SENT,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.UNDELIVERED,
    DeliveryStatus.FAILED,
    DeliveryStatus.EXPIRED,
}
# The provider label of a delivery that ended without reaching one (expired, no template).
NO_PROVIDER = "none"


def accepted_count(*, client_id: str, source: str, count: int = 1) -> None:
    """Count `count` notifications of a client accepted, once the transaction commits."""
    if count:
        counter = NOTIFICATIONS_ACCEPTED.labels(client_id, source)
        transaction.on_commit(lambda: counter.inc(count))


def deliveries_count(outcomes: list[tuple[str, str, str]]) -> None:
    """Count deliveries by (medium, provider, status) once the transaction commits; a
    status that is not final (a retry, a hold) is left out."""
    totals: dict[tuple[str, str, str], int] = {}
    for medium, provider, status in outcomes:
        if status in COUNTED_STATUSES:
            key = (medium, provider or NO_PROVIDER, str(status).lower())
            totals[key] = totals.get(key, 0) + 1
    if totals:
        transaction.on_commit(lambda: _deliveries_add(totals))


def _deliveries_add(totals: dict[tuple[str, str, str], int]) -> None:
    for labels, count in totals.items():
        DELIVERIES.labels(*labels).inc(count)


def delivery_queue_state(*, now: datetime, count_limit: int) -> tuple[int, datetime | None]:
    """The number of PENDING deliveries due by `now`, counted up to `count_limit`, and
    when the oldest of them was due (None if none is).

    Both read the dispatcher's partial index (delivery_due_idx) and stop early: the count
    at `count_limit` rows, the oldest at the index's first entry.
    """
    due = Delivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
    depth = due.order_by().values("id")[:count_limit].count()
    oldest = due.order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first()
    return depth, oldest
