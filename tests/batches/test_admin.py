"""The batch pages of the admin: operators see all, client staff only their own."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from batches.file_storage import batch_storage
from batches.inbox import batch_receive
from batches.ingest import batch_ingest
from batches.models import Batch, RejectedLine
from tests.admin.conftest import html, message_texts
from tests.batches.conftest import line, seven_zip, upload
from tests.factories import BatchFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ingested(batch_home, batch_client, tmp_path):
    lines = [line("OK-1"), line("BAD-1", balance="x"), line("OK-2"), line("BAD-2", balance="y")]
    archive = seven_zip(tmp_path / "march.7z", "\n".join(lines) + "\n")
    upload(batch_client, "march.7z", archive.read_bytes())
    batch = batch_receive(client=batch_client, name="march.7z", queue=False)
    batch_ingest(batch_id=batch.pk)
    batch.refresh_from_db()
    return batch


def cells(page: str, field: str) -> list[str]:
    """The text of a changelist column, row by row."""
    found = re.findall(rf'<t[dh] class="field-{field}[^"]*">(.*?)</t[dh]>', page, re.S)
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in found]


def test_the_batch_list_shows_counts_progress_and_the_result_link(operator_client, ingested):
    running = BatchFactory(
        client=ingested.client,
        file_name="april.7z",
        status="PROCESSING",
        lines_read=300,
        lines_accepted=290,
        lines_rejected=10,
        bytes_total=1000,
        bytes_done=400,
        started_at=timezone.now() - timedelta(seconds=125),
    )

    page = html(operator_client.get("/admin/batches/batch/"))

    assert cells(page, "file_name") == ["april.7z", "march.7z"]
    assert cells(page, "status") == ["Processing", "Done"]
    assert cells(page, "client") == [str(ingested.client)] * 2
    assert cells(page, "lines_read") == ["300", "4"]
    assert cells(page, "lines_accepted") == ["290", "2"]
    assert cells(page, "lines_rejected") == ["10", "2"]
    assert cells(page, "progress") == ["40%", "100%"]
    assert '<progress max="100" value="40"' in page
    assert cells(page, "duration")[0] == "2 min 05 s"
    assert cells(page, "result_file") == ["—", "march.result.7z"]
    assert f"/admin/batches/batch/{ingested.pk}/result/" in page
    assert f"/admin/batches/batch/{running.pk}/result/" not in page


def test_the_result_file_downloads_from_the_admin(operator_client, ingested):
    response = operator_client.get(f"/admin/batches/batch/{ingested.pk}/result/")

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="march.result.7z"'
    assert b"".join(response.streaming_content).startswith(b"7z\xbc\xaf\x27\x1c")


def test_the_batch_page_links_to_its_rejected_lines_which_are_searchable(operator_client, ingested):
    page = html(operator_client.get(f"/admin/batches/batch/{ingested.pk}/change/"))
    assert "2 rejected lines" in page

    rejected = operator_client.get(f"/admin/batches/rejectedline/?batch={ingested.pk}")
    assert [r.line for r in rejected.context["cl"].result_list] == [2, 4]

    searched = operator_client.get(f"/admin/batches/rejectedline/?batch={ingested.pk}&q=BAD-2")
    assert [r.reference for r in searched.context["cl"].result_list] == ["BAD-2"]


def rejected_on_page(page: str) -> list[str]:
    section = page[page.index('id="rejected-lines"') :]
    return re.findall(r"<tr><td>(\d+)</td>", section)


def test_the_batch_page_shows_its_rejected_lines_a_page_at_a_time(operator_client, many_rejections):
    url = f"/admin/batches/batch/{many_rejections.pk}/change/"
    with CaptureQueriesContext(connection) as queries:
        first = html(operator_client.get(url))

    assert rejected_on_page(first) == [str(n) for n in range(1, 51)]
    assert "Page 1 of 3 (120 lines)" in first
    assert "rejected_page=2#rejected-lines" in first
    # The count is the batch's counter: a big batch's page does not count its rows.
    assert not [q for q in queries if "COUNT(" in q["sql"] and "rejectedline" in q["sql"]]
    last = html(operator_client.get(url + "?rejected_page=3"))
    assert rejected_on_page(last) == [str(n) for n in range(101, 121)]


@pytest.mark.parametrize(
    ("search", "lines"),
    [
        ("REF-77", ["77"]),
        ("duplicate_reference", [str(n) for n in range(2, 101, 2)]),
        ("value 11", ["11", "110", "111", "112", "113", "114", "115", "116", "117", "118", "119"]),
    ],
    ids=["reference", "code", "message"],
)
def test_the_batch_pages_rejected_lines_are_searchable(
    operator_client, many_rejections, search, lines
):
    url = f"/admin/batches/batch/{many_rejections.pk}/change/"

    page = html(operator_client.get(url, {"rejected_q": search}))

    assert rejected_on_page(page) == lines


def test_the_rejected_lines_list_filters_a_batchs_lines_by_the_codes_it_has(
    operator_client, many_rejections
):
    url = f"/admin/batches/rejectedline/?batch={many_rejections.pk}"

    [code_filter] = [
        spec for spec in operator_client.get(url).context["cl"].filter_specs if spec.title == "code"
    ]
    filtered = operator_client.get(url + "&code=DUPLICATE_REFERENCE").context["cl"]

    assert [value for value, _ in code_filter.lookup_choices] == [
        "DUPLICATE_REFERENCE",
        "VALIDATION_ERROR",
    ]
    assert [r.line for r in filtered.result_list] == list(range(2, 121, 2))
    # Without a batch, no code is offered: listing them would read the whole table.
    unfiltered = operator_client.get("/admin/batches/rejectedline/").context["cl"]
    assert "code" not in [spec.title for spec in unfiltered.filter_specs]


def test_client_staff_never_see_another_clients_batch_page_or_its_rejected_lines(
    staff_client, client_8003
):
    other = BatchFactory(client=client_8003, status="DONE", lines_read=1, lines_rejected=1)
    RejectedLine.objects.create(batch=other, line=1, reference="SECRET-8003", code="X", message="m")

    for query in ("", "?rejected_q=SECRET-8003"):
        response = staff_client.get(f"/admin/batches/batch/{other.pk}/change/{query}")
        assert response.status_code == 302
        assert "SECRET-8003" not in html(staff_client.get(response.url))
    # Nor the codes of its rejections, through the rejected lines' filters.
    listed = staff_client.get(f"/admin/batches/rejectedline/?batch={other.pk}&code=X")
    assert list(listed.context["cl"].result_list) == []
    assert "code" not in [spec.title for spec in listed.context["cl"].filter_specs]


def test_client_staff_see_their_batches_and_not_another_clients(
    staff_client, ingested, client_8003
):
    other = BatchFactory(client=client_8003, file_name="other-client.7z")

    listed = staff_client.get("/admin/batches/batch/").context["cl"].result_list
    assert list(listed) == [ingested]
    assert staff_client.get(f"/admin/batches/batch/{other.pk}/change/").status_code == 302
    assert staff_client.get(f"/admin/batches/batch/{other.pk}/result/").status_code == 404
    assert staff_client.get(f"/admin/batches/batch/{ingested.pk}/result/").status_code == 200


def test_an_operator_reprocesses_a_failed_batch_after_the_password_is_fixed(
    operator_client, batch_home, batch_client, tmp_path, django_capture_on_commit_callbacks
):
    archive = seven_zip(tmp_path / "april.7z", line("APR-1") + "\n", password="old-password")
    upload(batch_client, "april.7z", archive.read_bytes())
    batch = batch_receive(client=batch_client, name="april.7z", queue=False)
    assert batch_ingest(batch_id=batch.pk) == "FAILED"
    batch_client.set_batch_password("old-password")
    batch_client.save()

    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = operator_client.post(
            "/admin/batches/batch/",
            {"action": "reprocess", "_selected_action": [batch.pk]},
            follow=True,
        )
    assert "1 failed batch(es) queued again." in message_texts(response)
    assert len(queued) == 1
    assert batch_ingest(batch_id=batch.pk) == "DONE"
    batch.refresh_from_db()
    assert (batch.status, batch.lines_accepted, batch.failure_code) == ("DONE", 1, "")
    # The original moved on from failed/ to archive/.
    assert batch.archived_path == f"8002/archive/{batch.pk}-april.7z"
    assert not batch_storage().exists(f"8002/failed/{batch.pk}-april.7z")
    assert batch_storage().exists(batch.archived_path)


def test_client_staff_cannot_reprocess(staff_client, batch_client):
    batch = BatchFactory(client=batch_client, status="FAILED")

    response = staff_client.post(
        "/admin/batches/batch/", {"action": "reprocess", "_selected_action": [batch.pk]}
    )

    assert response.status_code in (200, 302)
    batch.refresh_from_db()
    assert batch.status == "FAILED"
    assert Batch.objects.filter(status="RECEIVED").count() == 0


def test_client_staff_never_see_another_clients_rejected_lines(staff_client, client_8003):
    other = BatchFactory(client=client_8003, file_name="other-client.7z")
    RejectedLine.objects.create(
        batch=other, line=7, reference="SECRET-8003", code="VALIDATION_ERROR", message="x"
    )

    for url in (
        "/admin/batches/rejectedline/",
        f"/admin/batches/rejectedline/?batch={other.pk}",
        "/admin/batches/rejectedline/?q=SECRET-8003",
    ):
        response = staff_client.get(url)
        assert list(response.context["cl"].result_list) == []
        assert "other-client.7z" not in html(response)
