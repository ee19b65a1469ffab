"""Finding new files in the client inboxes, and queueing the batches nobody works on.

On local disk (the `batch_home` fixture). A file is taken when two looks, one poll apart, see
the same size and modification time; taking it creates its Batch and queues its ingest.
"""

import os
from datetime import timedelta

import pytest
from django.core.files.storage import FileSystemStorage
from django.utils import timezone
from django_q.models import Schedule

from batches.file_storage import batch_storage
from batches.inbox import batch_receive, batches_requeue_stalled, inbox_poll, inboxes_poll
from batches.ingest import batch_ingest
from batches.models import Batch, BatchStatus, InboxSighting
from batches.tasks import poll_inboxes
from notifications.models import Notification
from tests.batches.conftest import line, queued, seven_zip, upload
from tests.factories import BatchFactory, ClientFactory

pytestmark = pytest.mark.django_db

INGEST = "batches.tasks.ingest_batch"


def inbox_file(home, name: str, content: bytes = b"x" * 100, *, client_id="8002"):
    """Write a file straight into the inbox folder on disk; returns its path."""
    path = home / client_id / "inbox" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def open_batch(client, name: str, **fields) -> Batch:
    return BatchFactory(
        client=client, file_name=name, inbox_path=f"{client.client_id}/inbox/{name}", **fields
    )


# --- two looks ------------------------------------------------------------------------


def test_a_file_is_taken_only_when_two_looks_agree(batch_home, batch_client):
    upload(batch_client, "reminders.7z", b"7z-bytes" * 10)

    assert inbox_poll(batch_client) == []
    sighting = InboxSighting.objects.get(client=batch_client)
    assert (sighting.name, sighting.size_bytes) == ("reminders.7z", 80)
    assert not Batch.objects.exists()

    [batch] = inbox_poll(batch_client)

    assert (batch.file_name, batch.inbox_path, batch.size_bytes) == (
        "reminders.7z",
        "8002/inbox/reminders.7z",
        80,
    )
    assert (batch.status, batch.encryption) == (BatchStatus.RECEIVED, "7z")
    assert not InboxSighting.objects.exists()
    assert Batch.objects.count() == 1


def test_a_file_still_growing_between_two_looks_is_not_taken(batch_home, batch_client):
    path = inbox_file(batch_home, "growing.7z", b"a" * 100)
    inbox_poll(batch_client)

    with path.open("ab") as more:
        more.write(b"b" * 100)

    assert inbox_poll(batch_client) == []
    assert InboxSighting.objects.get().size_bytes == 200  # the new look replaces the old
    [batch] = inbox_poll(batch_client)  # it stopped growing
    assert batch.size_bytes == 200


def test_a_file_rewritten_to_the_same_size_between_two_looks_is_not_taken(batch_home, batch_client):
    path = inbox_file(batch_home, "rewritten.7z", b"a" * 100)
    seen = path.stat().st_mtime
    inbox_poll(batch_client)

    path.write_bytes(b"b" * 100)
    os.utime(path, (seen + 5, seen + 5))

    assert inbox_poll(batch_client) == []
    assert len(inbox_poll(batch_client)) == 1


@pytest.mark.parametrize(
    "name",
    [
        ".reminders.7z",
        ".DS_Store",
        "reminders.7z.part",
        "reminders.7z.partial",
        "reminders.7z.tmp",
        "reminders.7z.filepart",
        "reminders.7z.crdownload",
        "REMINDERS.7Z.PART",
    ],
)
def test_files_hidden_or_still_being_uploaded_by_their_name_are_ignored(
    batch_home, batch_client, name
):
    inbox_file(batch_home, name)

    assert inbox_poll(batch_client) == []
    assert inbox_poll(batch_client) == []
    assert not InboxSighting.objects.exists()
    assert not Batch.objects.exists()


def test_a_file_renamed_from_its_part_name_is_taken_two_looks_later(batch_home, batch_client):
    path = inbox_file(batch_home, "reminders.7z.part")
    inbox_poll(batch_client)

    path.rename(path.with_name("reminders.7z"))

    assert inbox_poll(batch_client) == []
    assert [batch.file_name for batch in inbox_poll(batch_client)] == ["reminders.7z"]


def test_a_file_that_went_away_between_looks_is_forgotten(batch_home, batch_client):
    path = inbox_file(batch_home, "oops.7z")
    inbox_poll(batch_client)

    path.unlink()
    inbox_poll(batch_client)

    assert not InboxSighting.objects.exists()
    assert not Batch.objects.exists()


def test_a_file_with_an_open_batch_is_not_taken_again(batch_home, batch_client):
    inbox_file(batch_home, "reminders.7z")
    inbox_poll(batch_client)
    [batch] = inbox_poll(batch_client)

    # Its ingest has not moved it out yet: later polls leave it to that batch.
    assert inbox_poll(batch_client) == []
    assert inbox_poll(batch_client) == []
    Batch.objects.filter(pk=batch.pk).update(status=BatchStatus.PROCESSING)
    assert inbox_poll(batch_client) == []
    assert inbox_poll(batch_client) == []

    assert Batch.objects.count() == 1
    assert not InboxSighting.objects.exists()


def test_each_client_has_its_own_inbox(batch_home, batch_client):
    other = ClientFactory(client_id="8003")
    inbox_file(batch_home, "same-name.7z", client_id="8002")
    inbox_file(batch_home, "same-name.7z", client_id="8003")

    inbox_poll(batch_client)
    inbox_poll(other)
    [mine] = inbox_poll(batch_client)
    [theirs] = inbox_poll(other)

    assert (mine.client, mine.inbox_path) == (batch_client, "8002/inbox/same-name.7z")
    assert (theirs.client, theirs.inbox_path) == (other, "8003/inbox/same-name.7z")


# --- batch_receive --------------------------------------------------------------------


def test_receiving_the_same_file_twice_returns_its_one_open_batch(batch_home, batch_client):
    # Two overlapping polls both decide to take the file.
    first = batch_receive(client=batch_client, name="reminders.7z", size=10, queue=False)
    second = batch_receive(client=batch_client, name="reminders.7z", size=10, queue=False)

    assert second.pk == first.pk
    assert Batch.objects.count() == 1


def test_once_its_batch_is_finished_the_same_name_makes_a_new_batch(batch_home, batch_client):
    first = batch_receive(client=batch_client, name="monthly.7z", queue=False)
    Batch.objects.filter(pk=first.pk).update(status=BatchStatus.DONE)

    again = batch_receive(client=batch_client, name="monthly.7z", queue=False)

    assert again.pk != first.pk
    assert again.status == BatchStatus.RECEIVED


def test_a_received_batch_queues_its_ingest_once_committed(
    batch_home, batch_client, broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        batch = batch_receive(client=batch_client, name="reminders.7z")
        assert queued(broker) == []  # nothing before the batch row is committed

    for callback in callbacks:
        callback()

    assert queued(broker) == [(INGEST, (batch.pk,))]


def test_receiving_without_queueing_queues_nothing(
    batch_home, batch_client, broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        batch_receive(client=batch_client, name="reminders.7z", queue=False)

    assert queued(broker) == []


def test_receiving_an_already_open_file_does_not_queue_it_again(
    batch_home, batch_client, broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        batch = batch_receive(client=batch_client, name="reminders.7z")
        batch_receive(client=batch_client, name="reminders.7z")

    assert queued(broker) == [(INGEST, (batch.pk,))]


# --- every inbox ----------------------------------------------------------------------


def test_inactive_clients_inboxes_are_not_polled(batch_home, batch_client, broker):
    ClientFactory(client_id="8003", is_active=False)
    inbox_file(batch_home, "active.7z", client_id="8002")
    inbox_file(batch_home, "inactive.7z", client_id="8003")

    inboxes_poll()
    received = inboxes_poll()

    assert [batch.inbox_path for batch in received] == ["8002/inbox/active.7z"]
    assert list(InboxSighting.objects.values_list("name", flat=True)) == []
    assert Batch.objects.count() == 1


def test_a_missing_inbox_folder_is_no_error(batch_home, batch_client):
    ClientFactory(client_id="8003")
    assert not batch_home.exists()  # not even the storage's root

    assert inbox_poll(batch_client) == []
    assert inboxes_poll() == []

    (batch_home / "8002").mkdir(parents=True)  # a home without its inbox folder
    assert inbox_poll(batch_client) == []


def test_the_poll_task_counts_the_batches_it_received(batch_home, batch_client, broker):
    inbox_file(batch_home, "one.7z")
    inbox_file(batch_home, "two.7z")

    assert poll_inboxes() == 0
    assert poll_inboxes() == 2
    assert poll_inboxes() == 0


def test_the_poll_batch_inboxes_schedule_runs_every_minute(db):
    schedule = Schedule.objects.get(name="poll batch inboxes")

    assert schedule.func == "batches.tasks.poll_inboxes"
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == ("I", 1, -1)


def test_a_new_poll_interval_setting_reaches_the_schedule_at_the_next_poll(db, settings):
    settings.BATCH_POLL_MINUTES = 5

    poll_inboxes()

    assert Schedule.objects.get(name="poll batch inboxes").minutes == 5


# --- stalled batches ------------------------------------------------------------------


def test_stalled_batches_are_queued_again_and_the_others_left_alone(batch_client, broker):
    now = timezone.now()
    lease_expired = open_batch(
        batch_client,
        "worker-died.7z",
        status=BatchStatus.PROCESSING,
        lease_expires_at=now - timedelta(seconds=1),
    )
    open_batch(
        batch_client,
        "being-worked-on.7z",
        status=BatchStatus.PROCESSING,
        lease_expires_at=now + timedelta(minutes=4),
    )
    task_lost = open_batch(batch_client, "never-started.7z")
    fresh = open_batch(batch_client, "just-received.7z")
    finished = open_batch(batch_client, "done-long-ago.7z", status=BatchStatus.DONE)
    failed = open_batch(batch_client, "failed-long-ago.7z", status=BatchStatus.FAILED)
    # created_at is auto_now_add: age the batches by hand.
    Batch.objects.filter(pk__in=[task_lost.pk, finished.pk, failed.pk]).update(
        created_at=now - timedelta(minutes=2, seconds=1)
    )
    Batch.objects.filter(pk=fresh.pk).update(created_at=now - timedelta(minutes=1, seconds=50))

    requeued = batches_requeue_stalled()

    assert sorted(requeued) == sorted([lease_expired.pk, task_lost.pk])
    assert sorted(queued(broker)) == sorted(
        [(INGEST, (lease_expired.pk,)), (INGEST, (task_lost.pk,))]
    )


def test_the_inbox_poll_also_queues_stalled_batches(batch_home, batch_client, broker):
    stalled = open_batch(
        batch_client,
        "worker-died.7z",
        status=BatchStatus.PROCESSING,
        lease_expires_at=timezone.now() - timedelta(minutes=1),
    )

    inboxes_poll()

    assert queued(broker) == [(INGEST, (stalled.pk,))]


def test_nothing_stalled_queues_nothing(batch_client, broker):
    open_batch(batch_client, "just-received.7z")

    assert batches_requeue_stalled() == []
    assert queued(broker) == []


# --- the inbox file while its batch runs, and files that vanish -------------------------


class ListsThenLosesOneFile(FileSystemStorage):
    """Local disk where the client deletes "vanishing.7z" after the poll listed it, just
    before the poll asks its size."""

    def size(self, name):
        if name.endswith("/vanishing.7z") and os.path.exists(self.path(name)):
            os.unlink(self.path(name))
        return super().size(name)


def test_a_file_deleted_while_the_poll_looks_does_not_stop_the_poll(
    settings, batch_home, batch_client, broker
):
    settings.STORAGES = {
        **settings.STORAGES,
        "batches": {
            "BACKEND": f"{__name__}.ListsThenLosesOneFile",
            "OPTIONS": {"location": str(batch_home)},
        },
    }
    ClientFactory(client_id="8003")
    inbox_file(batch_home, "kept.7z", client_id="8003")
    stalled = open_batch(
        batch_client,
        "worker-died.7z",
        status=BatchStatus.PROCESSING,
        lease_expires_at=timezone.now() - timedelta(minutes=1),
    )
    inbox_file(batch_home, "vanishing.7z", client_id="8002")
    inboxes_poll()
    inbox_file(batch_home, "vanishing.7z", client_id="8002")  # the client puts it back

    received = inboxes_poll()

    assert [batch.inbox_path for batch in received] == ["8003/inbox/kept.7z"]
    assert (INGEST, (stalled.pk,)) in queued(broker)


def test_a_new_file_uploaded_under_the_same_name_while_its_batch_runs_is_not_lost(
    batch_client, daily_uploads
):
    progress = daily_uploads.upload_tuesday
    assert batch_ingest(batch_id=daily_uploads.batch.pk, progress=progress) == "DONE"

    # still there, for the next polls to take
    assert daily_uploads.in_inbox.read_bytes() == daily_uploads.tuesday
    inbox_poll(batch_client)
    [again] = inbox_poll(batch_client)
    assert batch_ingest(batch_id=again.pk) == "DONE"
    assert sorted(Notification.objects.values_list("reference", flat=True)) == [
        "MONDAY",
        "TUESDAY",
    ]


def test_a_file_whose_name_fills_the_file_name_limit_is_still_answered(
    batch_home, batch_client, tmp_path
):
    name = "r" * 252 + ".7z"  # 255 bytes: the longest name a client can upload
    upload(batch_client, name, seven_zip(tmp_path / "x.7z", line("LONG-1") + "\n").read_bytes())
    batch = batch_receive(client=batch_client, name=name, queue=False)

    status = batch_ingest(batch_id=batch.pk)

    batch.refresh_from_db()
    assert status in (BatchStatus.DONE, BatchStatus.FAILED)
    assert batch.result_path
    assert batch_storage().exists(batch.result_path)


def test_a_stalled_batch_is_queued_again_at_most_every_two_minutes(batch_client, broker):
    stalled = open_batch(
        batch_client,
        "worker-died.7z",
        status=BatchStatus.PROCESSING,
        lease_expires_at=timezone.now() - timedelta(minutes=1),
    )

    assert batches_requeue_stalled() == [stalled.pk]
    assert batches_requeue_stalled() == []
    Batch.objects.filter(pk=stalled.pk).update(
        requeued_at=timezone.now() - timedelta(minutes=2, seconds=1)
    )
    assert batches_requeue_stalled() == [stalled.pk]
    assert queued(broker) == [(INGEST, (stalled.pk,)), (INGEST, (stalled.pk,))]
