"""Support finds a notification by reference, phone number, email, batch and filters;
client staff find only their own clients' notifications, whatever they type."""

from datetime import timedelta

import pytest

from notifications.models import Notification
from notifications.retention import notifications_purge
from tests.factories import DeliveryFactory, NotificationFactory
from tests.support.conftest import EMAIL_8003, PHONE_8003

NOTIFICATIONS = "/admin/notifications/notification/"
DELIVERIES = "/admin/notifications/delivery/"


def found(browser, url, **params):
    response = browser.get(url, params)
    assert response.status_code == 200
    return set(response.context["cl"].result_list)


@pytest.mark.parametrize(
    "written", ["081299887766", "0812-9988-7766", "+62 812-9988-7766", "6281299887766"]
)
def test_support_finds_a_notification_by_phone_number_as_the_customer_says_it(
    support_client, story, written
):
    assert found(support_client, NOTIFICATIONS, q=written) == {story.notification}
    assert found(support_client, DELIVERIES, q=written) == {story.sms}


def test_support_finds_a_notification_by_email_whatever_its_case(support_client, story):
    assert found(support_client, NOTIFICATIONS, q=EMAIL_8003.upper()) == {story.notification}
    assert found(support_client, DELIVERIES, q=EMAIL_8003.lower()) == {story.email}


def test_the_reference_is_exact_and_across_clients(support_client, story, app_8002):
    same_reference = NotificationFactory(application=app_8002, reference="INV-2026-0042")

    assert found(support_client, NOTIFICATIONS, q="INV-2026-0042") == {
        story.notification,
        same_reference,
    }
    assert found(support_client, NOTIFICATIONS, q="INV-2026-004") == set()
    assert found(support_client, NOTIFICATIONS, q="inv-2026-0042") == set()


def test_a_reference_that_looks_like_a_phone_number_is_found_as_a_reference_too(
    support_client, story, app_8002
):
    by_reference = NotificationFactory(application=app_8002, reference="081299887766")

    assert found(support_client, NOTIFICATIONS, q="081299887766") == {
        story.notification,
        by_reference,
    }


def test_a_customer_notified_many_times_is_found_newest_first_up_to_the_limit(
    support_client, app_8002, settings
):
    settings.SUPPORT_SEARCH_MAX_MATCHES = 3
    notifications = [
        DeliveryFactory(
            notification=NotificationFactory(application=app_8002), recipient=PHONE_8003
        ).notification
        for _ in range(5)
    ]

    assert found(support_client, NOTIFICATIONS, q="0812 9988 7766") == set(notifications[-3:])


def test_support_filters_by_batch_client_application_status_medium_and_date(
    support_client, story, app_8002
):
    NotificationFactory(application=app_8002, status="FAILED")
    url = NOTIFICATIONS

    assert found(support_client, url, batch=story.notification.batch_id) == {story.notification}
    assert found(support_client, url, batch="x") == set()
    assert found(support_client, url, client=story.notification.client_id) == {story.notification}
    app = story.notification.application_id
    assert found(support_client, url, application=app) == {story.notification}
    assert found(support_client, url, status="SENT") == {story.notification}
    assert found(support_client, url, medium="email") == {story.notification}
    since = (story.notification.created_at - timedelta(hours=1)).isoformat()
    assert found(
        support_client, url, created_at__gte=since, created_at__lt="2999-01-01T00:00:00+07:00"
    ) == set(Notification.objects.all())
    assert found(support_client, url, created_at__lt="2000-01-01T00:00:00+07:00") == set()


@pytest.fixture
def purged_story(story):
    notifications_purge(now=story.notification.created_at + timedelta(days=3650))
    story.sms.refresh_from_db()
    assert story.sms.recipient == ""  # only the keyed digest is left
    return story


def test_a_purged_notification_is_still_found_by_the_number_or_address_it_went_to(
    support_client, purged_story
):
    for term in ["0812-9988-7766", EMAIL_8003.upper()]:
        assert found(support_client, NOTIFICATIONS, q=term) == {purged_story.notification}, term
    assert found(support_client, DELIVERIES, q="+62 812-9988-7766") == {purged_story.sms}


def test_client_staff_find_no_purged_notification_of_another_client(staff_client, purged_story):
    for term in ["0812-9988-7766", EMAIL_8003]:
        assert found(staff_client, NOTIFICATIONS, q=term) == set()


def test_client_staff_find_nothing_of_another_client_whatever_they_type(staff_client, story):
    for term in ["INV-2026-0042", "0812-9988-7766", EMAIL_8003]:
        assert found(staff_client, NOTIFICATIONS, q=term) == set()
        assert found(staff_client, DELIVERIES, q=term) == set()
    assert found(staff_client, NOTIFICATIONS, batch=story.notification.batch_id) == set()


def test_client_staff_find_their_own_clients_notifications(staff_client, story, app_8002):
    own = DeliveryFactory(
        notification=NotificationFactory(application=app_8002, reference="INV-2026-0042"),
        recipient=PHONE_8003,  # the same customer, also a customer of 8002
    ).notification

    assert found(staff_client, NOTIFICATIONS, q="INV-2026-0042") == {own}
    assert found(staff_client, NOTIFICATIONS, q="0812-9988-7766") == {own}


def test_the_list_shows_no_facet_counts(support_client, story):
    response = support_client.get(NOTIFICATIONS, {"_facets": "1"})

    assert response.status_code == 200
    assert response.context["cl"].add_facets is False


def test_a_batch_page_links_to_its_notifications(support_client, story):
    batch = story.notification.batch
    batch.lines_accepted = 1
    batch.save()

    page = support_client.get(f"/admin/batches/batch/{batch.pk}/change/").content.decode()

    assert f'href="/admin/notifications/notification/?batch={batch.pk}"' in page
