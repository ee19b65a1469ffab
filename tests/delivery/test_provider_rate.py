"""A provider's agreed rate (messages per second) holds across every worker."""

import time

from notifications.backends.http_sms import TwilioSmsBackend
from tests.factories import DeliveryFactory


def test_sends_beyond_the_providers_rate_wait_for_the_next_second(sms_sink, app_8002):
    backend = TwilioSmsBackend(**sms_sink.twilio_options(rate_per_second=5))
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
