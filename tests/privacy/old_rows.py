"""Notifications accepted long ago, with everything a purge takes away."""

from datetime import timedelta

from django.utils import timezone

from notifications.models import CallbackState, ClientCallback, Notification
from tests.factories import DeliveryEventFactory, DeliveryFactory, NotificationFactory


def aged(notification: Notification, days: int) -> Notification:
    then = timezone.now() - timedelta(days=days)
    Notification.objects.filter(pk=notification.pk).update(created_at=then, updated_at=then)
    notification.refresh_from_db()
    return notification


def finished(application, reference: str, *, days: int, status: str = "DELIVERED"):
    notification = NotificationFactory(application=application, reference=reference, status=status)
    sms = DeliveryFactory(
        notification=notification,
        medium="sms",
        recipient="+6281234567890",
        status="DELIVERED",
        body="Bank Demo: Dear John Doe, Rp 1.230.000 due 9 September 2015.",
        attempts=1,
        provider="twilio",
        provider_message_id=f"SM-{reference}",
        last_error="HTTP 400: The 'To' number +6281234567890 is not valid",
        sent_at=timezone.now(),
    )
    DeliveryFactory(
        notification=notification,
        medium="email",
        recipient="John.Doe@Example.co.id",
        status="SENT",
        subject="Your bill, John Doe",
        body="Dear John Doe",
        html_body="<p>Dear John Doe</p>",
    )
    DeliveryEventFactory(
        delivery=sms, old_status="SENDING", new_status="SENT", detail="to +6281234567890"
    )
    ClientCallback.objects.create(
        notification=notification,
        url="https://client.example.co.id/kokatto",
        payload={"requestId": reference, "status": status},
        state=CallbackState.DONE,
        last_response="HTTP 400: unknown customer +6281234567890",
    )
    return aged(notification, days)
