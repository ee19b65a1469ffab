"""What client staff read of a failed batch (its result file, its admin page) is our own
words: never a library's message, a path of the platform's disk, or a traceback. The
operators' log has the detail."""

import io
import logging
import struct

import py7zr
import pytest

from batches.decryption import BatchFileError, ErrorCode, GivenCredentials, Limits, get_decryption
from batches.ingest import batch_ingest
from tests.admin.conftest import html
from tests.batches.conftest import PASSWORD, line, receive
from tests.batches.test_ingest import ingest, result_rows
from tests.batches.test_resilience import lease_runs_out, lines

pytestmark = pytest.mark.django_db

# Every CORRUPT_ARCHIVE message the platform writes: fixed texts, whatever py7zr said.
CORRUPT_MESSAGES = {
    "the file is not a 7z archive",
    "the archive's start header is damaged (CRC mismatch)",
    "the archive's header is damaged (CRC mismatch)",
    "the archive is truncated",
    "the archive's header cannot be read",
    "the archive's data is damaged",
    "the archive's data is damaged (CRC mismatch of the CSV)",
    "the archive's data is damaged (CRC mismatch of the packed data)",
    "the archive uses a method we cannot read; 7-Zip's defaults (LZMA2, AES-256) can be",
}
LIMITS = Limits(max_bytes=10**8, max_ratio=3000, max_lines=10**6)


def archive_with_a_plain_header() -> bytes:
    """A 7z archive whose header is not encrypted: damage to it reaches py7zr's parser."""
    out = io.BytesIO()
    text = "\n".join(line(f"R-{n}") for n in range(20)) + "\n"
    with py7zr.SevenZipFile(out, "w", password=PASSWORD, header_encryption=False) as archive:
        archive.writestr(text.encode(), "reminders.csv")
    return out.getvalue()


def refusal(data: bytes, workdir) -> BatchFileError | None:
    try:
        with get_decryption("7z").open_plaintext(
            io.BytesIO(data),
            credentials=GivenCredentials(password=PASSWORD),
            limits=LIMITS,
            workdir=workdir,
        ) as plaintext:
            plaintext.read()
    except BatchFileError as refused:
        return refused
    return None


def header_damage(data: bytes, workdir) -> list[tuple[bytes, BatchFileError]]:
    """Each byte of the archive's header region flipped in turn, and what was refused."""
    next_header = 32 + struct.unpack_from("<QQI", data, 12)[0]
    damaged = []
    for position in range(max(32, next_header - 120), len(data)):
        flipped = bytearray(data)
        flipped[position] ^= 0x55
        refused = refusal(bytes(flipped), workdir)
        if refused is not None and refused.code == ErrorCode.CORRUPT_ARCHIVE:
            damaged.append((bytes(flipped), refused))
    return damaged


def test_a_damaged_header_is_refused_in_our_words_and_py7zr_words_are_kept_for_the_log(
    tmp_path,
):
    damaged = header_damage(archive_with_a_plain_header(), tmp_path)

    assert {refused.message for _, refused in damaged} <= CORRUPT_MESSAGES
    # The library's messages ("coder property length value 95 exceeds …") were there.
    assert [refused.detail for _, refused in damaged if refused.detail]


def test_client_staff_see_a_fixed_message_for_a_damaged_archive_and_the_log_the_detail(
    batch_home, batch_client, tmp_path, staff_client, caplog
):
    archive, refused = next(
        (data, refused)
        for data, refused in header_damage(archive_with_a_plain_header(), tmp_path)
        if refused.detail
    )

    with caplog.at_level(logging.WARNING, logger="batches.ingest"):
        batch = ingest(batch_client, "damaged.7z", archive)

    assert (batch.failure_code, batch.failure_message) == ("CORRUPT_ARCHIVE", refused.message)
    assert result_rows(batch)[1][3:] == ["CORRUPT_ARCHIVE", refused.message]
    page = html(staff_client.get(f"/admin/batches/batch/{batch.pk}/change/"))
    assert refused.message.replace("'", "&#x27;") in page
    assert refused.detail.split(": ", 1)[1] not in page
    assert refused.detail in caplog.text


def test_a_storage_fault_shows_client_staff_no_path_and_no_traceback(
    batch_home, batch_client, tmp_path, settings, staff_client, caplog
):
    settings.BATCH_MAX_RUNS_WITHOUT_PROGRESS = 1
    batch = receive(batch_client, tmp_path, "o.7z", lines("O", 3))
    # The outbox cannot be written: the storage's error names the platform's disk.
    (batch_home / "8002" / "outbox").write_text("a file where the outbox folder should be")
    for _ in range(2):
        with pytest.raises(OSError, match=str(batch_home)):
            batch_ingest(batch_id=batch.pk)
        lease_runs_out(batch)

    assert batch_ingest(batch_id=batch.pk) == "FAILED"

    batch.refresh_from_db()
    page = html(staff_client.get(f"/admin/batches/batch/{batch.pk}/change/"))
    for seen_by_client in (batch.failure_message, page):
        assert str(tmp_path) not in seen_by_client
        assert "Traceback" not in seen_by_client
        assert "Errno" not in seen_by_client
    assert batch.failure_code == "INGEST_ERROR"
    assert str(batch_home) in caplog.text  # the operators' log: where it failed
