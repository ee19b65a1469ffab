"""WhatsApp through the WhatsApp Business Cloud API (Meta's Graph API).

Payment reminders go out as template messages: the provider has approved the
template's wording (ContentTemplate.provider_template_name) and the platform
sends the values of its placeholders, in order. Without a template name the
rendered text goes as a plain text message, which WhatsApp accepts only inside
a customer-service window.
"""

from django.conf import settings

from notifications.backends.base import SendResult
from notifications.backends.http import HttpAnswer, encoded_body, provider_http_client
from notifications.backends.http_provider import HttpProviderBackend
from notifications.backends.http_side_by_side import Post
from notifications.backends.ratelimit import ProviderRateLimit
from templates_app.template_checks import field_formats
from templates_app.template_language import RenderError, placeholder_values


class WhatsAppCloudBackend(HttpProviderBackend):
    """A group's messages go side by side on the worker's own thread (where its payload
    may read the application's fields from the database), up to
    DELIVERY_SEND_CONCURRENCY at once."""

    name = "whatsapp-cloud"

    def __init__(
        self,
        *,
        phone_number_id: str,
        access_token: str,
        language: str = "id",
        base_url: str = "https://graph.facebook.com/v21.0",
        timeout: tuple[float, float] | None = None,  # (connect, total) seconds
        max_answer_bytes: int | None = None,
        rate_per_second: float = 0,
    ):
        self.url = f"{base_url.rstrip('/')}/{phone_number_id}/messages"
        self.language = language
        self.rate_limit = ProviderRateLimit(self.name, rate_per_second)
        self.http = provider_http_client(
            timeout=timeout,
            max_answer_bytes=max_answer_bytes,
            pool_size=max(1, settings.DELIVERY_SEND_CONCURRENCY),
            headers={"Authorization": f"Bearer {access_token}"},
        )

    def payload(self, delivery) -> dict:
        to = delivery.recipient.lstrip("+")
        version = delivery.template_version
        if version is None or not version.provider_template_name:
            return {
                "messaging_product": "whatsapp",
                "to": to,
                "type": "text",
                "text": {"body": delivery.body},
            }
        notification = delivery.notification
        fields = field_formats(notification.application)
        try:
            values = placeholder_values(version.body, notification.params, fields)
        except RenderError:
            raise
        except Exception as exc:
            # A stored template the renderer no longer accepts (too long since a setting
            # changed, say): it fails this delivery alone, as the dispatcher's rendering does.
            raise RenderError(f"{type(exc).__name__}: {exc}") from exc
        return {
            "messaging_product": "whatsapp",
            "to": to,
            "type": "template",
            "template": {
                "name": version.provider_template_name,
                "language": {"code": self.language},
                "components": [
                    {
                        "type": "body",
                        "parameters": [{"type": "text", "text": value} for value in values],
                    }
                ],
            },
        }

    def post(self, delivery) -> Post:
        return Post(self.url, *encoded_body(json_body=self.payload(delivery)), {})

    def classify(self, response: HttpAnswer) -> SendResult:
        answer = response.json()
        if response.ok:
            messages = answer.get("messages") if isinstance(answer, dict) else None
            if messages and isinstance(messages, list) and messages[0].get("id"):
                return SendResult.sent(str(messages[0]["id"]))
            return SendResult.sent("", f"unreadable answer: {response.excerpt()!r}")
        error = answer.get("error") if isinstance(answer, dict) else None
        error = error if isinstance(error, dict) else {}
        reason = f"HTTP {response.status}: {error.get('message') or response.excerpt()}"
        if error.get("code"):
            reason += f" (code {error['code']})"
        if response.status == 429 or response.status >= 500:
            return SendResult.transient(reason)
        return SendResult.permanent(reason)
