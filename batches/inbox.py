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
import os
import stat
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

from batches.file_storage import batch_storage, fitting_name, home_path
from batches.models import UNFINISHED, Batch, BatchStatus, InboxSighting
from batches.results import result_write
from clients.models import Client

logger = logging.getLogger(__name__)

# Names uploaders use while a file is still being written.
IN_PROGRESS_SUFFIXES = (".part", ".partial", ".tmp", ".filepart", ".crdownload")
# A batch RECEIVED this long ago and still not started lost its queued task.
UNSTARTED_AFTER = timedelta(minutes=2)
# The django-q2 schedule that runs inboxes_poll (made by migration batches 0003).
POLL_SCHEDULE = "poll batch inboxes"


SYMLINK_REFUSED = "The file is a symbolic link: links are never followed. Upload the file itself."


def inboxes_poll() -> list[Batch]:
    """Look in every active client's inbox; returns the batches created.

    Also queues again any batch whose ingest task was lost or whose worker died
    (its lease ran out). Safe to run twice at once: a file gets one open batch.
    Each inbox is polled on its own: one that fails is logged with its client,
    and the others (and the requeueing) go on.
    """
    received = []
    for client in Client.objects.filter(is_active=True).order_by("pk"):
        try:
            received += inbox_poll(client)
        except Exception:
            logger.exception("Inbox of client %s: the poll failed; polling the others", client)
    batches_requeue_stalled()
    return received


def poll_interval_sync() -> None:
    """Keep the poll's schedule at BATCH_POLL_MINUTES.

    The migration made the schedule with the setting's value of its day; a new
    value takes effect from the poll after the first one that runs with it.
    """
    Schedule.objects.filter(name=POLL_SCHEDULE).exclude(minutes=settings.BATCH_POLL_MINUTES).update(
        minutes=settings.BATCH_POLL_MINUTES
    )


def inbox_poll(client: Client) -> list[Batch]:
    """Take the files of the client's inbox that did not change since the last look.

    Symlinks and files whose names do not fit the batch's columns are refused
    (inbox_refuse). A file that fails is logged with its client and name, and the
    poll goes on with the next.
    """
    storage = batch_storage()
    try:
        entries = _inbox_entries(storage, home_path(client, "inbox"))
    except FileNotFoundError:
        return []
    entries = [entry for entry in entries if _looks_complete(entry.name)]
    taken = set(
        Batch.objects.filter(client=client, status__in=UNFINISHED).values_list(
            "inbox_path", flat=True
        )
    )
    sightings = {s.name: s for s in InboxSighting.objects.filter(client=client)}
    received = []
    for entry in entries:
        try:
            with transaction.atomic():
                batch = _look_at(storage, client, entry, taken, sightings)
        except Exception:
            logger.exception(
                "Inbox of client %s: file %r failed; polling the others", client, entry.name
            )
            continue
        if batch is not None:
            received.append(batch)
    # Forget files that went away between looks.
    names = [entry.name for entry in entries]
    InboxSighting.objects.filter(client=client).exclude(name__in=names).delete()
    return received


@dataclass
class InboxEntry:
    """A name in an inbox, as listed: a file, or a symlink."""

    name: str
    symlink: bool = False


def _inbox_entries(storage, folder: str) -> list[InboxEntry]:
    """The files and symlinks of an inbox folder, no symlink followed.

    Local disk and SFTP say what each entry is itself (lstat); a storage
    without links (S3) lists its files. Raises FileNotFoundError if there is no folder.
    """
    if isinstance(storage, FileSystemStorage):
        return _local_entries(Path(storage.path(folder)))
    sftp_entries = _sftp_entries(storage, folder)
    if sftp_entries is not None:
        return sftp_entries
    _, names = storage.listdir(folder)
    return [InboxEntry(name) for name in names]


def _local_entries(folder: Path) -> list[InboxEntry]:
    entries = []
    with os.scandir(folder) as listing:
        for item in listing:
            if item.is_symlink():
                entries.append(InboxEntry(item.name, symlink=True))
            elif item.is_file(follow_symlinks=False):
                entries.append(InboxEntry(item.name))
    return entries


def _is_sftp(storage) -> bool:
    try:
        from storages.backends.sftpstorage import SFTPStorage
    except ImportError:
        return False
    return isinstance(storage, SFTPStorage)


def is_symlink(storage, path: str) -> bool:
    """Whether `path` is a symbolic link (local disk and SFTP; other storages have none)."""
    if isinstance(storage, FileSystemStorage):
        return os.path.islink(storage.path(path))
    if _is_sftp(storage):
        try:
            return stat.S_ISLNK(storage.sftp.lstat(storage._remote_path(path)).st_mode or 0)
        except FileNotFoundError:
            return False
    return False


def _sftp_entries(storage, folder: str) -> list[InboxEntry] | None:
    """An SFTPStorage's inbox from the attributes its server lists (None: not SFTP)."""
    if not _is_sftp(storage):
        return None
    entries = []
    for item in storage.sftp.listdir_attr(storage._remote_path(folder)):
        mode = item.st_mode or 0
        if stat.S_ISLNK(mode):
            entries.append(InboxEntry(item.filename, symlink=True))
        elif not stat.S_ISDIR(mode):
            entries.append(InboxEntry(item.filename))
    return entries


def _look_at(storage, client: Client, entry: InboxEntry, taken: set, sightings: dict):
    """One inbox entry: refused, taken (its new Batch returned), or sighted."""
    path = home_path(client, "inbox", entry.name)
    if path in taken:
        return None
    if entry.symlink:
        inbox_refuse(
            client=client, name=entry.name, code="SYMLINK", message=SYMLINK_REFUSED, keep=False
        )
        return None
    if _refused_for_its_name(client, entry.name):
        return None
    try:
        size, modified_at = storage.size(path), storage.get_modified_time(path)
    except FileNotFoundError:  # gone since the listing: nothing to take
        return None
    seen = sightings.get(entry.name)
    if seen and (seen.size_bytes, seen.modified_at) == (size, modified_at):
        seen.delete()
        return batch_receive(client=client, name=entry.name, size=size)
    InboxSighting.objects.update_or_create(
        client=client, name=entry.name, defaults={"size_bytes": size, "modified_at": modified_at}
    )
    return None


def _refused_for_its_name(client: Client, name: str) -> Batch | None:
    """The FAILED batch refusing a file whose name does not fit (NAME_TOO_LONG), or None."""
    problem = _name_problem(client, name)
    if not problem:
        return None
    return inbox_refuse(client=client, name=name, code="NAME_TOO_LONG", message=problem, keep=True)


def _name_problem(client: Client, name: str) -> str:
    """Why a file name cannot be recorded (its batch's name, inbox path, sighting), or ""."""
    longest = min(
        Batch._meta.get_field("file_name").max_length,
        InboxSighting._meta.get_field("name").max_length,
        Batch._meta.get_field("inbox_path").max_length - len(home_path(client, "inbox", "")),
    )
    if len(name) <= longest:
        return ""
    return (
        f"The file name has {len(name):,} characters; at most {longest} are accepted. "
        "Rename the file and upload it again."
    )


def inbox_refuse(*, client: Client, name: str, code: str, message: str, keep: bool) -> Batch:
    """Refuse an inbox entry before it becomes a batch: a FAILED batch saying why, with its
    result file in the outbox, and the entry out of the inbox: moved to failed/ if `keep`,
    else deleted (a symlink: never followed, its target neither read nor touched).
    """
    path = home_path(client, "inbox", name)
    now = timezone.now()
    batch = Batch.objects.create(
        client=client,
        file_name=fitting_name(name, ""),
        status=BatchStatus.FAILED,
        failure_code=code,
        failure_message=message,
        encryption=client.batch_encryption,
        started_at=now,
        finished_at=now,
    )
    logger.warning("Inbox of client %s: %r refused as batch %s: %s", client, name, batch.pk, code)
    storage = batch_storage()
    if keep:
        with storage.open(path, "rb") as content:
            kept_name = fitting_name(f"{batch.pk}-{batch.file_name}", "")
            batch.archived_path = storage.save(
                home_path(client, "failed", kept_name), File(content, name=kept_name)
            )
    Path(settings.BATCH_WORK_DIR).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="refused-", dir=settings.BATCH_WORK_DIR) as scratch:
        batch.result_path = result_write(batch, Path(scratch))
    batch.save(update_fields=["archived_path", "result_path", "updated_at"])
    storage.delete(path)
    return batch


def _looks_complete(name: str) -> bool:
    return not name.startswith(".") and not name.lower().endswith(IN_PROGRESS_SUFFIXES)


def batch_receive(*, client: Client, name: str, size: int | None = None, queue=True) -> Batch:
    """Create the batch for a complete file in the client's inbox and queue its ingest.

    For the inbox poll, and for an uploader that knows a file is complete (the
    SFTP gateway, on close). Returns the file's open batch if it already has one,
    or the FAILED batch refusing a name that does not fit (NAME_TOO_LONG).
    """
    if refused := _refused_for_its_name(client, name):
        return refused
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
