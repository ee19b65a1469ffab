"""Every row of the API contract's table, over GET, form POST and JSON POST, in JSON and XML."""

import time

from clients.models import Client
from notifications.models import Delivery, Notification
from tests.api.conftest import demo_fields


def test_create_answers_201_ok_with_one_delivery_per_medium(api, transport):
    answer = api.create(**transport, **demo_fields(email="john@example.co.id"))

    assert answer.status_code == 201
    assert answer.body["requestId"] == "UNIQ-REFERENCE-ID"
    assert answer.body["status"] == "ACCEPTED"
    assert answer.code == "OK"
    assert sorted(d["media"] for d in answer.body["deliveries"]) == ["email", "sms"]
    assert {d["status"] for d in answer.body["deliveries"]} == {"PENDING"}
    notification = Notification.objects.get(reference="UNIQ-REFERENCE-ID")
    assert sorted(notification.deliveries.values_list("medium", "recipient")) == [
        ("email", "john@example.co.id"),
        ("sms", "+6281234567890"),
    ]


def test_a_retry_with_identical_parameters_answers_200_and_creates_nothing(api, transport):
    first = api.create(**transport, **demo_fields())
    retry = api.create(**transport, **demo_fields())

    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.code == "OK"
    assert retry.body["status"] == "ACCEPTED"
    assert Notification.objects.count() == 1
    assert Delivery.objects.count() == 1


def test_the_same_reference_with_other_parameters_answers_409(api, transport):
    api.create(**transport, **demo_fields())
    answer = api.create(**transport, **demo_fields(balance="999"))

    assert answer.status_code == 409
    assert answer.code == "DUPLICATE_REFERENCE"
    assert answer.body["status"] == "REJECTED"
    assert answer.body["requestId"] == "UNIQ-REFERENCE-ID"
    assert Notification.objects.get().params["balance"] == "1230000"


def test_invalid_fields_answer_400_with_every_problem(api, transport):
    answer = api.create(**transport, **demo_fields(balance="12,5", dueDate="2015-09-09"))

    assert answer.status_code == 400
    assert answer.code == "VALIDATION_ERROR"
    assert answer.body["status"] == "REJECTED"
    assert set(answer.body["errors"]) == {"balance", "dueDate"}
    assert not Notification.objects.exists()


def test_an_unknown_operation_answers_400(api, transport):
    answer = api.call(api.signed(operation="delete", clientNotifRefId="R"), **transport)

    assert answer.status_code == 400
    assert answer.code == "UNSUPPORTED_OPERATION"


def test_an_unknown_app_type_answers_400(api, transport):
    answer = api.create(**transport, **demo_fields(appType="NOPE"))

    assert answer.status_code == 400
    assert answer.code == "UNKNOWN_APP_TYPE"


def test_a_bad_signature_answers_401(api, transport):
    parameters = api.signed(operation="create", **demo_fields())
    parameters["balance"] = "1"  # tampered after signing

    answer = api.call(parameters, **transport)

    assert answer.status_code == 401
    assert answer.code == "INVALID_SIGNATURE"
    assert answer.response["WWW-Authenticate"].startswith("HMAC-SHA256")
    assert not Notification.objects.exists()


def test_an_unknown_client_answers_exactly_like_a_bad_signature(api, transport):
    unknown = api.signed(operation="status", clientNotifRefId="R")
    unknown["clientId"] = "9999"
    wrong_signature = api.signed(operation="status", clientNotifRefId="R")
    wrong_signature["signature"] = "0" * 64

    first, second = api.call(unknown, **transport), api.call(wrong_signature, **transport)

    assert first.status_code == second.status_code == 401
    assert first.body == second.body


def test_a_timestamp_outside_the_window_answers_401(api, transport):
    stale = str(int(time.time()) - 301)

    answer = api.call(api.signed(operation="create", timestamp=stale, **demo_fields()), **transport)

    assert answer.status_code == 401
    assert answer.code == "EXPIRED_TIMESTAMP"


def test_an_inactive_client_answers_403(api, transport):
    Client.objects.filter(client_id="8002").update(is_active=False)

    answer = api.create(**transport, **demo_fields())

    assert answer.status_code == 403
    assert answer.code == "CLIENT_INACTIVE"


def test_an_inactive_application_answers_403(api, app_8002, transport):
    app_8002.is_active = False
    app_8002.save()

    answer = api.create(**transport, **demo_fields())

    assert answer.status_code == 403
    assert answer.code == "CLIENT_INACTIVE"


def test_status_of_an_unknown_reference_answers_404(api, transport):
    answer = api.call(api.signed(operation="status", clientNotifRefId="NOPE"), **transport)

    assert answer.status_code == 404
    assert answer.code == "NOT_FOUND"
    assert answer.body["requestId"] == "NOPE"


def test_cancel_after_something_was_sent_answers_409(api, transport):
    api.create(**transport, **demo_fields())
    Delivery.objects.update(status="SENT")

    answer = api.call(
        api.signed(operation="cancel", clientNotifRefId="UNIQ-REFERENCE-ID"), **transport
    )

    assert answer.status_code == 409
    assert answer.code == "NOT_CANCELLABLE"


def test_over_the_clients_rate_answers_429_with_retry_after(api, transport):
    Client.objects.filter(client_id="8002").update(api_rate_per_minute=1)
    status = api.signed(operation="status", clientNotifRefId="NOPE")

    first, second = api.call(status, **transport), api.call(status, **transport)

    assert first.status_code == 404
    assert second.status_code == 429
    assert second.code == "RATE_LIMITED"
    assert 1 <= int(second.response["Retry-After"]) <= 60


def test_status_answers_200_with_the_deliveries(api, transport):
    api.create(**transport, **demo_fields())

    answer = api.call(
        api.signed(operation="status", clientNotifRefId="UNIQ-REFERENCE-ID"), **transport
    )

    assert answer.status_code == 200
    assert answer.code == "OK"
    assert answer.body["status"] == "ACCEPTED"
    assert [d["media"] for d in answer.body["deliveries"]] == ["sms"]
    assert answer.body["deliveries"][0]["updatedAt"]
