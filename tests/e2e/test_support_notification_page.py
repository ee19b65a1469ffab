"""End to end, in a real browser: support finds a customer's notification by the phone
number the customer reads out (`0812-…`), opens it, and reads what was sent and when.

The README's screenshot (docs/screenshots/notification-page.png) is this test's: refreshed
with SCREENSHOT_DIR=docs/screenshots; by default the test leaves the committed one alone.
"""

import io
import os
import tempfile
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from clients.models import Application
from tests.factories import (
    DeliveryEventFactory,
    DeliveryFactory,
    NotificationFactory,
    demo_params,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

SCREENSHOT = Path(os.environ.get("SCREENSHOT_DIR", tempfile.gettempdir())) / "notification-page.png"
TEXT = "Bank Demo: Yth. Budi Santoso, tagihan Anda Rp 1.230.000 jatuh tempo 09-09-2026."


@pytest.fixture
def notification_pk(db):
    """A sent and delivered SMS of 8002's (before the browser starts)."""
    call_command("seed_demo", force=True, stdout=io.StringIO())
    application = Application.objects.get(client__client_id="8002", code="ABC")
    notification = NotificationFactory(
        application=application,
        reference="INV-2026-09-0042",
        status="DELIVERED",
        params=demo_params(customerName="Budi Santoso", msisdn="+6281298765432"),
    )
    delivery = DeliveryFactory(
        notification=notification,
        recipient="+6281298765432",
        body=TEXT,
        status="DELIVERED",
        attempts=1,
        provider="console",
        provider_message_id="console-0042",
        sent_at=timezone.now(),
        delivered_at=timezone.now(),
    )
    DeliveryEventFactory(
        delivery=delivery, old_status="PENDING", new_status="SENT", detail="sent by console"
    )
    DeliveryEventFactory(
        delivery=delivery,
        old_status="SENT",
        new_status="DELIVERED",
        detail="delivery receipt: DELIVRD",
    )
    return notification.pk


def test_support_finds_a_notification_by_phone_and_reads_its_text_and_timeline(
    notification_pk, live_server, page
):
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(live_server.url + reverse("admin:login"))
    page.fill("input[name=username]", "support")
    page.fill("input[name=password]", "kokatto-support-demo")
    page.click("input[type=submit]")
    page.goto(live_server.url + reverse("admin:notifications_notification_changelist"))

    page.fill("#searchbar", "0812-9876-5432")
    page.locator("#changelist-search input[type=submit]").click()
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    rows.get_by_role("link", name="INV-2026-09-0042").click()

    content = page.locator("#content")
    expect(content).to_contain_text("Asia/Jakarta (WIB")
    expect(content).to_contain_text(TEXT)
    expect(content).to_contain_text("SENT → DELIVERED")
    expect(content).to_contain_text("delivery receipt: DELIVRD")
    expect(content).to_contain_text("console-0042")
    expect(page.locator("#retry-notification")).to_have_count(0)  # support reads only
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
