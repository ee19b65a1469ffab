"""The Content-Security-Policy (django-csp): no inline script or style on any admin page.

The policy is only as strong as the pages are clean: a page that needed inline script
would force 'unsafe-inline' back in. So the pages are read as well as the header; the
browser tests (tests/e2e) show the pages working under the policy.
"""

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from kokatto_site.sign_in.two_factor import pending_authenticator
from tests.factories import BatchFactory, ContentTemplateFactory
from tests.security.conftest import code, sign_in
from tests.security.production import answers, production_env

STRICT_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}


def policy(response, header="Content-Security-Policy") -> dict[str, list[str]]:
    directives = (part.split() for part in response[header].split(";"))
    return {name: sources for name, *sources in directives}


class InlineCode(HTMLParser):
    """What in a page would need 'unsafe-inline': script and style in the page itself."""

    def __init__(self):
        super().__init__()
        self.found, self._inline_element = [], None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        # A JSON data block (Django's json_script) is never run: the policy does not apply.
        data_block = attributes.get("type") == "application/json"
        if tag == "style" or (tag == "script" and "src" not in attributes and not data_block):
            self._inline_element = tag
        for name, value in attrs:
            if name == "style" or name.startswith("on"):
                self.found.append(f"<{tag} {name}={value!r}>")
            if name in ("href", "src", "action") and (value or "").startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value!r}>")

    def handle_data(self, data):
        if self._inline_element and data.strip():
            self.found.append(f"<{self._inline_element}>{data.strip()[:60]}")

    def handle_endtag(self, tag):
        self._inline_element = None


def inline_code(response) -> list[str]:
    parser = InlineCode()
    parser.feed(response.content.decode())
    return parser.found


@pytest.fixture
def admin_pages(operator_client, app_8002):
    """Every kind of admin page the platform adds or changes, as the operator sees them."""
    template = ContentTemplateFactory(application=app_8002)
    batch = BatchFactory(client=app_8002.client)
    urls = [
        reverse("admin:index"),
        reverse("admin:clients_client_changelist"),
        reverse("admin:clients_client_change", args=[app_8002.client.pk]),
        reverse("admin:templates_app_contenttemplate_changelist"),
        reverse("admin:templates_app_contenttemplate_change", args=[template.pk]),
        reverse("admin:templates_app_contenttemplate_add"),
        reverse("admin:templates_app_contenttemplate_version", args=[template.pk, 1]),
        reverse("admin:batches_batch_changelist"),
        reverse("admin:batches_batch_change", args=[batch.pk]),
        reverse("admin:notifications_notification_changelist"),
    ]
    pages = {url: operator_client.get(url) for url in urls}
    pages["secret key issued"] = operator_client.post(
        reverse("admin:clients_client_changelist"),
        {"action": "generate_secret_key", "_selected_action": [app_8002.client.pk]},
    )
    for url, response in pages.items():
        assert response.status_code == 200, url
    return pages


def test_every_admin_page_is_served_under_a_policy_without_inline_script(admin_pages):
    for url, response in admin_pages.items():
        assert policy(response) == STRICT_POLICY, url
        assert "unsafe" not in response["Content-Security-Policy"], url


def test_no_admin_page_needs_inline_script_or_style(admin_pages):
    for url, response in admin_pages.items():
        assert inline_code(response) == [], url


def test_the_sign_in_page_is_served_under_the_policy_and_without_inline_code(client, db):
    response = client.get(reverse("admin:login"))

    assert policy(response) == STRICT_POLICY
    assert inline_code(response) == []


def test_the_api_docs_are_served_under_the_policy_with_their_script_as_a_file(client, db):
    page = client.get("/api/docs/", HTTP_HOST="127.0.0.1")
    script = client.get("/api/docs/?script=", HTTP_HOST="127.0.0.1")

    assert policy(page) == STRICT_POLICY
    assert inline_code(page) == []
    assert '<script src="/api/docs/?script="></script>' in page.content.decode()
    assert script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle(" in script.content
    # The validator badge would load an image from swagger.io (and tell it the URL).
    assert b'"validatorUrl": null' in script.content


def test_report_only_mode_sends_the_policy_to_be_reported_not_enforced(tmp_path):
    env = production_env(tmp_path, CSP_REPORT_ONLY="true", CSP_REPORT_URI="/csp-reports/")

    (secure,) = answers(env, {"path": "/admin/login/", "secure": True})

    assert "Content-Security-Policy" not in secure["headers"]
    reported = secure["headers"]["Content-Security-Policy-Report-Only"]
    assert "script-src 'self'" in reported
    assert reported.endswith("report-uri /csp-reports/")


@pytest.mark.usefixtures("two_factor_required")
def test_the_sign_in_pages_are_served_under_the_policy_without_inline_code(
    client, operator_user, settings
):
    sign_in(client, operator_user.username)
    enrolment = client.get(reverse("two_factor:enrol"))
    device = pending_authenticator(operator_user)
    backup_codes = client.post(reverse("two_factor:enrol"), {"code": code(device)})
    client.logout()
    sign_in(client, operator_user.username)
    prompt = client.get(reverse("two_factor:verify"))
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        locked_out = sign_in(client, operator_user.username, "not the password")

    for name, response, status in [
        ("enrolment", enrolment, 200),
        ("backup codes", backup_codes, 200),
        ("code prompt", prompt, 200),
        ("lock-out", locked_out, 429),
    ]:
        assert response.status_code == status, name
        assert policy(response) == STRICT_POLICY, name
        assert inline_code(response) == [], name
