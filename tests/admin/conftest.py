"""Shared data and helpers for the control panel (admin) tests.

`tenant_data` gives each of the clients 8002 and 8003 one row of every kind
the admin shows, each carrying a marker that is unique to its client, so a
test can prove that a page shows one client's data and not the other's.
"""

import re
from dataclasses import dataclass

import pytest
from django.contrib.messages import get_messages

from clients.models import Application, Client
from notifications.models import Delivery, DeliveryEvent, Notification
from templates_app.models import ContentTemplate
from tests.admin_forms import form_data
from tests.factories import (
    BatchFactory,
    ContentTemplateFactory,
    DeliveryEventFactory,
    DeliveryFactory,
    NotificationFactory,
)

# Markers that appear in 8003's data and nowhere else.
MARKERS_8003 = {
    "client_name": "PT Pembiayaan Contoh",
    "app_code": "XYZ",
    "template_body": "Pembiayaan template body",
    "reference": "REF-PEMBIAYAAN-1",
    "recipient": "+6281399990000",
    "file_name": "pembiayaan-reminders.7z",
    "event_detail": "pembiayaan provider accepted",
}


@dataclass
class TenantRows:
    client: Client
    application: Application
    template: ContentTemplate
    notification: Notification
    delivery: Delivery
    event: DeliveryEvent
    batch: object


def _tenant_rows(application, *, template_body, reference, recipient, file_name, detail):
    template = ContentTemplateFactory(application=application, medium="sms", body=template_body)
    notification = NotificationFactory(application=application, reference=reference)
    delivery = DeliveryFactory(notification=notification, medium="sms", recipient=recipient)
    event = DeliveryEventFactory(delivery=delivery, detail=detail)
    batch = BatchFactory(client=application.client, file_name=file_name)
    return TenantRows(
        client=application.client,
        application=application,
        template=template,
        notification=notification,
        delivery=delivery,
        event=event,
        batch=batch,
    )


@dataclass
class TenantData:
    own: TenantRows  # client 8002, the client of staff_8002
    other: TenantRows  # client 8003


@pytest.fixture
def tenant_data(app_8002, app_8003):
    own = _tenant_rows(
        app_8002,
        template_body="Nusantara template body",
        reference="REF-NUSANTARA-1",
        recipient="+6281222220000",
        file_name="nusantara-reminders.7z",
        detail="nusantara provider accepted",
    )
    other = _tenant_rows(
        app_8003,
        template_body=MARKERS_8003["template_body"],
        reference=MARKERS_8003["reference"],
        recipient=MARKERS_8003["recipient"],
        file_name=MARKERS_8003["file_name"],
        detail=MARKERS_8003["event_detail"],
    )
    return TenantData(own=own, other=other)


def html(response) -> str:
    return response.content.decode()


def message_texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def assert_no_8003_data(text: str) -> None:
    # A random CSRF token can contain a short marker such as "XYZ" by chance.
    text = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", text)
    leaked = {name: marker for name, marker in MARKERS_8003.items() if marker in text}
    assert not leaked, f"data of client 8003 in the page: {leaked}"


__all__ = ["form_data"]
