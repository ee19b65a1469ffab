"""SMS through an HTTP gateway: one configurable backend, and a well-known provider on top."""

import base64
import hashlib
import hmac

from django.conf import settings

from notifications.backends.base import SendResult, idempotency_key
from notifications.backends.http import HttpAnswer, encoded_body, provider_http_client
from notifications.backends.http_provider import HttpProviderBackend
from notifications.backends.http_side_by_side import Post
from notifications.backends.ratelimit import ProviderRateLimit


class HttpSmsBackend(HttpProviderBackend):
    """POST each SMS to a gateway URL; the field names and answer shape are configurable.

    A group's messages go side by side on the worker's thread, up to
    DELIVERY_SEND_CONCURRENCY at once, over connections kept open per worker
    process; every request has a connect timeout, a total deadline and a cap on
    the answer read (PROVIDER_HTTP_*, or `timeout` and `max_answer_bytes` here).
    """

    name = "http-sms"

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
        as_json = self.encoding == "json"
        body, content_type = encoded_body(**{"json_body" if as_json else "form": payload})
        headers = {self.idempotency_header: idempotency_key(delivery)}
        return Post(self.url, body, content_type, headers)

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
