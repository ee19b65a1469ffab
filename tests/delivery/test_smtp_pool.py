"""A worker's pooled SMTP connections, against a real SMTP server on loopback.

The worker keeps its SMTP connections open from one group and one task to the
next (notifications/backends/smtp_pool.py), at most EMAIL_MAX_CONNECTIONS of
them, sending over them side by side; every email still arrives exactly once,
and every send is still cut at DELIVERY_SEND_TIMEOUT_SECONDS.
"""

import contextlib
import socket
import threading
import time
from collections import Counter

import pytest

from notifications.backends.base import SendOutcome
from notifications.backends.email import DjangoEmailBackend
from notifications.backends.smtp_pool import close_process_pools
from notifications.dispatch import dispatch_due
from notifications.models import Delivery
from tests.delivery import peers
from tests.factories import (
    ContentTemplateFactory,
    DeliveryFactory,
    accept_notification,
    demo_values,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def email_template(app_8002):
    return ContentTemplateFactory(
        application=app_8002,
        medium="email",
        subject="Tagihan [customerName]",
        body="Yth. [customerName], tagihan Anda Rp [balance|rupiah].",
        html_body="<p>Yth. <b>[customerName]</b>, tagihan Anda Rp [balance|rupiah].</p>",
    )


def accept_emails(client, prefix: str, count: int) -> None:
    for number in range(count):
        values = demo_values(msisdn="", email=f"{prefix}{number}@example.co.id")
        accept_notification(client, f"{prefix}-{number}", values=values)


def email_delivery(recipient: str = "john@example.co.id"):
    return DeliveryFactory(
        medium="email", recipient=recipient, subject="Payment reminder", body="Dear John"
    )


def peers_of(server) -> list[tuple]:
    return [message.peer for message in server.messages]


def assert_each_sent_exactly_once(server) -> None:
    """Every delivery SENT, and the server got one message for each, under its Message-ID."""
    sent = dict(Delivery.objects.values_list("pk", "provider_message_id"))
    assert set(Delivery.objects.values_list("status", flat=True)) == {"SENT"}
    arrived = Counter(message.message["Message-ID"] for message in server.messages)
    assert arrived == Counter(sent.values())
    assert set(arrived.values()) == {1}


def test_the_next_group_and_the_next_task_reuse_the_workers_connection(
    client_8002, email_template, smtp_server, settings
):
    settings.EMAIL_MAX_CONNECTIONS = 1
    settings.DELIVERY_SEND_GROUP = 2
    accept_emails(client_8002, "first", 4)
    assert dispatch_due() == 4  # two groups
    accept_emails(client_8002, "second", 3)

    assert dispatch_due() == 3  # another task

    assert len(smtp_server.messages) == 7
    assert smtp_server.connections == 1
    assert_each_sent_exactly_once(smtp_server)


def test_a_later_task_opens_no_new_connection_when_several_are_open(
    client_8002, email_template, smtp_server, settings
):
    settings.EMAIL_MAX_CONNECTIONS = 3
    smtp_server.slow_down(0.2)  # each send holds its connection: three go side by side
    accept_emails(client_8002, "first", 6)
    dispatch_due()
    first_peers = set(peers_of(smtp_server))
    accept_emails(client_8002, "second", 6)

    dispatch_due()

    assert len(first_peers) == 3
    assert set(peers_of(smtp_server)) == first_peers
    assert_each_sent_exactly_once(smtp_server)


def test_a_worker_never_opens_more_than_email_max_connections(
    client_8002, email_template, smtp_server, settings
):
    settings.EMAIL_MAX_CONNECTIONS = 2
    settings.DELIVERY_SEND_CONCURRENCY = 8  # more send threads than connections
    smtp_server.slow_down(0.1)
    accept_emails(client_8002, "c", 12)

    assert dispatch_due() == 12

    assert len(smtp_server.messages) == 12
    assert smtp_server.connections == 2
    assert_each_sent_exactly_once(smtp_server)


def test_side_by_side_sends_deliver_every_email_exactly_once(
    client_8002, email_template, smtp_server, settings
):
    settings.EMAIL_MAX_CONNECTIONS = 4
    settings.DELIVERY_SEND_CONCURRENCY = 8
    settings.DELIVERY_CHUNK_SIZE = 60  # one chunk, in groups of DELIVERY_SEND_GROUP (50)
    accept_emails(client_8002, "c", 60)

    assert dispatch_due() == 60

    assert len(smtp_server.messages) == 60
    assert smtp_server.connections <= 4
    assert_each_sent_exactly_once(smtp_server)
    recipients = sorted(message.rcpt_tos[0] for message in smtp_server.messages)
    assert recipients == sorted(f"c{n}@example.co.id" for n in range(60))


def test_a_connection_the_server_closed_while_idle_is_replaced_and_the_email_sent_once(
    settings,
):
    server = peers.SmtpServer(idle_timeout=0.3).start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = server.host, server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    backend = DjangoEmailBackend()
    try:
        first = backend.send(email_delivery())
        time.sleep(0.8)  # the server says 421 and hangs up on the idle connection

        second = backend.send(email_delivery(recipient="jane@example.co.id"))

        assert (first.outcome, second.outcome) == (SendOutcome.SENT, SendOutcome.SENT)
        assert [m.rcpt_tos for m in server.messages] == [
            ["john@example.co.id"],
            ["jane@example.co.id"],
        ]
        assert server.connections == 2
    finally:
        server.stop()


def test_a_connection_is_replaced_after_its_message_allowance(smtp_server, settings):
    settings.EMAIL_MAX_CONNECTIONS = 1
    settings.EMAIL_CONNECTION_MAX_MESSAGES = 2
    backend = DjangoEmailBackend()

    results = [backend.send(email_delivery(f"c{n}@example.co.id")) for n in range(5)]

    assert [result.outcome for result in results] == [SendOutcome.SENT] * 5
    assert list(Counter(peers_of(smtp_server)).values()) == [2, 2, 1]


def test_a_connection_past_its_lifetime_is_ended_with_quit_and_replaced(smtp_server, settings):
    settings.EMAIL_MAX_CONNECTIONS = 1
    settings.EMAIL_CONNECTION_MAX_SECONDS = 0.3
    backend = DjangoEmailBackend()
    backend.send(email_delivery())
    time.sleep(0.5)

    result = backend.send(email_delivery(recipient="jane@example.co.id"))

    assert result.outcome == SendOutcome.SENT
    assert smtp_server.connections == 2
    assert smtp_server.quits == 1


def test_a_worker_ends_its_open_connections_with_quit_when_it_exits(
    client_8002, email_template, smtp_server, settings
):
    settings.EMAIL_MAX_CONNECTIONS = 2
    smtp_server.slow_down(0.2)
    accept_emails(client_8002, "c", 4)
    dispatch_due()
    assert smtp_server.quits == 0

    close_process_pools()  # what the worker process's exit runs

    assert smtp_server.connections == 2
    assert smtp_server.quits == 2


def test_a_pooled_connection_whose_server_stalls_is_cut_at_the_deadline_and_not_reused(
    smtp_server, settings
):
    settings.EMAIL_MAX_CONNECTIONS = 1
    settings.DELIVERY_SEND_TIMEOUT_SECONDS = 1
    backend = DjangoEmailBackend()
    assert backend.send(email_delivery()).outcome == SendOutcome.SENT
    smtp_server.slow_down(3)  # the open connection's next message waits 3 s for its answer

    started = time.monotonic()
    stalled = backend.send(email_delivery(recipient="jane@example.co.id"))
    took = time.monotonic() - started
    smtp_server.slow_down(0)
    after = backend.send(email_delivery(recipient="joe@example.co.id"))

    assert stalled.outcome == SendOutcome.TRANSIENT
    assert stalled.error == "Timeout: the send took longer than 1 s"
    assert took < 2.5
    assert after.outcome == SendOutcome.SENT
    first_peer = smtp_server.messages[0].peer
    [joe] = [m for m in smtp_server.messages if m.rcpt_tos == ["joe@example.co.id"]]
    assert joe.peer != first_peer


def test_a_server_that_trickles_its_greeting_to_a_pooled_send_is_cut_at_the_deadline(settings):
    server = peers.TricklingServer(interval=0.2).start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = server.host, server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    settings.DELIVERY_SEND_TIMEOUT_SECONDS = 1
    settings.EMAIL_MAX_CONNECTIONS = 2
    backend = DjangoEmailBackend()
    try:
        results = [backend.send(email_delivery(f"c{n}@example.co.id")) for n in range(2)]

        assert [result.error for result in results] == [
            "Timeout: the send took longer than 1 s"
        ] * 2
        assert server.connections == 2  # the cut connection was not kept for the next send
        assert server.hung_up.wait(5)
    finally:
        server.stop()


def test_another_django_email_backend_still_gets_every_message(
    client_8002, email_template, mailoutbox, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    accept_emails(client_8002, "c", 3)

    assert dispatch_due() == 3

    assert sorted(message.to[0] for message in mailoutbox) == [
        f"c{n}@example.co.id" for n in range(3)
    ]
    assert {message.alternatives[0].mimetype for message in mailoutbox} == {"text/html"}


class HangsUpAfterTheSecondMessage:
    """A raw SMTP peer that takes the second message of a connection and hangs up
    before answering it: the message is queued, the client never hears so."""

    def __init__(self):
        self.accepted: list[int] = []  # the connection number of each message taken
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        with contextlib.suppress(OSError):
            while True:
                peer, _ = self._listener.accept()
                self._connections += 1
                threading.Thread(
                    target=self._serve, args=(peer, self._connections), daemon=True
                ).start()

    def _serve(self, peer, number):
        with peer, peer.makefile("rb") as lines:
            peer.sendall(b"220 ready\r\n")
            taken = 0
            for line in lines:
                command = line[:4].upper()
                if command == b"QUIT":
                    peer.sendall(b"221 bye\r\n")
                    return
                if command != b"DATA":
                    peer.sendall(b"250 ok\r\n")
                    continue
                peer.sendall(b"354 go on\r\n")
                while lines.readline() not in (b".\r\n", b""):
                    pass
                self.accepted.append(number)
                taken += 1
                if taken == 2:
                    return  # queued, and the link drops before the 250
                peer.sendall(b"250 queued\r\n")

    def stop(self):
        self._listener.close()


def test_a_message_the_server_may_have_taken_is_not_sent_again_at_once(settings):
    server = HangsUpAfterTheSecondMessage()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    backend = DjangoEmailBackend()
    try:
        first = backend.send(email_delivery())
        second = backend.send(email_delivery(recipient="jane@example.co.id"))

        assert first.outcome == SendOutcome.SENT
        assert second.outcome == SendOutcome.TRANSIENT  # retried later, with backoff
        assert server.accepted == [1, 1]  # the second message arrived once, not twice
    finally:
        close_process_pools()
        server.stop()
