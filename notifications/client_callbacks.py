"""Telling the client: a signed POST to its callback URL when a notification's status settles.

A callback is queued (a ClientCallback row, in the transaction of the status
change) whenever a notification reaches SENT, DELIVERED, FAILED or CANCELLED,
and the client has a callback URL. It is POSTed as JSON, signed with the API's
own scheme, and retried with backoff until the client answers 2xx.

Signature: the headers X-Kokatto-Timestamp (Unix seconds) and
X-Kokatto-Signature, the HMAC-SHA256 (lower-case hex) of the canonical string
of the two parameters `body` (the raw JSON body) and `timestamp`, exactly as
an API request is signed (clients.signing), keyed with the client's newest
active secret key.
"""

import json
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django_q.tasks import async_task

from clients.models import Client
from clients.signing import sign
from notifications.backends.http import HttpClient, HttpFailure
from notifications.backoff import retry_delay
from notifications.models import CallbackState, ClientCallback, Notification

logger = logging.getLogger(__name__)

# Notification statuses worth a callback: nothing more is expected until a receipt.
REPORTED_STATUSES = {"SENT", "DELIVERED", "FAILED", "CANCELLED"}
LEASE = timedelta(seconds=60)
_http = HttpClient(timeout=(3.05, 10), pool_size=1)


def client_callback_queue(*, notification_id: int) -> ClientCallback | None:
    """Queue a callback with the notification's current status, if its client wants them."""
    notification = Notification.objects.select_related("client").get(pk=notification_id)
    url = notification.client.callback_url
    if not url or notification.status not in REPORTED_STATUSES:
        return None
    payload = {
        "requestId": notification.reference,
        "status": notification.status,
        "deliveries": [
            {"media": d.medium, "status": d.status, "updatedAt": d.updated_at.isoformat()}
            for d in notification.deliveries.order_by("medium")
        ],
    }
    callback = ClientCallback.objects.create(notification=notification, url=url, payload=payload)
    transaction.on_commit(lambda: async_task("notifications.tasks.send_client_callbacks"))
    return callback


def signature_headers(client: Client, body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time()))
    key = client.secret_keys.filter(is_active=True).order_by("-created_at").first()
    headers = {"Content-Type": "application/json", "X-Kokatto-Timestamp": timestamp}
    if key is not None:
        parameters = {"body": body.decode(), "timestamp": timestamp}
        headers["X-Kokatto-Signature"] = sign(parameters, key.secret())
    return headers


def client_callbacks_send_due(*, limit: int = 50) -> int:
    """POST the callbacks that are due; returns how many were tried."""
    now = timezone.now()
    with transaction.atomic():
        due = ClientCallback.objects.filter(
            state=CallbackState.PENDING, next_attempt_at__lte=now
        ).order_by("next_attempt_at", "id")
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        ids = list(due.values_list("id", flat=True)[:limit])
        # Moving the next attempt forward is the lease: another worker skips these.
        ClientCallback.objects.filter(pk__in=ids).update(next_attempt_at=now + LEASE)
    for callback in ClientCallback.objects.filter(pk__in=ids).select_related(
        "notification__client"
    ):
        _post(callback)
    return len(ids)


def _post(callback: ClientCallback) -> None:
    body = json.dumps(callback.payload, separators=(",", ":"), ensure_ascii=False).encode()
    headers = signature_headers(callback.notification.client, body)
    try:
        response = _http.post(callback.url, body=body, headers=headers)
        answer, succeeded = f"HTTP {response.status}", response.ok
    except HttpFailure as exc:
        answer, succeeded = str(exc)[:200], False
    attempts = callback.attempts + 1
    if succeeded:
        state, next_attempt_at = CallbackState.DONE, timezone.now()
    elif attempts >= settings.CLIENT_CALLBACK_MAX_ATTEMPTS:
        state, next_attempt_at = CallbackState.FAILED, timezone.now()
        logger.warning("Callback %s to %s given up: %s", callback.pk, callback.url, answer)
    else:
        state, next_attempt_at = CallbackState.PENDING, timezone.now() + retry_delay(attempts)
    ClientCallback.objects.filter(pk=callback.pk).update(
        state=state,
        attempts=attempts,
        next_attempt_at=next_attempt_at,
        last_response=answer[:200],
        updated_at=timezone.now(),
    )
