"""What a provider answers is kept as text columns can hold it, and never fails a group's record."""

import contextlib

import pytest

from notifications.dispatch import dispatch_due
from notifications.models import Delivery
from tests.delivery.slow_http import Answer, slow_http_server
from tests.factories import accept_notification

# JSON escapes that json.loads turns into a NUL and a lone surrogate, which neither
# PostgreSQL's text nor UTF-8 can hold.
UNSTORABLE = "\\u0000-\\ud800"


@pytest.fixture
def gateway_answering(settings):
    """Point SMS at a local gateway that answers every request with `status` and `body`."""
    with contextlib.ExitStack() as servers:

        def gateway(status: int, body: str) -> None:
            server = servers.enter_context(
                slow_http_server(Answer(status=status, body=body.encode()))
            )
            settings.KOKATTO_CHANNEL_BACKENDS = {
                "sms": [
                    {
                        "BACKEND": "notifications.backends.http_sms.HttpSmsBackend",
                        "OPTIONS": {
                            "url": f"{server.url}/api/v1/sms",
                            "encoding": "json",
                            "message_id_field": "message_id",
                        },
                    }
                ]
            }

        yield gateway


def test_an_id_with_a_nul_and_a_lone_surrogate_is_kept_readable_and_the_group_recorded(
    client_8002, sms_template, gateway_answering
):
    gateway_answering(201, f'{{"message_id": "gw-{UNSTORABLE}"}}')
    accept_notification(client_8002, "R-1")
    accept_notification(client_8002, "R-2")

    assert dispatch_due() == 2

    assert set(Delivery.objects.values_list("status", "provider_message_id")) == {
        ("SENT", "gw-\\x00-\\ud800")
    }


def test_an_error_with_a_nul_and_a_lone_surrogate_fails_only_its_delivery(
    client_8002, sms_template, gateway_answering
):
    gateway_answering(400, f'{{"message": "bad number {UNSTORABLE}"}}')
    accept_notification(client_8002, "R-1")

    assert dispatch_due() == 1

    delivery = Delivery.objects.get()
    assert delivery.status == "FAILED"
    assert delivery.last_error == "HTTP 400: bad number \\x00-\\ud800"
    assert delivery.events.filter(detail__contains="bad number \\x00-\\ud800").exists()
