"""A run that died after archiving its original, resumed while the client's next upload, under
the same name, waits in the inbox."""

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from batches import ingest as ingest_module
from batches.inbox import inbox_poll
from batches.ingest import batch_ingest
from batches.models import Batch, BatchStatus
from notifications.models import Notification

pytestmark = pytest.mark.django_db


class WorkerDied(Exception):
    """Stands for the SIGKILL of the worker, at the point the test chooses."""


def test_a_run_resumed_after_archiving_reads_its_archived_copy_not_a_new_upload(
    batch_client, daily_uploads, monkeypatch
):
    batch = daily_uploads.batch

    def dies_before_closing(*args, **kwargs):
        raise WorkerDied

    # The first run stores every line, archives the original, keeps the new upload in the
    # inbox, and dies before it closes the batch.
    monkeypatch.setattr(ingest_module, "_close", dies_before_closing)
    with pytest.raises(WorkerDied):
        batch_ingest(batch_id=batch.pk, progress=daily_uploads.upload_tuesday)
    monkeypatch.undo()
    batch.refresh_from_db()
    assert batch.archived_path and batch.status == BatchStatus.PROCESSING
    Batch.objects.filter(pk=batch.pk).update(lease_expires_at=timezone.now() - timedelta(1))

    assert batch_ingest(batch_id=batch.pk) == "DONE"

    batch.refresh_from_db()
    assert batch.sha256 == hashlib.sha256(daily_uploads.monday).hexdigest()
    assert daily_uploads.in_inbox.read_bytes() == daily_uploads.tuesday  # the next polls' to take
    inbox_poll(batch_client)
    [tuesdays] = inbox_poll(batch_client)
    assert batch_ingest(batch_id=tuesdays.pk) == "DONE"
    assert sorted(Notification.objects.values_list("reference", flat=True)) == [
        "MONDAY",
        "TUESDAY",
    ]
