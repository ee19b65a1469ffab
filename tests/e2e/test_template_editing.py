"""End to end, in a real browser: client staff edit an SMS template with its live preview."""

import io
import re

import pytest
from django.core.management import call_command
from django.urls import reverse

pytestmark = [
    pytest.mark.e2e,
    # The role groups come from a data migration: they must survive the flush.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect


@pytest.fixture
def demo_data(scratch_var):
    # Before the browser starts: see tests/e2e/conftest.py.
    call_command("seed_demo", force=True, stdout=io.StringIO())


@pytest.fixture
def staff_page(demo_data, live_server, page):
    """The demo client staff of 8002, logged in to the admin, on the SMS template of ABC."""
    page.goto(live_server.url + reverse("admin:login"))
    page.fill("input[name=username]", "staff8002")
    page.fill("input[name=password]", "kokatto-staff8002-demo")
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_contain_text("staff8002")

    page.goto(live_server.url + reverse("admin:templates_app_contenttemplate_changelist"))
    sms_row = (
        page.locator("#result_list tbody tr").filter(has_text="8002/ABC").filter(has_text="SMS")
    )
    sms_row.get_by_role("link", name="8002/ABC").click()
    expect(page.locator("#preview-status")).to_contain_text("Up to date.")
    return page


def test_client_staff_edits_the_sms_template_with_a_live_preview_and_sees_the_new_version(
    staff_page,
):
    page = staff_page
    preview, sms = page.locator("#preview-body"), page.locator("#preview-sms")
    body = page.locator("textarea[name=body]")

    # The preview renders the stored template with the application's sample values.
    expect(preview).to_contain_text("Dear Mr. John Doe,")
    expect(preview).to_contain_text("Rp 1230000 due on 09-09-2015. Please ignore if you have paid.")
    # 136 characters, as sent: line breaks the browser posts as CRLF count once.
    expect(sms).to_contain_text("136 characters · GSM-7 · 1 segment(s)")

    # Changing a word updates the preview and the count, as they type.
    body.fill(body.input_value().replace("Please ignore", "Please disregard"))
    expect(preview).to_contain_text("Please disregard if you have paid.")
    expect(sms).to_contain_text("139 characters · GSM-7 · 1 segment(s)")

    # Saving records version 2, listed in the history with what changed.
    page.click("input[name=_continue]")
    expect(page.locator("ul.messagelist")).to_contain_text("Saved as version 2.")
    history = page.locator("#versions-group")
    expect(history).to_contain_text("changed body")
    newest, first = history.locator("tbody tr").nth(0), history.locator("tbody tr").nth(1)
    expect(newest.locator("td.field-number")).to_have_text("2")
    expect(newest.locator("td.field-created_by")).to_have_text("staff8002")
    expect(newest.locator("td.field-change_summary")).to_have_text("changed body")
    expect(first.locator("td.field-number")).to_have_text("1")
    expect(first.locator("td.field-change_summary")).to_have_text("demo data")
    expect(body).to_have_value(re.compile("Please disregard if you have paid."))


def test_the_preview_comes_from_the_server_renderer_and_counts_sms_segments(staff_page):
    page = staff_page
    preview, sms = page.locator("#preview-body"), page.locator("#preview-sms")
    body = page.locator("textarea[name=body]")
    stored = body.input_value()

    # The admin's preview endpoint renders it with the platform's format filters:
    # the sample balance 1230000 in rupiah.
    with page.expect_response(
        lambda response: (
            response.url.endswith("/contenttemplate/preview/") and response.request.method == "POST"
        )
    ) as rendered:
        body.fill(stored + " Total Rp [balance|rupiah].")
    assert rendered.value.ok
    expect(preview).to_contain_text("Total Rp 1.230.000.")

    # Markup typed into the text shows as text, never as an element.
    body.fill(stored + " <b>x</b>")
    expect(preview).to_contain_text("<b>x</b>")
    expect(preview.locator("b")).to_have_count(0)

    # One emoji forces UCS-2, with 67 units per segment: more segments.
    body.fill(stored)
    expect(sms).to_contain_text("GSM-7 · 1 segment(s)")
    body.fill(stored + " 🙂")
    expect(sms).to_contain_text("UCS-2 · 3 segment(s)")
