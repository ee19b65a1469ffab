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

from collections import defaultdict
from collections.abc import Iterable

from django.db import transaction
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
    wants_callbacks = None if client is None else {notification_id: bool(client.callback_url)}
    return notifications_refresh_statuses(
        notification_ids=[notification_id], wants_callbacks=wants_callbacks
    )[notification_id]


@transaction.atomic(savepoint=False)
def notifications_refresh_statuses(
    *, notification_ids: list[int], wants_callbacks: dict[int, bool] | None = None
) -> dict[int, str]:
    """notification_refresh_status for many notifications in a few queries; returns the statuses.

    `wants_callbacks` (notification id -> whether its client has a callback URL)
    saves the lookup when the caller knows. Within a caller's transaction (the
    dispatcher records a group in one) it takes no savepoint of its own: a failure
    here fails the caller's whole transaction, which is what every caller wants, and
    a savepoint is two more round trips a group.
    """
    # Lock the notifications first (in id order, so two workers cannot deadlock):
    # two deliveries of one notification recorded at once would otherwise each
    # read the other as still sending, and the final status would be lost.
    current = dict(
        Notification.objects.select_for_update()
        .filter(pk__in=notification_ids)
        .order_by("pk")
        .values_list("id", "status")
    )
    deliveries: dict[int, list[tuple[str, int]]] = defaultdict(list)
    # order_by(): Delivery's default ordering would join the notification table.
    for notification_id, status, attempts in (
        Delivery.objects.filter(notification_id__in=notification_ids)
        .order_by()
        .values_list("notification_id", "status", "attempts")
    ):
        deliveries[notification_id].append((status, attempts))
    statuses, changed_to = {}, defaultdict(list)
    for notification_id in notification_ids:
        rows = deliveries[notification_id]
        status = notification_status_for(
            [row[0] for row in rows], tried=any(attempts for _, attempts in rows)
        )
        statuses[notification_id] = status
        if current.get(notification_id) != status:
            changed_to[status].append(notification_id)
    now = timezone.now()
    for status, ids in changed_to.items():
        Notification.objects.filter(pk__in=ids).update(status=status, updated_at=now)
        for notification_id in ids:
            if wants_callbacks is None or wants_callbacks.get(notification_id):
                client_callback_queue(notification_id=notification_id)
    return statuses
