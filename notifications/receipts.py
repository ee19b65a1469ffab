"""Delivery receipts: a provider saying a sent message reached the phone, or did not."""

from django.db import transaction
from django.utils import timezone

from notifications.events import event_record
from notifications.models import Delivery, DeliveryStatus
from notifications.status import notification_refresh_status


@transaction.atomic
def receipt_record(*, provider: str, provider_message_id: str, delivered: bool, detail: str) -> str:
    """Move the SENT delivery with this provider id to DELIVERED or UNDELIVERED.

    Returns "recorded", "unknown" (no such delivery) or "ignored" (a replay, or a
    receipt for a delivery that is not SENT). Unknown ids and replays change
    nothing, so a provider may send a receipt twice.
    """
    if not provider_message_id:
        return "unknown"
    # exclude(""): the index on provider ids leaves out the empty ones (unsent deliveries).
    delivery = (
        Delivery.objects.filter(provider=provider, provider_message_id=provider_message_id)
        .exclude(provider_message_id="")
        .first()
    )
    if delivery is None:
        return "unknown"
    new_status = DeliveryStatus.DELIVERED if delivered else DeliveryStatus.UNDELIVERED
    now = timezone.now()
    updated = Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.SENT).update(
        status=new_status, delivered_at=now if delivered else None, updated_at=now
    )
    if not updated:
        return "ignored"
    event_record(delivery.pk, DeliveryStatus.SENT, new_status, detail)
    notification_refresh_status(notification_id=delivery.notification_id)
    return "recorded"
