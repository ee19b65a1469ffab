"""create, status and cancel in detail: validation, tenant isolation, cancellation, faults."""

import json
from urllib.parse import urlencode

import pytest
from django.db import connection

from notifications.models import Delivery, DeliveryEvent, Notification
from tests.api.conftest import demo_fields


def test_a_parameter_given_twice_is_an_error_not_a_guess(api):
    query = api.signed(operation="create", **demo_fields())
    url = "/notif?" + "&".join(f"{k}={v}" for k, v in query.items()) + "&balance=1"

    answer = api.http.get(url)

    assert answer.status_code == 400
    assert answer.json()["errors"] == {"balance": ["Given more than once."]}
    assert not Notification.objects.exists()


def test_a_parameter_in_both_query_string_and_body_is_given_twice(api):
    parameters = api.signed(operation="create", **demo_fields())

    response = api.http.post(
        "/notif?balance=1230000",
        urlencode(parameters),
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 400
    assert "balance" in response.json()["errors"]


def test_json_bodies_take_strings_and_whole_numbers_only(api):
    parameters = api.signed(operation="create", **demo_fields())
    as_number = {**parameters, "balance": 1230000}
    as_float = {**parameters, "balance": 1230000.5}

    ok = api.http.post("/notif", json.dumps(as_number), content_type="application/json")
    bad = api.http.post("/notif", json.dumps(as_float), content_type="application/json")
    not_an_object = api.http.post("/notif", "[1, 2]", content_type="application/json")
    broken = api.http.post("/notif", "{", content_type="application/json")

    assert ok.status_code == 201
    assert (bad.status_code, bad.json()["errors"]) == (
        400,
        {"balance": ["Must be a string or a whole number."]},
    )
    assert not_an_object.status_code == broken.status_code == 400
    assert broken.json()["code"] == "VALIDATION_ERROR"


def test_missing_platform_parameters_are_named(api):
    answer = api.call(api.signed(operation="create", clientNotifRefId="R"))
    assert answer.body["errors"] == {"appType": ["Required for create."]}

    answer = api.call(api.signed(clientNotifRefId="R"))
    assert "operation" in answer.body["errors"]

    answer = api.create(**demo_fields(reference="x" * 101))
    assert "clientNotifRefId" in answer.body["errors"]


def test_unknown_fields_are_refused_rather_than_dropped(api):
    answer = api.create(**demo_fields(customerNmae="Typo"))

    assert answer.status_code == 400
    assert "customerNmae" in answer.body["errors"]


def test_a_notification_needs_at_least_one_recipient(api):
    fields = demo_fields()
    del fields["msisdn"]

    answer = api.create(**fields)

    assert answer.status_code == 400
    assert "recipient" in answer.body["errors"]


def test_create_makes_one_pending_delivery_a_medium_and_no_status_change_yet(api):
    api.create(**demo_fields(email="john@example.co.id"))

    deliveries = Delivery.objects.order_by("medium")
    assert [(d.medium, d.status) for d in deliveries] == [("email", "PENDING"), ("sms", "PENDING")]
    # Acceptance is the notification's own record (its timeline shows it); events are changes.
    assert not DeliveryEvent.objects.exists()


def test_another_client_cannot_read_or_cancel_my_notification(api, api_8003):
    api.create(**demo_fields())

    status = api_8003.call(
        api_8003.signed(operation="status", clientNotifRefId="UNIQ-REFERENCE-ID")
    )
    cancel = api_8003.call(
        api_8003.signed(operation="cancel", clientNotifRefId="UNIQ-REFERENCE-ID")
    )

    assert (status.status_code, status.code) == (404, "NOT_FOUND")
    assert (cancel.status_code, cancel.code) == (404, "NOT_FOUND")
    assert Notification.objects.get().status == "ACCEPTED"


def test_two_clients_may_use_the_same_reference(api, api_8003):
    mine = api.create(**demo_fields())
    theirs = api_8003.create(**demo_fields(appType="XYZ"))

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert Notification.objects.filter(reference="UNIQ-REFERENCE-ID").count() == 2


def test_cancel_stops_every_pending_delivery_and_is_idempotent(api):
    api.create(**demo_fields(email="john@example.co.id"))
    cancel = api.signed(operation="cancel", clientNotifRefId="UNIQ-REFERENCE-ID")

    first, again = api.call(cancel), api.call(cancel)

    assert (first.status_code, again.status_code) == (200, 200)
    assert first.body["status"] == again.body["status"] == "CANCELLED"
    assert {d["status"] for d in first.body["deliveries"]} == {"CANCELLED"}
    assert set(Delivery.objects.values_list("status", flat=True)) == {"CANCELLED"}
    assert DeliveryEvent.objects.filter(new_status="CANCELLED").count() == 2


def test_cancel_while_a_delivery_is_being_sent_is_refused(api):
    api.create(**demo_fields(email="john@example.co.id"))
    Delivery.objects.filter(medium="sms").update(status="SENDING")

    answer = api.call(api.signed(operation="cancel", clientNotifRefId="UNIQ-REFERENCE-ID"))

    assert answer.code == "NOT_CANCELLABLE"
    assert Delivery.objects.get(medium="email").status == "PENDING"


def test_format_parameter_wins_over_the_accept_header(api):
    parameters = api.signed(operation="status", clientNotifRefId="R", format="json")

    response = api.http.get("/notif", parameters, HTTP_ACCEPT="application/xml")

    assert response["Content-Type"].startswith("application/json")
    assert api.call(api.signed(operation="status", clientNotifRefId="R", format="yaml")).code == (
        "VALIDATION_ERROR"
    )


def test_xml_errors_carry_field_names_as_data(api):
    answer = api.create(fmt="xml", **demo_fields(**{"bad<name>": "1"}))

    assert answer.status_code == 400
    assert "bad<name>" in answer.body["errors"]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_an_unexpected_fault_is_answered_with_a_request_id_and_nothing_internal(api, caplog, fmt):
    # A real fault inside the platform (undone with the test's transaction): the
    # deliveries table is gone, and the database's error names it and quotes the SQL.
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE notifications_delivery RENAME TO notifications_gone")

    answer = api.create(fmt=fmt, **demo_fields())

    assert answer.status_code == 503
    assert answer.code == "SERVICE_UNAVAILABLE"
    request_id = answer.response["X-Request-ID"]
    assert request_id in answer.body["message"]
    assert answer.response["Retry-After"]
    content = answer.response.content.decode()
    for internal in (
        "notifications_delivery",
        "INSERT",
        "Traceback",
        "Error",
        ".py",
        "site-packages",
    ):
        assert internal not in content
    # The operators' log has the request id with the traceback and the database's words.
    assert request_id in caplog.text
    assert "notifications_delivery" in caplog.text
    assert "Traceback" in caplog.text


def test_a_wrong_method_gets_a_json_405(api):
    response = api.http.put("/notif")

    assert response.status_code == 405
    assert response.json()["code"] == "METHOD_NOT_ALLOWED"


def test_the_endpoint_answers_with_a_trailing_slash_too(api):
    response = api.http.get("/notif/", api.signed(operation="status", clientNotifRefId="R"))

    assert response.json()["code"] == "NOT_FOUND"


def test_send_at_and_expires_at_travel_through_the_api(api):
    answer = api.create(
        **demo_fields(sendAt="2099-01-02T09:00:00+07:00", expiresAt="2099-01-02T17:00:00+07:00")
    )
    bad = api.create(**demo_fields(reference="R-2", expiresAt="yesterday"))

    assert answer.status_code == 201
    notification = Notification.objects.get(reference="UNIQ-REFERENCE-ID")
    assert notification.send_at.isoformat() == "2099-01-02T02:00:00+00:00"
    assert notification.expires_at.isoformat() == "2099-01-02T10:00:00+00:00"
    assert "sendAt" not in notification.params
    assert (bad.status_code, list(bad.body["errors"])) == (400, ["expiresAt"])
