"""SMS through an HTTP gateway: one configurable backend, and a well-known provider on top."""

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings

from notifications.backends.base import ChannelBackend, SendResult, idempotency_key
from notifications.backends.http import HttpAnswer, HttpFailure, provider_http_client
from notifications.backends.http_side_by_side import Post, post_side_by_side
from notifications.backends.ratelimit import ProviderRateLimit, rate_limited

logger = logging.getLogger(__name__)


class HttpSmsBackend(ChannelBackend):
    """POST each SMS to a gateway URL; the field names and answer shape are configurable.

    A group's messages go side by side on the worker's thread, up to
    DELIVERY_SEND_CONCURRENCY at once, over connections kept open per worker
    process; every request has a connect timeout, a total deadline and a cap on
    the answer read (PROVIDER_HTTP_*, or `timeout` and `max_answer_bytes` here).
    """

    name = "http-sms"
    concurrent_sends = True
    sends_many_at_once = True

    def __init__(
        self,
        *,
        url: str,
        sender_id: str = "",
        username: str = "",
        password: str = "",
        token: str = "",
        encoding: str = "form",  # or "json"
        field_names: dict | None = None,  # our "to", "from", "body" -> the gateway's names
        message_id_field: str = "id",
        error_field: str = "message",
        idempotency_header: str = "Idempotency-Key",
        timeout: tuple[float, float] | None = None,  # (connect, total) seconds
        max_answer_bytes: int | None = None,
        rate_per_second: float = 0,
        name: str = "",
    ):
        self.url = url
        self.sender_id = sender_id
        self.encoding = encoding
        self.field_names = {"to": "to", "from": "from", "body": "text", **(field_names or {})}
        self.message_id_field = message_id_field
        self.error_field = error_field
        self.idempotency_header = idempotency_header
        self.name = name or self.name
        self.rate_limit = ProviderRateLimit(self.name, rate_per_second)
        self.http = provider_http_client(
            timeout=timeout,
            max_answer_bytes=max_answer_bytes,
            # The posts of a group in flight at once, and the connections kept.
            pool_size=max(1, settings.DELIVERY_SEND_CONCURRENCY),
            headers={"Authorization": f"Bearer {token}"} if token else None,
            basic_auth=(username, password) if username else None,
        )

    def payload(self, delivery) -> dict:
        names = self.field_names
        return {
            names["to"]: delivery.recipient,
            names["from"]: self.sender_id,
            names["body"]: delivery.body,
        }

    def post(self, delivery) -> Post:
        """The delivery's request to the gateway."""
        payload = self.payload(delivery)
        if self.encoding == "json":
            body, content_type = json.dumps(payload).encode(), "application/json"
        else:
            body, content_type = urlencode(payload).encode(), "application/x-www-form-urlencoded"
        headers = {self.idempotency_header: idempotency_key(delivery)}
        return Post(self.url, body, content_type, headers)

    def send(self, delivery) -> SendResult:
        [(result, _)] = self.send_many([delivery], may_send=lambda delivery: True, tick=lambda: 60)
        return result

    def send_many(
        self, deliveries: list, *, may_send: Callable, tick: Callable[[], float]
    ) -> list[tuple[SendResult | None, float]]:
        """Send the deliveries side by side on this thread, up to DELIVERY_SEND_CONCURRENCY
        at once (notifications/backends/http_side_by_side.py); each only if
        `may_send(delivery)` says so just before. Returns each one's result (None: not
        sent) and the seconds its send took."""
        limited = {}  # deliveries that found no slot of the provider's rate in time

        def ready(index: int) -> float | None:
            if not may_send(deliveries[index]):
                return None
            started = time.monotonic()
            if not self.rate_limit.acquire(until=started + self.http.deadline / 2):
                limited[index] = time.monotonic() - started
                return None
            return started

        posts = [self.post(delivery) for delivery in deliveries]
        answers = post_side_by_side(self.http, posts, ready=ready, tick=tick)
        results = []
        for index, (answer, seconds) in enumerate(answers):
            if index in limited:
                result = SendResult.transient(rate_limited(self.http.deadline / 2))
                results.append((result, limited[index]))
            elif answer is None:
                results.append((None, 0.0))
            elif isinstance(answer, HttpFailure):
                results.append((SendResult.transient(str(answer)), seconds))
            else:
                results.append((self._classified(answer), seconds))
        return results

    def _classified(self, answer: HttpAnswer) -> SendResult:
        """classify(answer), which must not fail the group's other results if it fails."""
        try:
            return self.classify(answer)
        except Exception as exc:
            logger.exception("%s could not classify an answer", self.name)
            if answer.ok:  # taken: sending it again could deliver it twice
                return SendResult.sent("", f"unreadable answer: {type(exc).__name__}")
            return SendResult.transient(f"HTTP {answer.status}: {type(exc).__name__}")

    def classify(self, response: HttpAnswer) -> SendResult:
        answer = response.json()
        if response.ok:
            fields = answer if isinstance(answer, dict) else {}
            message_id = str(fields.get(self.message_id_field) or "")
            # Accepted but unreadable: sending again could deliver it twice.
            note = "" if message_id else f"unreadable answer: {response.excerpt()!r}"
            return SendResult.sent(message_id, note)
        reason = f"HTTP {response.status}: {self.reason(answer, response)}"
        if response.status == 429 or response.status >= 500:
            return SendResult.transient(reason)
        return SendResult.permanent(reason)

    def reason(self, answer, response) -> str:
        if isinstance(answer, dict) and answer.get(self.error_field):
            return str(answer[self.error_field])
        return response.excerpt()


class TwilioSmsBackend(HttpSmsBackend):
    """Twilio's Messages API: form POST, HTTP basic auth with the account SID and token.

    `base_url` points elsewhere only in tests (a local stand-in for Twilio).
    """

    name = "twilio"

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        sender_id: str,
        base_url: str = "https://api.twilio.com",
        status_callback_url: str = "",
        **options,
    ):
        self.status_callback_url = status_callback_url
        super().__init__(
            url=f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json",
            sender_id=sender_id,
            username=account_sid,
            password=auth_token,
            field_names={"to": "To", "from": "From", "body": "Body"},
            message_id_field="sid",
            error_field="message",
            idempotency_header="I-Twilio-Idempotency-Token",
            **options,
        )

    def payload(self, delivery) -> dict:
        payload = super().payload(delivery)
        if self.status_callback_url:
            # Twilio POSTs delivery receipts there (see notifications/api/receipt_views.py).
            payload["StatusCallback"] = self.status_callback_url
        return payload


def twilio_signature(url: str, parameters: dict[str, str], auth_token: str) -> str:
    """Twilio's X-Twilio-Signature: base64 HMAC-SHA1 of the URL and the sorted POST parameters."""
    message = url + "".join(f"{name}{parameters[name]}" for name in sorted(parameters))
    digest = hmac.new(auth_token.encode(), message.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()
