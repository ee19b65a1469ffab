"""A customer's value never becomes a script, an event handler or a javascript:/data: link
in an email's HTML body: in the stored delivery, the admin's preview, and the email sent."""

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from notifications.dispatch import delivery_render, dispatch_due
from notifications.intake import notification_create
from tests.delivery.conftest import smtp_server  # noqa: F401
from tests.factories import (
    ContentTemplateFactory,
    DeliveryFactory,
    FieldFactory,
    NotificationFactory,
)
from tests.templates.conftest import submit

pytestmark = pytest.mark.django_db

# Every position a value can take in an email: a link, an image, an attribute, a style, text.
HTML_BODY = (
    '<p style="color: [color]">Dear [customerName],</p>'
    '<p><a href="[paymentUrl]" title="[customerName]">Pay now</a></p>'
    '<img src="[logo]" alt="[customerName]">'
)
SAFE = {
    "customerName": "John Doe",
    "balance": "1230000",
    "dueDate": "09-09-2035",
    "paymentUrl": "https://pay.example.co.id/i?n=1&c=2",
    "logo": "https://cdn.example.co.id/logo.png",
    "color": "red",
}
HOSTILE_URLS = [
    "javascript:alert(1)",
    "JaVaScRiPt:alert(document.cookie)",
    "java\tscript:alert(1)",  # browsers drop tabs and line breaks inside URLs
    " javascript:alert(1)",
    "vbscript:msgbox(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "data:image/svg+xml,<svg onload=alert(1)>",
]
HOSTILE_NAMES = [
    '" onmouseover="alert(1)',
    "' onmouseover='alert(1)",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
]
HOSTILE_COLOR = "red;background:url(javascript:alert(1))"
ALLOWED_SCHEMES = {"", "http", "https", "mailto", "tel"}


class _Markup(HTMLParser):
    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))


def dangers(html: str) -> list[str]:
    """What in the HTML would run in a mail client or browser: scripts, event handlers,
    styles, and links or images whose scheme is not http(s), mailto or tel."""
    found = []
    for tag, attributes in _Markup(html).elements:
        if tag in ("script", "iframe", "object", "embed", "style"):
            found.append(f"<{tag}>")
        for name, value in attributes.items():
            if name.startswith("on") or name == "style":
                found.append(f"{tag} {name}={value!r}")
            elif name in ("href", "src", "action", "formaction", "background", "srcset"):
                # As browsers read a URL: C0 controls and spaces at the ends and
                # tabs and line breaks inside do not count.
                url = re.sub(r"[\t\n\r]", "", (value or "").strip("\x00- "))
                if urlsplit(url).scheme.lower() not in ALLOWED_SCHEMES:
                    found.append(f"{tag} {name}={value!r}")
    return found


def links(html: str) -> dict[str, str]:
    return {
        name: value
        for tag, attributes in _Markup(html).elements
        for name, value in attributes.items()
        if name in ("href", "src")
    }


@pytest.fixture
def email_application(app_8002):
    for name in ("paymentUrl", "logo", "color"):
        FieldFactory(application=app_8002, name=name, required=False)
    return app_8002


@pytest.fixture
def saved_through_the_admin(staff_client, email_application):
    """The email template as client staff save it in the admin (cleaned on save)."""
    template = ContentTemplateFactory(
        application=email_application,
        medium="email",
        subject="Reminder",
        body="Dear [customerName]",
        html_body="<p>Dear [customerName]</p>",
    )
    submit(staff_client, template, html_body=HTML_BODY)
    template.refresh_from_db()
    assert "[paymentUrl]" in template.html_body
    return template


def rendered_html(application, **values) -> str:
    notification = NotificationFactory(application=application, params={**SAFE, **values})
    delivery = DeliveryFactory(notification=notification, medium="email")
    delivery_render(delivery=delivery)
    delivery.refresh_from_db()
    return delivery.html_body


def test_safe_values_keep_their_links(saved_through_the_admin, email_application):
    html = rendered_html(email_application)

    assert dangers(html) == []
    assert links(html) == {"href": SAFE["paymentUrl"], "src": SAFE["logo"]}


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_a_hostile_url_in_a_link_or_an_image_is_never_kept(
    saved_through_the_admin, email_application, url
):
    html = rendered_html(email_application, paymentUrl=url, logo=url)

    assert dangers(html) == []
    assert "Pay now" in html


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_hostile_value_in_an_attribute_or_text_stays_text(
    saved_through_the_admin, email_application, name
):
    html = rendered_html(email_application, customerName=name)

    assert dangers(html) == []
    [title] = [a["title"] for tag, a in _Markup(html).elements if tag == "a"]
    assert title == name  # the value, whole, as the attribute's text


def test_a_stored_template_the_admin_never_cleaned_is_cleaned_once_filled(email_application):
    # Written to the database directly (a script, an import): the admin's save-time cleaning
    # never saw its style attribute or its handler.
    ContentTemplateFactory(
        application=email_application,
        medium="email",
        subject="Reminder",
        body="Dear [customerName]",
        html_body=HTML_BODY + '<p onclick="pay()">[customerName]</p>',
    )

    html = rendered_html(
        email_application, color=HOSTILE_COLOR, paymentUrl=HOSTILE_URLS[0], logo=HOSTILE_URLS[5]
    )

    assert dangers(html) == []


PREVIEW_URL = "/admin/templates_app/contenttemplate/preview/"


def test_the_admin_preview_shows_what_would_be_sent(staff_client, email_application):
    email_application.sample_values = {
        **SAFE,
        "paymentUrl": HOSTILE_URLS[0],
        "logo": HOSTILE_URLS[5],
        "customerName": HOSTILE_NAMES[0],
    }
    email_application.save()
    ContentTemplateFactory(
        application=email_application, medium="email", subject="Reminder", body="Dear"
    )

    answer = staff_client.post(
        PREVIEW_URL,
        {
            "application": email_application.pk,
            "medium": "email",
            "subject": "Reminder",
            "body": "Dear [customerName]",
            "html_body": HTML_BODY,
        },
    )

    preview = answer.json()["preview"]["html_body"]
    assert dangers(preview) == []
    assert "Pay now" in preview


def test_the_email_sent_over_smtp_carries_no_hostile_link(
    saved_through_the_admin,
    email_application,
    client_8002,
    smtp_server,  # noqa: F811
):
    hostile = {"paymentUrl": HOSTILE_URLS[1], "logo": HOSTILE_URLS[6], "customerName": "<script>"}
    notification_create(
        client=client_8002,
        application_code=email_application.code,
        reference="R-HOSTILE",
        values={**SAFE, **hostile, "email": "budi@example.co.id"},
    )

    assert dispatch_due() == 1

    [received] = smtp_server.messages
    [html_part] = [p for p in received.message.iter_parts() if p.get_content_type() == "text/html"]
    html = html_part.get_content()
    assert dangers(html) == []
    assert "&lt;script&gt;" in html
