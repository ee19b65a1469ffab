"""A notification's status follows its deliveries; the rules are here and in the README.

- every delivery cancelled                          -> CANCELLED
- every delivery pending, none tried yet            -> ACCEPTED
- any delivery sending, or pending after a try,
  or pending beside one that is done                -> PROCESSING
- every delivery final:
    every one delivered                             -> DELIVERED
    at least one sent or delivered                  -> SENT
    none got out (failed, expired, undelivered,
    cancelled)                                      -> FAILED
"""

from collections.abc import Iterable

from django.utils import timezone

from notifications.client_callbacks import client_callback_queue
from notifications.models import Delivery, DeliveryStatus, Notification, NotificationStatus

IN_FLIGHT = {DeliveryStatus.PENDING, DeliveryStatus.SENDING}
GOT_OUT = {DeliveryStatus.SENT, DeliveryStatus.DELIVERED}


def notification_status_for(delivery_statuses: Iterable[str], *, tried: bool = False) -> str:
    """The status of a notification whose deliveries have these statuses.

    `tried`: whether any delivery has been attempted (a retry waits as PENDING).
    """
    statuses = list(delivery_statuses)
    if not statuses:
        return NotificationStatus.ACCEPTED
    if all(s == DeliveryStatus.CANCELLED for s in statuses):
        return NotificationStatus.CANCELLED
    if all(s == DeliveryStatus.PENDING for s in statuses):
        return NotificationStatus.PROCESSING if tried else NotificationStatus.ACCEPTED
    if any(s in IN_FLIGHT for s in statuses):
        return NotificationStatus.PROCESSING
    if all(s == DeliveryStatus.DELIVERED for s in statuses):
        return NotificationStatus.DELIVERED
    if any(s in GOT_OUT for s in statuses):
        return NotificationStatus.SENT
    return NotificationStatus.FAILED


def notification_refresh_status(*, notification_id: int, client=None) -> str:
    """Recompute a notification's status from its deliveries and store it if it changed.

    A change to a status the client is told about queues a client callback
    (`client`, when the caller has it loaded, saves looking up whether it has a URL).
    """
    # order_by(): Delivery's default ordering would join the notification table.
    rows = list(
        Delivery.objects.filter(notification_id=notification_id)
        .order_by()
        .values_list("status", "attempts")
    )
    status = notification_status_for(
        [row[0] for row in rows], tried=any(attempts for _, attempts in rows)
    )
    changed = (
        Notification.objects.filter(pk=notification_id)
        .exclude(status=status)
        .update(status=status, updated_at=timezone.now())
    )
    if changed and (client is None or client.callback_url):
        client_callback_queue(notification_id=notification_id)
    return status
