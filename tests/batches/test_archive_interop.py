"""Archives made by 7-Zip itself are read, and the platform's results open in 7-Zip.

Clients make their batch files with 7-Zip, not py7zr: the `7z` program (Debian's `p7zip-full`,
or `7zip` from trixie on) or `7zz` (Debian bookworm's `7zip` package) must be on the machine.
Without it these tests skip on a developer's machine and fail in CI (CI=true), so CI never
passes without having run them.
"""

import csv
import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from batches.file_storage import batch_storage
from batches.inbox import batch_receive
from batches.ingest import batch_ingest
from batches.models import Batch
from notifications.models import Notification
from tests.batches.conftest import PASSWORD, line, seven_zip, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def seven_zip_program() -> str:
    program = shutil.which("7z") or shutil.which("7zz")
    if program is None:
        message = "7-Zip's command line (7z or 7zz) is not installed: apt-get install 7zip"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return program


def run_7z(program: str, *args: str, cwd: Path) -> None:
    subprocess.run(
        [program, *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,  # never wait for a password prompt
    )


def ingest(client, name: str, content: bytes) -> Batch:
    upload(client, name, content)
    batch = batch_receive(client=client, name=name, queue=False)
    batch_ingest(batch_id=batch.pk)
    batch.refresh_from_db()
    return batch


HEADER_ENCRYPTION = pytest.mark.parametrize(
    "header_encryption",
    [
        pytest.param("-mhe=on", id="names-encrypted"),
        pytest.param("-mhe=off", id="names-visible"),
    ],
)


@HEADER_ENCRYPTION
def test_an_archive_made_by_7zip_is_ingested_end_to_end(
    batch_home, batch_client, seven_zip_program, tmp_path, header_encryption
):
    (tmp_path / "reminders.csv").write_text(
        "".join(line(f"7ZIP-{n}") + "\r\n" for n in (1, 2, 3)), encoding="utf-8"
    )
    run_7z(
        seven_zip_program,
        "a",
        f"-p{PASSWORD}",
        header_encryption,
        "x.7z",
        "reminders.csv",
        cwd=tmp_path,
    )

    batch = ingest(batch_client, "x.7z", (tmp_path / "x.7z").read_bytes())

    assert (batch.status, batch.lines_read, batch.lines_accepted) == ("DONE", 3, 3)
    assert sorted(Notification.objects.values_list("reference", flat=True)) == [
        "7ZIP-1",
        "7ZIP-2",
        "7ZIP-3",
    ]
    result = tmp_path / "x.result.7z"
    with batch_storage().open(batch.result_path, "rb") as stored:
        result.write_bytes(stored.read())
    run_7z(seven_zip_program, "x", f"-p{PASSWORD}", "-oout", str(result), cwd=tmp_path)
    rows = list(csv.reader(io.StringIO((tmp_path / "out" / "x.result.csv").read_text())))
    assert [row[:3] for row in rows[1:]] == [
        ["1", "7ZIP-1", "ACCEPTED"],
        ["2", "7ZIP-2", "ACCEPTED"],
        ["3", "7ZIP-3", "ACCEPTED"],
    ]


@HEADER_ENCRYPTION
def test_a_7zip_archive_with_another_password_is_a_wrong_password(
    batch_home, batch_client, seven_zip_program, tmp_path, header_encryption
):
    (tmp_path / "reminders.csv").write_text(line("LOCKED") + "\n", encoding="utf-8")
    run_7z(
        seven_zip_program,
        "a",
        "-pnot-the-password",
        header_encryption,
        "locked.7z",
        "reminders.csv",
        cwd=tmp_path,
    )

    batch = ingest(batch_client, "locked.7z", (tmp_path / "locked.7z").read_bytes())

    assert (batch.status, batch.failure_code) == ("FAILED", "WRONG_PASSWORD")
    assert not Notification.objects.exists()


def test_7zip_extracts_the_result_file_the_platform_wrote(
    batch_home, batch_client, seven_zip_program, tmp_path
):
    archive = seven_zip(
        tmp_path / "monthly.7z", line("OK-1") + "\n" + line("BAD-1", balance="x") + "\n"
    )
    batch = ingest(batch_client, "monthly.7z", archive.read_bytes())
    result = tmp_path / "downloaded.7z"
    with batch_storage().open(batch.result_path, "rb") as stored:
        result.write_bytes(stored.read())

    run_7z(seven_zip_program, "x", f"-p{PASSWORD}", "-ounpacked", str(result), cwd=tmp_path)

    [member] = (tmp_path / "unpacked").iterdir()
    assert member.name == "monthly.result.csv"
    rows = list(csv.reader(io.StringIO(member.read_text(encoding="utf-8"))))
    assert rows[0] == ["line", "clientNotifRefId", "status", "code", "message"]
    assert [row[:4] for row in rows[1:]] == [
        ["1", "OK-1", "ACCEPTED", ""],
        ["2", "BAD-1", "REJECTED", "VALIDATION_ERROR"],
    ]
    assert rows[2][4].startswith("balance:")


def test_7zip_refuses_the_result_file_without_the_password(
    batch_home, batch_client, seven_zip_program, tmp_path
):
    archive = seven_zip(tmp_path / "monthly.7z", line("OK-1") + "\n")
    batch = ingest(batch_client, "monthly.7z", archive.read_bytes())
    result = tmp_path / "downloaded.7z"
    with batch_storage().open(batch.result_path, "rb") as stored:
        result.write_bytes(stored.read())

    listing = subprocess.run(
        [seven_zip_program, "l", "-pwrong", str(result)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )

    # Header encryption: not even the member's name shows without the password.
    assert listing.returncode != 0
    assert "monthly.result.csv" not in listing.stdout
