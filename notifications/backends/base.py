"""The one interface every channel backend implements."""

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from enum import StrEnum


class SendOutcome(StrEnum):
    """What became of a delivery's send. A backend answers SENT, TRANSIENT or PERMANENT;
    the dispatcher decides the others itself."""

    SENT = "sent"
    TRANSIENT = "transient"  # worth retrying: timeouts, 5xx, 429, dropped connections
    PERMANENT = "permanent"  # will never succeed: invalid number, rejected content
    EXPIRED = "expired"  # not sent: expiresAt passed
    HELD = "held"  # put back until the client's quiet hours end; no attempt made
    SKIPPED = "skipped"  # not this claim's to send any more (another worker's now)


@dataclass(frozen=True)
class SendResult:
    outcome: SendOutcome
    provider_message_id: str = ""
    error: str = ""

    @classmethod
    def sent(cls, provider_message_id: str = "", note: str = "") -> "SendResult":
        return cls(SendOutcome.SENT, provider_message_id, note)

    @classmethod
    def transient(cls, error: str) -> "SendResult":
        return cls(SendOutcome.TRANSIENT, error=error)

    @classmethod
    def permanent(cls, error: str) -> "SendResult":
        return cls(SendOutcome.PERMANENT, error=error)


class ChannelBackend:
    """Sends one delivery. Subclasses set `name` and implement `send`.

    `send` must not raise for a provider's answer: it classifies it.
    `idempotency_key(delivery)` identifies a delivery to providers that
    deduplicate, so a re-send after a crash is recognised, not sent twice.
    """

    name = "backend"
    # Whether one process may call `send` from several threads at once. Such a
    # send must not touch the database: it runs outside the worker's thread.
    concurrent_sends = False

    # Whether `send_many` sends a group many at once on the worker's own thread (an
    # HTTP gateway's posts, side by side on one thread), rather than `send` one by one.
    sends_many_at_once = False

    def send(self, delivery) -> SendResult:
        raise NotImplementedError

    def send_many(
        self, deliveries: list, *, may_send: Callable, tick: Callable[[], float]
    ) -> list[tuple[SendResult | None, float]]:
        """Send the deliveries, each only if `may_send(delivery)` says so just before it
        goes; call `tick()` while waiting, again within the seconds it returns. Returns
        each delivery's result (None: not sent) and the seconds its send took."""
        raise NotImplementedError

    def send_slot(self) -> AbstractContextManager:
        """Held around a send, taken before the dispatcher checks the delivery's lease: a
        backend with fewer connections than the dispatcher has send threads (email) makes
        the other threads wait here, outside the time the lease leaves for the send."""
        return nullcontext()

    def session(self) -> AbstractContextManager:
        """The dispatcher sends a group's deliveries within one session: a backend may
        keep a connection open for its length (email keeps one SMTP connection)."""
        return nullcontext()


def idempotency_key(delivery) -> str:
    return f"kokatto-delivery-{delivery.pk}"
