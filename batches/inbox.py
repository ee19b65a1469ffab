"""Client homes in the batch storage, and finding new files in their inboxes.

Each client has a home named by its clientId in the storage chosen by
STORAGES["batches"] (local disk by default, SFTPStorage or S3 by settings):

    <clientId>/inbox/    the client uploads here
    <clientId>/outbox/   results for the client to download
    <clientId>/archive/  ingested originals          (the platform's own)
    <clientId>/failed/   originals that could not be read

Everything here goes through the storage API, so switching backends is configuration.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.files.storage import storages
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from batches.models import UNFINISHED, Batch, BatchStatus, InboxSighting
from clients.models import Client

logger = logging.getLogger(__name__)

# Names uploaders use while a file is still being written.
IN_PROGRESS_SUFFIXES = (".part", ".partial", ".tmp", ".filepart", ".crdownload")
# A batch RECEIVED this long ago and still not started lost its queued task.
UNSTARTED_AFTER = timedelta(minutes=2)
# The django-q2 schedule that runs inboxes_poll (made by migration batches 0003).
POLL_SCHEDULE = "poll batch inboxes"


def batch_storage():
    return storages["batches"]


# Longest file name most file systems (and SFTP servers on them) accept, in bytes.
NAME_MAX_BYTES = 255


def home_path(client: Client, folder: str, name: str = "") -> str:
    return f"{client.client_id}/{folder}/{name}" if name else f"{client.client_id}/{folder}"


def fitting_name(stem: str, ending: str) -> str:
    """stem + ending, the stem shortened if needed to fit NAME_MAX_BYTES (UTF-8)."""
    room = NAME_MAX_BYTES - len(ending.encode())
    return stem.encode()[:room].decode(errors="ignore") + ending


def inboxes_poll() -> list[Batch]:
    """Look in every active client's inbox; returns the batches created.

    Also queues again any batch whose ingest task was lost or whose worker died
    (its lease ran out). Safe to run twice at once: a file gets one open batch.
    """
    received = []
    for client in Client.objects.filter(is_active=True).order_by("pk"):
        received += inbox_poll(client)
    batches_requeue_stalled()
    return received


def poll_interval_sync() -> None:
    """Keep the poll's schedule at BATCH_POLL_MINUTES.

    The migration made the schedule with the setting's value of its day; a new
    value takes effect from the poll after the first one that runs with it.
    """
    from django_q.models import Schedule

    Schedule.objects.filter(name=POLL_SCHEDULE).exclude(minutes=settings.BATCH_POLL_MINUTES).update(
        minutes=settings.BATCH_POLL_MINUTES
    )


def inbox_poll(client: Client) -> list[Batch]:
    """Take the files of the client's inbox that did not change since the last look."""
    storage = batch_storage()
    try:
        _, names = storage.listdir(home_path(client, "inbox"))
    except FileNotFoundError:
        return []
    names = [name for name in names if _looks_complete(name)]
    taken = set(
        Batch.objects.filter(client=client, status__in=UNFINISHED).values_list(
            "inbox_path", flat=True
        )
    )
    sightings = {s.name: s for s in InboxSighting.objects.filter(client=client)}
    received = []
    for name in names:
        path = home_path(client, "inbox", name)
        if path in taken:
            continue
        try:
            size, modified_at = storage.size(path), storage.get_modified_time(path)
        except FileNotFoundError:  # gone since the listing: nothing to take
            continue
        seen = sightings.get(name)
        if seen and (seen.size_bytes, seen.modified_at) == (size, modified_at):
            received.append(batch_receive(client=client, name=name, size=size))
            seen.delete()
        else:
            InboxSighting.objects.update_or_create(
                client=client, name=name, defaults={"size_bytes": size, "modified_at": modified_at}
            )
    # Forget files that went away between looks.
    InboxSighting.objects.filter(client=client).exclude(name__in=names).delete()
    return received


def _looks_complete(name: str) -> bool:
    return not name.startswith(".") and not name.lower().endswith(IN_PROGRESS_SUFFIXES)


def batch_receive(*, client: Client, name: str, size: int | None = None, queue=True) -> Batch:
    """Create the batch for a complete file in the client's inbox and queue its ingest.

    For the inbox poll, and for an uploader that knows a file is complete (the
    SFTP gateway, on close). Returns the file's open batch if it already has one.
    """
    path = home_path(client, "inbox", name)
    try:
        with transaction.atomic():
            batch = Batch.objects.create(
                client=client,
                file_name=name,
                inbox_path=path,
                size_bytes=size,
                encryption=client.batch_encryption,
            )
    except IntegrityError:
        return Batch.objects.get(client=client, inbox_path=path, status__in=UNFINISHED)
    logger.info("Batch %s received: %s", batch.pk, path)
    if queue:
        transaction.on_commit(lambda: queue_ingest(batch.pk))
    return batch


def queue_ingest(batch_id: int) -> None:
    from django_q.tasks import async_task

    async_task("batches.tasks.ingest_batch", batch_id, task_name=f"ingest batch {batch_id}")


def batches_requeue_stalled() -> list[int]:
    """Queue again the batches nobody is working on: never started, or their worker died.

    At most once per UNSTARTED_AFTER each, so that a backlog in the queue does
    not grow by every waiting batch at every poll.
    """
    now = timezone.now()
    not_lately = Q(requeued_at__isnull=True) | Q(requeued_at__lt=now - UNSTARTED_AFTER)
    stalled = list(
        Batch.objects.filter(
            Q(status=BatchStatus.RECEIVED, created_at__lt=now - UNSTARTED_AFTER)
            | Q(status=BatchStatus.PROCESSING, lease_expires_at__lt=now),
            not_lately,
        ).values_list("pk", flat=True)
    )
    Batch.objects.filter(pk__in=stalled).update(requeued_at=now)
    for batch_id in stalled:
        queue_ingest(batch_id)
    return stalled
