"""The dashboard's figures (kokatto_site/dashboard.py), each function called directly."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from batches.models import BatchStatus, GatewayEvent, GatewayLoginFailure, GatewayScore
from kokatto_site.dashboard import (
    accepted_by_day,
    accepted_summary,
    batches_in_progress,
    cluster_health,
    dashboard_compute,
    dashboard_figures,
    day_window,
    deliveries_by_medium_and_status,
    delivery_queue,
    delivery_rates,
    gateway_activity,
    gateway_defence,
)
from notifications.models import Delivery, Notification
from tests.factories import BatchFactory, DeliveryFactory, NotificationFactory

pytestmark = pytest.mark.django_db


def notification(application, *, days_ago=0, source="api", batch=None):
    row = NotificationFactory(
        application=application, source=source, batch=batch if source == "batch" else None
    )
    if days_ago:
        Notification.objects.filter(pk=row.pk).update(
            created_at=timezone.now() - timedelta(days=days_ago)
        )
    return row


def delivery(application, *, medium="sms", status="PENDING", days_ago=0, **fields):
    row = DeliveryFactory(
        notification=notification(application), medium=medium, status=status, **fields
    )
    if days_ago:
        Delivery.objects.filter(pk=row.pk).update(
            created_at=timezone.now() - timedelta(days=days_ago)
        )
    return row


def test_the_window_is_the_last_seven_days_in_the_platform_time_zone_today_last():
    now = timezone.now()
    days, start = day_window(now=now)

    assert len(days) == 7
    assert days[-1] == timezone.localdate(now)
    assert timezone.localtime(start).date() == days[0]
    assert timezone.localtime(start).hour == 0


def test_accepted_counts_per_day_client_and_source(app_8002, app_8003):
    batch = BatchFactory(client=app_8002.client)
    for _ in range(3):
        notification(app_8002)
    notification(app_8002, source="batch", batch=batch)
    notification(app_8002, days_ago=2)
    notification(app_8003)
    notification(app_8003, days_ago=8)  # before the window
    now = timezone.now()

    summary = accepted_summary(rows=accepted_by_day(client_ids=None, now=now), now=now)

    by_client = {row["client"]: row["sources"] for row in summary["clients"]}
    assert by_client["8002"] == {
        "api": {"today": 3, "week": 4},
        "batch": {"today": 1, "week": 1},
    }
    assert by_client["8003"] == {"api": {"today": 1, "week": 1}, "batch": {"today": 0, "week": 0}}
    assert summary["today"] == 5
    assert summary["week"] == 6
    assert summary["per_day"]["api"][-1] == 4
    assert summary["per_day"]["api"][-3] == 1
    assert summary["per_day"]["batch"] == [0, 0, 0, 0, 0, 0, 1]


def test_accepted_counts_of_some_clients_leave_the_others_out(app_8002, app_8003):
    notification(app_8002)
    notification(app_8003)

    rows = accepted_by_day(client_ids=[app_8002.client_id], now=timezone.now())

    assert [(row["client_id"], row["count"]) for row in rows] == [(app_8002.client_id, 1)]


def test_deliveries_by_medium_and_status_of_the_last_seven_days(app_8002, app_8003):
    delivery(app_8002, medium="sms", status="DELIVERED")
    delivery(app_8002, medium="sms", status="DELIVERED")
    delivery(app_8002, medium="sms", status="FAILED")
    delivery(app_8002, medium="email", status="EXPIRED")
    delivery(app_8002, medium="email", status="SENT", days_ago=9)
    delivery(app_8003, medium="whatsapp", status="PENDING")
    now = timezone.now()

    assert deliveries_by_medium_and_status(client_ids=None, now=now) == {
        "sms": {"DELIVERED": 2, "FAILED": 1},
        "email": {"EXPIRED": 1},
        "whatsapp": {"PENDING": 1},
    }
    assert deliveries_by_medium_and_status(client_ids=[app_8003.client_id], now=now) == {
        "whatsapp": {"PENDING": 1}
    }


def test_rates_are_shares_of_the_deliveries_with_an_outcome():
    counts = {
        "sms": {"DELIVERED": 5, "FAILED": 1, "PENDING": 100, "SENDING": 7},
        "email": {"UNDELIVERED": 1, "EXPIRED": 2, "SENT": 1},
    }

    rates = delivery_rates(counts)

    assert rates == {"decided": 10, "failure": 0.2, "expiry": 0.2}
    assert delivery_rates({"sms": {"PENDING": 3}}) == {
        "decided": 0,
        "failure": None,
        "expiry": None,
    }


def test_the_queue_is_the_due_pending_deliveries_and_the_oldest_ones_age(app_8002, app_8003):
    now = timezone.now()
    delivery(app_8002, next_attempt_at=now - timedelta(minutes=10))
    delivery(app_8002, next_attempt_at=now - timedelta(minutes=1))
    delivery(app_8002, next_attempt_at=now + timedelta(hours=3))  # sendAt later
    delivery(app_8002, status="SENT", next_attempt_at=now - timedelta(days=1))
    delivery(app_8003, next_attempt_at=now - timedelta(hours=2))

    everyone = delivery_queue(client_ids=None, now=now)
    own = delivery_queue(client_ids=[app_8002.client_id], now=now)

    assert everyone["depth"] == 3
    assert everyone["oldest_age_seconds"] == 2 * 3600
    assert everyone["scheduled"] == 1
    assert own["depth"] == 2
    assert own["oldest_due"] == now - timedelta(minutes=10)
    assert own["oldest_age_seconds"] == 600
    assert delivery_queue(client_ids=[], now=now) == {
        "depth": 0,
        "oldest_due": None,
        "oldest_age_seconds": None,
        "scheduled": 0,
    }


def test_batches_in_progress_with_their_progress(client_8002, client_8003):
    BatchFactory(
        client=client_8002,
        file_name="half.7z",
        status=BatchStatus.PROCESSING,
        bytes_total=1000,
        bytes_done=500,
    )
    BatchFactory(client=client_8002, file_name="waiting.7z", status=BatchStatus.RECEIVED)
    BatchFactory(client=client_8002, file_name="done.7z", status=BatchStatus.DONE)
    BatchFactory(client=client_8003, file_name="other.7z", status=BatchStatus.PROCESSING)

    own = batches_in_progress(client_ids=[client_8002.pk], limit=10)
    first = batches_in_progress(client_ids=None, limit=1)

    assert own["count"] == 2
    assert [(b["file_name"], b["percent"]) for b in own["shown"]] == [
        ("half.7z", 50),
        ("waiting.7z", None),
    ]
    assert first["count"] == 3
    assert [b["file_name"] for b in first["shown"]] == ["half.7z"]


def gateway_event(client, action, outcome, *, hours_ago=0):
    event = GatewayEvent.objects.create(
        client=client,
        username="bank",
        protocol="sftp",
        address="127.0.0.1",
        action=action,
        outcome=outcome,
    )
    if hours_ago:
        GatewayEvent.objects.filter(pk=event.pk).update(
            at=timezone.now() - timedelta(hours=hours_ago)
        )


def test_gateway_activity_of_the_last_day_per_client(client_8002, client_8003):
    gateway_event(client_8002, "LOGIN", "ok")
    gateway_event(client_8002, "LOGIN", "ok", hours_ago=30)
    gateway_event(client_8002, "UPLOAD", "ok")
    gateway_event(client_8002, "UPLOAD", "failed")
    gateway_event(None, "LOGIN_REFUSED", "refused")
    gateway_event(client_8003, "LOGIN", "ok")

    now = timezone.now()
    assert gateway_activity(client_ids=[client_8002.pk], now=now) == {
        "logins": 1,
        "logins_refused": 0,
        "uploads": 1,
        "failures": 1,
    }
    assert gateway_activity(client_ids=None, now=now) == {
        "logins": 2,
        "logins_refused": 1,
        "uploads": 1,
        "failures": 1,
    }


def test_gateway_defence_counts_active_bans_and_recent_failed_logins():
    now = timezone.now()
    GatewayScore.objects.create(
        kind="ADDRESS",
        value="203.0.113.9",
        window_started_at=now,
        last_failure_at=now,
        banned_until=now + timedelta(minutes=5),
    )
    GatewayScore.objects.create(
        kind="USERNAME",
        value="root",
        window_started_at=now,
        last_failure_at=now,
        banned_until=now - timedelta(minutes=5),
    )
    GatewayLoginFailure.objects.create(
        address="203.0.113.9",
        username="root",
        protocol="sftp",
        reason="UNKNOWN_USER",
        created_at=now,
    )

    assert gateway_defence(now=now) == {"active_bans": 1, "failed_logins": 1}


def test_cluster_health_without_a_cluster_says_none_is_alive(broker, settings):
    health = cluster_health(now=timezone.now())

    # Clusters report to this process through Redis, not a per-process cache (make run).
    assert health["reported"] == bool(settings.REDIS_URL)
    assert health["alive"] == 0
    assert health["clusters"] == []
    assert health["queued"] == 0


def test_cluster_health_counts_the_queued_tasks(broker):
    broker.enqueue("a task package")
    broker.enqueue("another")

    assert cluster_health(now=timezone.now())["queued"] == 2


def test_client_figures_leave_the_platform_internals_out(app_8002):
    figures = dashboard_compute(
        client_ids=[app_8002.client_id], internals=False, now=timezone.now()
    )

    assert figures["internals"] is None
    everything = dashboard_compute(client_ids=None, internals=True, now=timezone.now())
    assert set(everything["internals"]) == {"cluster", "defence"}


def test_the_figures_are_cached_per_set_of_clients_for_the_setting_s_seconds(
    app_8002, operator_user, staff_8002, settings
):
    notification(app_8002)
    first = dashboard_figures(user=operator_user)
    notification(app_8002)

    assert dashboard_figures(user=operator_user)["accepted"]["today"] == 1  # cached
    assert dashboard_figures(user=staff_8002)["accepted"]["today"] == 2  # its own entry
    settings.DASHBOARD_CACHE_SECONDS = 0
    cache.clear()
    dashboard_figures(user=operator_user)
    notification(app_8002)
    assert dashboard_figures(user=operator_user)["accepted"]["today"] == 3
    assert first["accepted"]["today"] == 1


def test_closed_days_are_counted_once_a_day_and_today_at_every_call(app_8002):
    notification(app_8002, days_ago=2)
    accepted_by_day(client_ids=None, now=timezone.now())
    notification(app_8002, days_ago=2)  # as no real notification could: in the past
    notification(app_8002)

    rows = accepted_by_day(client_ids=None, now=timezone.now())

    assert sorted(row["count"] for row in rows) == [1, 1]
    # Another set of clients has its own entry.
    own = accepted_by_day(client_ids=[app_8002.client_id], now=timezone.now())
    assert sum(row["count"] for row in own) == 3
