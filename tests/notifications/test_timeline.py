"""A notification's status history: its acceptance first, then every delivery's changes in time."""

from datetime import timedelta

import pytest

from notifications.models import DeliveryEvent
from notifications.timeline import notification_timeline
from tests.factories import BatchFactory, DeliveryEventFactory, DeliveryFactory, NotificationFactory

pytestmark = pytest.mark.django_db


def changes(entries) -> list[tuple[str, str, str, str]]:
    return [(e.medium, e.old_status, e.new_status, e.detail) for e in entries]


def test_a_new_notification_shows_only_its_acceptance(app_8002):
    notification = NotificationFactory(application=app_8002, source="api")

    assert changes(notification_timeline(notification)) == [
        ("all", "", "ACCEPTED", "accepted via api")
    ]
    assert notification_timeline(notification)[0].at == notification.created_at


def test_a_batch_notifications_acceptance_names_its_batch_and_line(app_8002):
    batch = BatchFactory(client=app_8002.client)
    notification = NotificationFactory(
        application=app_8002, source="batch", batch=batch, batch_line=17
    )

    [acceptance] = notification_timeline(notification)

    assert acceptance.detail == f"accepted via batch {batch.pk}, line 17"


def test_the_deliveries_changes_follow_in_time_whichever_medium(app_8002):
    notification = NotificationFactory(application=app_8002)
    sms = DeliveryFactory(notification=notification, medium="sms")
    email = DeliveryFactory(notification=notification, medium="email", recipient="a@b.co.id")
    late = DeliveryEventFactory(delivery=sms, old_status="PENDING", new_status="SENT", detail="b")
    DeliveryEventFactory(delivery=email, old_status="PENDING", new_status="SENT", detail="a")
    DeliveryEvent.objects.filter(pk=late.pk).update(at=late.at + timedelta(minutes=5))

    assert changes(notification_timeline(notification))[1:] == [
        ("Email", "PENDING", "SENT", "a"),
        ("SMS", "PENDING", "SENT", "b"),
    ]


def test_an_older_notifications_acceptance_event_is_not_listed_twice(app_8002):
    delivery = DeliveryFactory(notification=NotificationFactory(application=app_8002))
    DeliveryEventFactory(
        delivery=delivery, old_status="", new_status="PENDING", detail="accepted via api"
    )

    assert [e.new_status for e in notification_timeline(delivery.notification)] == ["ACCEPTED"]


def test_another_notifications_events_are_not_listed(app_8002):
    own = NotificationFactory(application=app_8002)
    DeliveryEventFactory(
        delivery=DeliveryFactory(notification=NotificationFactory(application=app_8002)),
        old_status="PENDING",
        new_status="FAILED",
        detail="not yours",
    )

    assert len(notification_timeline(own)) == 1


def test_client_staff_see_the_category_of_a_provider_error_not_its_text(app_8002):
    delivery = DeliveryFactory(notification=NotificationFactory(application=app_8002))
    DeliveryEventFactory(
        delivery=delivery,
        old_status="SENDING",
        new_status="FAILED",
        detail="failed: SMTP 550 5.1.1 <budi@bank.co.id> mailbox unknown",
    )

    [_, for_platform] = notification_timeline(delivery.notification)
    [_, for_client] = notification_timeline(delivery.notification, for_client=True)

    assert for_platform.detail == "failed: SMTP 550 5.1.1 <budi@bank.co.id> mailbox unknown"
    assert for_client.detail == "failed: SMTP 550"
