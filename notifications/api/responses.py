"""The body of every /notif answer, before it is rendered as JSON or XML."""

from notifications.models import Delivery, Notification

REJECTED = "REJECTED"


def response_body(
    *,
    reference: str,
    code: str,
    message: str,
    status: str = REJECTED,
    errors: dict[str, list[str]] | None = None,
    deliveries: list[Delivery] | None = None,
) -> dict:
    body = {"requestId": reference, "status": status, "code": code, "message": message}
    if errors:
        body["errors"] = errors
    if deliveries is not None:
        body["deliveries"] = [
            {
                "media": delivery.medium,
                "status": delivery.status,
                "updatedAt": delivery.updated_at.isoformat(timespec="seconds"),
            }
            for delivery in deliveries
        ]
    return body


def notification_body(
    notification: Notification, *, message: str, deliveries: list[Delivery] | None = None
) -> dict:
    """The OK answer about `notification`; its deliveries are read unless given."""
    if deliveries is None:
        deliveries = list(notification.deliveries.all())
    return response_body(
        reference=notification.reference,
        code="OK",
        message=message,
        status=notification.status,
        deliveries=deliveries,
    )
