"""Telling the client: a signed POST to its callback URL when a notification's status settles.

A callback is queued (a ClientCallback row, in the transaction of the status
change) whenever a notification reaches SENT, DELIVERED, FAILED or CANCELLED,
and the client has a callback URL. It is POSTed as JSON, signed with the API's
own scheme, and retried with backoff until the client answers 2xx.

Bounds: one client's slow or broken server delays nobody else.
- Each POST has a connect timeout and a total deadline, and reads at most
  CLIENT_CALLBACK_MAX_ANSWER_BYTES of the answer (notifications/backends/http.py).
- One sweep runs at a time (a lock in the shared cache), so callbacks hold at
  most one task worker. It posts over CLIENT_CALLBACK_SEND_CONCURRENCY threads,
  takes clients in turn (the oldest due callback of each first) and gives no
  client more than half of the threads, and takes no new callback after
  CLIENT_CALLBACK_SWEEP_SECONDS.
- Anything that goes wrong with one callback (its URL, DNS, its client's key,
  an exception) fails that attempt alone: logged, retried with backoff.

Signature: the headers X-Kokatto-Timestamp (Unix seconds) and
X-Kokatto-Signature, the HMAC-SHA256 (lower-case hex) of the canonical string
of the two parameters `body` (the raw JSON body) and `timestamp`, exactly as
an API request is signed (clients.signing), keyed with the client's newest
active secret key.
"""

import json
import logging
import time
import uuid
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.utils import timezone
from django_q.tasks import async_task

from clients.models import Client
from clients.outbound import callback_url_refusal
from clients.signing import sign
from notifications.backends.http import HttpClient, HttpFailure
from notifications.backoff import retry_delay
from notifications.models import CallbackState, ClientCallback, Notification

logger = logging.getLogger(__name__)

# Notification statuses worth a callback: nothing more is expected until a receipt.
REPORTED_STATUSES = {"SENT", "DELIVERED", "FAILED", "CANCELLED"}
# A claimed callback is posted at once, within CLIENT_CALLBACK_TIMEOUT_SECONDS (which
# `manage.py check` keeps under half of this); then another sweep may take it again.
LEASE = timedelta(seconds=60)
SWEEP_LOCK = "kokatto:client-callback-sweep"
# While senders are free, a sweep looks this often for callbacks that became due.
POLL_SECONDS = 1.0


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


@dataclass(frozen=True)
class Sweep:
    tried: int  # callbacks attempted
    out_of_time: bool  # stopped taking callbacks at CLIENT_CALLBACK_SWEEP_SECONDS


def client_callbacks_send_due() -> Sweep:
    """POST the due callbacks, taking new ones for up to CLIENT_CALLBACK_SWEEP_SECONDS.

    While another sweep runs, returns at once having tried nothing: that sweep
    looks for newly due callbacks every POLL_SECONDS.
    """
    sweep_seconds = settings.CLIENT_CALLBACK_SWEEP_SECONDS
    token = uuid.uuid4().hex
    # The lock outlives any sweep (its last posts end one deadline after it stops
    # taking callbacks), and frees itself if the worker dies.
    lock_seconds = sweep_seconds + settings.CLIENT_CALLBACK_TIMEOUT_SECONDS + 60
    if not cache.add(SWEEP_LOCK, token, timeout=lock_seconds):
        return Sweep(tried=0, out_of_time=False)
    try:
        return _sweep(stop_taking_at=time.monotonic() + sweep_seconds)
    finally:
        if cache.get(SWEEP_LOCK) == token:
            cache.delete(SWEEP_LOCK)


def _sweep(*, stop_taking_at: float) -> Sweep:
    concurrency = settings.CLIENT_CALLBACK_SEND_CONCURRENCY
    http = _http_client(
        settings.CLIENT_CALLBACK_CONNECT_TIMEOUT_SECONDS,
        settings.CLIENT_CALLBACK_TIMEOUT_SECONDS,
        settings.CLIENT_CALLBACK_MAX_ANSWER_BYTES,
        concurrency,
    )
    in_flight: dict[Future, ClientCallback] = {}
    tried = 0
    with ThreadPoolExecutor(concurrency, thread_name_prefix="kokatto-callback") as senders:
        while True:
            taking = time.monotonic() < stop_taking_at
            room = concurrency - len(in_flight)
            claimed = []
            if taking and room:
                busy = Counter(c.notification.client_id for c in in_flight.values())
                claimed = _claim(room=room, busy=busy)
            for callback in claimed:
                future = _start(callback, senders=senders, http=http)
                if future is None:  # failed before it could be posted
                    tried += 1
                else:
                    in_flight[future] = callback
            if not in_flight:
                if claimed:  # each failed before it was posted: take the next ones
                    continue
                return Sweep(tried=tried, out_of_time=not taking)
            polling = taking and len(in_flight) < concurrency
            done, _ = wait(
                in_flight, timeout=POLL_SECONDS if polling else None, return_when=FIRST_COMPLETED
            )
            for future in done:
                answer, succeeded = future.result()
                _record(in_flight.pop(future), answer=answer, succeeded=succeeded)
                tried += 1


def _claim(*, room: int, busy: Counter) -> list[ClientCallback]:
    """Lease up to `room` due callbacks, clients in turn, none beyond a client's share.

    `busy` counts the callbacks of each client (by id) already in flight.
    """
    share = _client_share()
    now = timezone.now()
    full = [client_id for client_id, count in busy.items() if count >= share]
    due = (
        ClientCallback.objects.filter(state=CallbackState.PENDING, next_attempt_at__lte=now)
        .exclude(notification__client_id__in=full)
        .annotate(
            turn=Window(
                RowNumber(),
                partition_by=F("notification__client_id"),
                order_by=[F("next_attempt_at").asc(), F("id").asc()],
            )
        )
        .filter(turn__lte=share)
        .order_by("turn", "next_attempt_at", "id")
        .values_list("id", "notification__client_id")
    )
    taken = Counter(busy)
    chosen = []
    # Rows of a client with some in flight already may be skipped: at most `busy` of them.
    for callback_id, client_id in due[: room + sum(busy.values())]:
        if len(chosen) < room and taken[client_id] < share:
            chosen.append(callback_id)
            taken[client_id] += 1
    if not chosen:
        return []
    with transaction.atomic():
        # Another sweep may have taken some since (a lock that expired): check again, locked.
        free = ClientCallback.objects.filter(
            pk__in=chosen, state=CallbackState.PENDING, next_attempt_at__lte=now
        )
        if connection.features.has_select_for_update_skip_locked:
            free = free.select_for_update(skip_locked=True)
        ids = set(free.values_list("id", flat=True))
        # Moving the next attempt forward is the lease: another worker skips these.
        ClientCallback.objects.filter(pk__in=ids).update(next_attempt_at=now + LEASE)
    callbacks = ClientCallback.objects.filter(pk__in=ids).select_related("notification__client")
    return sorted(callbacks, key=lambda callback: chosen.index(callback.pk))


def _client_share() -> int:
    """How many callbacks of one client may be in flight at once: half of the senders."""
    return max(1, settings.CLIENT_CALLBACK_SEND_CONCURRENCY // 2)


@lru_cache(maxsize=4)
def _http_client(
    connect_timeout: float, deadline: float, max_answer_bytes: int, pool_size: int
) -> HttpClient:
    # One per process and settings: its pools keep connections to the clients' servers.
    return HttpClient(
        timeout=(connect_timeout, deadline),
        max_answer_bytes=max_answer_bytes,
        pool_size=pool_size,
        public_only=True,
    )


def _start(
    callback: ClientCallback, *, senders: ThreadPoolExecutor, http: HttpClient
) -> Future | None:
    """Sign the callback's payload and hand its POST to a sender; None, with the attempt
    recorded as failed, when it cannot even be signed (its failure alone: the sweep goes on).

    Its URL is checked again first (stored before the rule, or the settings changed
    since): one the rule refuses is never called, and the callback fails at once."""
    refusal = callback_url_refusal(callback.url)
    if refusal:
        _record(callback, answer=str(refusal), succeeded=False, final=True)
        return None
    try:
        body = json.dumps(callback.payload, separators=(",", ":"), ensure_ascii=False).encode()
        headers = signature_headers(callback.notification.client, body)
    except Exception as exc:
        logger.exception(
            "Callback %s of client %s cannot be sent",
            callback.pk,
            callback.notification.client.client_id,
        )
        _record(callback, answer=_error_text(exc), succeeded=False)
        return None
    return senders.submit(_post, http, callback.url, body, headers)


def _post(http: HttpClient, url: str, body: bytes, headers: dict[str, str]) -> tuple[str, bool]:
    """POST a callback (in a sender thread); returns what the client answered and whether
    it acknowledged. Never raises: whatever goes wrong is this callback's failed attempt."""
    try:
        response = http.post(url, body=body, headers=headers)
    except HttpFailure as exc:
        return str(exc), False
    except Exception as exc:
        logger.exception("Callback to %s failed", url)
        return _error_text(exc), False
    answer = f"HTTP {response.status}"
    if response.cut:
        answer += f" ({response.cut})"
    return answer, response.ok


def _error_text(exc: Exception) -> str:
    if isinstance(exc, InvalidToken):
        # Stored under a FIELD_ENCRYPTION_KEY that is no longer configured.
        return "InvalidToken: the client's secret key cannot be read"
    return f"{type(exc).__name__}: {exc}"


def _record(callback: ClientCallback, *, answer: str, succeeded: bool, final: bool = False) -> None:
    """Store an attempt's outcome; `final`: a failure that no retry would change."""
    attempts = callback.attempts + 1
    if succeeded:
        state, next_attempt_at = CallbackState.DONE, timezone.now()
    elif final or attempts >= settings.CLIENT_CALLBACK_MAX_ATTEMPTS:
        state, next_attempt_at = CallbackState.FAILED, timezone.now()
        logger.warning("Callback %s to %s given up: %s", callback.pk, callback.url, answer)
    else:
        state, next_attempt_at = CallbackState.PENDING, timezone.now() + retry_delay(attempts)
        logger.info("Callback %s to %s failed: %s", callback.pk, callback.url, answer)
    ClientCallback.objects.filter(pk=callback.pk).update(
        state=state,
        attempts=attempts,
        next_attempt_at=next_attempt_at,
        last_response=answer[:200],
        updated_at=timezone.now(),
    )
