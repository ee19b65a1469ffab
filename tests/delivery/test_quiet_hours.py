"""A client's quiet hours hold SMS and WhatsApp until morning; email goes out."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from clients.models import Client
from notifications.dispatch import dispatch_due
from notifications.models import Delivery
from tests.factories import ContentTemplateFactory, accept_notification, demo_values

JAKARTA = ZoneInfo("Asia/Jakarta")


def client_with_quiet_hours(start, end):
    return Client(client_id="9", name="x", quiet_hours_start=start, quiet_hours_end=end)


@pytest.mark.parametrize(
    ("local_time", "held_until"),
    [
        (datetime(2026, 11, 25, 23, 0), datetime(2026, 11, 26, 8, 0)),
        (datetime(2026, 11, 25, 6, 59), datetime(2026, 11, 25, 8, 0)),
        (datetime(2026, 11, 25, 21, 0), datetime(2026, 11, 26, 8, 0)),
        (datetime(2026, 11, 25, 8, 0), None),
        (datetime(2026, 11, 25, 12, 0), None),
    ],
)
def test_a_window_across_midnight_holds_until_its_end(local_time, held_until):
    client = client_with_quiet_hours(time(21, 0), time(8, 0))

    end = client.quiet_hours_end_after(local_time.replace(tzinfo=JAKARTA).astimezone(UTC))

    assert end == (held_until.replace(tzinfo=JAKARTA) if held_until else None)


def test_quiet_hours_need_both_ends():
    with pytest.raises(ValidationError):
        client_with_quiet_hours(time(21, 0), None).clean()


@pytest.fixture
def quiet_now(client_8002, app_8002):
    """Quiet hours around the present moment, whatever time the test runs."""
    local = timezone.now().astimezone(JAKARTA)
    client_8002.quiet_hours_start = (local - timedelta(hours=1)).time()
    client_8002.quiet_hours_end = (
        (local + timedelta(hours=1)).time().replace(second=0, microsecond=0)
    )
    client_8002.save()
    ContentTemplateFactory(application=app_8002, medium="sms", body="Bank Demo [customerName]")
    ContentTemplateFactory(
        application=app_8002, medium="email", subject="Reminder", body="Dear [customerName]"
    )
    return client_8002


def accept(client, **schedule):
    """A notification with both an SMS and an email recipient."""
    return accept_notification(client, values=demo_values(email="john@example.co.id"), **schedule)


def test_sms_waits_for_the_end_of_quiet_hours_and_email_does_not(quiet_now):
    accept(quiet_now)

    dispatch_due()

    sms, email = Delivery.objects.get(medium="sms"), Delivery.objects.get(medium="email")
    assert email.status == "SENT"
    assert (sms.status, sms.attempts) == ("PENDING", 0)
    assert sms.next_attempt_at > timezone.now() + timedelta(minutes=50)
    assert sms.events.filter(detail__startswith="held for the client's quiet hours").exists()
    assert dispatch_due() == 0


def test_a_hold_past_expires_at_ends_expired(quiet_now):
    accept(quiet_now, expires_at=str(int((timezone.now() + timedelta(minutes=30)).timestamp())))

    dispatch_due()

    assert Delivery.objects.get(medium="sms").status == "EXPIRED"
