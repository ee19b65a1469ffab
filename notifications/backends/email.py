"""Email through Django's email machinery: SMTP in production (EMAIL_URL), console by default.

Any Django email backend works here, django-anymail's ESP backends included:
set EMAIL_BACKEND (or EMAIL_URL) and this class sends through it. Within a
`session()` (the dispatcher opens one per group of deliveries) every message
goes over one connection of that backend.

SMTP (Django's SMTP backend, what EMAIL_URL smtp://… selects) takes a faster
path: the worker process keeps its SMTP connections open in a pool
(notifications/backends/smtp_pool.py), reused across groups and tasks, up to
EMAIL_MAX_CONNECTIONS of them sending side by side; each message's bytes are
written directly (notifications/backends/email_message.py), the same bytes
Django would send. A connection the server dropped while it was idle is
replaced at once and the message sent over the new one.

Each send is cut at DELIVERY_SEND_TIMEOUT_SECONDS, connecting included, on top of
EMAIL_TIMEOUT for each SMTP operation: a server that trickles its answers cannot
hold a worker past the lease of the delivery it is sending.
"""

import smtplib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from email.utils import parseaddr
from functools import lru_cache

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends import smtp

from notifications.backends.base import ChannelBackend, SendResult, idempotency_key
from notifications.backends.deadline import deadline
from notifications.backends.email_message import envelope_address, message_bytes
from notifications.backends.smtp_pool import CLOSE_SECONDS, SmtpPool, process_pool

DJANGO_SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
# A kept connection idle this long is asked NOOP before it carries a message: servers
# close idle connections, and one found closed only after the message went out could
# not be told from one that took the message.
IDLE_CHECK_SECONDS = 0.5


class DjangoEmailBackend(ChannelBackend):
    name = "email"

    def __init__(self, from_email: str | None = None, backend: str | None = None):
        self.from_email = from_email or settings.DEFAULT_FROM_EMAIL
        self.backend = backend
        self._local = threading.local()

    @property
    def concurrent_sends(self) -> bool:
        """SMTP sends go side by side, over the pool's connections (no database access)."""
        return self._pooled() and settings.EMAIL_MAX_CONNECTIONS > 1

    def send_slot(self) -> AbstractContextManager:
        """SMTP: wait for one of the worker's EMAIL_MAX_CONNECTIONS connections."""
        return self._pool().slot() if self._pooled() else nullcontext()

    def session(self) -> AbstractContextManager:
        """Send every message of the block over one connection, closed at the end (SMTP's
        pooled connections outlive the block)."""
        return nullcontext() if self._pooled() else self._one_connection()

    @contextmanager
    def _one_connection(self) -> Iterator[None]:
        self._local.connection = None
        self._local.in_session = True
        try:
            yield
        finally:
            self._local.in_session = False
            self._close()

    def send(self, delivery) -> SendResult:
        if self._pooled():
            return self._send_pooled(delivery)
        connection = self._connection()
        message = EmailMultiAlternatives(
            subject=delivery.subject,
            body=delivery.body,
            from_email=self.from_email,
            to=[delivery.recipient],
            headers={"Message-ID": message_id(delivery, self.from_email)},
            connection=connection,
        )
        if delivery.html_body:
            message.attach_alternative(delivery.html_body, "text/html")
        try:
            with deadline(
                settings.DELIVERY_SEND_TIMEOUT_SECONDS, lambda: _shut_down(connection)
            ) as cut:
                connection.open()
                connection.send_messages([message])
        except smtplib.SMTPRecipientsRefused as exc:
            # smtplib reset the transaction: the connection serves the next message.
            return _refused(exc)
        except (smtplib.SMTPException, OSError) as exc:  # OSError covers timeouts
            # The connection may be broken, or half-open (a refused login): the next
            # send opens a new one.
            self._close()
            return _failure(exc, timed_out=cut.expired)
        finally:
            if not getattr(self._local, "in_session", False):
                self._close()
        return SendResult.sent(message.extra_headers["Message-ID"])

    def _pooled(self) -> bool:
        return (self.backend or settings.EMAIL_BACKEND) == DJANGO_SMTP_BACKEND

    def _pool(self) -> SmtpPool:
        key = (
            settings.EMAIL_HOST,
            settings.EMAIL_PORT,
            settings.EMAIL_HOST_USER,
            settings.EMAIL_HOST_PASSWORD,
            settings.EMAIL_USE_TLS,
            settings.EMAIL_USE_SSL,
            settings.EMAIL_SSL_CERTFILE,
            settings.EMAIL_SSL_KEYFILE,
            settings.EMAIL_TIMEOUT,
            settings.EMAIL_MAX_CONNECTIONS,
        )
        return process_pool(
            key,
            lambda: SmtpPool(
                settings.EMAIL_MAX_CONNECTIONS,
                lambda: DeadlineSmtpBackend(timeout=settings.EMAIL_TIMEOUT),
                _close_backend,
            ),
        )

    def _send_pooled(self, delivery) -> SendResult:
        identifier = message_id(delivery, self.from_email)
        message = message_bytes(
            from_email=self.from_email,
            to=delivery.recipient,
            subject=delivery.subject,
            body=delivery.body,
            html=delivery.html_body,
            message_id=identifier,
        )
        envelope = (envelope_address(self.from_email), [envelope_address(delivery.recipient)])
        pool = self._pool()
        with pool.slot():
            return _transmit(pool, envelope, message, identifier)

    def _connection(self):
        connection = getattr(self._local, "connection", None)
        if connection is None:
            # Not Django's SMTP backend (that one goes through the pool).
            path = self.backend or settings.EMAIL_BACKEND
            connection = get_connection(path, timeout=settings.EMAIL_TIMEOUT)
            self._local.connection = connection
        return connection

    def _close(self) -> None:
        connection, self._local.connection = getattr(self._local, "connection", None), None
        if connection is not None:
            # QUIT waits for the server's answer: a server trickling it holds no worker.
            seconds = settings.DELIVERY_SEND_TIMEOUT_SECONDS
            with suppress(Exception), deadline(seconds, lambda: _shut_down(connection)):
                connection.close()


def _transmit(pool: SmtpPool, envelope: tuple, message: bytes, identifier: str) -> SendResult:
    """Send `message` over one of the pool's connections, within the send's deadline.

    A kept connection idle for IDLE_CHECK_SECONDS is asked NOOP first: one the server
    closed meanwhile is replaced before the message goes out. Once the message is on
    its way, a failure is the send's (retried later with backoff), never sent again at
    once: a server that hangs up after taking the message but before answering would
    otherwise get it twice. Only a 421 to MAIL FROM on a kept connection (the server
    closing it before the message) sends once more, over a new one. A failure that may
    have broken a connection discards it; connections are given back (a worn-out one
    closed) after the deadline's block, so a slow QUIT never eats into a send's time.
    """
    ends = time.monotonic() + settings.DELIVERY_SEND_TIMEOUT_SECONDS
    while True:
        connection = pool.take()  # never waits: the caller holds one of the pool's places
        reused = connection.opened_at is not None
        if reused and not _answers_noop(connection, ends):
            pool.give_back(connection, broken=True)
            continue  # the pool holds at most its size of idle ones, then opens a new one
        try:
            result, broken, timed_out = _attempt(connection, envelope, message, ends, identifier)
        except BaseException:
            pool.give_back(connection, broken=True)
            raise
        pool.give_back(connection, broken=broken is not None)
        if result is not None:
            return result
        if not (reused and not timed_out and _closed_before_the_message(broken)):
            return _failure(broken, timed_out=timed_out)


def _answers_noop(connection, ends: float) -> bool:
    """Whether a kept connection idle for a while still answers (NOOP within the deadline)."""
    if time.monotonic() - connection.idle_since < IDLE_CHECK_SECONDS:
        return True
    try:
        with deadline(ends - time.monotonic(), lambda: _shut_down(connection.backend)):
            code, _ = connection.client.noop()
    except (smtplib.SMTPException, OSError):
        return False
    return code == 250


def _attempt(connection, envelope: tuple, message: bytes, ends: float, identifier: str):
    """One try over `connection`, cut at `ends`: (result, None, False) when the server
    answered the message, or (None, the exception, whether the deadline cut it)."""
    cut = None
    try:
        with deadline(ends - time.monotonic(), lambda: _shut_down(connection.backend)) as cut:
            if connection.opened_at is None:
                connection.open()
            connection.client.sendmail(*envelope, message)
    except smtplib.SMTPRecipientsRefused as exc:
        # smtplib reset the transaction: the connection serves the next message.
        return _refused(exc), None, False
    except (smtplib.SMTPException, OSError) as exc:  # OSError covers timeouts
        return None, exc, bool(cut and cut.expired)
    connection.messages += 1
    return SendResult.sent(identifier), None, False


def _closed_before_the_message(exc: Exception) -> bool:
    """Whether the server refused MAIL FROM with 421 ("closing the channel"): it took
    nothing of the message, which may go out once more over a new connection."""
    return isinstance(exc, smtplib.SMTPSenderRefused) and exc.smtp_code == 421


def _close_backend(backend, *, quit: bool) -> None:
    """Close a pooled connection: QUIT within CLOSE_SECONDS, or (a broken one) at once."""
    if not quit:
        _shut_down(backend)
    seconds = min(CLOSE_SECONDS, settings.DELIVERY_SEND_TIMEOUT_SECONDS)
    with suppress(Exception), deadline(seconds, lambda: _shut_down(backend)):
        backend.close()


def _refused(exc: smtplib.SMTPRecipientsRefused) -> SendResult:
    codes = [code for code, _ in exc.recipients.values()]
    reason = f"recipient refused: {exc.recipients}"
    # 4xx on RCPT is greylisting or a full mailbox: "try again later".
    if codes and all(400 <= code < 500 for code in codes):
        return SendResult.transient(reason)
    return SendResult.permanent(reason)


def message_id(delivery, from_email: str) -> str:
    """The same Message-ID for every send of a delivery: a re-send after a crash is
    recognisable as the same message (by mail systems that deduplicate, and by readers)."""
    return f"<{idempotency_key(delivery)}@{_domain(from_email)}>"


@lru_cache(maxsize=64)
def _domain(from_email: str) -> str:
    """The sender's domain (parsing the address took a twentieth of a send's CPU)."""
    return parseaddr(from_email)[1].rpartition("@")[2] or "kokatto"


class _DeadlineMixin:
    """Remembers the SMTP client whose socket a deadline must shut down, from the first byte.

    Django's backend learns its smtplib client only once it has connected, read
    the greeting and said EHLO; a server that trickles its greeting would be out
    of the deadline's reach until then.
    """

    def _get_socket(self, host, port, timeout):
        sock = super()._get_socket(host, port, timeout)
        backend = getattr(_opening, "backend", None)
        if backend is not None:
            backend.smtp_client = self
        return sock


class _SMTP(_DeadlineMixin, smtplib.SMTP):
    pass


class _SMTP_SSL(_DeadlineMixin, smtplib.SMTP_SSL):
    pass


_opening = threading.local()


class DeadlineSmtpBackend(smtp.EmailBackend):
    """Django's SMTP backend, whose connection a deadline can cut while it is still opening."""

    smtp_client = None

    @property
    def connection_class(self):
        return _SMTP_SSL if self.use_ssl else _SMTP

    def open(self):
        _opening.backend = self
        try:
            return super().open()
        finally:
            _opening.backend = None

    def close(self):
        super().close()
        self.smtp_client = None


def _shut_down(connection) -> None:
    """Runs on the watchdog thread: make the blocked SMTP call fail now."""
    client = getattr(connection, "connection", None) or getattr(connection, "smtp_client", None)
    sock = getattr(client, "sock", None)
    if sock is not None:
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _failure(exc: Exception, *, timed_out: bool) -> SendResult:
    if timed_out:
        seconds = settings.DELIVERY_SEND_TIMEOUT_SECONDS
        return SendResult.transient(f"Timeout: the send took longer than {seconds:g} s")
    if isinstance(exc, smtplib.SMTPResponseException):
        reason = f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"
        # 4xx is "try again later", 5xx is "never".
        if 400 <= exc.smtp_code < 500:
            return SendResult.transient(reason)
        return SendResult.permanent(reason)
    return SendResult.transient(f"{type(exc).__name__}: {exc}")
