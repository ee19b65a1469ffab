"""Delivery receipts from providers: authenticated, and harmless when unknown or replayed."""

from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from notifications.backends.http_sms import twilio_signature
from notifications.dispatch import dispatch_due
from notifications.models import Delivery, DeliveryEvent, EarlyReceipt
from notifications.tasks import dispatch_deliveries
from tests.factories import (
    ApplicationFactory,
    ClientFactory,
    ContentTemplateFactory,
    DeliveryFactory,
    NotificationFactory,
)

CALLBACK_URL = "https://notif.example.co.id/callbacks/twilio/"
AUTH_TOKEN = "twilio-auth-token-for-tests"
SID = "SM" + "a1" * 16
GATEWAY_TOKEN = "a-gateway-receipt-token"


@pytest.fixture
def twilio(settings):
    settings.TWILIO_STATUS_CALLBACK_URL = CALLBACK_URL
    settings.KOKATTO_CHANNEL_BACKENDS = {
        "sms": [
            {
                "BACKEND": "notifications.backends.http_sms.TwilioSmsBackend",
                "OPTIONS": {"account_sid": "AC1", "auth_token": AUTH_TOKEN, "sender_id": "BANK"},
            }
        ]
    }


def sent_sms_of(application, *, provider: str, provider_message_id: str) -> Delivery:
    """A SENT SMS of the application, with the id its provider gave it."""
    notification = NotificationFactory(application=application, status="SENT")
    return DeliveryFactory(
        notification=notification,
        status="SENT",
        provider=provider,
        provider_message_id=provider_message_id,
    )


@pytest.fixture
def sent_sms(app_8002):
    return sent_sms_of(app_8002, provider="twilio", provider_message_id=SID)


@pytest.fixture
def gateway(settings):
    settings.SMS_GATEWAY_CALLBACK_TOKEN = GATEWAY_TOKEN


def post_gateway_receipt(client, message_id: str, status: str = "delivered"):
    """POST a generic gateway's JSON receipt to the URL holding its token."""
    return client.post(
        f"/callbacks/http/{GATEWAY_TOKEN}/",
        {"id": message_id, "status": status},
        content_type="application/json",
    )


def post_receipt(client, status, sid=SID, signature=None, **extra):
    form = {"MessageSid": sid, "MessageStatus": status, "AccountSid": "AC1", **extra}
    signature = signature or twilio_signature(CALLBACK_URL, form, AUTH_TOKEN)
    return client.post("/callbacks/twilio/", form, HTTP_X_TWILIO_SIGNATURE=signature)


def test_a_signed_delivered_receipt_marks_the_delivery_delivered(client, twilio, sent_sms):
    response = post_receipt(client, "delivered")

    assert response.status_code == 204
    sent_sms.refresh_from_db()
    assert sent_sms.status == "DELIVERED"
    assert sent_sms.delivered_at is not None
    assert sent_sms.notification.__class__.objects.get().status == "DELIVERED"
    assert sent_sms.events.filter(new_status="DELIVERED", detail__contains="twilio").exists()


def test_an_undelivered_receipt_keeps_the_providers_error(client, twilio, sent_sms):
    post_receipt(client, "undelivered", ErrorCode="30003")

    sent_sms.refresh_from_db()
    assert sent_sms.status == "UNDELIVERED"
    assert sent_sms.events.get(new_status="UNDELIVERED").detail.endswith("(error 30003)")
    assert sent_sms.notification.__class__.objects.get().status == "FAILED"


def test_a_replayed_receipt_changes_nothing(client, twilio, sent_sms):
    post_receipt(client, "delivered")
    events = DeliveryEvent.objects.count()

    again = post_receipt(client, "undelivered")

    assert again.status_code == 204
    assert Delivery.objects.get().status == "DELIVERED"
    assert DeliveryEvent.objects.count() == events


@pytest.mark.parametrize(
    "similar_id",
    [SID.upper(), SID[:-1], SID + "0", " " + SID],
    ids=["other-case", "prefix", "longer", "leading-space"],
)
def test_a_receipt_for_one_clients_sms_leaves_another_clients_similar_id_alone(
    client, twilio, sent_sms, app_8003, similar_id
):
    other = sent_sms_of(app_8003, provider="twilio", provider_message_id=similar_id)

    post_receipt(client, "undelivered", ErrorCode="30003")

    sent_sms.refresh_from_db()
    other.refresh_from_db()
    assert sent_sms.status == "UNDELIVERED"
    assert other.status == "SENT"
    assert not other.events.exists()
    assert other.notification.__class__.objects.get(pk=other.notification_id).status == "SENT"


def test_a_gateway_receipt_leaves_another_providers_delivery_with_the_same_id_alone(
    client, gateway, app_8002, app_8003
):
    # Two providers number their messages alike: the id alone does not name the delivery.
    gateway_sms = sent_sms_of(app_8002, provider="http-sms", provider_message_id="1001")
    twilio_sms = sent_sms_of(app_8003, provider="twilio", provider_message_id="1001")

    response = post_gateway_receipt(client, "1001")

    assert response.json() == {"result": "recorded"}
    gateway_sms.refresh_from_db()
    twilio_sms.refresh_from_db()
    assert gateway_sms.status == "DELIVERED"
    assert twilio_sms.status == "SENT"
    assert not twilio_sms.events.exists()


def test_a_receipt_with_a_bad_signature_is_refused(client, twilio, sent_sms):
    forged = twilio_signature(CALLBACK_URL, {"MessageSid": SID}, "a-guessed-token")

    response = post_receipt(client, "delivered", signature=forged)

    assert response.status_code == 403
    assert Delivery.objects.get().status == "SENT"


def test_an_unknown_message_id_or_intermediate_status_is_acknowledged(client, twilio, sent_sms):
    assert post_receipt(client, "delivered", sid="SM-unknown").status_code == 204
    assert post_receipt(client, "sent").status_code == 204
    assert Delivery.objects.get().status == "SENT"


def test_a_gateway_receipt_needs_the_secret_token(client, settings, app_8002):
    settings.SMS_GATEWAY_CALLBACK_TOKEN = "a-long-random-callback-token"
    delivery = DeliveryFactory(
        notification=NotificationFactory(application=app_8002),
        status="SENT",
        provider="http-sms",
        provider_message_id="gw-1",
    )

    refused = client.post("/callbacks/http/wrong-token/", {"id": "gw-1", "status": "delivered"})
    accepted = client.post(
        "/callbacks/http/a-long-random-callback-token/",
        '{"id": "gw-1", "status": "DELIVERED"}',
        content_type="application/json",
    )

    assert refused.status_code == 403
    assert accepted.json() == {"result": "recorded"}
    delivery.refresh_from_db()
    assert delivery.status == "DELIVERED"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_receipt_posted_before_the_send_is_answered_is_applied_once_the_send_is_recorded(
    live_server, sms_sink, settings
):
    # The gateway reports the message delivered before it answers the send: at that
    # moment no delivery holds its id.
    settings.SMS_GATEWAY_CALLBACK_TOKEN = GATEWAY_TOKEN
    settings.DELIVERY_SEND_CONCURRENCY = 1
    settings.KOKATTO_CHANNEL_BACKENDS = {"sms": [sms_sink.generic_backend(timeout=(1, 5))]}
    answers = []

    def post_receipt_first(answer):
        receipt = {"id": answer["message_id"], "status": "delivered"}
        reply = requests.post(
            f"{live_server.url}/callbacks/http/{GATEWAY_TOKEN}/", json=receipt, timeout=5
        )
        answers.append(reply.json())

    sms_sink.before_answer = post_receipt_first
    application = ApplicationFactory(client=ClientFactory(client_id="8002"))
    ContentTemplateFactory(application=application, medium="sms", body="Bank Demo [customerName]")
    delivery = DeliveryFactory(notification=NotificationFactory(application=application))

    assert dispatch_due() == 1

    assert answers == [{"result": "early"}]
    delivery.refresh_from_db()
    assert delivery.status == "DELIVERED"
    assert delivery.provider_message_id == sms_sink.messages[0].sid.replace("SM", "gw-", 1)
    assert list(delivery.events.values_list("new_status", "detail").order_by("id"))[-2:] == [
        (
            "SENT",
            f"sent by http-sms as {delivery.provider_message_id}; rendered with template version 1",
        ),
        ("DELIVERED", "receipt from the gateway: delivered"),
    ]
    assert delivery.notification.__class__.objects.get().status == "DELIVERED"
    assert not EarlyReceipt.objects.exists()


def test_an_early_receipt_is_kept_until_its_id_is_recorded(client, twilio, app_8002):
    response = post_receipt(client, "delivered", sid="SM-not-recorded-yet")

    assert response.status_code == 204
    assert EarlyReceipt.objects.get().provider_message_id == "SM-not-recorded-yet"


def test_early_receipts_are_dropped_after_the_wait(client, twilio, settings, app_8002):
    settings.RECEIPT_WAIT_HOURS = 24
    post_receipt(client, "delivered", sid="SM-never-recorded")
    EarlyReceipt.objects.update(received_at=timezone.now() - timedelta(hours=25))

    post_receipt(client, "delivered", sid="SM-another")

    assert list(EarlyReceipt.objects.values_list("provider_message_id", flat=True)) == [
        "SM-another"
    ]


def test_a_provider_id_longer_than_any_we_store_is_answered_unknown(client, gateway, app_8002):
    response = post_gateway_receipt(client, "x" * 500)

    assert response.status_code == 200
    assert response.json() == {"result": "unknown"}
    assert not EarlyReceipt.objects.exists()


def test_the_dispatch_sweep_applies_an_early_receipt_a_dead_worker_left(app_8002):
    # The worker recorded the send, then died before applying the receipt kept for it.
    EarlyReceipt.objects.create(
        provider="twilio", provider_message_id=SID, delivered=True, detail="receipt from twilio"
    )
    delivery = sent_sms_of(app_8002, provider="twilio", provider_message_id=SID)

    dispatch_deliveries()

    delivery.refresh_from_db()
    assert delivery.status == "DELIVERED"
    assert not EarlyReceipt.objects.exists()


def test_a_gateway_with_its_own_name_gets_its_receipts_applied(client, gateway, settings, app_8002):
    settings.KOKATTO_CHANNEL_BACKENDS = {
        "sms": [
            {
                "BACKEND": "notifications.backends.http_sms.HttpSmsBackend",
                "OPTIONS": {"url": "https://sms.example.co.id/send", "name": "gateway-b"},
            }
        ]
    }
    delivery = sent_sms_of(app_8002, provider="gateway-b", provider_message_id="B-1")

    response = post_gateway_receipt(client, "B-1")

    assert response.json() == {"result": "recorded"}
    delivery.refresh_from_db()
    assert delivery.status == "DELIVERED"
