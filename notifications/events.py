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


def events_record_for_ids(
    *, delivery_ids: list[int], old_status: str, new_status: str, detail: str
) -> None:
    """Append one event per delivery id, each from `old_status` to `new_status`."""
    DeliveryEvent.objects.bulk_create(
        DeliveryEvent(delivery_id=pk, old_status=old_status, new_status=new_status, detail=detail)
        for pk in delivery_ids
    )


def event_record(*, delivery_id: int, old_status: str, new_status: str, detail: str) -> None:
    DeliveryEvent.objects.create(
        delivery_id=delivery_id, old_status=old_status, new_status=new_status, detail=detail
    )
