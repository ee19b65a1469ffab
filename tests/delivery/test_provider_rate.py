"""A provider's agreed rate (messages per second) holds across every worker."""

import time

from notifications.backends.http_sms import TwilioSmsBackend
from tests.factories import DeliveryFactory


def test_sends_beyond_the_providers_rate_wait_for_the_next_second(sms_sink, app_8002):
    # A send may wait up to half its deadline (5 s here) for a slot of the rate.
    backend = TwilioSmsBackend(**sms_sink.twilio_options(rate_per_second=5, timeout=(1, 5)))
    deliveries = [
        DeliveryFactory(notification__application=app_8002, body="Bank Demo reminder")
        for _ in range(12)
    ]

    started = time.monotonic()
    results = [backend.send(delivery) for delivery in deliveries]
    elapsed = time.monotonic() - started

    assert {result.outcome for result in results} == {"sent"}
    assert len(sms_sink.messages) == 12
    # 12 messages at 5 a second span at least three one-second windows.
    assert elapsed >= 1.0


def test_a_send_that_finds_no_slot_within_half_its_deadline_is_put_off_not_waited_for(
    sms_sink, app_8002
):
    # One message a second and half a 0.4 s deadline: a second send in the same second
    # would wait past what the send may take, holding its lease; it is retried instead.
    backend = TwilioSmsBackend(**sms_sink.twilio_options(rate_per_second=1, timeout=(0.2, 0.4)))
    deliveries = [
        DeliveryFactory(notification__application=app_8002, body="Bank Demo reminder")
        for _ in range(3)
    ]

    results = [backend.send(delivery) for delivery in deliveries]

    put_off = [result for result in results if result.outcome == "transient"]
    assert put_off, "three sends within a second at one a second all went out"
    assert all(r.error.startswith("RateLimited: no slot") for r in put_off)
    assert len(sms_sink.messages) == 3 - len(put_off)
