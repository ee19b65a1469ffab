"""Operators retry failed deliveries and cancel pending notifications from the admin."""

from notifications.models import Delivery, Notification
from tests.factories import DeliveryFactory, NotificationFactory


def post_action(http, url, action, pk):
    return http.post(url, {"action": action, "_selected_action": [pk]}, follow=True)


def test_an_operator_retries_a_failed_delivery(operator_client, operator_user, app_8002):
    delivery = DeliveryFactory(
        notification=NotificationFactory(application=app_8002), status="FAILED"
    )

    response = post_action(
        operator_client, "/admin/notifications/delivery/", "retry_deliveries", delivery.pk
    )

    assert "1 failed deliveries queued again" in response.content.decode()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("PENDING", 0)
    assert delivery.events.filter(detail=f"retried by {operator_user.username}").exists()


def test_an_operator_cancels_a_pending_notification(operator_client, app_8002):
    notification = NotificationFactory(application=app_8002)
    DeliveryFactory(notification=notification)

    post_action(
        operator_client,
        "/admin/notifications/notification/",
        "cancel_notifications",
        notification.pk,
    )

    assert Notification.objects.get().status == "CANCELLED"
    assert Delivery.objects.get().status == "CANCELLED"


def test_client_staff_and_support_are_not_offered_the_actions(
    client, staff_8002, support_user, app_8002
):
    delivery = DeliveryFactory(
        notification=NotificationFactory(application=app_8002), status="FAILED"
    )
    for user in (staff_8002, support_user):
        client.force_login(user)
        page = client.get("/admin/notifications/delivery/").content.decode()
        assert "retry_deliveries" not in page

        post_action(client, "/admin/notifications/delivery/", "retry_deliveries", delivery.pk)

        assert Delivery.objects.get().status == "FAILED"
