"""The append-only status history of deliveries."""

from collections.abc import Iterable

from notifications.models import Delivery, DeliveryEvent


def events_record(*, deliveries: Iterable[Delivery], old_status: str, detail: str) -> None:
    """Append one event per delivery, from `old_status` to the delivery's current status."""
    DeliveryEvent.objects.bulk_create(
        DeliveryEvent(
            delivery=delivery, old_status=old_status, new_status=delivery.status, detail=detail
        )
        for delivery in deliveries
    )
