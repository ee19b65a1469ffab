"""Faults around a batch: a run that dies, a client that uploads again, a bad byte, reprocessing."""

import io
import os
import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.utils import timezone

from batches.file_storage import batch_storage
from batches.inbox import batch_receive
from batches.ingest import batch_ingest, batch_reprocess
from batches.line_checking import LineCheckerFailed
from batches.models import Batch, RejectedLine
from notifications.models import Notification
from tests.batches.conftest import line, receive, seven_zip, upload
from tests.batches.test_ingest import result_rows

pytestmark = pytest.mark.django_db


class WorkerDied(Exception):
    pass


def dies(_batch):
    raise WorkerDied


def lease_runs_out(batch: Batch, **changes) -> None:
    """As time would: the batch's last run's lease is over (with `changes` to its row)."""
    Batch.objects.filter(pk=batch.pk).update(
        lease_expires_at=timezone.now() - timedelta(1), **changes
    )


def lines(prefix: str, count: int) -> str:
    return "\n".join(line(f"{prefix}-{n}") for n in range(1, count + 1)) + "\n"


def test_a_run_resumed_after_a_new_upload_of_the_same_name_finishes_the_first_file(
    batch_home, batch_client, tmp_path, settings
):
    settings.BATCH_CHUNK_LINES = 2
    batch = receive(batch_client, tmp_path, "daily.7z", lines("MON", 4))
    with pytest.raises(WorkerDied):
        batch_ingest(batch_id=batch.pk, progress=dies)  # dies after its first chunk
    tuesday = seven_zip(tmp_path / "t.7z", lines("TUE", 4)).read_bytes()
    (batch_home / "8002" / "inbox" / "daily.7z").write_bytes(tuesday)
    lease_runs_out(batch)

    assert batch_ingest(batch_id=batch.pk) == "DONE"

    assert list(
        Notification.objects.filter(batch=batch).order_by("batch_line").values_list("reference")
    ) == [("MON-1",), ("MON-2",), ("MON-3",), ("MON-4",)]
    # Tuesday's upload is still in the inbox, for the next polls to take.
    assert (batch_home / "8002" / "inbox" / "daily.7z").read_bytes() == tuesday


def test_a_nul_byte_in_a_reference_rejects_that_line_only(batch_home, batch_client, tmp_path):
    text = line("GOOD-1") + "\n" + line("BAD\x00REF") + "\n" + line("GOOD-2") + "\n"
    batch = receive(batch_client, tmp_path, "nul.7z", text)

    assert batch_ingest(batch_id=batch.pk) == "DONE"

    [rejected] = RejectedLine.objects.filter(batch=batch)
    assert (rejected.line, rejected.reference, rejected.code) == (
        2,
        "BAD\\x00REF",
        "VALIDATION_ERROR",
    )
    assert Notification.objects.filter(batch=batch).count() == 2


def test_reprocessing_never_replaces_another_batchs_result_file(batch_home, batch_client, tmp_path):
    batch_client.set_batch_password("wrong")
    batch_client.save()
    failed = receive(batch_client, tmp_path, "daily.7z", line("MON") + "\n")
    assert batch_ingest(batch_id=failed.pk) == "FAILED"
    failed.refresh_from_db()
    batch_storage().delete(failed.result_path)  # the client downloaded it
    batch_client.set_batch_password("s3cret-batch-pass")
    batch_client.save()
    later = receive(batch_client, tmp_path, "daily.7z", line("TUE") + "\n")
    assert batch_ingest(batch_id=later.pk) == "DONE"
    later.refresh_from_db()
    with batch_storage().open(later.result_path, "rb") as stored:
        later_result = stored.read()

    assert batch_reprocess(batch=Batch.objects.get(pk=failed.pk)) == "queued"
    assert batch_ingest(batch_id=failed.pk) == "DONE"

    failed.refresh_from_db()
    assert failed.result_path == f"8002/outbox/daily.batch-{failed.pk}.result.7z"
    with batch_storage().open(later.result_path, "rb") as stored:
        assert stored.read() == later_result


def test_reprocessing_while_a_newer_upload_of_the_name_is_open_is_refused_politely(
    batch_home, batch_client, tmp_path
):
    batch_client.set_batch_password("wrong")
    batch_client.save()
    failed = receive(batch_client, tmp_path, "daily.7z", line("MON") + "\n")
    batch_ingest(batch_id=failed.pk)
    receive(batch_client, tmp_path, "daily.7z", line("TUE") + "\n")

    assert batch_reprocess(batch=Batch.objects.get(pk=failed.pk)) == "name in use"
    assert Batch.objects.get(pk=failed.pk).status == "FAILED"


def test_a_failed_run_leaves_no_checking_process_behind(
    batch_home, batch_client, tmp_path, settings
):
    settings.BATCH_CHUNK_LINES = 2
    batch = receive(batch_client, tmp_path, "t.7z", lines("T", 400))
    checking = []

    def dies_while_the_checker_runs(_batch):
        checking.extend(child_processes())
        raise WorkerDied

    with pytest.raises(WorkerDied):
        batch_ingest(batch_id=batch.pk, progress=dies_while_the_checker_runs)

    assert len(checking) == 1
    assert child_processes() == []  # killed and reaped: no zombie either


def test_a_checking_process_that_dies_fails_the_run_and_the_next_run_finishes_the_batch(
    batch_home, batch_client, tmp_path, settings
):
    settings.BATCH_CHUNK_LINES = 2
    batch = receive(batch_client, tmp_path, "k.7z", lines("K", 2000))

    def kill_the_checker_once(_batch):
        for pid in child_processes():
            os.kill(pid, signal.SIGKILL)

    with pytest.raises(LineCheckerFailed, match="ended without a word"):
        batch_ingest(batch_id=batch.pk, progress=kill_the_checker_once)
    stored = Notification.objects.filter(batch=batch).count()
    lease_runs_out(batch)

    assert batch_ingest(batch_id=batch.pk) == "DONE"

    batch.refresh_from_db()
    assert 0 < stored < 2000
    assert (batch.lines_read, batch.lines_accepted, batch.runs) == (2000, 2000, 2)
    assert Notification.objects.filter(batch=batch).count() == 2000


def child_processes() -> list[int]:
    """This process's living children (Linux: /proc)."""
    pid = os.getpid()
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def test_a_resumed_run_answers_every_line_once_in_order_in_its_result_file(
    batch_home, batch_client, tmp_path, settings
):
    settings.BATCH_CHUNK_LINES = 2
    text = "\n".join(
        [
            line("R-1"),
            line("R\x002"),  # rejected; its reference kept, the NUL written out
            line("R-3"),
            line("R-1"),  # a reference stored before the run died
            line("R-5", balance="12x"),
        ]
    )
    batch = receive(batch_client, tmp_path, "r.7z", text + "\n")
    with pytest.raises(WorkerDied):
        batch_ingest(batch_id=batch.pk, progress=dies)  # after lines 1-2 are stored
    lease_runs_out(batch)

    assert batch_ingest(batch_id=batch.pk) == "DONE"

    batch.refresh_from_db()
    assert [row[:4] for row in result_rows(batch)] == [
        ["line", "clientNotifRefId", "status", "code"],
        ["1", "R-1", "ACCEPTED", ""],
        ["2", "R\\x002", "REJECTED", "VALIDATION_ERROR"],
        ["3", "R-3", "ACCEPTED", ""],
        ["4", "R-1", "REJECTED", "DUPLICATE_REFERENCE"],
        ["5", "R-5", "REJECTED", "VALIDATION_ERROR"],
    ]
    assert result_rows(batch)[5][4].startswith("balance: ")


def test_a_batch_whose_runs_keep_ending_before_storing_a_line_fails_and_answers_what_it_stored(
    batch_home, batch_client, tmp_path, settings
):
    settings.BATCH_CHUNK_LINES = 2
    settings.BATCH_MAX_RUNS_WITHOUT_PROGRESS = 3
    batch = receive(batch_client, tmp_path, "p.7z", lines("P", 5))
    with pytest.raises(WorkerDied):
        batch_ingest(batch_id=batch.pk, progress=dies)  # after lines 1-2 are stored
    # Then three runs died before storing another line (a worker killed while it
    # decrypted, say): each took the lease, and it ran out.
    lease_runs_out(batch, runs_since_progress=3)

    assert batch_ingest(batch_id=batch.pk) == "FAILED"

    batch.refresh_from_db()
    assert (batch.failure_code, batch.checkpoint_line, batch.lines_accepted) == (
        "INGEST_ERROR",
        2,
        2,
    )
    assert batch.archived_path.startswith("8002/failed/")
    rows = result_rows(batch)
    assert [row[:4] for row in rows] == [
        ["line", "clientNotifRefId", "status", "code"],
        ["0", "", "REJECTED", "INGEST_ERROR"],
        ["1", "P-1", "ACCEPTED", ""],
        ["2", "P-2", "ACCEPTED", ""],
    ]
    assert "Lines 1 to 2 are answered in this file" in rows[1][4]


def test_a_batch_whose_outbox_cannot_be_written_is_failed_after_its_runs_and_not_retried(
    batch_home, batch_client, tmp_path, settings
):
    settings.BATCH_MAX_RUNS_WITHOUT_PROGRESS = 3
    batch = receive(batch_client, tmp_path, "o.7z", lines("O", 3))
    (batch_home / "8002" / "outbox").write_text("a file where the outbox folder should be")
    # The first run stores every line, then fails to write the result; three more runs
    # find nothing left to store and fail the same way.
    for _ in range(4):
        with pytest.raises(OSError):
            batch_ingest(batch_id=batch.pk)
        lease_runs_out(batch)

    assert batch_ingest(batch_id=batch.pk) == "FAILED"

    batch.refresh_from_db()
    assert (batch.failure_code, batch.result_path, batch.lines_accepted) == ("INGEST_ERROR", "", 3)
    assert "after every line was stored, while finishing" in batch.failure_message
    assert batch.archived_path.startswith("8002/failed/")
    assert batch_ingest(batch_id=batch.pk) == "FAILED"  # finished: not run again


def test_runs_that_cannot_fetch_the_file_do_not_count_against_the_batch(
    batch_home, batch_client, tmp_path, settings
):
    settings.BATCH_MAX_RUNS_WITHOUT_PROGRESS = 1
    batch = receive(batch_client, tmp_path, "f.7z", lines("F", 2))
    inbox_file = batch_home / "8002" / "inbox" / "f.7z"
    content = inbox_file.read_bytes()
    inbox_file.unlink()
    inbox_file.mkdir()  # the storage fails to read it, as an unreachable server would
    for _ in range(3):
        with pytest.raises(OSError):
            batch_ingest(batch_id=batch.pk)
        lease_runs_out(batch)
    inbox_file.rmdir()
    inbox_file.write_bytes(content)

    assert batch_ingest(batch_id=batch.pk) == "DONE"

    assert Batch.objects.get(pk=batch.pk).lines_accepted == 2


def test_a_batch_failed_for_its_runs_is_reprocessed_from_its_checkpoint(
    batch_home, batch_client, tmp_path, settings
):
    settings.BATCH_CHUNK_LINES = 2
    batch = receive(batch_client, tmp_path, "q.7z", lines("Q", 5))
    with pytest.raises(WorkerDied):
        batch_ingest(batch_id=batch.pk, progress=dies)
    lease_runs_out(batch, runs_since_progress=settings.BATCH_MAX_RUNS_WITHOUT_PROGRESS + 1)
    assert batch_ingest(batch_id=batch.pk) == "FAILED"

    assert batch_reprocess(batch=Batch.objects.get(pk=batch.pk)) == "queued"
    assert batch_ingest(batch_id=batch.pk) == "DONE"

    batch.refresh_from_db()
    assert (batch.lines_read, batch.lines_accepted, batch.runs_since_progress) == (5, 5, 0)
    assert [row[:3] for row in result_rows(batch)[1:]] == [
        [str(n), f"Q-{n}", "ACCEPTED"] for n in range(1, 6)
    ]


def test_runs_that_end_early_are_allowed_up_to_the_limit_and_a_stored_chunk_clears_them(
    batch_home, batch_client, tmp_path, settings
):
    settings.BATCH_MAX_RUNS_WITHOUT_PROGRESS = 3
    batch = receive(batch_client, tmp_path, "s.7z", lines("S", 3))
    # Two runs died before storing a line: this third one may still try.
    Batch.objects.filter(pk=batch.pk).update(runs_since_progress=2)

    assert batch_ingest(batch_id=batch.pk) == "DONE"

    batch.refresh_from_db()
    assert (batch.lines_accepted, batch.runs_since_progress) == (3, 0)


class SlowStorage(FileSystemStorage):
    """Local disk written as slowly as a remote storage over a poor link: 2.5 KiB a second.

    While it writes a file into an archive/ folder it calls, once each, the test's
    `after_first_chunk` and `after_copy` (another run arriving, say).
    """

    after_first_chunk = after_copy = None

    def _save(self, name, content):
        if "/archive/" not in name:
            return super()._save(name, content)
        received = io.BytesIO()
        while chunk := content.read(256):
            if not received.tell():
                self._call_once("after_first_chunk")
            received.write(chunk)
            time.sleep(0.1)
        self._call_once("after_copy")
        return super()._save(name, ContentFile(received.getvalue()))

    @staticmethod
    def _call_once(name):
        hook = getattr(SlowStorage, name)
        setattr(SlowStorage, name, None)
        if hook:
            hook()


@pytest.fixture
def slow_batch(batch_home, batch_client, tmp_path, settings):
    """A batch of 400 lines whose file takes two leases (1 s each) to copy to archive/."""
    settings.BATCH_LEASE_SECONDS = 1
    text = "".join(line(f"SLOW-{n}-{os.urandom(12).hex()}") + "\n" for n in range(400))
    archive = seven_zip(tmp_path / "slow.7z", text).read_bytes()
    assert len(archive) > 2 * 2560
    upload(batch_client, "slow.7z", archive)
    batch = batch_receive(client=batch_client, name="slow.7z", queue=False)
    settings.STORAGES = {
        **settings.STORAGES,
        "batches": {
            "BACKEND": "tests.batches.test_resilience.SlowStorage",
            "OPTIONS": {"location": str(batch_home)},
        },
    }
    yield batch
    SlowStorage.after_first_chunk = SlowStorage.after_copy = None


def archived(batch_home) -> list[str]:
    folder = batch_home / "8002" / "archive"
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def test_a_copy_slower_than_the_lease_keeps_the_lease_and_is_made_once(slow_batch, batch_home):
    other_runs = []
    SlowStorage.after_copy = lambda: other_runs.append(batch_ingest(batch_id=slow_batch.pk))

    assert batch_ingest(batch_id=slow_batch.pk) == "DONE"

    assert other_runs == ["busy"]
    slow_batch.refresh_from_db()
    assert (slow_batch.runs, slow_batch.lines_accepted) == (1, 400)
    assert archived(batch_home) == [f"{slow_batch.pk}-slow.7z"]


def test_a_run_that_loses_its_lease_while_copying_leaves_no_copy_behind(slow_batch, batch_home):
    SlowStorage.after_first_chunk = lambda: Batch.objects.filter(pk=slow_batch.pk).update(
        lease_token="another-run"
    )

    assert batch_ingest(batch_id=slow_batch.pk) == "busy"

    assert archived(batch_home) == []
    assert Batch.objects.get(pk=slow_batch.pk).archived_path == ""
