"""sendAt holds a notification back; expiresAt stops it going out late."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from notifications.dispatch import dispatch_due
from notifications.intake import IntakeError, notification_create
from notifications.models import Delivery, Notification
from tests.factories import accept_notification, demo_values


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def test_a_notification_with_send_at_waits_until_then(client_8002, sms_template):
    later = timezone.now() + timedelta(hours=2)

    notification = accept_notification(client_8002, send_at=str(int(later.timestamp())))

    assert abs(notification.send_at - later) < timedelta(seconds=1)
    assert dispatch_due() == 0
    assert Delivery.objects.get().next_attempt_at == notification.send_at


def test_a_time_without_offset_is_in_the_clients_time_zone(client_8002, sms_template):
    notification = accept_notification(client_8002, send_at="2099-01-02T09:00:00")

    assert notification.send_at == datetime(2099, 1, 2, 2, 0, tzinfo=UTC)  # 09:00 WIB


def test_a_delivery_not_sent_before_expires_at_ends_expired_unsent(
    client_8002, sms_template, capsys
):
    notification = accept_notification(
        client_8002, expires_at=iso(timezone.now() + timedelta(minutes=1))
    )
    Notification.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    dispatch_due()

    delivery = Delivery.objects.get()
    assert delivery.status == "EXPIRED"
    assert delivery.sent_at is None
    assert "[sms to" not in capsys.readouterr().out
    notification.refresh_from_db()
    assert notification.status == "FAILED"


@pytest.mark.parametrize(
    ("schedule", "field", "message"),
    [
        ({"expires_at": "2001-01-01T00:00:00+07:00"}, "expiresAt", "Already passed"),
        ({"send_at": "tomorrow"}, "sendAt", "Expected Unix seconds or ISO 8601"),
        # Year 1 in the client's zone (ahead of UTC) has no UTC form to store.
        ({"send_at": "0001-01-01T00:00:00"}, "sendAt", "Out of range"),
        ({"send_at": "9999-12-31T23:00:00-05:00"}, "sendAt", "Out of range"),
        ({"expires_at": "999999999999"}, "expiresAt", "Out of range"),
        (
            {"send_at": "2099-01-02T10:00:00", "expires_at": "2099-01-02T09:00:00"},
            "expiresAt",
            "Must be after sendAt",
        ),
    ],
)
def test_a_bad_schedule_is_refused_with_the_field_named(
    client_8002, app_8002, schedule, field, message
):
    with pytest.raises(IntakeError) as raised:
        accept_notification(client_8002, **schedule)

    assert raised.value.code == "VALIDATION_ERROR"
    assert message in raised.value.errors[field][0]
    assert not Notification.objects.exists()


def test_an_application_can_expire_notifications_at_the_end_of_the_due_date(
    client_8002, app_8002, sms_template
):
    app_8002.expire_after_field = "dueDate"
    app_8002.save()

    notification = accept_notification(client_8002, values=demo_values(dueDate="09-09-2099"))

    assert notification.expires_at == datetime(2099, 9, 9, 16, 59, 59, 999999, tzinfo=UTC)


def test_a_due_date_whose_expiry_has_no_utc_form_is_refused(client_8002, app_8002):
    app_8002.expire_after_field = "dueDate"
    app_8002.save()

    with pytest.raises(IntakeError) as raised:
        accept_notification(client_8002, values=demo_values(dueDate="31-12-9999"))

    assert raised.value.code == "VALIDATION_ERROR"
    assert "Out of range" in raised.value.errors["expiresAt"][0]
    assert not Notification.objects.exists()


def test_a_retry_must_repeat_the_same_schedule(client_8002, sms_template):
    accept_notification(client_8002, send_at="2099-01-02T09:00:00")

    again = notification_create(
        client=client_8002,
        application_code="ABC",
        reference="R-1",
        values=demo_values(),
        send_at="2099-01-02T09:00:00",
    )
    assert again.created is False
    with pytest.raises(IntakeError) as raised:
        accept_notification(client_8002, send_at="2099-01-03T09:00:00")
    assert raised.value.code == "DUPLICATE_REFERENCE"
