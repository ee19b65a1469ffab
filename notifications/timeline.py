"""A notification's status history, as support reads it on the notification page."""

from dataclasses import dataclass
from datetime import datetime

from notifications.failures import detail_for_client
from notifications.models import DeliveryEvent, Notification

# The medium shown for the acceptance, which concerns every delivery.
EVERY_MEDIUM = "all"
ACCEPTED = "ACCEPTED"


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    medium: str  # the delivery's medium, by its label
    old_status: str  # "" for none
    new_status: str
    detail: str


def notification_timeline(
    notification: Notification, *, for_client: bool = False
) -> list[TimelineEntry]:
    """Its acceptance (the notification's own record), then each delivery's status changes.

    `for_client` replaces the provider errors that details quote by their
    category, as client staff see them (notifications/failures.py).
    """
    events = (
        DeliveryEvent.objects.filter(delivery__notification=notification)
        # Older notifications kept an event of their acceptance: the first entry instead.
        .exclude(old_status="", detail__startswith="accepted via")
        .select_related("delivery")
        .order_by("at", "id")
    )
    acceptance = TimelineEntry(
        at=notification.created_at,
        medium=EVERY_MEDIUM,
        old_status="",
        new_status=ACCEPTED,
        detail=_acceptance(notification),
    )
    return [
        acceptance,
        *(
            TimelineEntry(
                at=event.at,
                medium=event.delivery.get_medium_display(),
                old_status=event.old_status,
                new_status=event.new_status,
                detail=detail_for_client(event.detail) if for_client else event.detail,
            )
            for event in events
        ),
    ]


def _acceptance(notification: Notification) -> str:
    if notification.batch_id is None:
        return f"accepted via {notification.source}"
    return f"accepted via batch {notification.batch_id}, line {notification.batch_line}"
