"""The request signature: the published test vectors, key rotation and what gets logged."""

import logging
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.utils import timezone

from clients.keys import secret_key_create, secret_key_deactivate
from clients.models import SecretKey
from clients.signing import percent_encode, sign, signature_matches, string_to_sign
from notifications.models import Notification
from tests.api.conftest import demo_fields

VECTOR_SECRET = "kokatto-demo-secret-0123456789abcdef"
VECTORS = [
    (
        {
            "clientId": "8002",
            "appType": "ABC",
            "operation": "create",
            "clientNotifRefId": "UNIQ-REFERENCE-ID",
            "customerName": "John Doe",
            "balance": "1230000",
            "dueDate": "09-09-2015",
            "timestamp": "1764000000",
        },
        "appType=ABC&balance=1230000&clientId=8002&clientNotifRefId=UNIQ-REFERENCE-ID"
        "&customerName=John%20Doe&dueDate=09-09-2015&operation=create&timestamp=1764000000",
        "0c7854904f9751e8f46aa2a31145207187703ad3d63e252dff342638373e738f",
    ),
    (
        {
            "clientId": "8002",
            "operation": "status",
            "clientNotifRefId": "Budi Śantoso & Sons+=/",
            "timestamp": "1764000000",
        },
        "clientId=8002&clientNotifRefId=Budi%20%C5%9Aantoso%20%26%20Sons%2B%3D%2F"
        "&operation=status&timestamp=1764000000",
        "f624b35640ca2f5f3b4553bb004fe5dadbb61226c0689cfe482e91f2b8d23c32",
    ),
]


@pytest.mark.parametrize(("parameters", "canonical", "signature"), VECTORS)
def test_the_published_test_vectors_hold(parameters, canonical, signature):
    assert string_to_sign(parameters) == canonical
    assert sign(parameters, VECTOR_SECRET) == signature
    assert sign({**parameters, "signature": "ignored"}, VECTOR_SECRET) == signature


@pytest.mark.parametrize(
    "text", ["", "Az09-._~", "a b", "line\n", "\n", "é", "٣", "a/b?c=d&e", "%41", "+"]
)
def test_a_text_of_unreserved_characters_alone_is_kept_and_any_other_is_quoted(text):
    assert percent_encode(text) == quote(text, safe="", encoding="utf-8")


def test_upper_case_hex_is_accepted_and_a_truncated_signature_is_not():
    parameters, _, signature = VECTORS[0]

    assert signature_matches(parameters, VECTOR_SECRET, signature.upper())
    assert not signature_matches(parameters, VECTOR_SECRET, signature[:-1])
    assert not signature_matches(parameters, VECTOR_SECRET, "")


def test_reserved_characters_and_non_ascii_values_travel_intact(api, transport):
    name = "Budi Śantoso & Sons+=/ 100% ~ok"
    reference = "Ref & Co/+=?#"

    answer = api.create(**transport, **demo_fields(reference=reference, customerName=name))

    assert answer.status_code == 201, answer.body
    assert answer.body["requestId"] == reference
    assert Notification.objects.get(reference=reference).params["customerName"] == name


def test_both_keys_sign_during_rotation_and_a_deactivated_key_does_not(api, client_8002):
    old_key = SecretKey.objects.get(client=client_8002)
    _, new_secret = secret_key_create(client=client_8002)

    with_old = api.call(api.signed(operation="status", clientNotifRefId="R"))
    with_new = api.call(api.signed(new_secret, operation="status", clientNotifRefId="R"))
    assert (with_old.code, with_new.code) == ("NOT_FOUND", "NOT_FOUND")

    secret_key_deactivate(key=old_key)
    after = api.call(api.signed(operation="status", clientNotifRefId="R"))
    assert after.code == "INVALID_SIGNATURE"
    assert api.call(api.signed(new_secret, operation="status", clientNotifRefId="R")).code == (
        "NOT_FOUND"
    )


def test_an_expired_key_no_longer_signs(api, client_8002):
    SecretKey.objects.filter(client=client_8002).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    assert api.call(api.signed(operation="status", clientNotifRefId="R")).code == (
        "INVALID_SIGNATURE"
    )


def test_another_clients_key_does_not_sign_for_this_client(api, api_8003):
    parameters = api.signed(api_8003.secret, operation="status", clientNotifRefId="R")

    assert api.call(parameters).code == "INVALID_SIGNATURE"


def test_a_missing_signature_answers_401(api):
    parameters = api.signed(operation="status", clientNotifRefId="R")
    del parameters["signature"]

    assert api.call(parameters).status_code == 401


def test_a_key_records_when_it_was_last_used(api, client_8002):
    assert SecretKey.objects.get(client=client_8002).last_used_at is None

    api.call(api.signed(operation="status", clientNotifRefId="R"))

    assert SecretKey.objects.get(client=client_8002).last_used_at is not None


def test_a_failed_signature_is_logged_without_the_secret_or_the_signature(api, caplog):
    parameters = api.signed(operation="status", clientNotifRefId="R")
    parameters["signature"] = sign(parameters, "a-guess-0123456789abcdef0123456789")

    with caplog.at_level(logging.WARNING, logger="clients.signed_requests"):
        api.call(parameters)

    logged = caplog.text
    assert "signature check failed" in logged
    assert "8002" in logged
    assert parameters["signature"] not in logged
    assert parameters["signature"][:6] in logged
    assert api.secret not in logged
