"""The platform tells the client: signed POSTs to its callback URL, retried until acknowledged."""

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import pytest
from cryptography.fernet import Fernet
from django.utils import timezone

from clients.models import SecretKey
from notifications.client_callbacks import client_callbacks_send_due
from notifications.dispatch import dispatch_due
from notifications.intake import notification_cancel
from notifications.models import ClientCallback, Notification
from tests.delivery.slow_http import Answer, slow_http_server
from tests.factories import (
    ApplicationFactory,
    ContentTemplateFactory,
    NotificationFactory,
    accept_notification,
    issue_key,
)

# The clients' servers here are loopback stand-ins, reached over plain http.
pytestmark = pytest.mark.usefixtures("callbacks_to_loopback")


class ClientSystem:
    """The client's own server on loopback: records callbacks, answers as told."""

    def __init__(self):
        self.received = []
        self.answer_status = 200
        system = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                system.received.append((dict(self.headers), body))
                self.send_response(system.answer_status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/kokatto-status"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def client_system():
    system = ClientSystem()
    yield system
    system.stop()


@pytest.fixture
def other_client_system():
    """A second client's server, for client 8003."""
    system = ClientSystem()
    yield system
    system.stop()


def subscribe(client, url: str) -> str:
    """Send the client's callbacks to `url`, signed with a key issued now; returns its secret."""
    client.callback_url = url
    client.save()
    _, secret = issue_key(client)
    return secret


@pytest.fixture
def subscribed(client_8002, app_8002, client_system):
    """Client 8002 wants callbacks at its ClientSystem and has an SMS template; its secret."""
    ContentTemplateFactory(application=app_8002, medium="sms", body="Bank Demo [customerName]")
    return subscribe(client_8002, client_system.url)


def expected_signature(secret: str, body: bytes, timestamp: str) -> str:
    """The client's side of the check, written from the README, not with our own code."""
    canonical = f"body={quote(body.decode(), safe='')}&timestamp={timestamp}"
    return hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()


def test_a_sent_notification_is_reported_to_the_client_signed(
    client_8002, subscribed, client_system
):
    accept_notification(client_8002)
    dispatch_due()

    assert client_callbacks_send_due().tried == 1

    headers, body = client_system.received[0]
    payload = json.loads(body)
    assert payload["requestId"] == "R-1"
    assert payload["status"] == "SENT"
    assert payload["deliveries"][0]["media"] == "sms"
    assert payload["deliveries"][0]["status"] == "SENT"
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Kokatto-Signature"] == expected_signature(
        subscribed, body, headers["X-Kokatto-Timestamp"]
    )
    callback = ClientCallback.objects.get()
    assert (callback.state, callback.attempts, callback.last_response) == ("DONE", 1, "HTTP 200")


def test_each_clients_callback_goes_to_its_own_url_signed_with_its_own_key(
    client_8002, subscribed, client_system, client_8003, app_8003, other_client_system
):
    ContentTemplateFactory(application=app_8003, medium="sms", body="Bank Demo [customerName]")
    secret_8003 = subscribe(client_8003, other_client_system.url)
    accept_notification(client_8002, "A-1")
    accept_notification(client_8003, "B-1", application_code="XYZ")
    dispatch_due()

    assert client_callbacks_send_due().tried == 2

    [(headers_8002, body_8002)] = client_system.received
    [(headers_8003, body_8003)] = other_client_system.received
    assert json.loads(body_8002)["requestId"] == "A-1"
    assert json.loads(body_8003)["requestId"] == "B-1"
    timestamp_8002, timestamp_8003 = (
        headers_8002["X-Kokatto-Timestamp"],
        headers_8003["X-Kokatto-Timestamp"],
    )
    assert headers_8002["X-Kokatto-Signature"] == expected_signature(
        subscribed, body_8002, timestamp_8002
    )
    assert headers_8002["X-Kokatto-Signature"] != expected_signature(
        secret_8003, body_8002, timestamp_8002
    )
    assert headers_8003["X-Kokatto-Signature"] == expected_signature(
        secret_8003, body_8003, timestamp_8003
    )
    assert headers_8003["X-Kokatto-Signature"] != expected_signature(
        subscribed, body_8003, timestamp_8003
    )


def test_a_cancelled_notification_is_reported_too(client_8002, subscribed, client_system):
    notification_cancel(notification=accept_notification(client_8002))

    client_callbacks_send_due()

    assert json.loads(client_system.received[0][1])["status"] == "CANCELLED"


def test_a_refused_callback_is_retried_later_then_given_up(
    client_8002, subscribed, client_system, settings
):
    settings.CLIENT_CALLBACK_MAX_ATTEMPTS = 2
    client_system.answer_status = 500
    accept_notification(client_8002)
    dispatch_due()

    client_callbacks_send_due()
    callback = ClientCallback.objects.get()
    assert (callback.state, callback.attempts, callback.last_response) == ("PENDING", 1, "HTTP 500")
    assert callback.next_attempt_at > timezone.now()
    assert client_callbacks_send_due().tried == 0  # not due yet

    ClientCallback.objects.update(next_attempt_at=timezone.now())
    client_callbacks_send_due()
    callback.refresh_from_db()
    assert (callback.state, callback.attempts) == ("FAILED", 2)
    assert len(client_system.received) == 2


def test_no_callback_url_means_no_callback(client_8002, app_8002):
    ContentTemplateFactory(application=app_8002, medium="sms", body="Bank Demo")
    accept_notification(client_8002)
    dispatch_due()

    assert Notification.objects.get().status == "SENT"
    assert not ClientCallback.objects.exists()


def test_the_notification_page_shows_the_callbacks(
    operator_client, client_8002, subscribed, client_system
):
    notification = accept_notification(client_8002)
    dispatch_due()
    client_callbacks_send_due()

    page = operator_client.get(f"/admin/notifications/notification/{notification.pk}/change/")

    assert "Callbacks to the client" in page.content.decode()
    assert "HTTP 200" in page.content.decode()


# Slow, greedy and broken client servers (tests/delivery/slow_http.py).


@pytest.fixture
def short_callback_deadline(settings):
    settings.CLIENT_CALLBACK_CONNECT_TIMEOUT_SECONDS = 1
    settings.CLIENT_CALLBACK_TIMEOUT_SECONDS = 1
    settings.CLIENT_CALLBACK_MAX_ANSWER_BYTES = 1024


def pending_callbacks(client, count: int, *, prefix: str = "R") -> list[ClientCallback]:
    """`count` callbacks of `client` due now, oldest first (each with its notification)."""
    application = ApplicationFactory(client=client)
    return [
        ClientCallback.objects.create(
            notification=NotificationFactory(
                application=application, reference=f"{prefix}-{number:03d}"
            ),
            url=client.callback_url,
            payload={"requestId": f"{prefix}-{number:03d}", "status": "SENT", "deliveries": []},
        )
        for number in range(count)
    ]


def test_a_callback_server_that_trickles_is_cut_off_at_the_deadline(
    client_8002, short_callback_deadline
):
    # One byte every 0.1 s: every read gets a byte long before a read timeout would fire.
    with slow_http_server(Answer(trickle="headers", trickle_bytes=60)) as server:
        subscribe(client_8002, server.url)
        pending_callbacks(client_8002, 1)

        client_callbacks_send_due()
        [exchange] = server.wait_for_exchanges(1)

    assert exchange.hung_up
    callback = ClientCallback.objects.get()
    assert (callback.state, callback.attempts) == ("PENDING", 1)
    assert callback.last_response == "Timeout: no answer within 1 s"


def test_a_huge_callback_answer_is_not_read_whole(client_8002, short_callback_deadline):
    size = 64 * 1024 * 1024
    with slow_http_server(Answer(body=b"ok", size=size, declare_length=False)) as server:
        subscribe(client_8002, server.url)
        pending_callbacks(client_8002, 1)

        client_callbacks_send_due()
        [exchange] = server.wait_for_exchanges(1)

    assert exchange.hung_up
    assert exchange.bytes_sent < size // 4
    # The client's 200 acknowledged the callback; only its answer's body was refused.
    callback = ClientCallback.objects.get()
    assert callback.state == "DONE"
    assert callback.last_response == "HTTP 200 (answer over 1024 bytes, not read)"


def test_a_slow_callback_server_does_not_delay_other_clients(client_8002, client_8003):
    # Client 8002's server answers nothing until client 8003's server has received both
    # its callbacks (or 20 s pass): 8003's callbacks must not wait behind 8002's,
    # whichever were queued first.
    b_received = threading.Event()
    with (
        slow_http_server(Answer(hold=b_received)) as slow,
        slow_http_server(Answer(signal=b_received, signal_after=2)) as prompt,
    ):
        subscribe(client_8002, slow.url)
        subscribe(client_8003, prompt.url)
        pending_callbacks(client_8003, 1, prefix="B-1")
        pending_callbacks(client_8002, 3, prefix="A")
        pending_callbacks(client_8003, 1, prefix="B-2")

        client_callbacks_send_due()
        slow_exchanges = slow.wait_for_exchanges(3)

    assert [exchange.held_until_signalled for exchange in slow_exchanges] == [True] * 3
    assert len(prompt.exchanges) == 2
    assert set(ClientCallback.objects.values_list("state", flat=True)) == {"DONE"}


def test_one_client_with_many_callbacks_does_not_starve_another(client_8002, client_8003, settings):
    settings.CLIENT_CALLBACK_SEND_CONCURRENCY = 2
    with slow_http_server() as busy, slow_http_server() as other:
        subscribe(client_8002, busy.url)
        subscribe(client_8003, other.url)
        pending_callbacks(client_8002, 60, prefix="A")  # all due before 8003's
        pending_callbacks(client_8003, 1, prefix="B")

        client_callbacks_send_due()

    assert len(busy.exchanges) == 60
    [b] = other.exchanges
    # 8002 gets no more than its share of the senders, so 8003's one callback goes
    # out among the first, not after 8002's sixty.
    assert b.received_at < sorted(a.received_at for a in busy.exchanges)[10]
    assert set(ClientCallback.objects.values_list("state", flat=True)) == {"DONE"}


def test_a_callback_that_cannot_be_signed_fails_alone(client_8002, client_8003, caplog):
    # A key stored under a FIELD_ENCRYPTION_KEY that has since been removed cannot be
    # opened: that callback fails, the sweep goes on with the others.
    with slow_http_server() as first, slow_http_server() as second:
        subscribe(client_8002, first.url)
        subscribe(client_8003, second.url)
        SecretKey.objects.filter(client=client_8002).update(
            secret_encrypted=Fernet(Fernet.generate_key()).encrypt(b"old").decode()
        )
        pending_callbacks(client_8002, 1, prefix="A")
        pending_callbacks(client_8003, 1, prefix="B")

        assert client_callbacks_send_due().tried == 2

    assert first.exchanges == []
    assert len(second.exchanges) == 1
    states = dict(ClientCallback.objects.values_list("notification__client__client_id", "state"))
    assert states == {"8002": "PENDING", "8003": "DONE"}
    failed = ClientCallback.objects.get(notification__client=client_8002)
    assert failed.attempts == 1
    assert failed.last_response == "InvalidToken: the client's secret key cannot be read"
    assert "Callback" in caplog.text and "8002" in caplog.text


@pytest.mark.parametrize(
    ("url", "answer"),
    [
        ("http://exa mple.com/", "Invalid URL: Failed to parse"),
        ("http://127.0.0.1:{closed_port}/", "Connection refused: "),
    ],
)
def test_a_callback_url_that_cannot_be_reached_fails_alone(
    client_8002, client_8003, closed_port, url, answer
):
    with slow_http_server() as second:
        subscribe(client_8002, url.format(closed_port=closed_port))
        subscribe(client_8003, second.url)
        pending_callbacks(client_8002, 1, prefix="A")
        pending_callbacks(client_8003, 1, prefix="B")

        assert client_callbacks_send_due().tried == 2

    assert len(second.exchanges) == 1
    failed = ClientCallback.objects.get(notification__client=client_8002)
    assert (failed.state, failed.attempts) == ("PENDING", 1)
    assert failed.last_response.startswith(answer)
    assert ClientCallback.objects.get(notification__client=client_8003).state == "DONE"
