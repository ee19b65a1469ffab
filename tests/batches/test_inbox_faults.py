"""One client's inbox can never stop the poll for the others: an inbox that cannot be
listed, a symlink (never followed), a name longer than the columns that record it."""

import logging
import os
from datetime import timedelta

import pytest
from django.utils import timezone

from batches.file_storage import batch_storage
from batches.inbox import inboxes_poll
from batches.models import Batch, BatchStatus, InboxSighting
from tests.batches.conftest import line, queued, seven_zip, upload
from tests.batches.test_inbox import INGEST, inbox_file, open_batch
from tests.batches.test_ingest import result_rows
from tests.factories import ClientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_8003_with_a_file(batch_home):
    """A second client, polled after 8002, with a file waiting in its inbox."""
    client = ClientFactory(client_id="8003")
    inbox_file(batch_home, "theirs.7z", client_id="8003")
    return client


@pytest.fixture
def stalled(batch_client):
    return open_batch(
        batch_client,
        "worker-died.7z",
        status=BatchStatus.PROCESSING,
        lease_expires_at=timezone.now() - timedelta(minutes=1),
    )


def taken_paths(received) -> list[str]:
    return [batch.inbox_path for batch in received]


def test_an_inbox_that_cannot_be_listed_is_logged_and_the_others_are_polled(
    batch_home, batch_client, client_8003_with_a_file, stalled, broker, caplog
):
    (batch_home / "8002").mkdir(parents=True)
    (batch_home / "8002" / "inbox").write_bytes(b"a file where the folder should be")

    with caplog.at_level(logging.ERROR, logger="batches.inbox"):
        inboxes_poll()
        received = inboxes_poll()

    assert taken_paths(received) == ["8003/inbox/theirs.7z"]
    assert (INGEST, (stalled.pk,)) in queued(broker)
    assert any("8002" in record.getMessage() for record in caplog.records)


def test_a_symlink_loop_in_one_inbox_does_not_stop_the_poll_for_the_others(
    batch_home, batch_client, client_8003_with_a_file, stalled, broker
):
    inbox = batch_home / "8002" / "inbox"
    inbox.mkdir(parents=True)
    os.symlink("loop.7z", inbox / "loop.7z")

    inboxes_poll()
    received = inboxes_poll()

    assert taken_paths(received) == ["8003/inbox/theirs.7z"]
    assert (INGEST, (stalled.pk,)) in queued(broker)
    refused = Batch.objects.get(client=batch_client, file_name="loop.7z")
    assert (refused.status, refused.failure_code) == (BatchStatus.FAILED, "SYMLINK")
    assert not os.path.lexists(inbox / "loop.7z")


def test_a_symlink_in_an_inbox_is_never_followed(batch_home, batch_client, tmp_path):
    """A link to a file outside the inbox (another client's archive, the server's files)
    is refused, and its target neither read nor touched."""
    target = seven_zip(tmp_path / "elsewhere.7z", line("NOT-MINE") + "\n")
    inbox = batch_home / "8002" / "inbox"
    inbox.mkdir(parents=True)
    os.symlink(target, inbox / "linked.7z")

    inboxes_poll()
    inboxes_poll()

    [batch] = Batch.objects.filter(client=batch_client)
    assert (batch.status, batch.failure_code, batch.archived_path) == (
        BatchStatus.FAILED,
        "SYMLINK",
        "",
    )
    assert result_rows(batch)[1][:4] == ["0", "", "REJECTED", "SYMLINK"]
    assert "never followed" in batch.failure_message
    assert not os.path.lexists(inbox / "linked.7z")
    assert target.exists()
    assert not InboxSighting.objects.exists()


@pytest.fixture
def storage_without_a_name_limit(settings, batch_home):
    """Batch storage with no limit on a name's length, as S3's 1,024-byte keys."""
    settings.STORAGES = {
        **settings.STORAGES,
        "batches": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }


def test_a_file_whose_name_does_not_fit_is_refused_with_a_result_row_and_kept(
    storage_without_a_name_limit, batch_client, client_8003_with_a_file, tmp_path
):
    name = "r" * 296 + ".csv"
    upload(batch_client, name, b"clientId=8002\n")
    upload(client_8003_with_a_file, "theirs.7z", b"x" * 100)

    inboxes_poll()
    received = inboxes_poll()

    assert taken_paths(received) == ["8003/inbox/theirs.7z"]
    refused = Batch.objects.get(client=batch_client)
    assert (refused.status, refused.failure_code) == (BatchStatus.FAILED, "NAME_TOO_LONG")
    assert "300 characters" in refused.failure_message
    assert result_rows(refused)[1][:4] == ["0", "", "REJECTED", "NAME_TOO_LONG"]
    storage = batch_storage()
    assert not storage.exists(f"8002/inbox/{name}")
    with storage.open(refused.archived_path) as kept:
        assert kept.read() == b"clientId=8002\n"
    assert refused.archived_path.startswith(f"8002/failed/{refused.pk}-rrr")


def test_an_uploader_receiving_a_name_that_does_not_fit_gets_the_refusal(
    storage_without_a_name_limit, batch_client
):
    from batches.inbox import batch_receive

    name = "s" * 400 + ".7z"
    upload(batch_client, name, b"x" * 10)

    batch = batch_receive(client=batch_client, name=name, queue=False)

    assert (batch.status, batch.failure_code) == (BatchStatus.FAILED, "NAME_TOO_LONG")
    assert batch_storage().exists(batch.result_path)
    assert len(batch.file_name) == 255


def test_a_file_made_a_symlink_after_the_poll_took_it_is_not_followed_by_the_ingest(
    batch_home, batch_client, tmp_path
):
    from batches.inbox import batch_receive
    from batches.ingest import batch_ingest

    inbox_file(batch_home, "swapped.7z", b"x" * 100)
    batch = batch_receive(client=batch_client, name="swapped.7z", queue=False)
    target = seven_zip(tmp_path / "elsewhere.7z", line("NOT-MINE") + "\n")
    in_inbox = batch_home / "8002" / "inbox" / "swapped.7z"
    in_inbox.unlink()
    os.symlink(target, in_inbox)

    assert batch_ingest(batch_id=batch.pk) == BatchStatus.FAILED

    batch.refresh_from_db()
    assert (batch.failure_code, batch.archived_path, batch.sha256) == ("SYMLINK", "", "")
    assert not Batch.objects.filter(client=batch_client, status=BatchStatus.DONE).exists()
    assert target.exists()
