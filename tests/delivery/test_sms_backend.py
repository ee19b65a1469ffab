"""The HTTP SMS backends against a real HTTP server on loopback (tests/delivery/peers.py)."""

import contextlib
import gzip
import re
import socket
import threading
import time
import tracemalloc

import pytest

from notifications.backends.base import SendOutcome
from notifications.backends.http_sms import HttpSmsBackend, TwilioSmsBackend
from tests.delivery.slow_http import Answer, slow_http_server
from tests.factories import DeliveryFactory

pytestmark = pytest.mark.django_db

BODY = "Dear Mr. John Doe, you owe Rp 1230000 due on 09-09-2015."
DEADLINE = 1


def twilio(sms_sink, **options):
    return TwilioSmsBackend(**sms_sink.twilio_options(timeout=(1, DEADLINE), **options))


def sms_delivery(**fields):
    return DeliveryFactory(
        **{"medium": "sms", "recipient": "+6281234567890", "body": BODY, **fields}
    )


def test_it_sends_an_sms_and_keeps_the_providers_sid(sms_sink):
    delivery = sms_delivery()

    result = twilio(sms_sink).send(delivery)

    assert result.outcome == SendOutcome.SENT
    assert result.error == ""
    [message] = sms_sink.messages
    assert re.fullmatch(r"SM[0-9a-f]{32}", result.provider_message_id)
    assert result.provider_message_id == message.sid


def test_it_posts_to_exactly_from_and_body_as_a_form(sms_sink):
    delivery = sms_delivery(body="Yth. Budi Śantoso, tagihan Rp 1.230.000 & denda 5%.")

    twilio(sms_sink).send(delivery)

    [request] = sms_sink.requests
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{sms_sink.account_sid}/Messages.json"
    assert request.header("Content-Type") == "application/x-www-form-urlencoded"
    assert request.form == {
        "To": "+6281234567890",
        "From": "BANKDEMO",
        "Body": "Yth. Budi Śantoso, tagihan Rp 1.230.000 & denda 5%.",
    }


def test_it_authenticates_with_the_account_sid_and_token(sms_sink):
    twilio(sms_sink).send(sms_delivery())

    assert sms_sink.requests[0].basic_auth == (sms_sink.account_sid, sms_sink.auth_token)


def test_it_sends_the_deliverys_idempotency_token(sms_sink):
    delivery = sms_delivery()

    twilio(sms_sink).send(delivery)

    request = sms_sink.requests[0]
    assert request.header("I-Twilio-Idempotency-Token") == f"kokatto-delivery-{delivery.pk}"


def test_it_reuses_one_connection_for_many_sends(sms_sink):
    backend = twilio(sms_sink)

    first = backend.send(sms_delivery())
    second = backend.send(sms_delivery(recipient="+6281298765432"))

    assert (first.outcome, second.outcome) == (SendOutcome.SENT, SendOutcome.SENT)
    assert len(sms_sink.messages) == 2
    assert sms_sink.connections == 1
    assert {request.connection_id for request in sms_sink.requests} == {1}


def test_a_resend_of_the_same_delivery_is_not_delivered_twice(sms_sink):
    backend = twilio(sms_sink)
    delivery = sms_delivery()

    first = backend.send(delivery)
    again = backend.send(delivery)

    assert len(sms_sink.requests) == 2
    assert len(sms_sink.messages) == 1
    assert again.outcome == SendOutcome.SENT
    assert again.provider_message_id == first.provider_message_id


def test_different_deliveries_to_the_same_number_are_both_delivered(sms_sink):
    backend = twilio(sms_sink)

    backend.send(sms_delivery())
    backend.send(sms_delivery())

    assert len(sms_sink.messages) == 2


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("500", "HTTP 500: Internal Server Error"),
        ("503", "HTTP 503: Service Unavailable"),
        ("429", "HTTP 429: Too Many Requests"),
    ],
)
def test_a_server_error_or_rate_limit_is_transient(sms_sink, fault, reason):
    sms_sink.misbehave(fault)

    result = twilio(sms_sink).send(sms_delivery())

    assert result.outcome == SendOutcome.TRANSIENT
    assert result.error == reason
    assert sms_sink.messages == []


def test_it_sends_again_after_a_transient_failure(sms_sink):
    sms_sink.misbehave("503")
    backend = twilio(sms_sink)
    delivery = sms_delivery()

    failed = backend.send(delivery)
    retried = backend.send(delivery)

    assert (failed.outcome, retried.outcome) == (SendOutcome.TRANSIENT, SendOutcome.SENT)
    assert len(sms_sink.messages) == 1
    # An error answer with a Content-Length leaves the connection usable.
    assert sms_sink.connections == 1


def test_an_invalid_number_is_permanent_with_twilios_reason(sms_sink):
    sms_sink.misbehave("400")

    result = twilio(sms_sink).send(sms_delivery(recipient="+6200000"))

    assert result.outcome == SendOutcome.PERMANENT
    assert "HTTP 400" in result.error
    assert "not a valid phone number" in result.error


def test_a_wrong_auth_token_is_permanent(sms_sink):
    result = twilio(sms_sink, auth_token="not-the-token").send(sms_delivery())

    assert result.outcome == SendOutcome.PERMANENT
    assert result.error == "HTTP 401: Authenticate"
    assert sms_sink.requests[0].status == 401
    assert sms_sink.messages == []


def test_a_201_with_an_unreadable_answer_is_sent_with_a_note(sms_sink):
    # The provider took the message: sending again could deliver it twice.
    sms_sink.misbehave("garbage")

    result = twilio(sms_sink).send(sms_delivery())

    assert result.outcome == SendOutcome.SENT
    assert result.provider_message_id == ""
    assert "unreadable answer" in result.error
    assert "Message queued" in result.error
    assert len(sms_sink.messages) == 1


def test_an_answer_slower_than_the_deadline_is_transient(sms_sink):
    sms_sink.misbehave("slow")
    started = time.monotonic()

    result = twilio(sms_sink).send(sms_delivery())

    elapsed = time.monotonic() - started
    assert result.outcome == SendOutcome.TRANSIENT
    assert result.error == f"Timeout: no answer within {DEADLINE} s"
    assert DEADLINE <= elapsed < DEADLINE + 1
    assert elapsed < sms_sink.slow_seconds


def test_a_resend_after_a_timeout_is_not_delivered_twice(sms_sink):
    # The provider accepted the message but answered too late; the same token is a duplicate.
    sms_sink.misbehave("slow")
    backend = twilio(sms_sink)
    delivery = sms_delivery()

    timed_out = backend.send(delivery)
    retried = backend.send(delivery)

    assert (timed_out.outcome, retried.outcome) == (SendOutcome.TRANSIENT, SendOutcome.SENT)
    assert len(sms_sink.requests) == 2
    [message] = sms_sink.messages
    assert retried.provider_message_id == message.sid


def test_a_reset_connection_is_transient(sms_sink):
    sms_sink.misbehave("reset")

    result = twilio(sms_sink).send(sms_delivery())

    assert result.outcome == SendOutcome.TRANSIENT
    assert "ConnectionResetError" in result.error
    assert sms_sink.requests[0].status == 0
    assert sms_sink.messages == []


def test_it_sends_on_a_new_connection_after_a_reset(sms_sink):
    sms_sink.misbehave("reset")
    backend = twilio(sms_sink)
    delivery = sms_delivery()

    reset = backend.send(delivery)
    retried = backend.send(delivery)

    assert (reset.outcome, retried.outcome) == (SendOutcome.TRANSIENT, SendOutcome.SENT)
    assert sms_sink.connections == 2
    assert len(sms_sink.messages) == 1


def test_a_gateway_that_is_down_is_transient(closed_port):
    backend = TwilioSmsBackend(
        account_sid="AC" + "0" * 32,
        auth_token="token",
        sender_id="BANKDEMO",
        base_url=f"http://127.0.0.1:{closed_port}",
        timeout=(1, 1),
    )

    result = backend.send(sms_delivery())

    assert result.outcome == SendOutcome.TRANSIENT
    assert result.error.startswith("Connection refused: ")


# The generic gateway: JSON, a Bearer token, configurable field names.


def generic(sms_sink, **options):
    values = {
        "url": sms_sink.generic_url,
        "encoding": "json",
        "token": sms_sink.bearer_token,
        "sender_id": "BANKDEMO",
        "field_names": {"to": "msisdn", "from": "sender", "body": "message"},
        "message_id_field": "message_id",
        "timeout": (1, DEADLINE),
        **options,
    }
    return HttpSmsBackend(**values)


def test_the_generic_gateway_gets_json_with_its_field_names(sms_sink):
    delivery = sms_delivery()

    result = generic(sms_sink).send(delivery)

    assert result.outcome == SendOutcome.SENT
    [request] = sms_sink.requests
    assert request.header("Content-Type") == "application/json"
    assert request.json == {"msisdn": "+6281234567890", "sender": "BANKDEMO", "message": BODY}
    assert request.header("Idempotency-Key") == f"kokatto-delivery-{delivery.pk}"


def test_the_generic_gateway_gets_the_bearer_token(sms_sink):
    generic(sms_sink).send(sms_delivery())

    request = sms_sink.requests[0]
    assert request.header("Authorization") == f"Bearer {sms_sink.bearer_token}"
    assert request.basic_auth is None


def test_the_generic_gateway_message_id_comes_from_the_configured_field(sms_sink):
    result = generic(sms_sink).send(sms_delivery())

    [message] = sms_sink.messages
    assert result.provider_message_id == "gw-" + message.sid[2:]


def test_the_generic_gateway_rejects_a_wrong_token_permanently(sms_sink):
    result = generic(sms_sink, token="wrong").send(sms_delivery())

    assert result.outcome == SendOutcome.PERMANENT
    assert result.error == "HTTP 401: invalid token"


def test_a_201_with_a_json_answer_that_is_not_an_object_is_sent_with_a_note(sms_sink):
    # A gateway answering 201 with a bare JSON string must not make send() raise:
    # the message was accepted, so it is "sent" with nothing readable to keep.
    sms_sink.misbehave("not-an-object")

    result = generic(sms_sink).send(sms_delivery())

    assert result.outcome == SendOutcome.SENT
    assert result.provider_message_id == ""
    assert "unreadable answer" in result.error


# Slow and greedy gateways (tests/delivery/slow_http.py): a total deadline and a capped answer,
# both from settings.

ACCEPTED = b'{"message_id": "gw-1", "status": "accepted"}'


def gateway_at(server) -> HttpSmsBackend:
    """The generic gateway backend with its timeouts and cap left to the settings."""
    return HttpSmsBackend(
        url=f"{server.url}/api/v1/sms", encoding="json", message_id_field="message_id"
    )


def test_a_gateway_that_trickles_its_headers_is_cut_off_at_the_deadline(short_deadline):
    # One byte every 0.1 s: every read gets a byte long before a read timeout would fire.
    answer = Answer(status=201, body=ACCEPTED, trickle="headers", trickle_bytes=60)
    with slow_http_server(answer) as server:
        result = gateway_at(server).send(sms_delivery())
        [exchange] = server.wait_for_exchanges(1)

    assert result.outcome == SendOutcome.TRANSIENT
    assert result.error == "Timeout: no answer within 1 s"
    assert exchange.hung_up
    assert exchange.bytes_sent < exchange.answer_size


def test_an_acceptance_that_trickles_in_is_sent_with_a_note_and_not_waited_for(short_deadline):
    # The status line said 201: the gateway has the message, and sending it again could
    # deliver it twice. Its id never came whole, so it is sent with a note.
    answer = Answer(status=201, body=ACCEPTED, trickle="body")
    with slow_http_server(answer) as server:
        result = gateway_at(server).send(sms_delivery())
        [exchange] = server.wait_for_exchanges(1)

    assert result.outcome == SendOutcome.SENT
    assert result.provider_message_id == ""
    assert result.error == "unreadable answer: 'answer not whole within 1 s'"
    assert exchange.hung_up
    assert exchange.bytes_sent < exchange.answer_size


def with_peak_memory(call):
    """`call()`'s result, and the most memory Python allocated while it ran."""
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_huge_answer_is_not_read_into_memory(short_deadline):
    size = 64 * 1024 * 1024
    # No Content-Length: the body ends when the connection does.
    answer = Answer(status=201, body=ACCEPTED, size=size, declare_length=False)
    with slow_http_server(answer) as server:
        result, peak = with_peak_memory(lambda: gateway_at(server).send(sms_delivery()))
        [exchange] = server.wait_for_exchanges(1)

    assert peak < 1024 * 1024
    assert exchange.hung_up
    assert exchange.bytes_sent < size // 4  # what the socket buffers took, no more
    assert result.outcome == SendOutcome.SENT
    assert result.error == "unreadable answer: 'answer over 4096 bytes, not read'"


def test_a_small_compressed_answer_that_unpacks_past_the_cap_is_not_unpacked_whole(
    short_deadline, settings
):
    # 64 MiB of zeros, gzipped to some 64 KiB, within the cap: its Content-Length is no guide.
    settings.PROVIDER_HTTP_MAX_ANSWER_BYTES = 256 * 1024
    packed = gzip.compress(b"0" * 64 * 1024 * 1024)
    answer = Answer(status=201, body=packed, headers={"Content-Encoding": "gzip"})
    with slow_http_server(answer) as server:
        result, peak = with_peak_memory(lambda: gateway_at(server).send(sms_delivery()))

    assert peak < 2 * 1024 * 1024
    assert result.outcome == SendOutcome.SENT
    assert result.error == "unreadable answer: 'answer over 262144 bytes, not read'"


@pytest.mark.parametrize(
    ("status", "outcome"), [(503, SendOutcome.TRANSIENT), (400, SendOutcome.PERMANENT)]
)
def test_a_huge_error_answer_is_classified_by_its_status(short_deadline, status, outcome):
    answer = Answer(status=status, body=b"<html>error</html>", size=64 * 1024 * 1024)
    with slow_http_server(answer) as server:
        result = gateway_at(server).send(sms_delivery())
        [exchange] = server.wait_for_exchanges(1)

    assert result.outcome == outcome
    assert result.error == f"HTTP {status}: answer over 4096 bytes, not read"
    assert not exchange.finished


class FirstReadServer:
    """An HTTP server on loopback that records what its first read of each request got:
    the request's head and body written at once arrive together; written in two, the
    read wakes on the head. It answers 201, then closes the connection."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/api/v1/sms"
        self.first_reads: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = self.listener.accept()
                with connection:
                    connection.settimeout(5)
                    data = connection.recv(65536)
                    self.first_reads.append(data)
                    head, _, body = data.partition(b"\r\n\r\n")
                    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
                    while len(body) < length:
                        body += connection.recv(65536)
                    answer = b'{"message_id": "gw-1"}'
                    connection.sendall(
                        b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                        b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(answer), answer)
                    )

    def stop(self) -> None:
        self.listener.close()
        self.thread.join(timeout=5)


def test_a_requests_head_and_body_go_out_in_one_write():
    # One system call and one TCP segment a message instead of two: what the gateway reads
    # first is the whole request.
    server = FirstReadServer()
    try:
        backend = HttpSmsBackend(url=server.url, message_id_field="message_id")
        results = [backend.send(sms_delivery()) for _ in range(5)]
    finally:
        server.stop()

    assert [result.provider_message_id for result in results] == ["gw-1"] * 5
    assert len(server.first_reads) == 5
    for first in server.first_reads:
        head, _, body = first.partition(b"\r\n\r\n")
        assert head.startswith(b"POST /api/v1/sms HTTP/1.1")
        assert b"Dear+Mr.+John+Doe" in body


def test_a_redirect_is_the_gateways_answer_and_is_not_followed():
    answer = Answer(status=302, body=b"", headers={"Location": "/elsewhere"})
    with slow_http_server(answer) as server:
        result = gateway_at(server).send(sms_delivery())
        exchanges = server.wait_for_exchanges(1)

    assert result.outcome == SendOutcome.PERMANENT
    assert result.error.startswith("HTTP 302")
    assert [exchange.path for exchange in exchanges] == ["/api/v1/sms"]


class GatewayFailingOneRecipient(HttpSmsBackend):
    """A gateway backend whose payload breaks on one recipient (a subclass's bug)."""

    def payload(self, delivery) -> dict:
        if delivery.recipient.endswith("99"):
            raise KeyError("to")
        return super().payload(delivery)


def test_a_request_that_cannot_be_built_fails_its_delivery_alone(short_deadline):
    with slow_http_server(Answer(status=201, body=ACCEPTED)) as server:
        backend = GatewayFailingOneRecipient(
            url=f"{server.url}/api/v1/sms", encoding="json", message_id_field="message_id"
        )
        results = backend.send_many(
            [sms_delivery(recipient="+6281200000099"), sms_delivery()],
            may_send=lambda delivery: True,
            tick=lambda: 60,
        )
        server.wait_for_exchanges(1)

    failed, sent = results[0][0], results[1][0]
    assert (failed.outcome, failed.error) == (SendOutcome.TRANSIENT, "KeyError: 'to'")
    assert (sent.outcome, sent.provider_message_id) == (SendOutcome.SENT, "gw-1")
    assert len(server.exchanges) == 1
