"""A dispatch task keeps its worker busy (chunk after chunk, for DELIVERY_TASK_SECONDS), and
what one claim of a chunk does."""

from datetime import timedelta

from django.utils import timezone

from notifications.dispatch import Claim, deliveries_claim
from notifications.models import Delivery, DeliveryEvent, Notification
from notifications.tasks import dispatch_deliveries
from tests.factories import accept_notification


def accept_sms(client, count: int, broker) -> None:
    for number in range(count):
        accept_notification(client, reference=f"R-{number}")
    broker.purge_queue()  # intake queued a dispatch after each one: the test runs it


def test_a_dispatch_task_sends_chunk_after_chunk_and_queues_no_successor_when_one_comes_back_short(
    client_8002, sms_template, settings, broker, capsys
):
    settings.DELIVERY_CHUNK_SIZE = 2
    accept_sms(client_8002, 5, broker)

    assert dispatch_deliveries() == 5

    assert set(Delivery.objects.values_list("status", flat=True)) == {"SENT"}
    assert capsys.readouterr().out.count("[sms to +6281234567890]") == 5
    assert broker.queue_size() == 0


def test_a_dispatch_task_out_of_time_queues_its_successor_for_the_rest(
    client_8002, sms_template, settings, broker
):
    settings.DELIVERY_CHUNK_SIZE = 2
    settings.DELIVERY_TASK_SECONDS = 0  # time is up after the first chunk
    accept_sms(client_8002, 5, broker)

    assert dispatch_deliveries() == 2

    statuses = list(Delivery.objects.order_by("id").values_list("status", flat=True))
    assert statuses == ["SENT", "SENT", "PENDING", "PENDING", "PENDING"]
    assert broker.queue_size() == 1


def test_a_dispatch_task_whose_last_chunk_is_exactly_full_queues_a_successor_that_finds_nothing(
    client_8002, sms_template, settings, broker
):
    settings.DELIVERY_CHUNK_SIZE = 2
    settings.DELIVERY_TASK_SECONDS = 0
    accept_sms(client_8002, 2, broker)

    assert dispatch_deliveries() == 2
    assert broker.queue_size() == 1
    broker.purge_queue()

    assert dispatch_deliveries() == 0
    assert broker.queue_size() == 0


def test_a_claim_leases_the_due_then_the_expired_each_with_its_event_and_notification_processing(
    client_8002, sms_template, settings
):
    due, later, abandoned = (
        accept_notification(client_8002, reference=reference)
        for reference in ("DUE", "LATER", "ABANDONED")
    )
    now = timezone.now()
    Delivery.objects.filter(notification=later).update(next_attempt_at=now + timedelta(hours=1))
    # A worker claimed this one and died: its lease ran out a minute ago.
    Delivery.objects.filter(notification=abandoned).update(
        status="SENDING", claims=1, lease_expires_at=now - timedelta(minutes=1)
    )
    Notification.objects.filter(pk=abandoned.pk).update(status="PROCESSING")
    due_id, later_id, abandoned_id = (
        Delivery.objects.get(notification=n).pk for n in (due, later, abandoned)
    )

    assert deliveries_claim(limit=1) == [Claim(due_id, 1)]  # the due first
    assert deliveries_claim(limit=10) == [Claim(abandoned_id, 2)]
    assert deliveries_claim(limit=10) == []

    leases = dict(Delivery.objects.values_list("id", "lease_expires_at"))
    for pk in (due_id, abandoned_id):
        seconds = (leases[pk] - now).total_seconds()
        assert settings.DELIVERY_LEASE_SECONDS - 5 < seconds < settings.DELIVERY_LEASE_SECONDS + 5
    assert leases[later_id] is None
    events = DeliveryEvent.objects.order_by("id")
    assert [(e.delivery_id, e.old_status, e.new_status, e.detail) for e in events] == [
        (due_id, "PENDING", "SENDING", "claimed"),
        (abandoned_id, "SENDING", "SENDING", "claimed again: the previous worker's lease expired"),
    ]
    statuses = dict(Notification.objects.values_list("reference", "status"))
    assert statuses == {"DUE": "PROCESSING", "LATER": "ACCEPTED", "ABANDONED": "PROCESSING"}
