"""Finished notifications' personal data is purged after the client's retention period:
what goes, what stays, the recipient still answerable by its keyed hash, resumable."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from kokatto_site.retention import personal_data_purge
from notifications.dispatch import delivery_retry
from notifications.models import Delivery, DeliveryEvent, Notification, RetentionRun
from notifications.recipient_digest import purged_deliveries_to, recipient_digest
from notifications.retention import notifications_purge
from tests.privacy.old_rows import finished


def test_a_finished_notification_past_the_period_loses_its_personal_data_only(app_8002, settings):
    settings.NOTIFICATION_RETENTION_DAYS = 365
    old = finished(app_8002, "REF-OLD", days=400)
    kept_before = (
        Notification.objects.filter(pk=old.pk)
        .values(
            "reference", "client", "application", "source", "status", "created_at", "updated_at"
        )
        .get()
    )
    sms_before = (
        Delivery.objects.filter(notification=old, medium="sms")
        .values(
            "status",
            "attempts",
            "provider",
            "provider_message_id",
            "sent_at",
            "created_at",
            "updated_at",
        )
        .get()
    )

    counts = notifications_purge()

    assert counts == {"notifications": 1, "deliveries": 2, "events": 1, "callback answers": 1}
    old.refresh_from_db()
    assert old.params == {}
    assert old.purged_at is not None
    assert Notification.objects.filter(pk=old.pk).values(*kept_before).get() == kept_before
    sms, email = old.deliveries.order_by("medium").reverse()
    assert (sms.medium, email.medium) == ("sms", "email")
    for delivery in (sms, email):
        assert (delivery.recipient, delivery.subject, delivery.body, delivery.html_body) == (
            "",
            "",
            "",
            "",
        )
        assert len(delivery.recipient_digest) == 64
    assert sms.last_error == "HTTP 400"  # the category stays; the provider's words go
    assert Delivery.objects.filter(pk=sms.pk).values(*sms_before).get() == sms_before
    event = DeliveryEvent.objects.get(delivery=sms)
    assert (event.old_status, event.new_status, event.detail) == ("SENDING", "SENT", "")
    callback = old.callbacks.get()
    assert (callback.last_response, callback.payload["requestId"]) == ("", "REF-OLD")


def test_the_recipient_is_still_answerable_by_its_keyed_hash(app_8002):
    old = finished(app_8002, "REF-OLD", days=400)

    notifications_purge()

    sms = old.deliveries.get(medium="sms")
    email = old.deliveries.get(medium="email")
    for writing in ("0812-3456-7890", "+62 812 3456 7890", "6281234567890", "081234567890"):
        assert list(purged_deliveries_to(writing)) == [sms], writing
    assert list(purged_deliveries_to("john.doe@example.co.id")) == [email]
    assert not purged_deliveries_to("081299999999").exists()


def test_the_hash_is_keyed(settings):
    first = recipient_digest("+6281234567890")
    settings.RECIPIENT_HASH_KEY = "another key"

    assert recipient_digest("+6281234567890") != first


def test_younger_notifications_are_kept(app_8002, settings):
    settings.NOTIFICATION_RETENTION_DAYS = 365
    young = finished(app_8002, "REF-YOUNG", days=300)

    assert notifications_purge()["notifications"] == 0
    young.refresh_from_db()
    assert young.purged_at is None
    assert young.params["customerName"] == "John Doe"
    assert young.deliveries.get(medium="sms").recipient == "+6281234567890"


@pytest.mark.parametrize("status", ["ACCEPTED", "PROCESSING"])
def test_a_notification_still_pending_delivery_is_never_touched(app_8002, status):
    pending = finished(app_8002, "REF-PENDING", days=4000, status=status)

    assert notifications_purge()["notifications"] == 0
    pending.refresh_from_db()
    assert pending.purged_at is None
    assert pending.deliveries.get(medium="sms").recipient == "+6281234567890"


def test_a_notification_changed_within_the_receipt_wait_is_left_for_a_later_run(app_8002, settings):
    settings.RECEIPT_WAIT_HOURS = 24
    recent = finished(app_8002, "REF-RECEIPT", days=4000, status="SENT")
    Notification.objects.filter(pk=recent.pk).update(updated_at=timezone.now())  # a receipt

    assert notifications_purge()["notifications"] == 0
    later = notifications_purge(now=timezone.now() + timedelta(hours=25))
    assert later["notifications"] == 1


def test_the_clients_own_period_overrides_the_default(app_8002, app_8003, settings):
    settings.NOTIFICATION_RETENTION_DAYS = 365
    app_8002.client.retention_days = 30
    app_8002.client.save()
    app_8003.client.retention_days = 3650
    app_8003.client.save()
    short = finished(app_8002, "REF-SHORT", days=60)
    long_kept = finished(app_8003, "REF-LONG", days=400)

    notifications_purge()

    short.refresh_from_db()
    long_kept.refresh_from_db()
    assert short.purged_at is not None
    assert long_kept.purged_at is None


def test_a_run_stopped_after_a_chunk_is_resumed_with_nothing_done_twice(app_8002, settings):
    settings.RETENTION_CHUNK_SIZE = 2
    olds = [finished(app_8002, f"REF-{n}", days=404 - n) for n in range(5)]  # oldest first

    first = notifications_purge(max_chunks=1)
    purged_first = dict(Notification.objects.exclude(purged_at=None).values_list("pk", "purged_at"))
    rest = notifications_purge(now=timezone.now() + timedelta(seconds=5))
    again = notifications_purge()

    assert first == {"notifications": 2, "deliveries": 4, "events": 2, "callback answers": 2}
    assert rest == {"notifications": 3, "deliveries": 6, "events": 3, "callback answers": 3}
    assert again == {"notifications": 0, "deliveries": 0, "events": 0, "callback answers": 0}
    # The oldest first, and the rows of the first chunk were not purged again.
    assert set(purged_first) == {olds[0].pk, olds[1].pk}
    for pk, at in purged_first.items():
        assert Notification.objects.get(pk=pk).purged_at == at
    assert not Notification.objects.filter(purged_at=None).exists()
    assert not Delivery.objects.exclude(recipient="").exists()
    assert Delivery.objects.filter(recipient_digest=recipient_digest("+6281234567890")).count() == 5


def test_each_run_is_recorded_with_its_counts(app_8002):
    finished(app_8002, "REF-OLD", days=400)

    personal_data_purge()

    run = RetentionRun.objects.get()
    assert run.finished_at is not None and run.finished_at >= run.started_at
    assert run.counts["notifications"] == 1
    assert run.counts["deliveries"] == 2


def test_the_command_dry_run_counts_and_changes_nothing(app_8002, capsys):
    old = finished(app_8002, "REF-OLD", days=400)

    call_command("purge_personal_data", "--dry-run")

    assert "Would purge 1 notifications" in capsys.readouterr().out
    old.refresh_from_db()
    assert old.purged_at is None
    assert not RetentionRun.objects.exists()
    call_command("purge_personal_data")
    assert "Purged 1 notifications" in capsys.readouterr().out
    old.refresh_from_db()
    assert old.purged_at is not None


def test_it_runs_daily_as_a_django_q_schedule(db):
    schedule = Schedule.objects.get(name="purge personal data")

    assert (schedule.func, schedule.schedule_type, schedule.repeats) == (
        "kokatto_site.tasks.purge_personal_data",
        Schedule.DAILY,
        -1,
    )


def test_the_notification_page_says_when_it_was_purged(support_client, app_8002):
    old = finished(app_8002, "REF-OLD", days=400)
    page = f"/admin/notifications/notification/{old.pk}/change/"
    assert "kept; purged once finished and after" in support_client.get(page).content.decode()

    notifications_purge()

    old.refresh_from_db()
    local = timezone.localtime(old.purged_at).strftime("%Y-%m-%d %H:%M WIB")
    assert f"purged on {local}" in support_client.get(page).content.decode()


def test_a_purged_failed_delivery_cannot_be_retried(app_8002):
    old = finished(app_8002, "REF-FAILED", days=400, status="FAILED")
    failed = old.deliveries.get(medium="sms")
    Delivery.objects.filter(pk=failed.pk).update(status="FAILED")
    notifications_purge()
    failed.refresh_from_db()

    assert delivery_retry(delivery=failed, detail="retried by operator") is False
    failed.refresh_from_db()
    assert failed.status == "FAILED"
