"""The body of every /notif answer, before it is rendered as JSON or XML."""

from notifications.models import Notification

REJECTED = "REJECTED"


def response_body(
    *,
    reference: str,
    code: str,
    message: str,
    status: str = REJECTED,
    errors: dict[str, list[str]] | None = None,
    notification: Notification | None = None,
) -> dict:
    body = {"requestId": reference, "status": status, "code": code, "message": message}
    if errors:
        body["errors"] = errors
    if notification is not None:
        body["deliveries"] = [
            {
                "media": delivery.medium,
                "status": delivery.status,
                "updatedAt": delivery.updated_at.isoformat(timespec="seconds"),
            }
            for delivery in notification.deliveries.all()
        ]
    return body


def notification_body(notification: Notification, *, message: str) -> dict:
    return response_body(
        reference=notification.reference,
        code="OK",
        message=message,
        status=notification.status,
        notification=notification,
    )
