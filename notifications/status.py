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

from django.db import connection, transaction
from django.utils import timezone

from notifications.client_callbacks import client_callback_queue
from notifications.models import DeliveryStatus, Notification, NotificationStatus
from notifications.row_updates import ids_in

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
    current, deliveries = _locked_with_deliveries(notification_ids)
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
        notifications_status_set(ids, status=status, now=now)
        for notification_id in ids:
            if wants_callbacks is None or wants_callbacks.get(notification_id):
                client_callback_queue(notification_id=notification_id)
    return statuses


def _locked_with_deliveries(
    notification_ids: list[int],
) -> tuple[dict[int, str], dict[int, list[tuple[str, int]]]]:
    """Lock the notifications, then read their statuses and their deliveries' (status,
    attempts).

    The notifications are locked first, in id order (so two workers cannot
    deadlock): two deliveries of one notification recorded at once would otherwise
    each read the other as still sending, and the final status would be lost. The
    deliveries are read by a second statement on purpose: one statement reads every
    table as it was when the statement began, before it waited for the lock, so it
    would miss what the worker holding the lock committed. SQLite has no row locks:
    its writers take turns.
    """
    ids_sql, ids_params = ids_in("id", notification_ids)
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    in_sql, in_params = ids_in("notification_id", notification_ids)
    deliveries = defaultdict(list)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, status FROM notifications_notification WHERE {ids_sql} ORDER BY id{lock}",  # noqa: S608 (fixed names, ids as parameters)
            ids_params,
        )
        current = dict(cursor.fetchall())
        cursor.execute(
            "SELECT notification_id, status, attempts FROM notifications_delivery"  # noqa: S608
            f" WHERE {in_sql}",
            in_params,
        )
        for notification_id, status, attempts in cursor.fetchall():
            deliveries[notification_id].append((status, attempts))
    return current, deliveries


def notifications_status_set(
    notification_ids: list[int], *, status: str, now, only_from: str | None = None
) -> None:
    """Set the notifications' status (and updated_at) in one statement; `only_from`: only
    those whose status is that now."""
    ids_sql, ids_params = ids_in("id", notification_ids)
    stamp = Notification._meta.get_field("updated_at").get_db_prep_value(now, connection)
    guard_sql, guard_params = ("status = %s AND ", [str(only_from)]) if only_from else ("", [])
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE notifications_notification SET status = %s, updated_at = %s"  # noqa: S608
            f" WHERE {guard_sql}{ids_sql}",
            [str(status), stamp, *guard_params, *ids_params],
        )
