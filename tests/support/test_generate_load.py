"""generate_load fills PostgreSQL with realistic notifications, and refuses where it must not."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from notifications.models import Delivery, DeliveryEvent, Notification
from notifications.search import notification_ids_found, search_term_read

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY: PostgreSQL")


@postgres_only
@pytest.mark.django_db
def test_it_fills_clients_media_statuses_sources_and_months(settings):
    settings.DEBUG = True
    out = io.StringIO()

    call_command("generate_load", "--notifications", "3000", stdout=out)

    assert "Loaded 3,000 notifications" in out.getvalue()
    assert Notification.objects.count() == 3000
    assert Notification.objects.values("client").distinct().count() == 6
    assert set(Notification.objects.values_list("source", flat=True)) == {"api", "batch"}
    assert set(Delivery.objects.values_list("medium", flat=True)) == {"sms", "email"}
    assert {"DELIVERED", "FAILED", "PENDING"} <= set(
        Delivery.objects.values_list("status", flat=True)
    )
    assert DeliveryEvent.objects.filter(new_status="DELIVERED").exists()
    oldest = Notification.objects.order_by("created_at").first().created_at
    newest = Notification.objects.order_by("created_at").last().created_at
    assert (newest - oldest).days >= 170
    phones = Delivery.objects.filter(medium="sms").values_list("recipient", flat=True)
    assert all(phone.startswith("+628") for phone in phones)
    # The indexes are back, and support finds a generated customer by phone.
    delivery = Delivery.objects.filter(medium="sms").first()
    written = "0" + delivery.recipient[3:]
    clients = list(Notification.objects.values_list("client_id", flat=True).distinct())
    assert delivery.notification_id in notification_ids_found(search_term_read(written), clients)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'notifications_delivery'"
        )
        assert "delivery_recipient_idx" in {name for (name,) in cursor}

    call_command("generate_load", "--notifications", "10", stdout=io.StringIO())  # again: adds
    assert Notification.objects.count() == 3010


@postgres_only
@pytest.mark.django_db
def test_it_refuses_to_run_with_debug_off_unless_forced(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="--force"):
        call_command("generate_load", "--notifications", "10")

    call_command("generate_load", "--notifications", "10", "--force", stdout=io.StringIO())
    assert Notification.objects.count() == 10


@pytest.mark.skipif(connection.vendor == "postgresql", reason="the SQLite refusal")
@pytest.mark.django_db
def test_it_refuses_sqlite(settings):
    settings.DEBUG = True
    with pytest.raises(CommandError, match="PostgreSQL"):
        call_command("generate_load", "--notifications", "10")
