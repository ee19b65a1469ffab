"""The delivery pipeline: claim, render, send, record; leases, retries and the timeline."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import Schedule

from notifications.dispatch import deliveries_claim, delivery_retry, delivery_send, dispatch_due
from notifications.models import Delivery, DeliveryEvent, Notification
from tests.factories import ContentTemplateFactory, accept_notification, demo_values


def accept_emails(client, application, *, count: int) -> None:
    """`count` notifications with an email recipient only, and the application's email template."""
    ContentTemplateFactory(
        application=application, medium="email", subject="Tagihan", body="Dear [customerName]"
    )
    for number in range(count):
        accept_notification(
            client, f"R-{number}", values=demo_values(msisdn="", email=f"c{number}@example.co.id")
        )


def sent_and_put_back(*, total: int) -> tuple[int, int]:
    """How many deliveries are SENT and how many were put back unsent, checking that
    those put back are due again untouched: no attempt counted, no lease, an event."""
    sent = Delivery.objects.filter(status="SENT").count()
    put_back = Delivery.objects.filter(status="PENDING")
    assert sent + put_back.count() == total
    assert set(put_back.values_list("attempts", "lease_expires_at")) <= {(0, None)}
    assert not put_back.filter(next_attempt_at__isnull=True).exists()
    events = DeliveryEvent.objects.filter(delivery__in=put_back, new_status="PENDING")
    assert set(events.values_list("detail", flat=True)) <= {"put back unsent: out of time"}
    assert events.values("delivery").distinct().count() == put_back.count()
    return sent, put_back.count()


@pytest.fixture
def unreachable_sms(settings, closed_port):
    """SMS through the Twilio backend to a port where nothing listens: a real transient failure."""
    settings.KOKATTO_CHANNEL_BACKENDS = {
        "sms": [
            {
                "BACKEND": "notifications.backends.http_sms.TwilioSmsBackend",
                "OPTIONS": {
                    "account_sid": "AC0123",
                    "auth_token": "token",
                    "sender_id": "BANKDEMO",
                    "base_url": f"http://127.0.0.1:{closed_port}",
                    "timeout": (1, 1),
                },
            }
        ]
    }
    settings.DELIVERY_MAX_ATTEMPTS = 3
    settings.DELIVERY_RETRY_BASE_SECONDS = 30


def test_an_accepted_notification_is_rendered_sent_and_its_timeline_kept(
    client_8002, sms_template, capsys
):
    notification = accept_notification(client_8002)

    assert dispatch_due() == 1

    delivery = Delivery.objects.get(notification=notification)
    assert delivery.status == "SENT"
    assert delivery.provider == "console"
    assert delivery.body == "Bank Demo: Dear John Doe, Rp 1.230.000 due 9 September 2015."
    assert delivery.template_version.number == 1
    assert delivery.attempts == 1
    assert delivery.sent_at is not None
    assert "[sms to +6281234567890] Bank Demo: Dear John Doe" in capsys.readouterr().out
    timeline = [
        (e.old_status, e.new_status, e.detail)
        for e in DeliveryEvent.objects.filter(delivery=delivery).order_by("id")
    ]
    assert timeline == [
        ("PENDING", "SENDING", "claimed"),
        (
            "SENDING",
            "SENT",
            f"sent by console as console-{delivery.pk}; rendered with template version 1",
        ),
    ]
    notification.refresh_from_db()
    assert notification.status == "SENT"


def test_a_sent_delivery_is_never_claimed_again(client_8002, sms_template):
    accept_notification(client_8002)
    dispatch_due()

    assert dispatch_due() == 0
    assert Delivery.objects.get().attempts == 1


def test_a_delivery_is_not_claimed_before_its_next_attempt(client_8002, sms_template):
    accept_notification(client_8002)
    Delivery.objects.update(next_attempt_at=timezone.now() + timedelta(minutes=5))

    assert deliveries_claim(limit=10) == []


def test_an_expired_lease_is_claimed_again_and_a_live_one_is_not(client_8002, sms_template):
    accept_notification(client_8002, "R-1")
    accept_notification(client_8002, "R-2")
    first, second = deliveries_claim(limit=10)
    expire_lease(first.delivery_id)

    assert deliveries_claim(limit=10) == [(first.delivery_id, 2)]
    reclaimed = Delivery.objects.get(pk=first.delivery_id)
    # Claimed twice, never handed to a provider: no attempt is used up.
    assert (reclaimed.status, reclaimed.claims, reclaimed.attempts) == ("SENDING", 2, 0)
    assert reclaimed.events.filter(detail__contains="lease expired").exists()
    assert Delivery.objects.get(pk=second.delivery_id).claims == 1


def expire_lease(delivery_id):
    Delivery.objects.filter(pk=delivery_id).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


def test_a_worker_whose_lease_ran_out_does_not_send(client_8002, sms_template, capsys):
    accept_notification(client_8002)
    [slow_claim] = deliveries_claim(limit=10)
    expire_lease(slow_claim.delivery_id)

    # Its lease ran out before it got to this delivery: it must leave it alone...
    assert delivery_send(**slow_claim._asdict()) == "skipped"
    # ...also once another worker has claimed it again.
    [fresh_claim] = deliveries_claim(limit=10)
    assert delivery_send(**slow_claim._asdict()) == "skipped"
    assert capsys.readouterr().out == ""

    assert delivery_send(**fresh_claim._asdict()) == "sent"
    assert Delivery.objects.get().status == "SENT"


def test_claims_take_at_most_the_chunk_size(client_8002, sms_template):
    for n in range(5):
        accept_notification(client_8002, f"R-{n}")

    assert len(deliveries_claim(limit=3)) == 3
    assert len(deliveries_claim(limit=3)) == 2


def test_a_transient_failure_is_retried_later_with_backoff(
    client_8002, sms_template, unreachable_sms
):
    notification = accept_notification(client_8002)
    before = timezone.now()

    dispatch_due()

    delivery = Delivery.objects.get()
    assert delivery.status == "PENDING"
    assert delivery.last_error.startswith("Connection refused: ")
    delay = (delivery.next_attempt_at - before).total_seconds()
    assert 24 <= delay <= 37  # 30 s ± 20% jitter
    assert dispatch_due() == 0  # not due yet
    notification.refresh_from_db()
    assert notification.status == "PROCESSING"


def test_a_delivery_fails_when_its_attempts_run_out(client_8002, sms_template, unreachable_sms):
    notification = accept_notification(client_8002)
    for _ in range(3):
        Delivery.objects.update(next_attempt_at=timezone.now())
        dispatch_due()

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("FAILED", 3)
    assert delivery.last_error.startswith("Connection refused: ")
    notification.refresh_from_db()
    assert notification.status == "FAILED"


def test_a_delivery_without_a_template_fails_at_once_saying_why(client_8002, app_8002):
    accept_notification(client_8002)

    dispatch_due()

    delivery = Delivery.objects.get()
    assert delivery.status == "FAILED"
    assert delivery.attempts == 0  # no provider was asked
    assert "has no sms template" in delivery.last_error


def test_retrying_a_failed_delivery_sends_it(client_8002, app_8002):
    accept_notification(client_8002)
    dispatch_due()  # fails: no template yet
    ContentTemplateFactory(application=app_8002, medium="sms", body="Bank Demo [customerName]")
    delivery = Delivery.objects.get()

    assert delivery_retry(delivery=delivery, detail="retried by operator") is True
    dispatch_due()

    delivery.refresh_from_db()
    assert delivery.status == "SENT"
    assert Notification.objects.get().status == "SENT"
    assert delivery_retry(delivery=delivery, detail="again") is False


def test_the_sweeper_schedule_exists(db):
    schedule = Schedule.objects.get(name="dispatch due deliveries")

    assert schedule.func == "notifications.tasks.dispatch_deliveries"
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == ("I", 1, -1)


def test_transient_failures_exhausting_one_backend_move_to_the_next(
    client_8002, sms_template, unreachable_sms, settings
):
    settings.DELIVERY_MAX_ATTEMPTS = 2
    settings.KOKATTO_CHANNEL_BACKENDS = {
        "sms": [
            *settings.KOKATTO_CHANNEL_BACKENDS["sms"],
            {"BACKEND": "notifications.backends.console.ConsoleBackend"},
        ]
    }
    accept_notification(client_8002)
    for _ in range(3):
        Delivery.objects.update(next_attempt_at=timezone.now())
        dispatch_due()

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.provider) == ("SENT", 3, "console")
    failures = delivery.events.filter(detail__contains="by twilio failed")
    assert failures.count() == 2


@pytest.fixture
def sms_through_sink(settings, sms_sink):
    settings.KOKATTO_CHANNEL_BACKENDS = {
        "sms": [
            {
                "BACKEND": "notifications.backends.http_sms.TwilioSmsBackend",
                "OPTIONS": sms_sink.twilio_options(timeout=(1, 2)),
            }
        ]
    }
    return sms_sink


def test_a_slow_provider_gets_a_groups_messages_side_by_side(
    client_8002, sms_template, sms_through_sink, settings
):
    settings.DELIVERY_SEND_CONCURRENCY = 4
    sink = sms_through_sink
    sink.slow_seconds = 0.3  # each answer comes late, but within the read timeout
    sink.misbehave("slow", times=8)
    for number in range(8):
        accept_notification(client_8002, reference=f"R-{number}")

    assert dispatch_due() == 8

    assert set(Delivery.objects.values_list("status", flat=True)) == {"SENT"}
    assert len(sink.messages) == 8
    # One connection per message in flight: a second one opens only while the first is busy.
    assert sink.connections > 1
    sids = {message.sid for message in sink.messages}
    assert set(Delivery.objects.values_list("provider_message_id", flat=True)) == sids


def test_with_concurrency_one_a_worker_sends_one_message_at_a_time(
    client_8002, sms_template, sms_through_sink, settings
):
    settings.DELIVERY_SEND_CONCURRENCY = 1
    for number in range(5):
        accept_notification(client_8002, reference=f"R-{number}")

    assert dispatch_due() == 5

    assert len(sms_through_sink.messages) == 5
    assert sms_through_sink.connections == 1


def test_a_chunk_larger_than_a_group_is_sent_group_by_group(
    client_8002, sms_template, settings, capsys
):
    settings.DELIVERY_SEND_GROUP = 2
    for number in range(5):
        accept_notification(client_8002, reference=f"R-{number}")

    assert dispatch_due() == 5

    assert set(Delivery.objects.values_list("status", flat=True)) == {"SENT"}
    assert set(Delivery.objects.values_list("attempts", flat=True)) == {1}
    assert capsys.readouterr().out.count("[sms to +6281234567890]") == 5
    assert set(Notification.objects.values_list("status", flat=True)) == {"SENT"}


def test_a_groups_emails_go_out_over_one_smtp_connection_when_one_is_allowed(
    client_8002, app_8002, smtp_server, settings
):
    settings.EMAIL_MAX_CONNECTIONS = 1
    accept_emails(client_8002, app_8002, count=6)

    assert dispatch_due() == 6

    assert set(Delivery.objects.values_list("status", flat=True)) == {"SENT"}
    assert len(smtp_server.messages) == 6
    assert smtp_server.connections == 1


def test_a_chunk_out_of_time_puts_back_what_it_has_not_sent(
    client_8002, app_8002, smtp_server, settings
):
    # 0.4 s a message, one at a time, and 1 s to send in: the rest waits for the next
    # task, due at once.
    settings.EMAIL_MAX_CONNECTIONS = 1
    settings.DELIVERY_CHUNK_SECONDS = 1
    settings.DELIVERY_SEND_TIMEOUT_SECONDS = 0.5
    smtp_server.slow_down(0.4)
    accept_emails(client_8002, app_8002, count=6)

    assert dispatch_due() == 6

    sent, waiting = sent_and_put_back(total=6)
    assert 1 <= sent < 6
    assert len(smtp_server.messages) == sent

    smtp_server.slow_down(0)
    assert dispatch_due() == waiting
    assert set(Delivery.objects.values_list("status", flat=True)) == {"SENT"}
    assert len(smtp_server.messages) == 6


def test_a_provider_id_too_long_for_its_column_does_not_fail_the_groups_record(
    client_8002, sms_template, sms_sink, settings
):
    # The message is out; were the group's record refused, the group would be sent again.
    settings.KOKATTO_CHANNEL_BACKENDS = {"sms": [sms_sink.generic_backend()]}
    sms_sink.before_answer = lambda answer: answer.update(message_id="gw-" + "9" * 200)
    accept_notification(client_8002, reference="R-1")
    accept_notification(client_8002, reference="R-2")

    assert dispatch_due() == 2

    assert list(Delivery.objects.values_list("status", "provider_message_id")) == [("SENT", "")] * 2
    assert len(sms_sink.messages) == 2
    sent = DeliveryEvent.objects.filter(new_status="SENT").values_list("detail", flat=True)
    assert all("an id too long to store: 'gw-999" in detail for detail in sent)


def test_a_group_that_would_start_late_in_the_chunks_lease_is_put_back(
    client_8002, app_8002, smtp_server, settings
):
    # Two emails a group at 0.4 s each, one at a time, a 2 s lease: groups may start in
    # its first second.
    settings.EMAIL_MAX_CONNECTIONS = 1
    settings.DELIVERY_LEASE_SECONDS = 2
    settings.DELIVERY_SEND_TIMEOUT_SECONDS = 0.5
    settings.DELIVERY_SEND_GROUP = 2
    smtp_server.slow_down(0.4)
    accept_emails(client_8002, app_8002, count=6)

    assert dispatch_due() == 6

    sent, _ = sent_and_put_back(total=6)
    assert 2 <= sent <= 4
