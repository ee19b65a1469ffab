"""The operators' dashboard on the admin's front page: the figures, computed in the database.

Each figure is a plain function over the clients a user sees (`client_ids`: None for
every client) and a moment, so that tests and the bench call it directly. All of them
read index-backed ranges and group in the database, so their cost follows the window
(a day, seven days, what is queued now), not the size of the tables:

- notifications accepted: `notification_dashboard_idx` (created_at, client, source), read
  alone; the closed days' counts are cached until midnight
- deliveries by medium and status: `delivery_dashboard_idx` (created_at, medium, status),
  read alone; a client's, through its notifications of the window
- the delivery queue: `delivery_due_idx` (the dispatcher's own, pending deliveries only)
- batches in progress: the open batches' partial indexes; gateway events: their `at`, and
  (client, at)

`dashboard_figures` puts them together for one user, cached for
DASHBOARD_CACHE_SECONDS per set of visible clients. bench/dashboard.py times them.
"""

import hashlib
from collections import defaultdict
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.db.models import Count, Min, Q
from django.db.models.functions import TruncDate
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.brokers.orm import ORM
from django_q.models import Failure
from django_q.status import Stat

from batches.models import (
    Batch,
    BatchStatus,
    GatewayAction,
    GatewayEvent,
    GatewayLoginFailure,
    GatewayOutcome,
    GatewayScore,
)
from clients.media import medium_choices
from clients.models import Client
from clients.roles import sees_all_clients, visible_clients
from notifications.models import Delivery, DeliveryStatus, Notification, Source

DAYS = 7
# A delivery in one of these has an outcome; the rates are shares of them.
DECIDED = [
    DeliveryStatus.SENT,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.UNDELIVERED,
    DeliveryStatus.FAILED,
    DeliveryStatus.EXPIRED,
    DeliveryStatus.CANCELLED,
]
FAILED = [DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED]
IN_PROGRESS = [BatchStatus.RECEIVED, BatchStatus.PROCESSING]
_BY_NOTIFICATION = "notification__client_id"


def day_window(*, now: datetime, days: int = DAYS) -> tuple[list[date], datetime]:
    """The last `days` days in the platform's time zone, today last; and the first one's start."""
    today = timezone.localdate(now)
    days_list = [today - timedelta(days=back) for back in range(days - 1, -1, -1)]
    start = timezone.make_aware(datetime.combine(days_list[0], datetime.min.time()))
    return days_list, start


def scope_key(client_ids: list[int] | None) -> str:
    """A short cache key naming a set of clients ("all" for every client)."""
    if client_ids is None:
        return "all"
    return hashlib.sha256(",".join(map(str, sorted(client_ids))).encode()).hexdigest()[:32]


def _scoped(queryset, client_ids, field: str = "client_id"):
    return queryset if client_ids is None else queryset.filter(**{f"{field}__in": client_ids})


def accepted_by_day(*, client_ids: list[int] | None, now: datetime) -> list[dict]:
    """Notifications accepted per day (platform time zone), client and source, last 7 days.

    Rows `{"day", "client_id", "source", "count"}`, only the non-zero ones. The six
    closed days cannot change (a notification keeps its created_at): they are counted
    once and cached until the day ends, so only today's rows are counted at every call.
    """
    days, start = day_window(now=now)
    today_start = timezone.make_aware(datetime.combine(days[-1], datetime.min.time()))
    closed_key = f"kokatto:dashboard:closed-days:{scope_key(client_ids)}:{days[-1]}"
    closed = cache.get(closed_key)
    if closed is None:
        closed = _accepted_rows(client_ids, start=start, end=today_start)
        until_midnight = (today_start + timedelta(days=1) - now).total_seconds()
        cache.set(closed_key, closed, max(1, int(until_midnight)))
    return closed + _accepted_rows(client_ids, start=today_start, end=None)


def _accepted_rows(client_ids, *, start: datetime, end: datetime | None) -> list[dict]:
    notifications = Notification.objects.filter(created_at__gte=start)
    if end is not None:
        notifications = notifications.filter(created_at__lt=end)
    return list(
        _scoped(notifications, client_ids)
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .values("day", "client_id", "source")
        .annotate(count=Count("*"))
        .order_by()
    )


def accepted_summary(*, rows: list[dict], now: datetime) -> dict:
    """`accepted_by_day`'s rows as the page shows them: per client and source (today and the
    7 days), and per day and source for the chart."""
    days, _ = day_window(now=now)
    today = days[-1]
    per_client: dict[int, dict] = defaultdict(
        lambda: {source: {"today": 0, "week": 0} for source in Source.values}
    )
    per_day = {source: [0] * len(days) for source in Source.values}
    for row in rows:
        figures = per_client[row["client_id"]][row["source"]]
        figures["week"] += row["count"]
        if row["day"] == today:
            figures["today"] += row["count"]
        per_day[row["source"]][days.index(row["day"])] += row["count"]
    names = dict(Client.objects.filter(pk__in=per_client).values_list("pk", "client_id"))
    clients = [
        {"client": names.get(pk, str(pk)), "sources": figures}
        for pk, figures in sorted(per_client.items(), key=lambda item: names.get(item[0], ""))
    ]
    return {
        "days": [day.isoformat() for day in days],
        "per_day": per_day,
        "clients": clients,
        "today": sum(counts[-1] for counts in per_day.values()),
        "week": sum(count for counts in per_day.values() for count in counts),
    }


def deliveries_by_medium_and_status(*, client_ids: list[int] | None, now: datetime) -> dict:
    """Deliveries created in the last 7 days by medium and current status: {medium: {status: n}}.

    For some clients, the deliveries of their notifications of those days: a delivery is
    created with its notification, and the notifications' (created_at, client) index finds
    a client's few among every client's deliveries (their client index holds a client's
    whole history)."""
    _, start = day_window(now=now)
    deliveries = Delivery.objects.filter(created_at__gte=start)
    if client_ids is not None:
        deliveries = deliveries.filter(
            notification__created_at__gte=start, notification__client_id__in=client_ids
        )
    rows = deliveries.values("medium", "status").annotate(count=Count("*")).order_by()
    counts: dict[str, dict[str, int]] = {}
    for row in rows:
        counts.setdefault(row["medium"], {})[row["status"]] = row["count"]
    return counts


def delivery_rates(counts: dict[str, dict[str, int]]) -> dict:
    """Failure and expiry rates (0 to 1, None without any decided delivery) of the
    deliveries that have an outcome: failed (FAILED or UNDELIVERED) and EXPIRED ones as
    shares of all sent, delivered, undelivered, failed, expired or cancelled ones."""
    total = defaultdict(int)
    for by_status in counts.values():
        for status, count in by_status.items():
            total[status] += count
    decided = sum(total[status] for status in DECIDED)
    if not decided:
        return {"decided": 0, "failure": None, "expiry": None}
    return {
        "decided": decided,
        "failure": sum(total[status] for status in FAILED) / decided,
        "expiry": total[DeliveryStatus.EXPIRED] / decided,
    }


def delivery_queue(*, client_ids: list[int] | None, now: datetime) -> dict:
    """Pending deliveries due now (the queue's depth), the oldest due one's time and age in
    seconds, and the pending ones scheduled for later (sendAt, retries)."""
    pending = _scoped(
        Delivery.objects.filter(status=DeliveryStatus.PENDING), client_ids, _BY_NOTIFICATION
    )
    due = pending.filter(next_attempt_at__lte=now).aggregate(
        depth=Count("*"), oldest=Min("next_attempt_at")
    )
    return {
        "depth": due["depth"],
        "oldest_due": due["oldest"],
        "oldest_age_seconds": int((now - due["oldest"]).total_seconds()) if due["oldest"] else None,
        "scheduled": pending.filter(next_attempt_at__gt=now).count(),
    }


def batches_in_progress(*, client_ids: list[int] | None, limit: int) -> dict:
    """Batches received or being ingested, oldest first (at most `limit`), with their
    progress through the decrypted file (0 to 100, None before its size is known)."""
    batches = _scoped(Batch.objects.filter(status__in=IN_PROGRESS), client_ids)
    shown = []
    for batch in batches.select_related("client").order_by("created_at", "id")[:limit]:
        percent = None
        if batch.bytes_total:
            percent = min(100, round(100 * batch.bytes_done / batch.bytes_total))
        shown.append(
            {
                "id": batch.pk,
                "client": batch.client.client_id,
                "file_name": batch.file_name,
                "status": batch.status,
                "lines_accepted": batch.lines_accepted,
                "lines_rejected": batch.lines_rejected,
                "percent": percent,
                "created_at": batch.created_at,
            }
        )
    return {"count": batches.count(), "shown": shown}


def gateway_activity(*, client_ids: list[int] | None, now: datetime) -> dict:
    """The file-transfer gateway's last 24 hours for these clients: logins, refused
    logins, uploads and failed transfers (events of unknown users belong to no client)."""
    events = _scoped(GatewayEvent.objects.filter(at__gte=now - timedelta(hours=24)), client_ids)
    figures = events.aggregate(
        logins=Count("pk", filter=Q(action=GatewayAction.LOGIN, outcome=GatewayOutcome.OK)),
        logins_refused=Count(
            "pk",
            filter=Q(action__in=[GatewayAction.LOGIN, GatewayAction.LOGIN_REFUSED])
            & ~Q(outcome=GatewayOutcome.OK),
        ),
        uploads=Count("pk", filter=Q(action=GatewayAction.UPLOAD, outcome=GatewayOutcome.OK)),
        failures=Count(
            "pk",
            filter=~Q(action__in=[GatewayAction.LOGIN, GatewayAction.LOGIN_REFUSED])
            & ~Q(outcome=GatewayOutcome.OK),
        ),
    )
    return figures


def gateway_defence(*, now: datetime) -> dict:
    """The gateway's defence across clients (platform staff only): active bans and
    failed logins of the last 24 hours."""
    return {
        "active_bans": GatewayScore.objects.filter(banned_until__gt=now).count(),
        "failed_logins": GatewayLoginFailure.objects.filter(
            created_at__gte=now - timedelta(hours=24)
        ).count(),
    }


def cluster_health(*, now: datetime) -> dict:
    """django-q2's clusters as they report themselves to the broker (ORM or Redis): each
    one's status, workers and last heartbeat; the tasks queued and the failures of the
    last 24 hours.

    `reported` is False where no cluster can report to this process: the ORM broker keeps
    its clusters' reports in Django's cache, and a process-local one (`make run` without
    Redis) holds only this process's own, so "none alive" would be a false alarm there.
    """
    broker = get_broker()
    reported = not isinstance(broker, ORM) or not isinstance(
        broker.cache, LocMemCache | DummyCache | None
    )
    clusters = [
        {
            "id": str(stat.cluster_id),
            "host": stat.host,
            "status": stat.status,
            "workers": len(stat.workers),
            "heartbeat": stat.timestamp,
            "heartbeat_age_seconds": int((now - stat.timestamp).total_seconds()),
        }
        for stat in Stat.get_all(broker=broker)
    ]
    return {
        "broker": type(broker).__name__,
        "reported": reported,
        "clusters": clusters,
        "alive": len(clusters),
        "workers": sum(cluster["workers"] for cluster in clusters),
        "queued": broker.queue_size() or 0,
        "failed_tasks": Failure.objects.filter(stopped__gte=now - timedelta(hours=24)).count(),
    }


def dashboard_compute(*, client_ids: list[int] | None, internals: bool, now: datetime) -> dict:
    """Every figure of the dashboard for these clients; the cluster's and the gateway's
    defence only with `internals` (operators and support)."""
    deliveries = deliveries_by_medium_and_status(client_ids=client_ids, now=now)
    accepted = accepted_summary(rows=accepted_by_day(client_ids=client_ids, now=now), now=now)
    media_shown = [code for code, _ in medium_choices() if code in deliveries] or [
        code for code, _ in medium_choices()
    ]
    statuses = DeliveryStatus.values
    figures = {
        "now": now,
        "time_zone": settings.TIME_ZONE,
        "cache_seconds": settings.DASHBOARD_CACHE_SECONDS,
        "accepted": accepted,
        "deliveries": [
            {"medium": medium, "counts": [deliveries.get(medium, {}).get(s, 0) for s in statuses]}
            for medium in media_shown
        ],
        "statuses": statuses,
        "rates": delivery_rates(deliveries),
        "queue": delivery_queue(client_ids=client_ids, now=now),
        "batches": batches_in_progress(
            client_ids=client_ids, limit=settings.DASHBOARD_BATCHES_SHOWN
        ),
        "gateway": gateway_activity(client_ids=client_ids, now=now),
        "internals": None,
    }
    if internals:
        figures["internals"] = {
            "cluster": cluster_health(now=now),
            "defence": gateway_defence(now=now),
        }
    figures["chart"] = {
        "days": accepted["days"],
        "accepted": [
            {"label": label, "data": accepted["per_day"][source]}
            for source, label in Source.choices
        ],
        "media": [row["medium"] for row in figures["deliveries"]],
        "deliveries": [
            {"label": status, "data": [row["counts"][i] for row in figures["deliveries"]]}
            for i, status in enumerate(statuses)
        ],
    }
    return figures


def dashboard_figures(*, user) -> dict:
    """The dashboard for `user`: every client for operators and support, their own for client
    staff. Cached for DASHBOARD_CACHE_SECONDS under a key naming the set of clients (so
    two users seeing the same clients share it, and the keys are as many as those sets)."""
    client_ids = None
    if not sees_all_clients(user):
        client_ids = sorted(visible_clients(user).values_list("pk", flat=True))
    key = f"kokatto:dashboard:{scope_key(client_ids)}"
    figures = cache.get(key)
    if figures is None:
        figures = dashboard_compute(
            client_ids=client_ids, internals=client_ids is None, now=timezone.now()
        )
        cache.set(key, figures, settings.DASHBOARD_CACHE_SECONDS)
    return figures
