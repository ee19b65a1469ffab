"""Email through Django's email machinery: SMTP in production (EMAIL_URL), console by default.

Any Django email backend works here, django-anymail's ESP backends included:
set EMAIL_BACKEND (or EMAIL_URL) and this class sends through it.
"""

import smtplib

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.message import make_msgid

from notifications.backends.base import ChannelBackend, SendResult


class DjangoEmailBackend(ChannelBackend):
    name = "email"

    def __init__(self, from_email: str | None = None, backend: str | None = None):
        self.from_email = from_email or settings.DEFAULT_FROM_EMAIL
        self.backend = backend

    def send(self, delivery) -> SendResult:
        message_id = make_msgid(domain="kokatto")
        message = EmailMultiAlternatives(
            subject=delivery.subject,
            body=delivery.body,
            from_email=self.from_email,
            to=[delivery.recipient],
            headers={"Message-ID": message_id},
            connection=get_connection(self.backend),
        )
        if delivery.html_body:
            message.attach_alternative(delivery.html_body, "text/html")
        try:
            message.send()
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            reason = f"recipient refused: {exc.recipients}"
            # 4xx on RCPT is greylisting or a full mailbox: "try again later".
            if codes and all(400 <= code < 500 for code in codes):
                return SendResult.transient(reason)
            return SendResult.permanent(reason)
        except smtplib.SMTPResponseException as exc:
            reason = f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"
            # 4xx is "try again later", 5xx is "never".
            if 400 <= exc.smtp_code < 500:
                return SendResult.transient(reason)
            return SendResult.permanent(reason)
        except (smtplib.SMTPException, OSError) as exc:  # OSError covers timeouts
            return SendResult.transient(f"{type(exc).__name__}: {exc}")
        return SendResult.sent(message_id)
