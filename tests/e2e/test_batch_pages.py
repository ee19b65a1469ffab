"""End to end, in a real browser: client staff look into a batch they uploaded.

They find it in the batch list, open it, page through its rejected lines, search
them, and download the result file.
"""

import io

import pytest
from django.core.management import call_command
from django.urls import reverse

from batches.inbox import batch_receive
from batches.ingest import batch_ingest
from clients.models import Client
from tests.batches.conftest import PASSWORD, line, seven_zip, upload

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

LINES = 130  # every line divisible by 2 or 13 is rejected: 70 of them


@pytest.fixture
def batch_id(settings, tmp_path):
    """A batch of 8002's, ingested: 60 lines accepted, 70 rejected (before the browser starts)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "batches": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "homes")},
        },
    }
    settings.BATCH_WORK_DIR = str(tmp_path / "work")
    call_command("seed_demo", force=True, stdout=io.StringIO())
    client = Client.objects.get(client_id="8002")
    client.set_batch_password(PASSWORD)
    client.save()
    text = "".join(
        line(f"NOV-{n:04d}", balance="12x" if n % 2 == 0 or n % 13 == 0 else "1230000") + "\n"
        for n in range(1, LINES + 1)
    )
    upload(client, "november.7z", seven_zip(tmp_path / "november.7z", text).read_bytes())
    batch = batch_receive(client=client, name="november.7z", queue=False)
    assert batch_ingest(batch_id=batch.pk) == "DONE"
    return batch.pk


def test_client_staff_page_and_search_a_batchs_rejected_lines_and_download_its_result(
    batch_id, live_server, page
):
    page.goto(live_server.url + reverse("admin:login"))
    page.fill("input[name=username]", "staff8002")
    page.fill("input[name=password]", "kokatto-staff8002-demo")
    page.click("input[type=submit]")
    page.goto(live_server.url + reverse("admin:batches_batch_changelist"))

    row = page.locator("#result_list tbody tr").filter(has_text="november.7z")
    expect(row.locator("td.field-status")).to_have_text("Done")
    expect(row.locator("td.field-lines_read")).to_have_text("130")
    expect(row.locator("td.field-lines_accepted")).to_have_text("60")
    expect(row.locator("td.field-lines_rejected")).to_have_text("70")
    row.get_by_role("link", name="november.7z").click()

    rejected = page.locator("#rejected-lines")
    lines = rejected.locator("tbody tr td:first-child")
    expect(rejected).to_contain_text("Page 1 of 2 (70 lines)")
    expect(lines).to_have_count(50)
    expect(lines.first).to_have_text("2")
    rejected.get_by_role("link", name="next").click()
    expect(rejected).to_contain_text("Page 2 of 2 (70 lines)")
    expect(lines).to_have_count(20)
    expect(lines.last).to_have_text("130")

    page.fill("#rejected-q", "NOV-0039")
    rejected.get_by_role("button", name="Search").click()
    expect(lines).to_have_count(1)
    expect(rejected.locator("tbody tr")).to_contain_text("VALIDATION_ERROR")
    expect(rejected.locator("tbody tr")).to_contain_text("balance")

    with page.expect_download() as download:
        page.get_by_role("link", name="november.result.7z").click()
    assert download.value.suggested_filename == "november.result.7z"
