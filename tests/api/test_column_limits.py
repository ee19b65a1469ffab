"""Every value a create request stores must fit the column it lands in: a value that
does not is a 400 VALIDATION_ERROR naming the field, never a 503 that clients retry."""

import pytest

from notifications.models import Delivery, Notification
from tests.api.conftest import demo_fields

# A well-formed address of 300 characters (email validators allow 320): longer than
# Delivery.recipient's 254.
LONG_EMAIL = "a" * 64 + "@" + ".".join(["b" * 58] * 4) + ".co.id"


def test_the_long_address_is_a_valid_email_longer_than_the_recipient_column():
    from django.core.validators import validate_email

    validate_email(LONG_EMAIL)
    assert len(LONG_EMAIL) > Delivery._meta.get_field("recipient").max_length


def test_an_email_longer_than_the_recipient_column_is_a_validation_error(api, transport):
    answer = api.create(**demo_fields(email=LONG_EMAIL), **transport)

    assert (answer.status_code, answer.code) == (400, "VALIDATION_ERROR")
    [message] = answer.body["errors"]["email"]
    assert "At most 254 characters" in message
    assert not Notification.objects.exists()


def test_a_refused_long_value_does_not_stop_the_next_request_or_another_client(api, api_8003):
    refused = api.create(**demo_fields("R-1", email=LONG_EMAIL))
    mine = api.create(**demo_fields("R-2", email="budi@example.co.id"))
    theirs = api_8003.create(**demo_fields("R-1", appType="XYZ"))

    assert refused.status_code == 400
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert sorted(Notification.objects.values_list("client__client_id", "reference")) == [
        ("8002", "R-2"),
        ("8003", "R-1"),
    ]


@pytest.mark.parametrize(
    "balance", ["NaN", "Infinity", "-Infinity", "1e100", "1E5", "١٢٣", "9" * 19]
)
def test_a_number_the_platform_cannot_store_or_format_is_refused(api, balance):
    answer = api.create(**demo_fields(balance=balance), via="json")

    assert (answer.status_code, answer.code) == (400, "VALIDATION_ERROR")
    assert list(answer.body["errors"]) == ["balance"]
    assert not Notification.objects.exists()
