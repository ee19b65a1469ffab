"""Bounded work from one file: lines per batch, rejected lines stored, the file's size."""

import secrets
from pathlib import Path

import pytest

from batches.file_storage import batch_storage
from batches.models import RejectedLine
from notifications.models import Notification
from tests.batches.conftest import line, seven_zip
from tests.batches.test_ingest import ingest, result_rows

pytestmark = pytest.mark.django_db


def test_a_file_of_more_lines_than_the_limit_is_refused_before_any_line_is_stored(
    batch_home, batch_client, tmp_path, settings
):
    settings.BATCH_MAX_LINES = 5
    text = "".join(line(f"R-{n}") + "\n" for n in range(1, 7))

    batch = ingest(batch_client, "six.7z", seven_zip(tmp_path / "six.7z", text).read_bytes())

    assert (batch.status, batch.failure_code, batch.lines_read) == (
        "FAILED",
        "TOO_MANY_LINES",
        0,
    )
    assert result_rows(batch)[1:] == [
        ["0", "", "REJECTED", "TOO_MANY_LINES", batch.failure_message]
    ]
    assert "more than 5 lines" in batch.failure_message
    assert not Notification.objects.exists()
    assert batch_storage().exists(f"8002/failed/{batch.pk}-six.7z")


def test_a_file_of_exactly_the_limit_of_lines_is_ingested(
    batch_home, batch_client, tmp_path, settings
):
    settings.BATCH_MAX_LINES = 5
    text = "".join(line(f"R-{n}") + "\n" for n in range(1, 6))

    batch = ingest(batch_client, "five.7z", seven_zip(tmp_path / "five.7z", text).read_bytes())

    assert (batch.status, batch.lines_accepted) == ("DONE", 5)


def test_an_archive_of_garbage_lines_stops_at_the_line_limit_and_stores_no_rejection(
    batch_home, batch_client, tmp_path, settings
):
    """A small archive that unpacks to a flood of bad lines: refused as a whole, never
    turned into one rejection row a line."""
    settings.BATCH_MAX_LINES = 1_000
    text = "garbage\n" * 50_000

    batch = ingest(batch_client, "bomb.7z", seven_zip(tmp_path / "bomb.7z", text).read_bytes())

    assert (batch.status, batch.failure_code) == ("FAILED", "TOO_MANY_LINES")
    assert not RejectedLine.objects.exists()


def test_a_plain_csv_of_more_lines_than_the_limit_is_refused_too(
    batch_home, batch_client, settings
):
    batch_client.batch_encryption = "none"
    batch_client.save()
    settings.BATCH_MAX_LINES = 2
    text = line("P-1") + "\n" + line("P-2") + "\n" + line("P-3")  # no line break at the end

    batch = ingest(batch_client, "plain.csv", text.encode())

    assert (batch.status, batch.failure_code) == ("FAILED", "TOO_MANY_LINES")
    assert not Notification.objects.exists()


def test_rejections_past_the_limit_stop_the_batch_and_its_result_says_so(
    batch_home, batch_client, tmp_path, settings
):
    settings.BATCH_MAX_REJECTED_LINES = 3
    settings.BATCH_CHUNK_LINES = 2
    good, bad = {}, {"balance": "x"}
    kinds = [good, bad, good, bad, bad, good, bad, bad, good, good]
    text = "".join(line(f"R-{n}", **kind) + "\n" for n, kind in enumerate(kinds, start=1))

    batch = ingest(batch_client, "bad.7z", seven_zip(tmp_path / "bad.7z", text).read_bytes())

    assert (batch.status, batch.failure_code, batch.checkpoint_line) == (
        "FAILED",
        "TOO_MANY_REJECTIONS",
        6,
    )
    assert (batch.lines_read, batch.lines_accepted, batch.lines_rejected) == (6, 3, 3)
    assert RejectedLine.objects.filter(batch=batch).count() == 3
    assert sorted(Notification.objects.values_list("reference", flat=True)) == [
        "R-1",
        "R-3",
        "R-6",
    ]
    rows = result_rows(batch)
    assert rows[1][:4] == ["0", "", "REJECTED", "TOO_MANY_REJECTIONS"]
    assert "more than 3 lines were rejected" in rows[1][4]
    assert "Lines 1 to 6 are answered in this file" in rows[1][4]
    assert [row[0] for row in rows[2:]] == ["1", "2", "3", "4", "5", "6"]


def test_a_file_larger_than_the_limit_is_refused_without_a_scratch_copy(
    batch_home, batch_client, tmp_path, settings
):
    settings.BATCH_MAX_FILE_BYTES = 1_000
    # Names that do not compress: the archive is several kilobytes.
    text = "".join(line(f"R-{n}", customerName=secrets.token_hex(20)) + "\n" for n in range(100))
    archive = seven_zip(tmp_path / "large.7z", text)
    assert archive.stat().st_size > 1_000

    batch = ingest(batch_client, "large.7z", archive.read_bytes())

    assert (batch.status, batch.failure_code) == ("FAILED", "FILE_TOO_LARGE")
    assert "1,000 bytes" in batch.failure_message
    assert not Notification.objects.exists()
    # Kept in failed/, not left in the inbox to be taken again at every poll.
    assert batch_storage().exists(f"8002/failed/{batch.pk}-large.7z")
    assert not batch_storage().exists("8002/inbox/large.7z")
    assert list(Path(settings.BATCH_WORK_DIR).iterdir()) == []
