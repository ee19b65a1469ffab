"""Shared data for support's search and notification page tests.

`story` is one notification of client 8003 with a rendered, sent SMS and email, a
receipt, a failed retry and a callback, as support would open it.
"""

from dataclasses import dataclass

import pytest
from django.utils import timezone

from notifications.models import ClientCallback, Delivery, DeliveryEvent, Notification
from templates_app.models import TemplateVersion
from tests.factories import (
    BatchFactory,
    ContentTemplateFactory,
    DeliveryEventFactory,
    DeliveryFactory,
    NotificationFactory,
)

PHONE_8003 = "+6281299887766"
EMAIL_8003 = "Budi.Santoso@Example.co.id"
RENDERED_SMS = "Yth. Budi Santoso, tagihan Anda Rp 1.230.000 jatuh tempo 09-09-2026."


@dataclass
class Story:
    notification: Notification
    sms: Delivery
    email: Delivery
    version: TemplateVersion
    callback: ClientCallback


@pytest.fixture
def story(app_8003):
    template = ContentTemplateFactory(application=app_8003, medium="sms", body=RENDERED_SMS)
    version = template.versions.get()
    batch = BatchFactory(client=app_8003.client, file_name="pembiayaan-2026-09-01.7z")
    notification = NotificationFactory(
        application=app_8003,
        reference="INV-2026-0042",
        source="batch",
        batch=batch,
        batch_line=42,
        status="SENT",
    )
    sms = DeliveryFactory(
        notification=notification,
        medium="sms",
        recipient=PHONE_8003,
        body=RENDERED_SMS,
        template_version=version,
        status="DELIVERED",
        attempts=1,
        provider="sms-gateway",
        provider_message_id="SMSGW-778899",
        sent_at=timezone.now(),
    )
    email = DeliveryFactory(
        notification=notification,
        medium="email",
        recipient=EMAIL_8003,
        subject="Tagihan Anda",
        body="Email body",
        status="FAILED",
        attempts=3,
        provider="smtp",
        last_error="550 mailbox unavailable",
    )
    DeliveryEventFactory(delivery=sms, old_status="PENDING", new_status="SENT", detail="sent")
    DeliveryEventFactory(
        delivery=sms, old_status="SENT", new_status="DELIVERED", detail="delivery receipt: DELIVRD"
    )
    DeliveryEventFactory(
        delivery=email, old_status="PENDING", new_status="FAILED", detail="550 mailbox unavailable"
    )
    callback = ClientCallback.objects.create(
        notification=notification,
        url="https://client.example/hook",
        payload={"status": "DELIVERED"},
        state="DONE",
        attempts=1,
        last_response="HTTP 200 OK",
    )
    return Story(notification, sms, email, version, callback)


__all__ = ["DeliveryEvent"]
