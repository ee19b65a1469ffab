"""The platform tells the client: signed POSTs to its callback URL, retried until acknowledged."""

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import pytest
from django.utils import timezone

from notifications.client_callbacks import client_callbacks_send_due
from notifications.dispatch import dispatch_due
from notifications.intake import notification_cancel, notification_create
from notifications.models import ClientCallback, Notification
from tests.factories import ContentTemplateFactory, issue_key

FIELDS = {
    "customerName": "Budi Śantoso",
    "balance": "1230000",
    "dueDate": "09-09-2015",
    "msisdn": "081234567890",
}


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
def subscribed(client_8002, app_8002, client_system):
    client_8002.callback_url = client_system.url
    client_8002.save()
    ContentTemplateFactory(application=app_8002, medium="sms", body="Bank Demo [customerName]")
    _, secret = issue_key(client_8002)
    return secret


def accept(client):
    return notification_create(
        client=client, application_code="ABC", reference="R-1", values=FIELDS
    ).notification


def expected_signature(secret: str, body: bytes, timestamp: str) -> str:
    """The client's side of the check, written from the README, not with our own code."""
    canonical = f"body={quote(body.decode(), safe='')}&timestamp={timestamp}"
    return hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()


def test_a_sent_notification_is_reported_to_the_client_signed(
    client_8002, subscribed, client_system
):
    accept(client_8002)
    dispatch_due()

    assert client_callbacks_send_due() == 1

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


def test_a_cancelled_notification_is_reported_too(client_8002, subscribed, client_system):
    notification_cancel(notification=accept(client_8002))

    client_callbacks_send_due()

    assert json.loads(client_system.received[0][1])["status"] == "CANCELLED"


def test_a_refused_callback_is_retried_later_then_given_up(
    client_8002, subscribed, client_system, settings
):
    settings.CLIENT_CALLBACK_MAX_ATTEMPTS = 2
    client_system.answer_status = 500
    accept(client_8002)
    dispatch_due()

    client_callbacks_send_due()
    callback = ClientCallback.objects.get()
    assert (callback.state, callback.attempts, callback.last_response) == ("PENDING", 1, "HTTP 500")
    assert callback.next_attempt_at > timezone.now()
    assert client_callbacks_send_due() == 0  # not due yet

    ClientCallback.objects.update(next_attempt_at=timezone.now())
    client_callbacks_send_due()
    callback.refresh_from_db()
    assert (callback.state, callback.attempts) == ("FAILED", 2)
    assert len(client_system.received) == 2


def test_no_callback_url_means_no_callback(client_8002, app_8002):
    ContentTemplateFactory(application=app_8002, medium="sms", body="Bank Demo")
    accept(client_8002)
    dispatch_due()

    assert Notification.objects.get().status == "SENT"
    assert not ClientCallback.objects.exists()


def test_the_notification_page_shows_the_callbacks(
    client, operator_user, client_8002, subscribed, client_system
):
    notification = accept(client_8002)
    dispatch_due()
    client_callbacks_send_due()
    client.force_login(operator_user)

    page = client.get(f"/admin/notifications/notification/{notification.pk}/change/")

    assert "Callbacks to the client" in page.content.decode()
    assert "HTTP 200" in page.content.decode()
