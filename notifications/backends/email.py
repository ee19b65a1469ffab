"""Email through Django's email machinery: SMTP in production (EMAIL_URL), console by default.

Any Django email backend works here, django-anymail's ESP backends included:
set EMAIL_BACKEND (or EMAIL_URL) and this class sends through it.

Within a `session()` (the dispatcher opens one per group of deliveries) every
message goes over one connection, opened at the first send and reopened only
after a failure that may have broken it. Each send is cut at
DELIVERY_SEND_TIMEOUT_SECONDS, connecting included, on top of EMAIL_TIMEOUT for
each SMTP operation: a server that trickles its answers cannot hold a worker
past the lease of the delivery it is sending.
"""

import smtplib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from email.utils import parseaddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends import smtp

from notifications.backends.base import ChannelBackend, SendResult, idempotency_key
from notifications.backends.deadline import deadline

DJANGO_SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


class DjangoEmailBackend(ChannelBackend):
    name = "email"

    def __init__(self, from_email: str | None = None, backend: str | None = None):
        self.from_email = from_email or settings.DEFAULT_FROM_EMAIL
        self.backend = backend
        self._local = threading.local()

    @contextmanager
    def session(self) -> Iterator[None]:
        """Send every message of the block over one connection, closed at the end."""
        self._local.connection = None
        self._local.in_session = True
        try:
            yield
        finally:
            self._local.in_session = False
            self._close()

    def send(self, delivery) -> SendResult:
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
            codes = [code for code, _ in exc.recipients.values()]
            reason = f"recipient refused: {exc.recipients}"
            # 4xx on RCPT is greylisting or a full mailbox: "try again later".
            if codes and all(400 <= code < 500 for code in codes):
                return SendResult.transient(reason)
            return SendResult.permanent(reason)
        except (smtplib.SMTPException, OSError) as exc:  # OSError covers timeouts
            # The connection may be broken, or half-open (a refused login): the next
            # send opens a new one.
            self._close()
            return _failure(exc, timed_out=cut.expired)
        finally:
            if not getattr(self._local, "in_session", False):
                self._close()
        return SendResult.sent(message.extra_headers["Message-ID"])

    def _connection(self):
        connection = getattr(self._local, "connection", None)
        if connection is None:
            path = self.backend or settings.EMAIL_BACKEND
            if path == DJANGO_SMTP_BACKEND:
                path = f"{__name__}.{DeadlineSmtpBackend.__name__}"
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


def message_id(delivery, from_email: str) -> str:
    """The same Message-ID for every send of a delivery: a re-send after a crash is
    recognisable as the same message (by mail systems that deduplicate, and by readers)."""
    domain = parseaddr(from_email)[1].rpartition("@")[2] or "kokatto"
    return f"<{idempotency_key(delivery)}@{domain}>"


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
