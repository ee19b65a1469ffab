"""The platform's own metrics count real events where they happen, read back from /metrics
as Prometheus parses them. Counters live as long as the test process, so each test
compares the figures before and after; counters move when the recording transaction
commits, which django_capture_on_commit_callbacks stands for inside a test's transaction."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from batches.gateway.accounts import gateway_account_authenticate, gateway_account_create
from batches.gateway.protocols import GatewayProtocol
from notifications.dispatch import dispatch_due
from notifications.models import Delivery
from tests.api import conftest as api_fixtures
from tests.api.conftest import demo_fields
from tests.batches import conftest as batch_fixtures
from tests.batches.conftest import line, seven_zip
from tests.batches.test_ingest import ingest
from tests.delivery.test_receipts import GATEWAY_TOKEN, post_gateway_receipt, sent_sms_of
from tests.factories import accept_notification
from tests.monitoring.conftest import scrape, value

pytestmark = pytest.mark.django_db

# A signed API client of 8002; a fresh local batch storage and client 8002's batch password.
api = api_fixtures.api
batch_home = batch_fixtures.batch_home
batch_client = batch_fixtures.batch_client


class Growth:
    """What /metrics gained between `start()` and `grew(...)`."""

    def __init__(self, client):
        self.client = client
        self.before = scrape(client)
        self.after = None

    def grew(self, name: str, **labels) -> float:
        if self.after is None:
            self.after = scrape(self.client)
        return value(self.after, name, **labels) - value(self.before, name, **labels)


def test_a_notification_created_through_the_api_and_sent_by_the_console_is_counted(
    client, api, sms_template, django_capture_on_commit_callbacks, capsys
):
    growth = Growth(client)

    with django_capture_on_commit_callbacks(execute=True):
        answer = api.create(**demo_fields("METRICS-1", email=""))
    with django_capture_on_commit_callbacks(execute=True):
        assert dispatch_due() == 1

    assert answer.status_code == 201
    assert "[sms to +6281234567890]" in capsys.readouterr().out
    assert growth.grew("kokatto_notifications_accepted_total", client="8002", source="api") == 1
    assert growth.grew("kokatto_notifications_accepted_total", client="8002", source="batch") == 0
    console = {"medium": "sms", "provider": "console"}
    assert growth.grew("kokatto_deliveries_total", status="sent", **console) == 1
    assert growth.grew("kokatto_send_duration_seconds_count", **console) == 1
    assert growth.grew("kokatto_send_duration_seconds_bucket", le="+Inf", **console) == 1
    # django-prometheus's own: the API request by view, and the database work.
    notif = {"view": "notif", "transport": "http", "method": "GET"}
    assert growth.grew("django_http_requests_total_by_view_transport_method_total", **notif) == 1
    assert growth.grew("django_db_execute_total", alias="default", vendor=connection.vendor) > 0


def test_a_delivery_that_cannot_be_sent_counts_as_failed_without_a_provider(
    client, client_8002, app_8002, django_capture_on_commit_callbacks
):
    accept_notification(client_8002)  # app_8002 has no template: it cannot be rendered
    growth = Growth(client)

    with django_capture_on_commit_callbacks(execute=True):
        dispatch_due()

    failed = {"medium": "sms", "provider": "none", "status": "failed"}
    assert growth.grew("kokatto_deliveries_total", **failed) == 1
    assert growth.grew("kokatto_send_duration_seconds_count", medium="sms", provider="none") == 0


def test_a_delivery_past_its_expiry_counts_as_expired(
    client, client_8002, sms_template, django_capture_on_commit_callbacks
):
    soon = timezone.now() + timedelta(seconds=1)
    notification = accept_notification(client_8002, expires_at=soon.isoformat())
    Delivery.objects.filter(notification=notification).update(
        next_attempt_at=timezone.now() - timedelta(minutes=1)
    )
    notification.__class__.objects.filter(pk=notification.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    growth = Growth(client)

    with django_capture_on_commit_callbacks(execute=True):
        dispatch_due()

    expired = {"medium": "sms", "provider": "none", "status": "expired"}
    assert growth.grew("kokatto_deliveries_total", **expired) == 1


def test_a_providers_receipt_counts_as_delivered(
    client, settings, app_8002, django_capture_on_commit_callbacks
):
    settings.SMS_GATEWAY_CALLBACK_TOKEN = GATEWAY_TOKEN
    sent_sms_of(app_8002, provider="http-sms", provider_message_id="1001")
    growth = Growth(client)

    with django_capture_on_commit_callbacks(execute=True):
        response = post_gateway_receipt(client, "1001")
        replay = post_gateway_receipt(client, "1001", status="failed")

    assert response.json() == {"result": "recorded"}
    assert replay.json() == {"result": "ignored"}
    gateway = {"medium": "sms", "provider": "http-sms"}
    assert growth.grew("kokatto_deliveries_total", status="delivered", **gateway) == 1
    assert growth.grew("kokatto_deliveries_total", status="undelivered", **gateway) == 0


def test_batch_lines_read_rejected_and_accepted_are_counted_by_client(
    client, batch_home, batch_client, tmp_path, django_capture_on_commit_callbacks
):
    text = "\n".join([line("B-1"), line("B-2", balance="lots"), line("B-3")]) + "\n"
    archive = seven_zip(tmp_path / "metrics.7z", text).read_bytes()
    growth = Growth(client)

    with django_capture_on_commit_callbacks(execute=True):
        batch = ingest(batch_client, "metrics.7z", archive)

    assert (batch.lines_read, batch.lines_accepted, batch.lines_rejected) == (3, 2, 1)
    assert growth.grew("kokatto_batch_lines_read_total", client="8002") == 3
    rejected = {"client": "8002", "code": "VALIDATION_ERROR"}
    assert growth.grew("kokatto_batch_lines_rejected_total", **rejected) == 1
    assert growth.grew("kokatto_notifications_accepted_total", client="8002", source="batch") == 2


def test_gateway_logins_are_counted_by_outcome(
    client, client_8002, django_capture_on_commit_callbacks
):
    gateway_account_create(client=client_8002, username="bank8002", password="gateway-pass-1")
    growth = Growth(client)
    login = {"username": "bank8002", "protocol": GatewayProtocol.SFTP, "address": "192.0.2.10"}

    with django_capture_on_commit_callbacks(execute=True):
        assert gateway_account_authenticate(password="gateway-pass-1", **login) is not None
        assert gateway_account_authenticate(password="wrong", **login) is None

    sftp = {"protocol": "sftp"}
    assert growth.grew("kokatto_gateway_events_total", action="LOGIN", outcome="ok", **sftp) == 1
    refused = {"action": "LOGIN_REFUSED", "outcome": "refused", **sftp}
    assert growth.grew("kokatto_gateway_events_total", **refused) == 1


def test_the_queue_depth_and_the_age_of_its_oldest_due_delivery_are_read_when_scraped(
    client, settings, client_8002, app_8002
):
    settings.METRICS_QUEUE_CACHE_SECONDS = 0
    for number in range(3):
        accept_notification(client_8002, f"Q-{number}")
    later = (timezone.now() + timedelta(hours=1)).isoformat()
    accept_notification(client_8002, "Q-later", send_at=later)  # not due: not counted
    Delivery.objects.filter(notification__reference="Q-0").update(
        next_attempt_at=timezone.now() - timedelta(minutes=10)
    )

    scraped = scrape(client)

    assert value(scraped, "kokatto_delivery_queue_due") == 3
    assert 600 <= value(scraped, "kokatto_delivery_queue_oldest_due_age_seconds") < 3600
    settings.METRICS_QUEUE_COUNT_LIMIT = 2
    assert value(scrape(client), "kokatto_delivery_queue_due") == 2


def test_an_empty_queue_reads_zero_and_the_figures_are_cached(
    client, settings, client_8002, app_8002
):
    settings.METRICS_QUEUE_CACHE_SECONDS = 60

    assert value(scrape(client), "kokatto_delivery_queue_due") == 0
    accept_notification(client_8002)

    # Within the cache time a scrape reads the cached figures, not the table.
    assert value(scrape(client), "kokatto_delivery_queue_due") == 0
    assert value(scrape(client), "kokatto_delivery_queue_oldest_due_age_seconds") == 0
