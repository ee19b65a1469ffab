"""Operators retry and cancel from the notification page; nobody else can, even by POSTing."""

import pytest

from notifications.models import Delivery, Notification
from tests.factories import DeliveryFactory, NotificationFactory, UserFactory


def url(notification, action):
    return f"/admin/notifications/notification/{notification.pk}/{action}/"


def test_operators_see_both_buttons_support_and_client_staff_do_not(
    operator_client, story, client, support_user
):
    page = operator_client.get(url(story.notification, "change")).content.decode()
    assert 'id="retry-notification"' in page and 'id="cancel-notification"' in page
    assert f'action="{url(story.notification, "retry")}"' in page
    assert "csrfmiddlewaretoken" in page

    client.force_login(support_user)
    page = client.get(url(story.notification, "change")).content.decode()
    assert "retry-notification" not in page and "cancel-notification" not in page


def test_retry_puts_the_failed_delivery_back_in_the_queue(operator_client, story):
    response = operator_client.post(url(story.notification, "retry"))

    assert response.status_code == 302
    assert response["Location"] == url(story.notification, "change")
    story.email.refresh_from_db()
    story.sms.refresh_from_db()
    assert story.email.status == "PENDING"
    assert story.sms.status == "DELIVERED"
    assert story.email.events.filter(detail="retried by operator").exists()


def test_cancel_stops_what_is_not_sent(operator_client, app_8002):
    notification = NotificationFactory(application=app_8002)
    DeliveryFactory(notification=notification, status="PENDING")

    operator_client.post(url(notification, "cancel"))

    notification.refresh_from_db()
    assert notification.status == "CANCELLED"
    assert set(Delivery.objects.values_list("status", flat=True)) == {"CANCELLED"}


def test_cancel_of_something_already_sent_is_refused_with_its_reason(operator_client, story):
    response = operator_client.post(url(story.notification, "cancel"), follow=True)

    assert "cannot be cancelled" in response.content.decode()
    story.notification.refresh_from_db()
    assert story.notification.status == "SENT"


@pytest.mark.parametrize("role", ["support", "client_staff"])
@pytest.mark.parametrize("action", ["retry", "cancel"])
def test_support_and_client_staff_cannot_post_to_the_buttons(client, story, role, action):
    own = [story.notification.client] if role == "client_staff" else []
    client.force_login(UserFactory(role=role, clients=own))

    response = client.post(url(story.notification, action))

    assert response.status_code == 403
    story.email.refresh_from_db()
    assert story.email.status == "FAILED"
    assert Notification.objects.get().status == "SENT"


def test_the_buttons_do_not_answer_a_get(operator_client, story):
    assert operator_client.get(url(story.notification, "retry")).status_code == 403
    story.email.refresh_from_db()
    assert story.email.status == "FAILED"
