"""The notification page tells support the whole story, every time in the client's zone."""

import re
import zoneinfo

import pytest

from tests.factories import DeliveryFactory, NotificationFactory
from tests.support.conftest import RENDERED_SMS


def page_of(browser, notification):
    response = browser.get(f"/admin/notifications/notification/{notification.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_page_shows_parameters_source_deliveries_timeline_and_callbacks(support_client, story):
    page = page_of(support_client, story.notification)

    assert "<code>customerName</code> = John Doe" in page  # parameters as received
    assert "pembiayaan-2026-09-01.7z</a>, line 42" in page  # the batch file and line
    assert f'href="/admin/batches/batch/{story.notification.batch_id}/change/"' in page
    assert RENDERED_SMS in page  # the rendered text as sent
    assert "Tagihan Anda" in page  # the email's subject
    assert str(story.version) in page
    assert "SMSGW-778899" in page and "sms-gateway" in page
    assert "550 mailbox unavailable" in page  # support reads the provider's error
    assert "SENT → DELIVERED" in page and "delivery receipt: DELIVRD" in page
    assert "https://client.example/hook" in page and "HTTP 200 OK" in page


def test_an_api_notification_shows_when_its_request_came(support_client, app_8003):
    notification = NotificationFactory(application=app_8003)

    assert "through the API at " in page_of(support_client, notification)


@pytest.mark.parametrize(
    ("zone", "abbreviation"), [("Asia/Jakarta", "WIB"), ("Asia/Makassar", "WITA")]
)
def test_every_time_is_in_the_clients_time_zone_and_named(
    support_client, story, zone, abbreviation
):
    client = story.notification.client
    client.time_zone = zone
    client.save()

    page = page_of(support_client, story.notification)

    assert f"{zone} ({abbreviation}, UTC+0" in page
    local = story.notification.created_at.astimezone(zoneinfo.ZoneInfo(zone))
    assert f"<td>{local:%Y-%m-%d %H:%M:%S} {abbreviation}</td>" in page  # the timeline
    utc = story.notification.created_at.astimezone(zoneinfo.ZoneInfo("UTC"))
    assert f"{utc:%H:%M:%S}" not in page or utc.hour == local.hour
    assert not re.search(r"\d\d:\d\d:\d\d UTC", page)


def test_client_staff_see_their_own_notification_page(staff_client, app_8002):
    notification = NotificationFactory(application=app_8002)
    DeliveryFactory(notification=notification, body="Rendered for 8002")

    page = page_of(staff_client, notification)

    assert "Rendered for 8002" in page


def test_client_staff_get_404_for_another_clients_notification_by_url(staff_client, story):
    for url in [
        f"/admin/notifications/notification/{story.notification.pk}/change/",
        f"/admin/notifications/delivery/{story.sms.pk}/change/",
    ]:
        response = staff_client.get(url)
        assert response.status_code in (302, 404)
        assert "SMSGW-778899" not in response.content.decode()


def test_a_delivery_page_is_in_its_clients_time_zone_too(support_client, story):
    client = story.notification.client
    client.time_zone = "Asia/Jayapura"
    client.save()

    response = support_client.get(f"/admin/notifications/delivery/{story.sms.pk}/change/")

    assert "Asia/Jayapura (WIT, UTC+0900)" in response.content.decode()
