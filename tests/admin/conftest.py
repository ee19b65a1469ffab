"""Shared data and helpers for the control panel (admin) tests.

`tenant_data` gives each of the clients 8002 and 8003 one row of every kind
the admin shows, each carrying a marker that is unique to its client, so a
test can prove that a page shows one client's data and not the other's.
"""

from dataclasses import dataclass
from html.parser import HTMLParser

import pytest
from django.contrib.messages import get_messages

from clients.models import Application, Client
from notifications.models import Delivery, DeliveryEvent, Notification
from templates_app.models import ContentTemplate
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


@pytest.fixture
def staff_client(client, staff_8002):
    """The Django test client, logged in as the client staff user of 8002."""
    client.force_login(staff_8002)
    return client


@pytest.fixture
def support_client(client, support_user):
    client.force_login(support_user)
    return client


@pytest.fixture
def operator_client(client, operator_user):
    client.force_login(operator_user)
    return client


def html(response) -> str:
    return response.content.decode()


def message_texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def assert_no_8003_data(text: str) -> None:
    leaked = {name: marker for name, marker in MARKERS_8003.items() if marker in text}
    assert not leaked, f"data of client 8003 in the page: {leaked}"


class _FormParser(HTMLParser):
    """Collects what a browser would submit from the admin's change form."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.data: dict[str, list[str]] = {}
        self._in_form = False
        self._select: tuple[str, bool] | None = None
        self._select_options: list[tuple[str, bool]] = []
        self._textarea: str | None = None
        self._textarea_text: list[str] = []

    def _add(self, name, value):
        self.data.setdefault(name, []).append(value)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._in_form = (attrs.get("id") or "").endswith("_form")
        if not self._in_form:
            return
        name = attrs.get("name")
        if tag == "input" and name:
            kind = (attrs.get("type") or "text").lower()
            if kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    self._add(name, attrs.get("value") or "on")
            elif kind not in ("submit", "button", "image", "reset", "file"):
                self._add(name, attrs.get("value") or "")
        elif tag == "select" and name:
            self._select = (name, "multiple" in attrs)
            self._select_options = []
        elif tag == "option" and self._select:
            self._select_options.append((attrs.get("value") or "", "selected" in attrs))
        elif tag == "textarea" and name:
            self._textarea = name
            self._textarea_text = []

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea_text.append(data)

    def handle_endtag(self, tag):
        if tag == "form":
            self._in_form = False
        elif tag == "select" and self._select:
            name, multiple = self._select
            chosen = [value for value, selected in self._select_options if selected]
            if not chosen and not multiple and self._select_options:
                chosen = [self._select_options[0][0]]
            self.data[name] = chosen
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            text = "".join(self._textarea_text)
            # Browsers drop the newline that follows the opening tag.
            self._add(self._textarea, text.removeprefix("\r\n").removeprefix("\n"))
            self._textarea = None


def form_data(response) -> dict[str, list[str] | str]:
    """The POST data of the admin form on `response`'s page, as a browser would send it."""
    parser = _FormParser()
    parser.feed(html(response))
    return {name: values[0] if len(values) == 1 else values for name, values in parser.data.items()}
