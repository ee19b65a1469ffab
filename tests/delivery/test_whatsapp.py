"""WhatsApp through the Cloud API (a local stand-in for Meta's Graph API) and its webhook."""

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from clients.models import ApplicationMedium
from notifications.backends.whatsapp import WhatsAppCloudBackend
from notifications.dispatch import delivery_render
from tests.delivery.slow_http import Answer, slow_http_server
from tests.factories import ContentTemplateFactory, DeliveryFactory, NotificationFactory

TOKEN = "graph-access-token"
APP_SECRET = "whatsapp-app-secret"


class GraphApi:
    """Answers POST /<phone id>/messages like the Cloud API; `answers` queue overrides."""

    def __init__(self):
        self.requests, self.answers = [], []
        self.delay = 0.0  # seconds before each answer
        graph = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                time.sleep(graph.delay)
                graph.requests.append((self.path, dict(self.headers), body))
                status, answer = (
                    graph.answers.pop(0)
                    if graph.answers
                    else (
                        200,
                        {
                            "messaging_product": "whatsapp",
                            "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                            "messages": [{"id": f"wamid.{len(graph.requests):04d}"}],
                        },
                    )
                )
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v21.0"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def graph():
    api = GraphApi()
    yield api
    api.server.shutdown()
    api.server.server_close()


@pytest.fixture
def backend(graph):
    return WhatsAppCloudBackend(
        phone_number_id="1098765", access_token=TOKEN, base_url=graph.url, timeout=(1, 1)
    )


@pytest.fixture
def whatsapp_delivery(app_8002):
    ApplicationMedium.objects.create(
        application=app_8002,
        medium="whatsapp",
        recipient_field=app_8002.fields.get(name="msisdn"),
    )
    ContentTemplateFactory(
        application=app_8002,
        medium="whatsapp",
        body="Yth. [customerName|title], tagihan Rp [balance|rupiah] jatuh tempo "
        "[dueDate|date:d MMMM yyyy].",
        provider_template_name="payment_reminder_v2",
    )
    notification = NotificationFactory(
        application=app_8002,
        params={"customerName": "budi santoso", "balance": "1230000", "dueDate": "09-09-2015"},
    )
    delivery = DeliveryFactory(
        notification=notification, medium="whatsapp", recipient="+6281234567890"
    )
    return delivery_render(delivery=delivery)


def test_it_sends_an_approved_template_with_its_values_in_order(backend, graph, whatsapp_delivery):
    result = backend.send(whatsapp_delivery)

    assert (result.outcome, result.provider_message_id) == ("sent", "wamid.0001")
    path, headers, body = graph.requests[0]
    assert path == "/v21.0/1098765/messages"
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert body == {
        "messaging_product": "whatsapp",
        "to": "6281234567890",
        "type": "template",
        "template": {
            "name": "payment_reminder_v2",
            "language": {"code": "id"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Budi Santoso"},
                        {"type": "text", "text": "1.230.000"},
                        {"type": "text", "text": "9 September 2015"},
                    ],
                }
            ],
        },
    }


def test_without_a_template_name_it_sends_the_rendered_text(backend, graph, whatsapp_delivery):
    version = whatsapp_delivery.template_version
    version.provider_template_name = ""

    backend.send(whatsapp_delivery)

    body = graph.requests[0][2]
    assert body["type"] == "text"
    assert body["text"]["body"].startswith("Yth. Budi Santoso, tagihan Rp 1.230.000")


@pytest.mark.parametrize(
    ("status", "error", "outcome"),
    [
        (400, {"message": "Template name does not exist", "code": 132001}, "permanent"),
        (429, {"message": "Rate limit hit", "code": 130429}, "transient"),
        (500, {"message": "Service temporarily unavailable", "code": 2}, "transient"),
    ],
)
def test_the_providers_errors_are_classified_and_kept(
    backend, graph, whatsapp_delivery, status, error, outcome
):
    graph.answers.append((status, {"error": {**error, "type": "OAuthException"}}))

    result = backend.send(whatsapp_delivery)

    assert result.outcome == outcome
    assert error["message"] in result.error
    assert f"code {error['code']}" in result.error


def signed(body: dict) -> tuple[bytes, str]:
    raw = json.dumps(body).encode()
    return raw, "sha256=" + hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()


def status_update(message_id: str, status: str) -> dict:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "changes": [
                    {"value": {"statuses": [{"id": message_id, "status": status}]}},
                ]
            }
        ],
    }


def test_the_webhook_records_a_signed_status_and_refuses_a_forged_one(
    client, settings, whatsapp_delivery
):
    settings.WHATSAPP_APP_SECRET = APP_SECRET
    whatsapp_delivery.__class__.objects.filter(pk=whatsapp_delivery.pk).update(
        status="SENT", provider="whatsapp-cloud", provider_message_id="wamid.7"
    )
    forged_body = json.dumps(status_update("wamid.7", "failed")).encode()
    raw, signature = signed(status_update("wamid.7", "read"))

    forged = client.post(
        "/callbacks/whatsapp/",
        forged_body,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256="sha256=" + "0" * 64,
    )
    accepted = client.post(
        "/callbacks/whatsapp/",
        raw,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=signature,
    )

    assert (forged.status_code, accepted.status_code) == (403, 200)
    whatsapp_delivery.refresh_from_db()
    assert whatsapp_delivery.status == "DELIVERED"


def test_the_webhook_answers_metas_subscription_handshake(client, settings):
    settings.WHATSAPP_VERIFY_TOKEN = "verify-me"
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444"}

    ok = client.get("/callbacks/whatsapp/", {**query, "hub.verify_token": "verify-me"})
    wrong = client.get("/callbacks/whatsapp/", {**query, "hub.verify_token": "guess"})

    assert (ok.status_code, ok.content) == (200, b"1158201444")
    assert wrong.status_code == 403


# A slow or greedy Graph API (tests/delivery/slow_http.py): the deadline and the answer's
# cap come from the settings.


def cloud_api_at(server) -> WhatsAppCloudBackend:
    return WhatsAppCloudBackend(phone_number_id="1098765", access_token=TOKEN, base_url=server.url)


def test_a_graph_api_that_trickles_its_answer_is_cut_off_at_the_deadline(
    whatsapp_delivery, short_deadline
):
    with slow_http_server(Answer(trickle="headers", trickle_bytes=60)) as server:
        result = cloud_api_at(server).send(whatsapp_delivery)
        [exchange] = server.wait_for_exchanges(1)

    assert (result.outcome, result.error) == ("transient", "Timeout: no answer within 1 s")
    assert exchange.hung_up


def test_a_huge_graph_api_error_is_not_read_whole(whatsapp_delivery, short_deadline):
    size = 64 * 1024 * 1024
    answer = Answer(status=502, body=b"<html>Bad gateway</html>", size=size, declare_length=False)
    with slow_http_server(answer) as server:
        result = cloud_api_at(server).send(whatsapp_delivery)
        [exchange] = server.wait_for_exchanges(1)

    assert exchange.hung_up
    assert exchange.bytes_sent < size // 4
    assert (result.outcome, result.error) == (
        "transient",
        "HTTP 502: answer over 4096 bytes, not read",
    )


def more_whatsapp_deliveries(delivery, count: int, **params) -> list:
    """`count` more deliveries of `delivery`'s application and template, rendered."""
    return [
        delivery_render(
            delivery=DeliveryFactory(
                notification=NotificationFactory(
                    application=delivery.notification.application,
                    params={**delivery.notification.params, **params},
                ),
                medium="whatsapp",
                recipient=f"+62812345678{n:02d}",
            )
        )
        for n in range(count)
    ]


def test_a_groups_messages_go_side_by_side(backend, graph, whatsapp_delivery, settings):
    # The Graph API takes 0.3 s a message: eight in turn would take 2.4 s.
    graph.delay = 0.3
    deliveries = [whatsapp_delivery, *more_whatsapp_deliveries(whatsapp_delivery, 7)]
    started = time.monotonic()

    results = backend.send_many(deliveries, may_send=lambda delivery: True, tick=lambda: 60)

    assert time.monotonic() - started < 1.2
    assert sorted(result.provider_message_id for result, _ in results) == [
        f"wamid.{n:04d}" for n in range(1, 9)
    ]


def test_values_the_template_refuses_fail_their_message_alone(backend, graph, whatsapp_delivery):
    [refused] = more_whatsapp_deliveries(whatsapp_delivery, 1)
    refused.notification.params["balance"] = "NaN"

    results = backend.send_many(
        [whatsapp_delivery, refused], may_send=lambda delivery: True, tick=lambda: 60
    )

    assert results[0][0].outcome == "sent"
    assert results[1][0].outcome == "permanent"
    assert results[1][0].error.startswith("RENDER_ERROR: ")
    assert len(graph.requests) == 1


def test_a_stored_template_refused_since_fails_its_own_message_not_the_groups(
    backend, graph, whatsapp_delivery, app_8003, settings
):
    # Client 8002's delivery was rendered before TEMPLATE_MAX_CHARACTERS came down below
    # its template's length; its retry fails alone, and client 8003's message in the same
    # group goes out, with no word of 8002's error.
    ApplicationMedium.objects.create(
        application=app_8003, medium="whatsapp", recipient_field=app_8003.fields.get(name="msisdn")
    )
    ContentTemplateFactory(
        application=app_8003,
        medium="whatsapp",
        body="Tagihan [balance|rupiah].",
        provider_template_name="short_reminder",
    )
    other = delivery_render(
        delivery=DeliveryFactory(
            notification=NotificationFactory(
                application=app_8003,
                params={"customerName": "Sari", "balance": "5000", "dueDate": "09-09-2015"},
            ),
            medium="whatsapp",
            recipient="+6281299999999",
        )
    )
    settings.TEMPLATE_MAX_CHARACTERS = 40

    results = backend.send_many(
        [whatsapp_delivery, other], may_send=lambda delivery: True, tick=lambda: 60
    )

    refused, sent = results[0][0], results[1][0]
    assert refused.outcome == "permanent"
    assert refused.error.startswith("RENDER_ERROR: TemplateTooLarge")
    assert (sent.outcome, sent.error) == ("sent", "")
    assert [body["to"] for _, _, body in graph.requests] == ["6281299999999"]


def test_an_error_that_is_no_object_is_still_the_graph_apis_refusal(
    backend, graph, whatsapp_delivery
):
    graph.answers.append((400, {"error": "bad request"}))

    result = backend.send(whatsapp_delivery)

    assert result.outcome == "permanent"
    assert result.error.startswith("HTTP 400: ")
