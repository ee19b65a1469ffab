"""Ingesting a batch end to end on local disk: lines in, notifications out, a result file back."""

import csv
import io
import tempfile
from pathlib import Path

import py7zr
import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

from batches.file_storage import batch_storage
from batches.inbox import batch_receive
from batches.ingest import batch_ingest
from batches.models import Batch, RejectedLine
from notifications.models import Delivery, Notification
from tests.batches.conftest import PASSWORD, line, queued, seven_zip, upload
from tests.factories import ApplicationFactory, ClientFactory

pytestmark = pytest.mark.django_db


def ingest(client, name, content: bytes) -> Batch:
    upload(client, name, content)
    batch = batch_receive(client=client, name=name, queue=False)
    batch_ingest(batch_id=batch.pk)
    batch.refresh_from_db()
    return batch


def result_rows(batch: Batch) -> list[list[str]]:
    with batch_storage().open(batch.result_path, "rb") as stored:
        data = stored.read()
    if batch.result_path.endswith(".7z"):
        with (
            tempfile.TemporaryDirectory() as unpacked,
            py7zr.SevenZipFile(io.BytesIO(data), password=PASSWORD) as archive,
        ):
            archive.extractall(path=unpacked)
            [member] = Path(unpacked).iterdir()
            data = member.read_bytes()
    return list(csv.reader(io.StringIO(data.decode())))


def test_an_encrypted_batch_becomes_notifications_and_an_encrypted_result(
    batch_home, batch_client, tmp_path
):
    text = "\n".join(line(f"REF-{n}") for n in range(1, 4)) + "\n"
    archive = seven_zip(tmp_path / "reminders.7z", text)

    batch = ingest(batch_client, "reminders.7z", archive.read_bytes())

    assert (batch.status, batch.lines_read, batch.lines_accepted, batch.lines_rejected) == (
        "DONE",
        3,
        3,
        0,
    )
    notifications = Notification.objects.filter(batch=batch).order_by("batch_line")
    assert [(n.reference, n.batch_line, n.source) for n in notifications] == [
        ("REF-1", 1, "batch"),
        ("REF-2", 2, "batch"),
        ("REF-3", 3, "batch"),
    ]
    assert Delivery.objects.filter(notification__batch=batch, status="PENDING").count() == 3
    assert batch.result_path == "8002/outbox/reminders.result.7z"
    assert result_rows(batch) == [
        ["line", "clientNotifRefId", "status", "code", "message"],
        ["1", "REF-1", "ACCEPTED", "", ""],
        ["2", "REF-2", "ACCEPTED", "", ""],
        ["3", "REF-3", "ACCEPTED", "", ""],
    ]
    storage = batch_storage()
    assert not storage.exists("8002/inbox/reminders.7z")
    assert storage.exists(f"8002/archive/{batch.pk}-reminders.7z")


def test_bad_lines_are_rejected_one_by_one_and_the_good_ones_accepted(
    batch_home, batch_client, tmp_path
):
    ClientFactory(client_id="8003")
    ApplicationFactory(client=batch_client, code="OLD", is_active=False)
    lines = [
        line("GOOD-1"),
        line("BAD-BALANCE", balance="12x"),
        line("OTHER-CLIENT", clientId="8003"),
        line("NO-APP", appType="NOPE"),
        line("INACTIVE-APP", appType="OLD"),
        line("GOOD-1"),
        "clientId=8002, appType=ABC, oops",
        "",
        line("GOOD-2"),
    ]
    archive = seven_zip(tmp_path / "mixed.7z", "\r\n".join(lines) + "\r\n")

    batch = ingest(batch_client, "mixed.7z", archive.read_bytes())

    assert (batch.status, batch.lines_read, batch.lines_accepted, batch.lines_rejected) == (
        "DONE",
        8,
        2,
        6,
    )
    rows = result_rows(batch)
    assert [row[:4] for row in rows[1:]] == [
        ["1", "GOOD-1", "ACCEPTED", ""],
        ["2", "BAD-BALANCE", "REJECTED", "VALIDATION_ERROR"],
        ["3", "OTHER-CLIENT", "REJECTED", "CLIENT_MISMATCH"],
        ["4", "NO-APP", "REJECTED", "UNKNOWN_APP_TYPE"],
        ["5", "INACTIVE-APP", "REJECTED", "CLIENT_INACTIVE"],
        ["6", "GOOD-1", "REJECTED", "DUPLICATE_REFERENCE"],
        ["7", "", "REJECTED", "MALFORMED_TOKEN"],
        ["9", "GOOD-2", "ACCEPTED", ""],
    ]
    assert "balance" in rows[2][4]
    # A line for another client is never accepted under that client.
    assert not Notification.objects.filter(client__client_id="8003").exists()
    assert RejectedLine.objects.filter(batch=batch).count() == 6


def test_a_line_takes_its_platform_parameters_out_but_refuses_a_request_only_one(
    batch_home, batch_client, tmp_path
):
    lines = [
        line("TIMED", sendAt="2035-01-01T08:00:00+07:00", expiresAt="2035-01-02T08:00:00+07:00"),
        line("SIGNED", signature="abc"),
        line("OPERATED", operation="create"),
    ]
    archive = seven_zip(tmp_path / "parameters.7z", "\n".join(lines) + "\n")

    batch = ingest(batch_client, "parameters.7z", archive.read_bytes())

    rows = result_rows(batch)
    assert [row[:4] for row in rows[1:]] == [
        ["1", "TIMED", "ACCEPTED", ""],
        ["2", "SIGNED", "REJECTED", "VALIDATION_ERROR"],
        ["3", "OPERATED", "REJECTED", "VALIDATION_ERROR"],
    ]
    assert "Unknown field" in rows[2][4] and "'signature'" in rows[2][4]
    assert "Unknown field" in rows[3][4] and "'operation'" in rows[3][4]


def test_a_reference_already_used_through_the_api_is_a_duplicate(
    batch_home, batch_client, tmp_path
):
    from notifications.intake import notification_create

    notification_create(
        client=batch_client,
        application_code="ABC",
        reference="TAKEN",
        values={
            "customerName": "A",
            "balance": "1",
            "dueDate": "09-09-2035",
            "msisdn": "0812345678",
        },
    )
    archive = seven_zip(tmp_path / "dup.7z", line("TAKEN") + "\n" + line("FREE") + "\n")

    batch = ingest(batch_client, "dup.7z", archive.read_bytes())

    assert [row[2:4] for row in result_rows(batch)[1:]] == [
        ["REJECTED", "DUPLICATE_REFERENCE"],
        ["ACCEPTED", ""],
    ]


def test_a_reference_used_by_an_earlier_batch_is_a_duplicate_and_keeps_its_first_line(
    batch_home, batch_client, tmp_path
):
    monday = seven_zip(tmp_path / "mon.7z", line("INV-1") + "\n" + line("INV-2") + "\n")
    first = ingest(batch_client, "monday.7z", monday.read_bytes())
    tuesday = seven_zip(tmp_path / "tue.7z", line("INV-2") + "\n" + line("INV-3") + "\n")

    second = ingest(batch_client, "tuesday.7z", tuesday.read_bytes())

    assert [row[1:4] for row in result_rows(second)[1:]] == [
        ["INV-2", "REJECTED", "DUPLICATE_REFERENCE"],
        ["INV-3", "ACCEPTED", ""],
    ]
    assert Notification.objects.get(reference="INV-2").batch == first
    assert (second.lines_accepted, second.lines_rejected) == (1, 1)


def test_accepted_lines_reach_the_delivery_pipeline_at_most_one_dispatch_task_a_chunk(
    batch_home, batch_client, tmp_path, settings, broker, django_capture_on_commit_callbacks
):
    settings.BATCH_CHUNK_LINES = 2
    references = ["A", "B", "C", "D", "E"]
    text = "".join(line(reference) + "\n" for reference in references)
    upload(batch_client, "five.7z", seven_zip(tmp_path / "five.7z", text).read_bytes())
    batch = batch_receive(client=batch_client, name="five.7z", queue=False)

    with django_capture_on_commit_callbacks(execute=True):
        assert batch_ingest(batch_id=batch.pk) == "DONE"

    # Three chunks (2 + 2 + 1 lines): a task each, not one a line; with Redis one only,
    # as no dispatch run started meanwhile (notifications/dispatch_queue.py).
    tasks = 1 if isinstance(caches["default"], RedisCache) else 3
    assert queued(broker) == [("notifications.tasks.dispatch_deliveries", ())] * tasks


def test_a_reference_repeated_in_a_later_chunk_or_twice_in_one_is_a_duplicate(
    batch_home, batch_client, tmp_path, settings
):
    settings.BATCH_CHUNK_LINES = 2
    references = ["A", "B", "C", "A", "D", "D", "B"]
    text = "".join(line(reference) + "\n" for reference in references)

    batch = ingest(batch_client, "chunks.csv.7z", seven_zip(tmp_path / "c.7z", text).read_bytes())

    assert [row[1:4] for row in result_rows(batch)[1:]] == [
        ["A", "ACCEPTED", ""],
        ["B", "ACCEPTED", ""],
        ["C", "ACCEPTED", ""],
        ["A", "REJECTED", "DUPLICATE_REFERENCE"],
        ["D", "ACCEPTED", ""],
        ["D", "REJECTED", "DUPLICATE_REFERENCE"],
        ["B", "REJECTED", "DUPLICATE_REFERENCE"],
    ]
    assert (batch.lines_read, batch.lines_accepted, batch.lines_rejected) == (7, 4, 3)
    stored = Notification.objects.filter(batch=batch).order_by("batch_line")
    assert [(n.reference, n.batch_line) for n in stored] == [
        ("A", 1),
        ("B", 2),
        ("C", 3),
        ("D", 5),
    ]


def test_each_medium_of_a_line_gets_a_pending_delivery_due_at_its_send_at(
    batch_home, batch_client, tmp_path
):
    text = (
        line(
            "BOTH",
            email="budi@example.co.id",
            sendAt="2035-01-02T09:00:00+07:00",
            expiresAt="2035-01-03T00:00:00+07:00",
        )
        + "\n"
        + line("NOW")
        + "\n"
    )

    batch = ingest(batch_client, "media.7z", seven_zip(tmp_path / "m.7z", text).read_bytes())

    both = Notification.objects.get(batch=batch, reference="BOTH")
    assert both.params["email"] == "budi@example.co.id"
    assert both.expires_at.isoformat() == "2035-01-02T17:00:00+00:00"
    assert sorted(
        (d.medium, d.recipient, d.status, d.next_attempt_at.isoformat())
        for d in both.deliveries.all()
    ) == [
        ("email", "budi@example.co.id", "PENDING", "2035-01-02T02:00:00+00:00"),
        ("sms", "+6281234567890", "PENDING", "2035-01-02T02:00:00+00:00"),
    ]
    now = Notification.objects.get(batch=batch, reference="NOW")
    [delivery] = now.deliveries.all()
    assert (delivery.medium, delivery.next_attempt_at) == ("sms", now.created_at)


def test_the_same_bytes_uploaded_again_are_a_duplicate_and_touch_nothing(
    batch_home, batch_client, tmp_path
):
    archive = seven_zip(tmp_path / "once.7z", line("ONCE") + "\n").read_bytes()
    first = ingest(batch_client, "once.7z", archive)

    again = ingest(batch_client, "once.7z", archive)

    assert again.status == "DUPLICATE"
    assert again.duplicate_of == first
    assert again.sha256 == first.sha256
    assert not batch_storage().exists("8002/inbox/once.7z")
    assert Notification.objects.count() == 1
    [_, row] = result_rows(again)
    assert row[:4] == ["0", "", "REJECTED", "DUPLICATE_FILE"]
    # The first file's result is still there, untouched.
    assert result_rows(first)[1][:3] == ["1", "ONCE", "ACCEPTED"]
    assert first.result_path != again.result_path


def test_the_bytes_of_a_failed_batch_uploaded_again_are_a_duplicate_that_says_what_to_do(
    batch_home, batch_client, tmp_path
):
    archive = seven_zip(tmp_path / "l.7z", line("L") + "\n", password="not-the-password")
    failed = ingest(batch_client, "locked.7z", archive.read_bytes())

    again = ingest(batch_client, "locked-again.7z", archive.read_bytes())

    assert (again.status, again.duplicate_of) == ("DUPLICATE", failed)
    [_, row] = result_rows(again)
    assert row[3] == "DUPLICATE_FILE"
    assert f"(batch {failed.pk}, FAILED)" in row[4]
    assert "That batch failed (WRONG_PASSWORD): support can reprocess it" in row[4]


def test_a_wrong_password_fails_the_batch_with_a_result_saying_so(
    batch_home, batch_client, tmp_path
):
    archive = seven_zip(tmp_path / "locked.7z", line("X") + "\n", password="not-the-password")

    batch = ingest(batch_client, "locked.7z", archive.read_bytes())

    assert (batch.status, batch.failure_code) == ("FAILED", "WRONG_PASSWORD")
    assert result_rows(batch)[1][:4] == ["0", "", "REJECTED", "WRONG_PASSWORD"]
    assert batch_storage().exists(f"8002/failed/{batch.pk}-locked.7z")
    assert not Notification.objects.exists()


def test_a_damaged_archive_fails_the_batch_with_a_result_saying_so(
    batch_home, batch_client, tmp_path
):
    archive = seven_zip(tmp_path / "cut.7z", line("X") + "\n").read_bytes()

    batch = ingest(batch_client, "cut.7z", archive[: len(archive) // 2])

    assert (batch.status, batch.failure_code) == ("FAILED", "CORRUPT_ARCHIVE")
    assert result_rows(batch)[1][:4] == ["0", "", "REJECTED", "CORRUPT_ARCHIVE"]
    assert batch_storage().exists(f"8002/failed/{batch.pk}-cut.7z")
    assert not Notification.objects.exists()


def test_an_archive_expanding_past_the_configured_size_fails_before_any_line_is_stored(
    batch_home, batch_client, tmp_path, settings
):
    settings.BATCH_MAX_UNCOMPRESSED_BYTES = 10_000
    text = "".join(line(f"BIG-{n}") + "\n" for n in range(200))  # about 30 kB

    batch = ingest(batch_client, "big.7z", seven_zip(tmp_path / "big.7z", text).read_bytes())

    assert (batch.status, batch.failure_code, batch.lines_read) == (
        "FAILED",
        "ARCHIVE_TOO_LARGE",
        0,
    )
    assert "the limit is 10,000" in batch.failure_message
    assert not Notification.objects.exists()


def test_an_unencrypted_archive_is_refused_and_deleted_not_kept(batch_home, batch_client, tmp_path):
    buffer = io.BytesIO()
    with py7zr.SevenZipFile(buffer, "w") as archive:
        archive.writestr((line("CLEAR") + "\n").encode(), "reminders.csv")

    batch = ingest(batch_client, "clear.7z", buffer.getvalue())

    assert (batch.status, batch.failure_code, batch.archived_path) == (
        "FAILED",
        "NOT_ENCRYPTED",
        "",
    )
    assert result_rows(batch)[1][:4] == ["0", "", "REJECTED", "NOT_ENCRYPTED"]
    assert "deleted, not kept" in result_rows(batch)[1][4]
    kept = sorted(str(p.relative_to(batch_home)) for p in batch_home.rglob("*") if p.is_file())
    assert kept == [f"8002/outbox/{Path(batch.result_path).name}"]
    assert not Notification.objects.exists()


def test_an_unencrypted_archive_uploaded_again_is_a_duplicate_and_not_kept_either(
    batch_home, batch_client
):
    buffer = io.BytesIO()
    with py7zr.SevenZipFile(buffer, "w") as archive:
        archive.writestr((line("CLEAR") + "\n").encode(), "reminders.csv")
    first = ingest(batch_client, "clear.7z", buffer.getvalue())

    again = ingest(batch_client, "clear.7z", buffer.getvalue())

    assert (again.status, again.duplicate_of, again.archived_path) == ("DUPLICATE", first, "")
    assert "refused as not encrypted: upload it encrypted" in result_rows(again)[1][4]
    assert not [p for p in batch_home.rglob("*") if p.is_file() and "/outbox/" not in str(p)]


def test_a_plain_csv_client_gets_a_plain_result(batch_home, batch_client):
    batch_client.batch_encryption = "none"
    batch_client.save()

    batch = ingest(batch_client, "plain.csv", (line("P-1") + "\n").encode())

    assert batch.status == "DONE"
    assert batch.result_path == "8002/outbox/plain.result.csv"
    assert result_rows(batch)[1][:3] == ["1", "P-1", "ACCEPTED"]


def test_a_run_removes_the_scratch_files_a_killed_run_left_behind(
    batch_home, batch_client, tmp_path, settings
):
    archive = seven_zip(tmp_path / "again.7z", line("AGAIN-1") + "\n")
    upload(batch_client, "again.7z", archive.read_bytes())
    batch = batch_receive(client=batch_client, name="again.7z", queue=False)
    left_behind = Path(settings.BATCH_WORK_DIR) / f"batch-{batch.pk}-dead" / "plaintext.csv"
    left_behind.parent.mkdir(parents=True)
    left_behind.write_text(line("CUSTOMER-DATA") + "\n")

    assert batch_ingest(batch_id=batch.pk) == "DONE"

    assert list(Path(settings.BATCH_WORK_DIR).iterdir()) == []


def test_ingesting_a_finished_batch_again_answers_its_status_and_does_nothing(
    batch_home, batch_client, tmp_path
):
    archive = seven_zip(tmp_path / "done.7z", line("DONE-1") + "\n")
    batch = ingest(batch_client, "done.7z", archive.read_bytes())

    assert batch_ingest(batch_id=batch.pk) == "DONE"
    assert Notification.objects.count() == 1


def test_a_send_at_with_no_utc_form_rejects_its_line_and_the_others_are_stored(
    batch_home, batch_client, tmp_path
):
    text = f"{line('BEFORE')}\n{line('YEAR-1', sendAt='0001-01-01T00:00:00')}\n{line('AFTER')}\n"

    batch = ingest(batch_client, "y.7z", seven_zip(tmp_path / "y.7z", text).read_bytes())

    assert batch.status == "DONE"
    assert [row[1:4] for row in result_rows(batch)[1:]] == [
        ["BEFORE", "ACCEPTED", ""],
        ["YEAR-1", "REJECTED", "VALIDATION_ERROR"],
        ["AFTER", "ACCEPTED", ""],
    ]
