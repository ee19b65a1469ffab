"""What one anonymous request can make a worker hold is bounded, before the signature is checked."""

import json
import secrets
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clients.config_cache import cached
from notifications.models import Notification
from tests.api.conftest import demo_fields


def stranger(**parameters) -> dict:
    """Parameters of a request from nobody: an unknown clientId, a made-up signature."""
    return {
        "clientId": secrets.token_hex(8),
        "operation": "create",
        "timestamp": "1764000000",
        "signature": "0" * 64,
        **demo_fields(),
        **parameters,
    }


def test_a_json_body_over_the_limit_is_refused_with_413_before_it_is_read(api, settings):
    settings.API_MAX_BODY_BYTES = 65536
    body = json.dumps(stranger(customerName="x" * settings.API_MAX_BODY_BYTES))

    response = api.http.post("/notif", body, content_type="application/json")

    assert response.status_code == 413
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"
    assert str(settings.API_MAX_BODY_BYTES) in response.json()["message"]


def test_a_form_body_over_the_limit_is_refused_with_413(api, settings):
    settings.API_MAX_BODY_BYTES = 65536
    body = urlencode(stranger(customerName="x" * settings.API_MAX_BODY_BYTES))

    response = api.http.post(
        "/notif", body, content_type="application/x-www-form-urlencoded", HTTP_ACCEPT="text/xml"
    )

    assert response.status_code == 413
    assert b"<code>PAYLOAD_TOO_LARGE</code>" in response.content


def test_a_query_string_over_the_limit_is_refused_with_413(api, settings):
    settings.API_MAX_BODY_BYTES = 65536
    response = api.http.get("/notif", stranger(customerName="x" * settings.API_MAX_BODY_BYTES))

    assert response.status_code == 413
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"


@pytest.mark.parametrize("via", ["get", "form", "json"])
def test_a_value_over_the_parameter_limit_is_a_validation_error_before_the_signature(
    api, settings, via
):
    settings.API_MAX_PARAMETER_CHARS = 1000
    parameters = stranger(customerName="x" * 1001)

    answer = api.call(parameters, via=via)

    assert answer.status_code == 400
    assert answer.code == "VALIDATION_ERROR"
    assert answer.body["errors"] == {"customerName": ["At most 1000 characters (got 1001)."]}


def test_a_name_over_the_parameter_limit_is_a_validation_error(api, settings):
    settings.API_MAX_PARAMETER_CHARS = 1000
    name = "n" * 1001

    answer = api.call(stranger(**{name: "1"}), via="form")

    assert answer.status_code == 400
    assert answer.code == "VALIDATION_ERROR"
    assert list(answer.body["errors"]) == [name[:40] + "…"]


def test_a_signed_create_within_the_limits_is_still_accepted(api, settings):
    settings.API_MAX_PARAMETER_CHARS = 100
    answer = api.create(via="json", **demo_fields(customerName="x" * 100))

    assert answer.status_code == 201
    assert Notification.objects.get().params["customerName"] == "x" * 100


@pytest.mark.parametrize("via", ["get", "form", "json"])
def test_more_parameters_than_allowed_is_a_validation_error_not_a_fault(api, settings, via):
    parameters = stranger(**{f"p{n}": "1" for n in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS)})

    answer = api.call(parameters, via=via)

    assert answer.status_code == 400
    assert answer.code == "VALIDATION_ERROR"
    assert str(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS) in answer.body["message"]


def test_a_multipart_body_is_refused_with_415_and_not_parsed(api, settings, tmp_path):
    # Were it parsed, this file part would be written to FILE_UPLOAD_TEMP_DIR.
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    upload = tmp_path / "statement.csv"
    upload.write_bytes(b"x" * 10_000)

    with upload.open("rb") as part:
        response = api.http.post(
            "/notif", {**api.signed(operation="create", **demo_fields()), "file": part}
        )

    assert response.status_code == 415
    assert response.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert not Notification.objects.exists()


def test_an_unknown_client_id_leaves_no_entry_in_the_configuration_cache(api, settings):
    settings.API_CONFIG_CACHE_SECONDS = 10
    parameters = stranger(operation="status", clientId="nobody-8999")

    api.call(parameters)
    with CaptureQueriesContext(connection) as second:
        answer = api.call(parameters)

    assert answer.code == "INVALID_SIGNATURE"
    # Looked up again: the first request's "no such client" was not kept.
    assert any("clients_secretkey" in query["sql"] for query in second.captured_queries)


def test_a_known_client_keeps_its_entry(api, settings):
    settings.API_CONFIG_CACHE_SECONDS = 10
    status = {"operation": "status", "clientNotifRefId": "R"}
    api.call(api.signed(**status))

    with CaptureQueriesContext(connection) as second:
        answer = api.call(api.signed(**status))

    assert answer.code == "NOT_FOUND"
    assert not any("clients_secretkey" in query["sql"] for query in second.captured_queries)


class Loads:
    """A loader that counts its calls: how a test sees what the cache kept."""

    def __init__(self, value):
        self.value, self.count = value, 0

    def __call__(self):
        self.count += 1
        return self.value


def test_the_configuration_cache_keeps_at_most_its_configured_entries(settings):
    settings.API_CONFIG_CACHE_SECONDS = 10
    settings.API_CONFIG_CACHE_MAX_ENTRIES = 2
    first, second, third = Loads("a"), Loads("b"), Loads("c")

    cached(("t", 1), first)
    cached(("t", 2), second)
    cached(("t", 1), first)  # recently used: kept over ("t", 2)
    cached(("t", 3), third)
    cached(("t", 1), first)
    cached(("t", 2), second)

    assert (first.count, second.count, third.count) == (1, 2, 1)


def test_a_cache_of_zero_entries_keeps_nothing(settings):
    settings.API_CONFIG_CACHE_SECONDS = 10
    settings.API_CONFIG_CACHE_MAX_ENTRIES = 0
    load = Loads("a")

    assert cached(("t", 1), load) == cached(("t", 1), load) == "a"
    assert load.count == 2


@pytest.mark.parametrize("nothing", [None, [], {}])
def test_a_load_that_finds_nothing_is_not_kept(settings, nothing):
    settings.API_CONFIG_CACHE_SECONDS = 10
    load = Loads(nothing)

    cached(("t", "unknown"), load)
    cached(("t", "unknown"), load)

    assert load.count == 2
