"""DjangoEmailBackend against a real SMTP server on loopback (tests/delivery/peers.py)."""

import io

import pytest

from notifications.backends.base import SendOutcome
from notifications.backends.console import ConsoleBackend
from notifications.backends.email import DjangoEmailBackend
from tests.delivery.peers import TricklingServer
from tests.factories import DeliveryFactory

pytestmark = pytest.mark.django_db

TEXT = "Dear Mr. John Doe, you owe Rp 1.230.000 due on 09-09-2015."
HTML = "<p>Dear Mr. <b>John Doe</b>, you owe Rp 1.230.000 due on 09-09-2015.</p>"


def email_delivery(**fields):
    values = {
        "medium": "email",
        "recipient": "john@example.co.id",
        "subject": "Payment reminder",
        "body": TEXT,
        "html_body": HTML,
        **fields,
    }
    return DeliveryFactory(**values)


def test_it_sends_a_multipart_email_with_text_and_html(smtp_server, settings):
    delivery = email_delivery()

    result = DjangoEmailBackend().send(delivery)

    assert result.outcome == SendOutcome.SENT
    assert result.error == ""
    [received] = smtp_server.messages
    assert received.rcpt_tos == ["john@example.co.id"]
    assert received.mail_from == "no-reply@kokatto.local"
    message = received.message
    assert message.get_content_type() == "multipart/alternative"
    assert message["Subject"] == "Payment reminder"
    assert message["To"] == "john@example.co.id"
    assert message["From"] == settings.DEFAULT_FROM_EMAIL
    parts = list(message.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    assert parts[0].get_content().rstrip("\n") == TEXT
    assert parts[1].get_content().rstrip("\n") == HTML


def test_it_returns_the_message_id_it_sent_as_the_provider_message_id(smtp_server):
    result = DjangoEmailBackend().send(email_delivery())

    [received] = smtp_server.messages
    assert result.provider_message_id
    assert received.message["Message-ID"] == result.provider_message_id


def test_each_send_has_its_own_message_id(smtp_server):
    backend = DjangoEmailBackend()

    first = backend.send(email_delivery())
    second = backend.send(email_delivery(recipient="jane@example.co.id"))

    assert first.provider_message_id != second.provider_message_id
    assert [m.message["Message-ID"] for m in smtp_server.messages] == [
        first.provider_message_id,
        second.provider_message_id,
    ]


def test_non_ascii_text_survives(smtp_server):
    delivery = email_delivery(
        subject="Tagihan untuk Budi Śantoso — jatuh tempo",
        body="Yth. Budi Śantoso, tagihan Anda Rp 1.230.000 (±) jatuh tempo 09-09-2015.",
        html_body="<p>Yth. <b>Budi Śantoso</b>, tagihan Anda Rp 1.230.000 (±).</p>",
    )

    result = DjangoEmailBackend().send(delivery)

    assert result.outcome == SendOutcome.SENT
    message = smtp_server.messages[0].message
    assert message["Subject"] == "Tagihan untuk Budi Śantoso — jatuh tempo"
    text, html = message.iter_parts()
    assert text.get_content().rstrip("\n") == delivery.body
    assert html.get_content().rstrip("\n") == delivery.html_body
    # On the wire the headers are ASCII (RFC 2047), not raw UTF-8.
    headers = smtp_server.messages[0].raw.split(b"\r\n\r\n", 1)[0]
    assert "Śantoso".encode() not in headers


def test_an_email_without_html_body_is_a_single_text_part(smtp_server):
    result = DjangoEmailBackend().send(email_delivery(html_body=""))

    assert result.outcome == SendOutcome.SENT
    message = smtp_server.messages[0].message
    assert not message.is_multipart()
    assert message.get_content_type() == "text/plain"
    assert message.get_content().rstrip("\n") == TEXT


def test_it_sends_from_the_configured_from_email(smtp_server):
    backend = DjangoEmailBackend(from_email="Bank Demo <tagihan@bankdemo.co.id>")

    backend.send(email_delivery())

    received = smtp_server.messages[0]
    assert received.mail_from == "tagihan@bankdemo.co.id"
    assert received.message["From"] == "Bank Demo <tagihan@bankdemo.co.id>"


def test_a_refused_recipient_is_permanent_with_the_servers_reason(smtp_server):
    smtp_server.refuse("nobody@example.co.id")

    result = DjangoEmailBackend().send(email_delivery(recipient="nobody@example.co.id"))

    assert result.outcome == SendOutcome.PERMANENT
    assert "550" in result.error
    assert "User unknown" in result.error
    assert smtp_server.messages == []


def test_a_deferred_recipient_is_transient(smtp_server):
    # 451 on RCPT TO is "try again later", like a greylisting server answers.
    smtp_server.defer("busy@example.co.id")

    result = DjangoEmailBackend().send(email_delivery(recipient="busy@example.co.id"))

    assert result.outcome == SendOutcome.TRANSIENT, result
    assert "451" in result.error
    assert "try again later" in result.error
    assert smtp_server.messages == []


def test_a_server_that_is_down_is_transient(settings, closed_port):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = closed_port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5

    result = DjangoEmailBackend().send(email_delivery())

    assert result.outcome == SendOutcome.TRANSIENT
    assert "ConnectionRefusedError" in result.error


def test_the_console_backend_writes_the_recipient_and_body_to_its_stream(db):
    stream = io.StringIO()
    delivery = DeliveryFactory(recipient="+6281234567890", body="Dear Mr. John Doe, pay.")

    result = ConsoleBackend(stream=stream).send(delivery)

    assert result.outcome == SendOutcome.SENT
    assert result.provider_message_id == f"console-{delivery.pk}"
    output = stream.getvalue()
    assert "+6281234567890" in output
    assert "Dear Mr. John Doe, pay." in output


def test_the_console_backend_shows_an_emails_subject(db):
    stream = io.StringIO()
    delivery = email_delivery(subject="Payment reminder")

    ConsoleBackend(stream=stream).send(delivery)

    output = stream.getvalue()
    assert "john@example.co.id" in output
    assert "Payment reminder" in output
    assert TEXT in output


def test_a_resend_of_a_delivery_carries_the_same_message_id(smtp_server):
    # A worker that died after the server took the message sends it again: readers
    # and mail systems that deduplicate see the same message, not a second one.
    delivery = email_delivery()

    first = DjangoEmailBackend().send(delivery)
    again = DjangoEmailBackend().send(delivery)

    assert first.provider_message_id == again.provider_message_id
    assert first.provider_message_id == f"<kokatto-delivery-{delivery.pk}@kokatto.local>"
    assert [m.message["Message-ID"] for m in smtp_server.messages] == [
        first.provider_message_id
    ] * 2


def test_a_session_sends_every_message_over_one_connection(smtp_server):
    backend = DjangoEmailBackend()
    deliveries = [email_delivery(recipient=f"customer{n}@example.co.id") for n in range(5)]

    with backend.session():
        results = [backend.send(delivery) for delivery in deliveries]

    assert [result.outcome for result in results] == [SendOutcome.SENT] * 5
    assert len(smtp_server.messages) == 5
    assert smtp_server.connections == 1


def test_a_refused_recipient_does_not_end_the_sessions_connection(smtp_server):
    smtp_server.refuse("nobody@example.co.id")
    backend = DjangoEmailBackend()

    with backend.session():
        refused = backend.send(email_delivery(recipient="nobody@example.co.id"))
        sent = backend.send(email_delivery(recipient="john@example.co.id"))

    assert (refused.outcome, sent.outcome) == (SendOutcome.PERMANENT, SendOutcome.SENT)
    assert smtp_server.connections == 1


def test_a_server_that_trickles_its_answer_is_cut_at_the_send_timeout(settings):
    # One byte every 0.2 s: no single read ever waits EMAIL_TIMEOUT, the greeting never ends.
    server = TricklingServer(interval=0.2).start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = server.host, server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    settings.DELIVERY_SEND_TIMEOUT_SECONDS = 1
    try:
        result = DjangoEmailBackend().send(email_delivery())

        assert result.outcome == SendOutcome.TRANSIENT
        assert result.error == "Timeout: the send took longer than 1 s"
        assert server.hung_up.wait(5), "the backend never hung up on the trickling server"
    finally:
        server.stop()
