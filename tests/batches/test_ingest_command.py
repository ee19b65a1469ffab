"""`manage.py ingest_batch FILE --client ID`: a local file ingested now, as if uploaded."""

import io

import pytest
from django.core.management import CommandError, call_command

from batches.file_storage import batch_storage
from batches.models import Batch, BatchStatus
from notifications.models import Notification
from tests.batches.conftest import line, seven_zip
from tests.factories import ClientFactory

pytestmark = pytest.mark.django_db


def ingest_batch(path, *args) -> str:
    out = io.StringIO()
    call_command("ingest_batch", str(path), *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def reminders(tmp_path):
    """A real 7z batch of three lines, the second one invalid."""
    text = "\n".join([line("CMD-1"), line("CMD-2", balance="lots"), line("CMD-3")]) + "\n"
    return seven_zip(tmp_path / "reminders.7z", text)


def test_the_command_ingests_the_file_and_prints_a_summary(
    batch_home, batch_client, reminders, capsys
):
    output = ingest_batch(reminders, "--client", "8002")

    batch = Batch.objects.get()
    assert output.splitlines() == [
        f"Batch {batch.pk} DONE: 3 lines read, 2 accepted, 1 rejected.",
        "Result file: 8002/outbox/reminders.result.7z",
    ]
    assert sorted(Notification.objects.values_list("reference", flat=True)) == ["CMD-1", "CMD-3"]
    storage = batch_storage()
    assert storage.exists("8002/outbox/reminders.result.7z")
    assert storage.exists(f"8002/archive/{batch.pk}-reminders.7z")
    assert not storage.exists("8002/inbox/reminders.7z")
    assert reminders.exists()  # the local file is copied, never moved
    # The progress bar goes to stderr, so stdout stays fit for scripts.
    progress = capsys.readouterr().err
    assert "100%" in progress
    assert "3 lines, 1 rejected" in progress


def test_quiet_shows_no_progress_bar(batch_home, batch_client, reminders, capsys):
    output = ingest_batch(reminders, "--client", "8002", "--quiet")

    assert "DONE: 3 lines read" in output
    assert capsys.readouterr().err == ""


def test_the_same_file_ingested_twice_is_reported_as_a_duplicate(
    batch_home, batch_client, reminders
):
    ingest_batch(reminders, "--client", "8002", "--quiet")

    output = ingest_batch(reminders, "--client", "8002", "--quiet")

    second = Batch.objects.order_by("pk").last()
    assert second.status == BatchStatus.DUPLICATE
    assert f"Batch {second.pk} DUPLICATE: 0 lines read" in output
    assert "DUPLICATE_FILE: The same bytes as reminders.7z" in output
    assert Notification.objects.count() == 2


def test_an_unknown_client_is_refused_by_name(batch_home, reminders):
    with pytest.raises(CommandError, match=r"Unknown client '9999'\."):
        ingest_batch(reminders, "--client", "9999")

    assert not Batch.objects.exists()
    assert not (batch_home / "9999").exists()


def test_an_inactive_client_is_refused(batch_home, reminders):
    ClientFactory(client_id="8003", is_active=False)

    with pytest.raises(CommandError, match=r"Client 8003 is inactive\."):
        ingest_batch(reminders, "--client", "8003")

    assert not Batch.objects.exists()


def test_a_missing_file_is_refused(batch_home, batch_client, tmp_path):
    missing = tmp_path / "nowhere.7z"

    with pytest.raises(CommandError, match=f"No such file: {missing}"):
        ingest_batch(missing, "--client", "8002")

    assert not Batch.objects.exists()


def test_the_client_is_required(batch_home, reminders):
    with pytest.raises(CommandError, match="--client"):
        ingest_batch(reminders)


def test_a_wrong_password_fails_the_command_and_the_batch(batch_home, batch_client, tmp_path):
    locked = seven_zip(tmp_path / "locked.7z", line("X") + "\n", password="not-the-password")
    out = io.StringIO()

    with pytest.raises(CommandError, match=r"failed \(WRONG_PASSWORD\)"):
        call_command("ingest_batch", str(locked), "--client", "8002", "--quiet", stdout=out)

    batch = Batch.objects.get()
    assert (batch.status, batch.failure_code) == (BatchStatus.FAILED, "WRONG_PASSWORD")
    assert out.getvalue().splitlines() == [
        f"Batch {batch.pk} FAILED: 0 lines read, 0 accepted, 0 rejected.",
        "WRONG_PASSWORD: the archive cannot be decrypted with the batch password",
        "Result file: 8002/outbox/locked.result.7z",
    ]
    assert batch_storage().exists(f"8002/failed/{batch.pk}-locked.7z")
    assert not Notification.objects.exists()
