"""End to end, in a real browser: the admin and the API docs work under the
Content-Security-Policy, and what it forbids does not run.

The `page` fixture fails a test on any console error, which includes every
violation of the policy the browser reports.
"""

import io

import pytest
from django.core.management import call_command
from django.urls import reverse

from clients.models import Client
from templates_app.models import ContentTemplate

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

HOSTILE_HTML = '<img src="x" onerror="window.ran = 1"><script>window.ran = 1</script>'


@pytest.fixture
def demo_data(scratch_var):
    # Before the browser starts: see tests/e2e/conftest.py.
    call_command("seed_demo", force=True, stdout=io.StringIO())


def sign_in(page, live_server, username):
    page.goto(live_server.url + reverse("admin:login"))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", f"kokatto-{username}-demo")
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_contain_text(username)


def test_swagger_ui_lists_the_notif_operations(live_server, page):
    page.goto(live_server.url + "/api/docs/")

    operations = page.locator(".opblock-summary")
    expect(operations).to_have_count(2)
    expect(page.locator(".opblock-get .opblock-summary-path")).to_have_text("/notif")
    expect(page.locator(".opblock-post .opblock-summary-path")).to_have_text("/notif")
    # Opening an operation renders its parameters: the bundle's scripts run in full.
    operations.first.click()
    expect(page.locator(".opblock-get .parameters")).to_contain_text("clientNotifRefId")


@pytest.fixture
def client_pk(demo_data):
    return Client.objects.get(client_id="8002").pk


def test_operator_issues_a_secret_key_and_sees_it_styled_for_copying(client_pk, live_server, page):
    sign_in(page, live_server, "operator")
    page.goto(live_server.url + reverse("admin:clients_client_changelist"))

    page.check(f"input[name=_selected_action][value='{client_pk}']")
    page.select_option("select[name=action]", "generate_secret_key")
    page.click("button[name=index]")

    secret = page.locator("#issued-secret")
    expect(secret).not_to_be_empty()
    # Its style comes from a stylesheet file: the whole secret is selected by one click.
    # (Waited for: the page's element can be there before its stylesheet has loaded.)
    expect(secret).to_have_css("user-select", "all")


@pytest.fixture
def sms_template_pk(demo_data):
    return ContentTemplate.objects.get(application__code="ABC", medium="sms").pk


def test_a_template_version_page_colours_what_changed(sms_template_pk, live_server, page):
    sign_in(page, live_server, "staff8002")

    page.goto(
        live_server.url
        + reverse("admin:templates_app_contenttemplate_version", args=[sms_template_pk, 1])
    )

    added = page.locator("table.diff .diff_add").first
    expect(added).to_be_visible()
    assert added.evaluate("cell => getComputedStyle(cell).backgroundColor") == "rgb(204, 255, 204)"


@pytest.fixture
def email_template_pk(demo_data):
    return ContentTemplate.objects.get(application__code="ABC", medium="email").pk


def test_script_in_an_email_html_body_never_runs_in_the_preview(
    email_template_pk, live_server, page
):
    sign_in(page, live_server, "staff8002")
    page.goto(
        live_server.url
        + reverse("admin:templates_app_contenttemplate_change", args=[email_template_pk])
    )
    preview = page.locator("#preview-html_body")
    expect(preview).to_contain_text("PT Bank Demo Nusantara")

    page.locator("textarea[name=html_body]").fill(HOSTILE_HTML)

    # Shown as its source (sanitised: the renderer drops the script and the handler).
    expect(preview).to_contain_text('<img src="x">')
    expect(preview.locator("img, script")).to_have_count(0)
    assert page.evaluate("window.ran") is None


def test_an_inline_script_that_made_it_into_an_admin_page_is_not_run(
    demo_data, live_server, browser
):
    """A stored script (as a cross-site scripting flaw would leave it) in the served page."""
    context = browser.new_context()
    page = context.new_page()
    violations = []
    page.on("console", lambda message: violations.append(message.text))

    def with_injected_script(route):
        served = route.fetch()
        body = served.text().replace("</body>", "<script>window.ran = 1</script></body>")
        route.fulfill(response=served, body=body)

    sign_in(page, live_server, "operator")
    page.route(live_server.url + reverse("admin:index"), with_injected_script)
    page.goto(live_server.url + reverse("admin:index"))

    expect(page.locator("#content")).to_be_visible()
    assert page.evaluate("window.ran") is None
    assert any("Content Security Policy" in text for text in violations), violations
    context.close()
