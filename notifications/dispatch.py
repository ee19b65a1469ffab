"""Getting deliveries out of the door: claim, render, send, record.

The database is the source of truth (a transactional outbox): a delivery is
committed PENDING with its notification, and workers claim due deliveries in
chunks. A claim is a lease: the delivery turns SENDING until
`lease_expires_at`; a worker that dies mid-chunk leaves its deliveries to be
claimed again when the lease runs out. On PostgreSQL the claim uses
SELECT … FOR UPDATE SKIP LOCKED, so workers on many machines never take the
same delivery; SQLite serialises writers, so there one claim runs at a time.

A delivery recorded SENT is never claimed again. One whose worker died after
handing it to the provider but before recording it is sent again with the same
idempotency key, which providers that support one use to drop the duplicate.
"""

import logging
import math
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from functools import lru_cache
from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from clients.config_cache import cached
from clients.media import get_medium
from clients.models import Application, Client
from notifications.backends import backends_for
from notifications.backends.base import ChannelBackend, SendOutcome, SendResult
from notifications.backoff import retry_delay
from notifications.events import event_record, events_insert, events_record_for_ids
from notifications.metrics import SEND_SECONDS, deliveries_count
from notifications.models import (
    Delivery,
    DeliveryStatus,
    NotificationStatus,
)
from notifications.receipts import PROVIDER_ID_MAX_LENGTH, early_receipts_apply
from notifications.row_updates import rows_update
from notifications.status import (
    notification_refresh_status,
    notifications_refresh_statuses,
    notifications_status_set,
)
from notifications.stored_text import storable_text
from templates_app.models import ContentTemplate
from templates_app.template_checks import PART_ESCAPES_HTML, field_formats
from templates_app.template_language import RENDER_ERROR, RenderError, prepare

logger = logging.getLogger(__name__)


class NoTemplate(Exception):
    """The delivery's application has no template for its medium."""


# The event of a claimed delivery put back unsent, due at once.
PUT_BACK = "put back unsent: out of time"


class Claim(NamedTuple):
    delivery_id: int
    claim: int  # the delivery's claim counter under this claim: proof the claim is still ours


class DispatchRun(NamedTuple):
    claimed: int
    more: bool  # the last chunk came back full: more may be due


def dispatch_run(*, seconds: float | None = None) -> DispatchRun:
    """Dispatch chunk after chunk, while they come back full, for up to `seconds`
    (DELIVERY_TASK_SECONDS): a task that keeps its worker busy saves a round trip
    through the task queue per chunk.

    No chunk is claimed after `seconds`, and no send starts after DELIVERY_CHUNK_SECONDS
    from the start of the run, as for a single chunk: the run ends within the task
    queue's timeout (manage.py check says so).
    """
    started = time.monotonic()
    claiming_ends = started + (settings.DELIVERY_TASK_SECONDS if seconds is None else seconds)
    sending_ends = started + settings.DELIVERY_CHUNK_SECONDS
    total = 0
    while True:
        claimed = dispatch_due(sending_ends=sending_ends)
        total += claimed
        more = claimed >= settings.DELIVERY_CHUNK_SIZE
        if not more or time.monotonic() >= min(claiming_ends, sending_ends):
            return DispatchRun(total, more)


def dispatch_due(*, limit: int | None = None, sending_ends: float | None = None) -> int:
    """Claim up to `limit` due deliveries and send them. Returns how many were claimed.

    A chunk stops sending after DELIVERY_CHUNK_SECONDS, or at `sending_ends` (a
    time.monotonic() value) if sooner (what it has not sent by then is put back,
    due now): a slow provider cannot keep a task running past the task queue's
    timeout, which would kill it between a send and its record.
    """
    claimed_at = time.monotonic()
    sending_ends = min(
        claimed_at + settings.DELIVERY_CHUNK_SECONDS,
        math.inf if sending_ends is None else sending_ends,
    )
    claims = deliveries_claim(limit=limit or settings.DELIVERY_CHUNK_SIZE)
    # One read for the whole chunk; each group still checks its claims.
    by_id = {delivery.pk: delivery for delivery in _chunk_read([c.delivery_id for c in claims])}
    group = settings.DELIVERY_SEND_GROUP
    # A group renews its own leases as it goes; those of the groups after it run from
    # the claim. A group that would start with less than half of that lease left (the
    # ones before it were slow) is put back instead, with the rest of the chunk.
    starts_until = min(claimed_at + settings.DELIVERY_LEASE_SECONDS / 2, sending_ends)
    for start in range(0, len(claims), group):
        if time.monotonic() >= starts_until:
            claims_put_back(claims[start:])
            break
        claimed_send(
            [(by_id[c.delivery_id], c.claim) for c in claims[start : start + group]],
            sending_ends=sending_ends,
        )
    return len(claims)


@transaction.atomic
def claims_put_back(claims: list[Claim], *, attempts: dict[int, int] | None = None) -> None:
    """Put claimed deliveries back, due now, unless another worker claimed them since.

    `attempts`: the attempt count to set back, by delivery id, where an attempt was
    counted but not made; without it, the counts stay as they are.
    """
    assign = ["status", "lease_expires_at"] + (["attempts"] if attempts is not None else [])
    put_back = rows_update(
        Delivery,
        [
            {
                "id": c.delivery_id,
                "claims": c.claim,
                "status": DeliveryStatus.PENDING,
                "lease_expires_at": None,
                "attempts": (attempts or {}).get(c.delivery_id),
            }
            for c in claims
        ],
        match=["id", "claims"],
        assign=assign,
        guard={"status": DeliveryStatus.SENDING},
    )
    events_record_for_ids(
        delivery_ids=put_back,
        old_status=DeliveryStatus.SENDING,
        new_status=DeliveryStatus.PENDING,
        detail=PUT_BACK,
    )


def _chunk_read(delivery_ids: list[int]) -> list[Delivery]:
    """The deliveries with their notifications, each notification's application and
    client taken from the configuration the worker keeps (as the API does:
    clients/config_cache.py) rather than joined to every row."""
    if not delivery_ids:
        return []
    deliveries = list(
        Delivery.objects.filter(pk__in=delivery_ids)
        .select_related("notification")
        .defer(*UNREAD_WHEN_SENDING)
        .order_by()
    )
    notifications = [delivery.notification for delivery in deliveries]
    applications = _kept_rows(Application, {n.application_id for n in notifications})
    clients = _kept_rows(Client, {n.client_id for n in notifications})
    for notification in notifications:
        notification.application = applications[notification.application_id]
        notification.client = clients[notification.client_id]
    return deliveries


def _kept_rows(model, ids: set[int]) -> dict:
    """The rows of `model` with these ids, each kept for API_CONFIG_CACHE_SECONDS: a
    chunk has few of them, and the next chunks the same. An edit (quiet hours, a
    callback URL) reaches the workers within that time, as it reaches the API.
    Those not kept are read together, in one query."""
    loaded = None

    def load(pk):
        nonlocal loaded
        if loaded is None:
            # order_by(): a default ordering would sort (and join, for applications) for nothing.
            loaded = model.objects.order_by().in_bulk(ids)
        return loaded.get(pk)

    return {pk: cached(("dispatch", model.__name__, pk), lambda pk=pk: load(pk)) for pk in ids}


# Times that sending never reads (updated_at is only written): psycopg reads each time
# with Django's loader in Python, a few microseconds each, a tenth of a chunk's reading.
UNREAD_WHEN_SENDING = [
    "created_at",
    "updated_at",
    "delivered_at",
    "notification__created_at",
    "notification__updated_at",
    "notification__purged_at",
    "notification__send_at",
]


def _with_notification(queryset):
    return queryset.select_related("notification__application", "notification__client").order_by()


def deliveries_claim(*, limit: int) -> list[Claim]:
    """Lease up to `limit` deliveries that are due, or whose lease expired.

    One statement claims the due ones (UPDATE … WHERE id IN (SELECT … FOR UPDATE
    SKIP LOCKED) RETURNING), one more those whose lease expired if that leaves room,
    one writes their events and one moves their notifications to PROCESSING.
    """
    now = timezone.now()
    with transaction.atomic():
        due = _claim_rows(DeliveryStatus.PENDING, "next_attempt_at", "<=", now=now, limit=limit)
        stale = []
        if len(due) < limit:
            stale = _claim_rows(
                DeliveryStatus.SENDING, "lease_expires_at", "<", now=now, limit=limit - len(due)
            )
        if not due and not stale:
            return []
        events_insert(
            [(pk, DeliveryStatus.PENDING, DeliveryStatus.SENDING, "claimed") for pk, _, _ in due]
            + [
                (pk, DeliveryStatus.SENDING, DeliveryStatus.SENDING, CLAIMED_AGAIN)
                for pk, _, _ in stale
            ]
        )
        notification_ids = sorted({notification_id for _, _, notification_id in due + stale})
        # The claimed deliveries' notifications still ACCEPTED turn PROCESSING.
        notifications_status_set(
            notification_ids,
            status=NotificationStatus.PROCESSING,
            now=now,
            only_from=NotificationStatus.ACCEPTED,
        )
        return sorted(Claim(pk, claim) for pk, claim, _ in due + stale)


# The event of a delivery claimed after its worker's lease ran out.
CLAIMED_AGAIN = "claimed again: the previous worker's lease expired"


def _claim_rows(
    status: str, column: str, operator: str, *, now, limit: int
) -> list[tuple[int, int, int]]:
    """Claim up to `limit` deliveries in `status` whose `column` is `operator` `now`, oldest
    first, in one statement; returns (id, claim number, notification id) of each.

    On PostgreSQL the rows are locked with SKIP LOCKED, so workers never wait for
    each other or take the same delivery; SQLite runs one writer at a time.
    """
    field = Delivery._meta.get_field
    lock = (
        " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    )
    lease_ends = now + timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
    # Fixed names and operators; the values are parameters.
    sql = (
        "UPDATE notifications_delivery SET status = %s, lease_expires_at = %s,"  # noqa: S608
        " claims = claims + 1, updated_at = %s"
        " WHERE id IN (SELECT id FROM notifications_delivery"
        f" WHERE status = %s AND {column} {operator} %s ORDER BY {column}, id LIMIT %s{lock})"
        " RETURNING id, claims, notification_id"
    )
    stamp = field("updated_at").get_db_prep_value
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                str(DeliveryStatus.SENDING),
                stamp(lease_ends, connection),
                stamp(now, connection),
                str(status),
                stamp(now, connection),
                limit,
            ],
        )
        return [tuple(row) for row in cursor.fetchall()]


def delivery_send(*, delivery_id: int, claim: int) -> SendOutcome:
    """Render (once) and send one claimed delivery, then record the outcome.

    `claim` is the claim number the claim gave it. Returns the outcome, SKIPPED when
    the delivery is no longer this claim's to send.
    """
    delivery = _with_notification(Delivery.objects).get(pk=delivery_id)
    return claimed_send([(delivery, claim)]).get(delivery_id, SendOutcome.SKIPPED)


def claimed_send(
    claimed: list[tuple[Delivery, int]], *, sending_ends: float = math.inf
) -> dict[int, SendOutcome]:
    """Send a group of claimed deliveries and record what became of them.

    Each pair is a delivery and the claim number its claim gave it. One
    statement renews the group's leases (and keeps renewing them while the
    group is sent), the sends run side by side (for backends that allow it),
    one transaction records the outcomes. No send starts that could end after
    `sending_ends` (a time.monotonic() value); those are put back. Returns the
    outcome of each delivery recorded; one whose claim lapsed is left out.
    """
    now = timezone.now()
    decided, to_send, notes = [], [], {}
    for delivery, claim in claimed:
        if delivery.status != DeliveryStatus.SENDING or delivery.claims != claim:
            continue
        outcome = _decided_before_sending(delivery, now, notes)
        if outcome is None:
            to_send.append(delivery)
        else:
            decided.append(outcome)
    leases = GroupLeases.taken(to_send, sending_ends=sending_ends)
    sent = _send_all(leases, notes)
    leases.release_unsent({outcome.delivery.pk for outcome in sent})
    return _record_many(decided + sent)


def _decided_before_sending(delivery: Delivery, now, notes: dict) -> "Outcome | None":
    """The outcome of a delivery that must not go out now, or None to send it.

    Renders it on the way (once: the rendering is stored with its outcome) and
    notes the template version in `notes`, for its sent event.
    """
    expires_at = delivery.notification.expires_at
    if expires_at is not None and now >= expires_at:
        return Outcome(delivery, EXPIRED_RESULT, provider="")
    if get_medium(delivery.medium).held_in_quiet_hours:
        held_until = delivery.notification.client.quiet_hours_end_after(now)
        if held_until is not None:
            if expires_at is not None and held_until >= expires_at:
                return Outcome(delivery, EXPIRED_RESULT, provider="")
            return Outcome(delivery, HELD_RESULT, provider="", held_until=held_until)
    if delivery.template_version_id is None:
        try:
            content = rendered_content(delivery)
        except NoTemplate as exc:
            return Outcome(delivery, SendResult.permanent(str(exc)), provider="")
        except RenderError as exc:
            logger.warning("Delivery %s cannot be rendered: %s", delivery.pk, exc)
            return Outcome(delivery, SendResult.permanent(f"{RENDER_ERROR}: {exc}"), provider="")
        for name, value in content.items():
            setattr(delivery, name, value)
        version = content["template_version"]
        notes[delivery.pk] = f"; rendered with template version {version.number}"
    return None


class GroupLeases:
    """The claims of a group being sent, kept alive until its outcomes are recorded.

    A group can take longer than a lease (a slow SMTP server, a provider at its
    timeout), and a worker whose lease ran out must not send what another worker
    may have claimed since. So a delivery is sent only while its lease still runs
    for longer than a send may take (DELIVERY_SEND_TIMEOUT_SECONDS), and the
    worker's own thread renews the group's leases whenever half the lease is
    gone: the deliveries already sent included, since their outcomes are not
    recorded yet. Each renewal is guarded by the claim number: a delivery that
    another worker claimed meanwhile drops out and is not sent by this one.
    """

    def __init__(self, deliveries: list[Delivery], *, sending_ends: float = math.inf):
        self.deliveries = deliveries
        self.sending_ends = sending_ends
        self._held = {delivery.pk for delivery in deliveries}
        self._lock = threading.Lock()
        self._lease_end = self._renew_at = 0.0  # time.monotonic() values

    @classmethod
    def taken(cls, deliveries: list[Delivery], *, sending_ends: float = math.inf) -> "GroupLeases":
        """Renew the group's leases and count its attempts (begun now: one begun by a
        worker that died mid-send may not have reached the provider). No send may
        start that could end after `sending_ends`."""
        leases = cls(deliveries, sending_ends=sending_ends)
        leases._renew(count_attempts=True)
        return leases

    def holds(self, delivery: Delivery) -> bool:
        """Whether `delivery` may be sent now. Safe to call from the send threads."""
        send_ends = time.monotonic() + settings.DELIVERY_SEND_TIMEOUT_SECONDS
        with self._lock:
            return (
                delivery.pk in self._held
                and send_ends < self._lease_end
                and send_ends <= self.sending_ends
            )

    def renew_if_due(self) -> None:
        """On the worker's thread: renew the leases once half of them is gone."""
        if self._held and time.monotonic() >= self._renew_at:
            self._renew(count_attempts=False)

    def seconds_to_renewal(self) -> float:
        return max(0.0, self._renew_at - time.monotonic())

    def release_unsent(self, sent_ids: set[int]) -> None:
        """Put back the deliveries still ours that were not sent (their lease or the chunk's
        time ran short), due now and with their attempt uncounted, instead of leaving them
        until the lease ends."""
        unsent = [d for d in self.deliveries if d.pk in self._held and d.pk not in sent_ids]
        if unsent:
            claims_put_back(
                [Claim(d.pk, d.claims) for d in unsent],
                attempts={d.pk: d.attempts - 1 for d in unsent},
            )

    def _renew(self, *, count_attempts: bool) -> None:
        started, now = time.monotonic(), timezone.now()
        lease = settings.DELIVERY_LEASE_SECONDS
        held = [d for d in self.deliveries if d.pk in self._held]
        assign = ["lease_expires_at", "attempts"] if count_attempts else ["lease_expires_at"]
        renewed = set(
            rows_update(
                Delivery,
                [
                    {
                        "id": d.pk,
                        "claims": d.claims,
                        "lease_expires_at": now + timedelta(seconds=lease),
                        "attempts": d.attempts + 1,
                    }
                    for d in held
                ],
                match=["id", "claims"],
                assign=assign,
                guard={"status": DeliveryStatus.SENDING, "lease_expires_at__gt": now},
            )
        )
        lapsed = [d.pk for d in held if d.pk not in renewed]
        if lapsed:
            logger.warning("Deliveries %s: the lease lapsed before sending", lapsed)
        if count_attempts:
            for delivery in held:
                delivery.attempts += 1
        with self._lock:
            self._held = renewed
            self._lease_end = started + lease
            self._renew_at = started + lease / 2


class _Send(NamedTuple):
    delivery: Delivery
    backend: ChannelBackend
    backend_count: int
    note: str


def _send_all(leases: GroupLeases, notes: dict[int, str]) -> list["Outcome"]:
    """Send each delivery the group still holds through its backend.

    Backends that send many at once on one thread (HTTP gateways) do so on this
    one; others that allow it send side by side on the send threads; the rest
    send in turn on this thread, within one session per backend (one SMTP
    connection for the group's emails), renewing the group's leases as they go.
    """
    many_at_once, side_by_side, in_turn = {}, [], {}
    for delivery in leases.deliveries:
        backends = backends_for(delivery.medium)
        backend = backends[_backend_index(delivery.attempts, len(backends))]
        send = _Send(delivery, backend, len(backends), notes.get(delivery.pk, ""))
        if backend.sends_many_at_once:
            many_at_once.setdefault(backend, []).append(send)
        elif backend.concurrent_sends:
            side_by_side.append(send)
        else:
            in_turn.setdefault(backend, []).append(send)
    futures = []
    if len(side_by_side) > 1 and settings.DELIVERY_SEND_CONCURRENCY > 1:
        pool = _send_pool(os.getpid(), settings.DELIVERY_SEND_CONCURRENCY)
        futures = [pool.submit(_send_one, send, leases) for send in side_by_side]
    elif side_by_side:
        in_turn.setdefault(side_by_side[0].backend, []).extend(side_by_side)
    outcomes = []
    for backend, sends in many_at_once.items():
        outcomes += _sent_many_at_once(backend, sends, leases)
    for backend, sends in in_turn.items():
        with backend.session():
            for send in sends:
                leases.renew_if_due()
                outcomes.append(_send_one(send, leases))
    outcomes += _results_renewing(futures, leases)
    return [outcome for outcome in outcomes if outcome is not None]


def _sent_many_at_once(backend: ChannelBackend, sends: list[_Send], leases: GroupLeases) -> list:
    """The outcomes of a backend's sends made many at once on this thread; the group's
    leases are renewed from within its waits."""

    def tick() -> float:
        leases.renew_if_due()
        return max(0.05, leases.seconds_to_renewal())

    started = time.monotonic()
    try:
        results = backend.send_many([s.delivery for s in sends], may_send=leases.holds, tick=tick)
    except Exception as exc:
        # A backend bug must not leave the deliveries stuck in SENDING.
        logger.exception("Backend %s failed on %d deliveries", backend.name, len(sends))
        failed = SendResult.transient(f"{type(exc).__name__}: {exc}")
        results = [(failed, time.monotonic() - started)] * len(sends)
    outcomes = []
    for send, (result, seconds) in zip(sends, results, strict=True):
        if result is None:  # not sent: the lease ran short
            continue
        SEND_SECONDS.labels(send.delivery.medium, backend.name).observe(seconds)
        outcomes.append(Outcome(send.delivery, result, backend.name, send.backend_count, send.note))
    return outcomes


def _results_renewing(futures: list[Future], leases: GroupLeases) -> list["Outcome | None"]:
    """Wait for the send threads' outcomes, renewing the group's leases meanwhile."""
    waiting = set(futures)
    while waiting:
        _, waiting = wait(waiting, timeout=max(0.05, leases.seconds_to_renewal()))
        leases.renew_if_due()
    return [future.result() for future in futures]


@lru_cache(maxsize=1)
def _send_pool(pid: int, size: int) -> ThreadPoolExecutor:
    """The worker process's send threads (keyed by pid: a forked worker makes its own)."""
    return ThreadPoolExecutor(max_workers=size, thread_name_prefix="kokatto-send")


def _send_one(send: _Send, leases: GroupLeases) -> "Outcome | None":
    """Runs on a send thread too: no database access here, only the backend's send.

    Returns None, sending nothing, when the group no longer holds the delivery's lease.
    """
    with send.backend.send_slot():
        return _send_holding_slot(send, leases)


def _send_holding_slot(send: _Send, leases: GroupLeases) -> "Outcome | None":
    delivery, backend = send.delivery, send.backend
    if not leases.holds(delivery):
        return None
    started = time.monotonic()
    try:
        result = backend.send(delivery)
    except RenderError as exc:
        # A backend that renders again (WhatsApp's template values) meets the same values.
        result = SendResult.permanent(f"{RENDER_ERROR}: {exc}")
    except Exception as exc:
        # A backend bug must not leave the delivery stuck in SENDING.
        logger.exception("Backend %s failed on delivery %s", backend.name, delivery.pk)
        result = SendResult.transient(f"{type(exc).__name__}: {exc}")
    SEND_SECONDS.labels(delivery.medium, backend.name).observe(time.monotonic() - started)
    return Outcome(delivery, result, backend.name, send.backend_count, send.note)


# Not a provider's answer: the platform's own decision not to send late.
EXPIRED_RESULT = SendResult(SendOutcome.EXPIRED, error="expiresAt passed before it could be sent")
# Nor this: quiet hours put the delivery back until morning (no attempt was made).
HELD_RESULT = SendResult(SendOutcome.HELD)


def _backend_index(attempts: int, backend_count: int) -> int:
    """Failover: DELIVERY_MAX_ATTEMPTS attempts on each backend, in the configured order."""
    return min((attempts - 1) // settings.DELIVERY_MAX_ATTEMPTS, backend_count - 1)


class Outcome(NamedTuple):
    """What became of one claimed delivery, waiting to be recorded."""

    delivery: Delivery
    result: SendResult
    provider: str
    backend_count: int = 1
    note: str = ""
    held_until: datetime | None = None


# The Delivery columns an outcome writes (from the delivery as the worker holds it).
RECORDED_FIELDS = [
    "status",
    "lease_expires_at",
    "updated_at",
    "last_error",
    "next_attempt_at",
    "subject",
    "body",
    "html_body",
    "template_version",
    "sent_at",
    "provider",
    "provider_message_id",
]


def _record_many(outcomes: list[Outcome]) -> dict[int, SendOutcome]:
    """Store outcomes, their events and their notifications' statuses in one transaction.

    Returns the outcome of each delivery recorded: one whose claim lapsed
    meanwhile (another worker claimed it again after our lease ran out) is
    left to that worker.
    """
    if not outcomes:
        return {}
    now = timezone.now()
    details = {o.delivery.pk: _apply_outcome(o, now) + o.note for o in outcomes}
    rows = [
        {"id": o.delivery.pk, "claims": o.delivery.claims}
        | {name: _field_value(o.delivery, name) for name in RECORDED_FIELDS}
        for o in outcomes
    ]
    with transaction.atomic():
        recorded = set(
            rows_update(
                Delivery,
                rows,
                match=["id", "claims"],
                assign=RECORDED_FIELDS,
                guard={"status": DeliveryStatus.SENDING},
            )
        )
        if len(recorded) < len(outcomes):
            lapsed = sorted({o.delivery.pk for o in outcomes} - recorded)
            logger.warning("Deliveries %s were claimed by another worker meanwhile", lapsed)
        deliveries_count(
            [
                (o.delivery.medium, o.provider, o.delivery.status)
                for o in outcomes
                if o.delivery.pk in recorded
            ]
        )
        events_insert(
            [
                (o.delivery.pk, DeliveryStatus.SENDING, o.delivery.status, details[o.delivery.pk])
                for o in outcomes
                if o.delivery.pk in recorded
            ]
        )
        # A held delivery waits as it was: its notification's status does not move.
        wants_callbacks = {
            o.delivery.notification_id: bool(o.delivery.notification.client.callback_url)
            for o in outcomes
            if o.delivery.pk in recorded and o.held_until is None
        }
        if wants_callbacks:
            notifications_refresh_statuses(
                notification_ids=sorted(wants_callbacks), wants_callbacks=wants_callbacks
            )
    sent = [
        (o.provider, o.delivery.provider_message_id)
        for o in outcomes
        if o.delivery.pk in recorded
        and o.result.outcome == SendOutcome.SENT
        and o.delivery.provider_message_id
    ]
    if sent:
        early_receipts_apply(sent=sent)
    return {o.delivery.pk: o.result.outcome for o in outcomes if o.delivery.pk in recorded}


def _field_value(delivery: Delivery, name: str):
    return delivery.template_version_id if name == "template_version" else getattr(delivery, name)


def _apply_outcome(outcome: Outcome, now) -> str:
    """Set the delivery's new status and fields (in memory); returns the event's detail."""
    delivery, result, provider = outcome.delivery, outcome.result, outcome.provider
    delivery.lease_expires_at = None
    delivery.updated_at = now
    if result is HELD_RESULT:
        delivery.status = DeliveryStatus.PENDING
        delivery.next_attempt_at = outcome.held_until
        return f"held for the client's quiet hours until {outcome.held_until:%Y-%m-%d %H:%M %Z}"
    # The provider's words go into text columns: a NUL or a lone surrogate in them
    # would fail the whole group's record, and so have every message in it sent again.
    error, message_id = storable_text(result.error), storable_text(result.provider_message_id)
    delivery.last_error = error
    if result.outcome == SendOutcome.SENT:
        delivery.status = DeliveryStatus.SENT
        delivery.sent_at = now
        delivery.provider = provider
        if len(message_id) > PROVIDER_ID_MAX_LENGTH:
            # The message is out: an id the column cannot hold must not fail the group's
            # record (and so have it sent again). Kept in the event; receipts can't match it.
            delivery.provider_message_id = ""
            return f"sent by {provider} as an id too long to store: {message_id[:200]!r}"
        delivery.provider_message_id = message_id
        return f"sent by {provider}" + (f" as {message_id}" if message_id else "")
    if result is EXPIRED_RESULT:
        delivery.status = DeliveryStatus.EXPIRED
        return "not sent: expiresAt passed"
    if (
        result.outcome == SendOutcome.TRANSIENT
        and delivery.attempts < settings.DELIVERY_MAX_ATTEMPTS * outcome.backend_count
    ):
        # Each backend starts its own backoff from the base delay.
        retry_at = now + retry_delay((delivery.attempts - 1) % settings.DELIVERY_MAX_ATTEMPTS + 1)
        failure = f"attempt {delivery.attempts} by {provider} failed ({error})"
        expires_at = delivery.notification.expires_at
        if expires_at is not None and retry_at >= expires_at:
            delivery.status = DeliveryStatus.EXPIRED
            return f"{failure}; a retry would come after expiresAt"
        delivery.status = DeliveryStatus.PENDING
        delivery.next_attempt_at = retry_at
        return f"{failure}; retry at {retry_at:%H:%M:%S}"
    delivery.status = DeliveryStatus.FAILED
    if provider:
        return f"failed after {delivery.attempts} attempt(s), last by {provider}: {error}"
    return f"failed: {error}"


def rendered_content(delivery: Delivery) -> dict:
    """The delivery's subject, body and HTML body rendered with its template's current version.

    Returns the Delivery fields to store, the version included, so what was sent
    stays known after the template changes. Raises NoTemplate, or RenderError when
    the notification's values cannot be rendered. Workers keep the
    current version for API_CONFIG_CACHE_SECONDS: an edit reaches them within that.
    """
    notification = delivery.notification
    version, renderers = cached(
        ("template", notification.application_id, delivery.medium),
        lambda: _current_template(notification.application, delivery.medium),
    )
    if version is None:
        raise NoTemplate(f"{notification.application} has no {delivery.medium} template.")
    if isinstance(renderers, str):
        raise RenderError(renderers)
    try:
        content = {part: render(notification.params) for part, render in renderers.items()}
    except RenderError:
        raise
    except Exception as exc:
        # The values are the client's data: whatever else they make the renderer
        # raise (a stored template it no longer accepts, say) fails this delivery
        # alone, never the worker and the rest of its group.
        raise RenderError(f"{type(exc).__name__}: {exc}") from exc
    subject_limit = Delivery._meta.get_field("subject").max_length
    if len(content["subject"]) > subject_limit:
        raise RenderError(
            f"the rendered subject has {len(content['subject'])} characters, "
            f"at most {subject_limit} fit"
        )
    return {**content, "template_version": version}


def _current_template(application, medium):
    """The template's current version and a renderer of each of its parts (or, for a
    stored text the renderer no longer accepts, why: each delivery fails with it)."""
    template = ContentTemplate.objects.filter(application=application, medium=medium).first()
    version = template.versions.order_by("-number").first() if template else None
    if version is None:
        return None, None
    fields = field_formats(application)
    try:
        return version, {
            part: prepare(getattr(version, part), fields, escape_html=escape_html)
            for part, escape_html in PART_ESCAPES_HTML.items()
        }
    except Exception as exc:
        return version, f"{type(exc).__name__}: {exc}"


def delivery_render(*, delivery: Delivery) -> Delivery:
    """Render the delivery's content now and store it with the template version."""
    content = rendered_content(delivery)
    for name, value in content.items():
        setattr(delivery, name, value)
    delivery.save(update_fields=[*content, "updated_at"])
    return delivery


@transaction.atomic
def delivery_retry(*, delivery: Delivery, detail: str) -> bool:
    """Give a FAILED delivery a fresh set of attempts now. Returns False if it was not FAILED,
    or its personal data was purged (no recipient left to send to: notifications/retention.py).
    """
    failed = Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.FAILED)
    updated = failed.exclude(recipient="").update(
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=timezone.now(),
        updated_at=timezone.now(),
    )
    if updated:
        event_record(
            delivery_id=delivery.pk,
            old_status=DeliveryStatus.FAILED,
            new_status=DeliveryStatus.PENDING,
            detail=detail,
        )
        notification_refresh_status(notification_id=delivery.notification_id)
    return bool(updated)
