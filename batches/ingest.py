"""Ingesting one batch file: fetch, decrypt, parse, validate, store in chunks, answer.

A run leases its batch (a token and a deadline on the batch row, like a
delivery's claim): a second run of the same task, queued again by django-q2 or
by the inbox poll, finds the lease held and leaves; a run whose worker died is
followed by another once the lease runs out. Lines are stored in chunks, each
in one transaction with the batch's checkpoint (the last line committed), the
counters and a renewal of the lease; a run that lost its lease stores nothing
more. A resumed run starts after the checkpoint, so every line is accepted
once or rejected once. The database says so too: one notification and one
rejection at most per batch line.
"""

import contextlib
import hashlib
import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.db import DataError, IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from batches.client_credentials import ClientCredentials
from batches.decryption import (
    BatchFileError,
    CredentialUnavailable,
    ErrorCode,
    Limits,
    get_decryption,
    keys_derived_once,
)
from batches.file_storage import batch_storage, fitting_name, home_path
from batches.inbox import SYMLINK_REFUSED, is_symlink, queue_ingest
from batches.line_checking import (
    CheckedChunk,
    LineChecker,
    Rejection,
    checked_chunks,
    duplicate_reference,
    unstorable_value,
)
from batches.metrics import batch_lines_count
from batches.models import UNFINISHED, Batch, BatchStatus, RejectedLine
from batches.openpgp_keys import gnupg_homes_sweep
from batches.results import ResultRows, result_write
from notifications.bulk_insert import EncodedNotifications, encoded_halves
from notifications.intake import notifications_insert
from notifications.models import Source
from notifications.stored_text import storable_text

logger = logging.getLogger(__name__)

# A run renews its lease at least this often (and three times a lease) while it copies the
# file from or to the storage.
LEASE_RENEW_SECONDS = 30

COUNTERS = ("lines_read", "lines_accepted", "lines_rejected", "bytes_done")


class LeaseLost(Exception):
    """Another run took the batch over (this run was slower than its lease)."""


class TooManyRejections(Exception):
    """A chunk would take the batch's rejected lines past BATCH_MAX_REJECTED_LINES."""


class IngestResult(StrEnum):
    """How a run of batch_ingest ends: the batch's final status, or BUSY."""

    DONE = BatchStatus.DONE
    FAILED = BatchStatus.FAILED
    DUPLICATE = BatchStatus.DUPLICATE
    BUSY = "busy"  # another run holds the batch


class ReprocessResult(StrEnum):
    QUEUED = "queued"
    NOT_FAILED = "not failed"
    NAME_IN_USE = "name in use"  # a newer upload of the same name is being ingested


@dataclass(frozen=True)
class IngestRun:
    """One run of a batch's ingest: what every step of it works with."""

    batch: Batch
    token: str  # of the run's lease: what it writes to the batch row is guarded by it
    scratch: Path  # this run's own directory, removed with it
    original: Path  # the copy of the file in `scratch`


def batch_ingest(
    *, batch_id: int, progress: Callable[[Batch], None] | None = None
) -> IngestResult | None:
    """Ingest the batch to the end; returns its status (BUSY if another run holds it,
    None if there is no such batch)."""
    token = _lease(batch_id)
    if token is None:
        status = Batch.objects.filter(pk=batch_id).values_list("status", flat=True).first()
        if status is None:
            return None
        return IngestResult.BUSY if status in UNFINISHED else IngestResult(status)
    batch = Batch.objects.select_related("client").get(pk=batch_id)
    work_dir = Path(settings.BATCH_WORK_DIR)
    work_dir.mkdir(parents=True, exist_ok=True)
    _remove_scratch_of_dead_runs(work_dir, batch)
    gnupg_homes_sweep()
    try:
        with (
            tempfile.TemporaryDirectory(prefix=f"batch-{batch.pk}-", dir=work_dir) as scratch,
            keys_derived_once(),
        ):
            run = IngestRun(batch, token, Path(scratch), Path(scratch) / "original")
            return _ingest(run, progress)
    except LeaseLost:
        logger.warning("Batch %s: lease lost to another run; stopping", batch_id)
        return IngestResult.BUSY


def _remove_scratch_of_dead_runs(work_dir: Path, batch: Batch) -> None:
    """A killed run leaves its scratch files (the decrypted CSV among them): remove them.

    Safe: holding the lease, this run is the only live one of the batch.
    """
    for leftover in work_dir.glob(f"batch-{batch.pk}-*"):
        logger.warning("Batch %s: removing %s, left by a run that died", batch.pk, leftover)
        shutil.rmtree(leftover, ignore_errors=True)


def _ingest(run: IngestRun, progress) -> IngestResult:
    batch = run.batch
    if not batch.archived_path and is_symlink(batch_storage(), batch.inbox_path):
        # Made a link since the poll took it: never followed, left for the poll to refuse.
        return _finish_failed(run, "SYMLINK", SYMLINK_REFUSED, put_away=False)
    try:
        digest, size = _fetch(run)
    except FileNotFoundError:
        return _finish_failed(run, "FILE_MISSING", "The file is gone.", put_away=False)
    except BatchFileError as exc:  # too large to copy: never copied, moved aside as it is
        _set_aside(run)
        return _finish_failed(run, exc.code, exc.message, put_away=False)
    duplicate_of = _record_content(run, digest, size)
    if duplicate_of is not None:
        return _finish_duplicate(run, duplicate_of)
    # Before any line is stored: a resumed run reads this copy, whatever the inbox holds then.
    _keep_original(run)
    # Counted from here: a run that could not fetch the file (a storage down) tells
    # nothing about the batch, and is retried for as long as it takes.
    _write_under_lease(run, runs_since_progress=batch.runs_since_progress + 1)
    if batch.runs_since_progress > settings.BATCH_MAX_RUNS_WITHOUT_PROGRESS:
        return _give_up(run)
    try:
        method = get_decryption(batch.encryption)
        limits = Limits(
            max_bytes=settings.BATCH_MAX_UNCOMPRESSED_BYTES,
            max_ratio=settings.BATCH_MAX_RATIO,
            max_lines=settings.BATCH_MAX_LINES,
        )
        with (
            run.original.open("rb") as source,
            method.open_plaintext(
                source,
                credentials=ClientCredentials(batch.client),
                limits=limits,
                workdir=run.scratch,
            ) as plaintext,
        ):
            rows = _ingest_lines(run, plaintext, progress)
    except CredentialUnavailable as exc:
        return _credential_unavailable(run, exc)
    except BatchFileError as exc:
        if exc.code == ErrorCode.NOT_ENCRYPTED:
            # The client's customers' data in the clear: kept in no folder of ours.
            _discard(run)
            message = f"{exc.message}; the file was deleted, not kept"
            return _finish_failed(run, exc.code, message, put_away=False)
        return _finish_failed(run, exc.code, exc.message, detail=exc.detail)
    except TooManyRejections:
        return _finish_failed(run, "TOO_MANY_REJECTIONS", _too_many_rejections(batch))
    return _finish_done(run, rows)


def _credential_unavailable(run: IngestRun, exc: CredentialUnavailable) -> IngestResult:
    """FAILED, kept in failed/ for a reprocess: a secret the method needs cannot be had.

    PASSWORD_UNREADABLE or OPENPGP_KEY_UNREADABLE: opened by no FIELD_ENCRYPTION_KEY (one
    was dropped before rotate_encryption_keys ran); the client's other batches fail alike,
    no other client's. CLIENT_KEY_MISSING: an openpgp client without its public key on file.
    """
    logger.error("Batch %s: %s", run.batch.pk, exc.detail)
    return _finish_failed(run, exc.code, exc.message)


def _too_many_rejections(batch: Batch) -> str:
    answered = (
        f"Lines 1 to {batch.checkpoint_line} are answered in this file; the lines after were "
        "not read."
        if batch.checkpoint_line
        else "No line was stored."
    )
    return (
        f"Ingesting stopped: more than {settings.BATCH_MAX_REJECTED_LINES:,} lines were "
        f"rejected. {answered} Fix the rejected lines, and send the lines not read in a new file."
    )


def _give_up(run: IngestRun) -> IngestResult:
    """Fail a batch whose last runs all ended in an error before storing a chunk.

    A fault that repeats itself (a file that kills the worker, a bug) would
    otherwise have the batch queued again at every poll, for ever. What was
    stored stays stored and is answered in the result file; reprocessing the
    batch resumes after its checkpoint once the cause is fixed.
    """
    batch = run.batch
    runs = batch.runs_since_progress - 1
    logger.error(
        "Batch %s: %s runs in a row ended in an error before storing a chunk; failing it",
        batch.pk,
        runs,
    )
    message = (
        f"Ingesting stopped: its last {runs} runs ended in an error {_how_far(batch)} "
        "Support can reprocess the batch once the cause is fixed."
    )
    # Best effort: the fault may be the one that stopped the runs (an outbox that cannot
    # be written), and the batch is FAILED all the same, not given up on again and again.
    return _finish_failed(run, "INGEST_ERROR", message, best_effort=True)


@contextlib.contextmanager
def _step(batch: Batch, what: str, *, best_effort: bool):
    """A step of failing a batch: its error is logged and passed over if `best_effort`."""
    try:
        yield
    except LeaseLost:
        raise
    except Exception:
        if not best_effort:
            raise
        logger.exception("Batch %s: %s failed while the batch was being failed", batch.pk, what)


def _how_far(batch: Batch) -> str:
    if not batch.checkpoint_line:
        return "before storing a line. No line was read."
    if batch.bytes_total and batch.bytes_done >= batch.bytes_total:
        return "after every line was stored, while finishing. Every line is answered in this file."
    return (
        f"before storing another line. Lines 1 to {batch.checkpoint_line} are answered in this "
        "file; the lines after were not read."
    )


def _lease(batch_id: int) -> str | None:
    """Take the batch if it is waiting or its last run's lease ran out; returns the token."""
    now = timezone.now()
    token = secrets.token_hex(16)
    taken = (
        Batch.objects.filter(pk=batch_id, status__in=UNFINISHED)
        .exclude(status=BatchStatus.PROCESSING, lease_expires_at__gte=now)
        .update(
            status=BatchStatus.PROCESSING,
            lease_token=token,
            lease_expires_at=now + timedelta(seconds=settings.BATCH_LEASE_SECONDS),
            runs=F("runs") + 1,
            updated_at=now,
        )
    )
    if not taken:
        return None
    Batch.objects.filter(pk=batch_id, started_at__isnull=True).update(started_at=now)
    return token


def _write_under_lease(run: IngestRun, **changes) -> None:
    """Store `changes` on the batch and renew the lease, if the lease is still ours;
    LeaseLost if not."""
    batch = run.batch
    now = timezone.now()
    updated = Batch.objects.filter(
        pk=batch.pk, lease_token=run.token, status=BatchStatus.PROCESSING
    ).update(
        lease_expires_at=now + timedelta(seconds=settings.BATCH_LEASE_SECONDS),
        updated_at=now,
        **changes,
    )
    if not updated:
        raise LeaseLost
    for name, value in changes.items():
        if not hasattr(value, "resolve_expression"):
            setattr(batch, name, value)


def _fetch(run: IngestRun) -> tuple[str, int]:
    """Copy the file from the storage (its inbox, or the batch's own copy once kept).

    A long download (a remote storage) renews the lease as it goes. A file from the
    inbox larger than BATCH_MAX_FILE_BYTES is BatchFileError FILE_TOO_LARGE, found by
    its size before any byte is copied (or while copying one that grew): the scratch
    space never holds more of it.
    """
    batch = run.batch
    # Once kept, the copy is the batch's: the inbox name may hold a new upload by then.
    path = batch.archived_path or batch.inbox_path
    # A kept copy was within the limit when it was taken: a resumed run is not refused.
    max_bytes = None if batch.archived_path else settings.BATCH_MAX_FILE_BYTES
    if max_bytes is not None and batch_storage().size(path) > max_bytes:
        raise _file_too_large(max_bytes)
    with run.original.open("wb") as out:
        # A lease lost meanwhile leaves the copy in this run's scratch, removed with it.
        return _read_through(batch_storage(), path, run, out, max_bytes=max_bytes)


def _file_too_large(max_bytes: int) -> BatchFileError:
    return BatchFileError(
        ErrorCode.FILE_TOO_LARGE, f"the file is larger than the limit of {max_bytes:,} bytes"
    )


def _read_through(
    storage, path: str, run: IngestRun, out=None, *, max_bytes: int | None = None
) -> tuple[str, int]:
    """Read a stored file to its end (copied to `out` if given), renewing the lease;
    returns its SHA-256 and size. LeaseLost once read, if the lease was lost meanwhile;
    BatchFileError FILE_TOO_LARGE past `max_bytes`."""
    digest, size = hashlib.sha256(), 0
    with storage.open(path, "rb") as opened:
        source = _LeaseRenewingReader(opened, run)
        while chunk := source.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
            if max_bytes is not None and size > max_bytes:
                raise _file_too_large(max_bytes)
            if out is not None:
                out.write(chunk)
    if source.lost:
        raise LeaseLost
    return digest.hexdigest(), size


class _LeaseRenewingReader:
    """A file read for a long transfer (to or from a remote storage), renewing the batch's
    lease as it is read: a run that outlived its lease while copying a big file would
    be taken over, and the next run would copy it again, for ever.

    A lease found lost is recorded in `lost`, not raised: the copy goes on to its end
    (a storage interrupted mid-write can leave half a file behind), and the caller then
    undoes it and stops. Renewed only on the thread that made it: a storage reading on
    threads of its own (S3's multipart uploads) is not, nor one that reads the whole
    file in one call (S3's download on the first read).
    """

    def __init__(self, file, run: IngestRun):
        self._file, self._run = file, run
        self._renewed, self._thread = time.monotonic(), threading.get_ident()
        self.lost = False

    def read(self, size: int = -1) -> bytes:
        every = min(LEASE_RENEW_SECONDS, settings.BATCH_LEASE_SECONDS / 3)
        due = time.monotonic() - self._renewed > every
        if due and not self.lost and threading.get_ident() == self._thread:
            try:
                _write_under_lease(self._run)
            except LeaseLost:
                self.lost = True
            self._renewed = time.monotonic()
        return self._file.read(size)

    def __getattr__(self, name):
        return getattr(self._file, name)


def _record_content(run: IngestRun, digest: str, size: int) -> Batch | None:
    """Store the file's SHA-256; returns the earlier batch of the same bytes, if any.

    A run that died before keeping its copy of the file stored no line either,
    so if the inbox holds other bytes by the time it is resumed, those are the batch's.
    """
    batch = run.batch
    if batch.sha256 == digest:
        return None
    try:
        with transaction.atomic():
            _write_under_lease(run, sha256=digest, size_bytes=size)
    except IntegrityError:
        batch.size_bytes = size  # stored when the duplicate is closed
        return (
            Batch.objects.filter(client=batch.client, sha256=digest)
            .exclude(status=BatchStatus.DUPLICATE)
            .exclude(pk=batch.pk)
            .first()
        )
    return None


# --- the lines ------------------------------------------------------------------------


def _ingest_lines(run: IngestRun, plaintext, progress) -> Path:
    """Store the lines after the checkpoint; returns the result CSV of all the lines."""
    batch = run.batch
    bytes_total = os.fstat(plaintext.fileno()).st_size
    if batch.bytes_total != bytes_total:
        _write_under_lease(run, bytes_total=bytes_total)
    chunks = checked_chunks(
        plaintext,
        start_after=batch.checkpoint_line,
        checker=LineChecker(batch),
        chunk_lines=settings.BATCH_CHUNK_LINES,
    )
    # closing(): a failure here stops the checking process now, not when collected.
    with (
        contextlib.closing(chunks),
        contextlib.closing(ResultRows(batch, run.scratch / "rows.csv")) as rows,
    ):
        for chunk in chunks:
            rows.add(*_store_chunk(run, chunk))
            if progress:
                progress(batch)
    return rows.path


def _store_chunk(run: IngestRun, chunk: CheckedChunk) -> tuple[dict[int, str], list[RejectedLine]]:
    """Store a chunk's notifications and rejections with the checkpoint, in one transaction.

    Returns the lines accepted (line -> reference) and the rejections, as stored.

    A line whose reference was used before is rejected as DUPLICATE_REFERENCE:
    by an earlier line of the chunk, as the checking found; by any source before
    (the API, another batch, an earlier chunk), as the database says while it inserts.
    A line whose values the database refuses (DataError) is rejected as UNSTORABLE_VALUE.
    """
    batch = run.batch
    conflicts, isolating = 0, False
    while True:
        try:
            with transaction.atomic():
                return _store_chunk_once(run, chunk, isolating=isolating)
        except DataError:
            if isolating:
                raise
            # A value passed the checks and not the database (a column narrower than the
            # checks know, say): the chunk again, finding the lines refused, rather than a
            # batch stopped for ever by one line.
            logger.warning(
                "Batch %s: the database refused a value of the chunk ending at line %s; "
                "storing it again, isolating the lines refused",
                batch.pk,
                chunk.last_line,
            )
            isolating = True
        except IntegrityError:
            # A reference was taken meanwhile (by the API): the next try sees it taken.
            conflicts += 1
            if conflicts == 3:
                raise
        batch.refresh_from_db(fields=["checkpoint_line", *COUNTERS])


def _store_chunk_once(run: IngestRun, chunk: CheckedChunk, *, isolating: bool):
    batch = run.batch
    _commit_without_waiting_for_disk()
    # First: the lease, and the batch row's lock, before anything of the chunk.
    _write_under_lease(run)
    references = chunk.valid.references
    if isolating:
        stored, refused = _insert_isolating(batch, chunk.valid)
    else:
        stored, refused = _insert(batch, chunk.valid), []
    refused_lines = {r.line for r in refused}
    rejections = (
        chunk.rejections
        + refused
        + [
            duplicate_reference(line, reference)
            for line, reference in references.items()
            if line not in stored and line not in refused_lines
        ]
    )
    if batch.lines_rejected + len(rejections) > settings.BATCH_MAX_REJECTED_LINES:
        raise TooManyRejections  # the chunk is rolled back: its lines stay unread
    rejected = RejectedLine.objects.bulk_create(
        RejectedLine(
            batch=batch,
            line=r.line,
            reference=storable_text(r.reference)[:100],
            code=r.code,
            message=storable_text(r.message),
        )
        for r in rejections
    )
    batch_lines_count(
        client_id=batch.client.client_id,
        read=chunk.lines,
        rejected_codes=[r.code for r in rejections],
    )
    # Counted here: holding the lease, this run is the batch's only writer.
    _write_under_lease(
        run,
        runs_since_progress=0,
        checkpoint_line=chunk.last_line,
        lines_read=batch.lines_read + chunk.lines,
        lines_accepted=batch.lines_accepted + len(stored),
        lines_rejected=batch.lines_rejected + len(rejections),
        bytes_done=chunk.bytes_read,
    )
    return {line: references[line] for line in stored}, rejected


def _insert(batch: Batch, encoded: EncodedNotifications) -> set[int]:
    return notifications_insert(
        client=batch.client, encoded=encoded, source=Source.BATCH, batch=batch
    )


def _insert_isolating(
    batch: Batch, encoded: EncodedNotifications
) -> tuple[set[int], list[Rejection]]:
    """Insert the notifications, each half on its own (a savepoint) where the database
    refuses a value, down to the single lines it refuses; returns the lines stored and
    the rejections of those refused. About 2·log2(chunk) statements per line refused."""
    try:
        with transaction.atomic():
            return _insert(batch, encoded), []
    except DataError as exc:
        if len(encoded.references) == 1:
            [(line, reference)] = encoded.references.items()
            logger.warning("Batch %s: line %s refused by the database: %s", batch.pk, line, exc)
            return set(), [unstorable_value(line, reference)]
    stored, refused = set(), []
    for half in encoded_halves(encoded):
        if half.references:
            half_stored, half_refused = _insert_isolating(batch, half)
            stored |= half_stored
            refused += half_refused
    return stored, refused


def _commit_without_waiting_for_disk() -> None:
    """Let PostgreSQL acknowledge this chunk's commit before its WAL reaches the disk.

    Safe here: a chunk's lines and its checkpoint commit together, so a server
    crash that loses the last chunks loses their checkpoint too, and the resumed
    run stores them again. Anything that acted on them since (a dispatcher's
    claim, the batch's DONE) committed durably after them, which flushes them.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


# --- the end of a run -----------------------------------------------------------------


def _finish_done(run: IngestRun, rows: Path) -> IngestResult:
    _write_under_lease(
        run, result_path=result_write(run.batch, run.scratch, rows=rows, upload=_fetched(run))
    )
    _put_away(run, "archive")
    return _close(run, BatchStatus.DONE)


def _finish_failed(
    run: IngestRun,
    code: str,
    message: str,
    *,
    put_away: bool = True,
    best_effort: bool = False,
    detail: str = "",
) -> IngestResult:
    """FAILED, with its result file and the original moved to failed/ (if `put_away`:
    not a file never copied, or deleted).

    `message` is what the client reads (result file, batch page); `detail`, what a
    library said, goes to the log only. `best_effort`: a step that fails is logged
    and the batch is FAILED all the same (a run giving up, whose fault may be the one
    that stops the steps); otherwise the step's error ends the run, and the next run
    tries again.
    """
    batch = run.batch
    logger.warning(
        "Batch %s failed: %s %s%s", batch.pk, code, message, f" ({detail})" if detail else ""
    )
    _write_under_lease(run, failure_code=code, failure_message=message)
    with _step(batch, "writing its result file", best_effort=best_effort):
        _write_under_lease(run, result_path=result_write(batch, run.scratch, upload=_fetched(run)))
    if put_away:
        with _step(batch, "moving its original to failed/", best_effort=best_effort):
            _put_away(run, "failed")
    return _close(run, BatchStatus.FAILED)


def _finish_duplicate(run: IngestRun, duplicate_of: Batch) -> IngestResult:
    batch = run.batch
    message = (
        f"The same bytes as {duplicate_of.file_name}, received "
        f"{duplicate_of.created_at:%Y-%m-%d %H:%M} (batch {duplicate_of.pk}, "
        f"{duplicate_of.status}); nothing was done again."
    )
    refused_clear = duplicate_of.failure_code == ErrorCode.NOT_ENCRYPTED
    if refused_clear:
        message += " That file was refused as not encrypted: upload it encrypted."
    elif duplicate_of.status == BatchStatus.FAILED:
        # Uploading the same bytes again cannot help: the earlier batch must be run again.
        message += (
            f" That batch failed ({duplicate_of.failure_code}): support can reprocess it "
            "once the cause is fixed, or upload a new file."
        )
    _write_under_lease(
        run, duplicate_of=duplicate_of, failure_code="DUPLICATE_FILE", failure_message=message
    )
    _write_under_lease(run, result_path=result_write(batch, run.scratch, upload=_fetched(run)))
    # The same bytes: kept on the row too (the uniqueness rule leaves duplicates out).
    batch.sha256 = duplicate_of.sha256
    if refused_clear:
        _discard(run)
    else:
        _put_away(run, "archive")
    return _close(run, BatchStatus.DUPLICATE, sha256=batch.sha256, size_bytes=batch.size_bytes)


def _fetched(run: IngestRun) -> Path | None:
    """The run's copy of the upload, if it was fetched (the result may answer in its form)."""
    return run.original if run.original.is_file() else None


def _keep_original(run: IngestRun) -> None:
    """Save the batch's own copy of the file in archive/ (once) and record where."""
    if not run.batch.archived_path:
        _save_original(run, "archive")


def _put_away(run: IngestRun, folder: str) -> None:
    """Leave the original in `folder` (archive/ or failed/), and take it out of the inbox."""
    batch = run.batch
    storage = batch_storage()
    _keep_original(run)
    if not batch.archived_path.startswith(home_path(batch.client, folder) + "/"):
        # e.g. to failed/, or from failed/ to archive/ when a reprocessed batch succeeds.
        earlier = batch.archived_path
        _save_original(run, folder)
        storage.delete(earlier)
    _remove_from_inbox(storage, run)


def _discard(run: IngestRun) -> None:
    """Delete the batch's kept copy, and its inbox file if it still holds the batch's bytes."""
    storage = batch_storage()
    if run.batch.archived_path:
        kept = run.batch.archived_path
        _write_under_lease(run, archived_path="")  # first: a run taking over finds no copy named
        storage.delete(kept)
    _remove_from_inbox(storage, run)


def _remove_from_inbox(storage, run: IngestRun) -> None:
    """Delete the inbox file only if it still holds these bytes: a client may have
    uploaded a new file under the same name meanwhile, which the next polls must find."""
    if _inbox_holds(storage, run):
        storage.delete(run.batch.inbox_path)


def _set_aside(run: IngestRun) -> None:
    """Move an inbox file too large to copy to the scratch space into failed/, within the
    storage: kept for the client and support, and not taken again by the next polls.

    Removed from the inbox if its size is still the one refused (its bytes were never
    all read, so they cannot be compared).
    """
    storage = batch_storage()
    inbox_path = run.batch.inbox_path
    try:
        size = storage.size(inbox_path)
        with storage.open(inbox_path, "rb") as content:
            _save_copy(run, content, "failed")
    except FileNotFoundError:
        return
    if storage.size(inbox_path) == size:
        storage.delete(inbox_path)


def _save_original(run: IngestRun, folder: str) -> None:
    with run.original.open("rb") as content:
        _save_copy(run, content, folder)


def _save_copy(run: IngestRun, content, folder: str) -> None:
    """Save the opened file as the batch's copy in `folder`, renewing the lease."""
    batch = run.batch
    name = fitting_name(f"{batch.pk}-{batch.file_name}", "")
    reader = _LeaseRenewingReader(content, run)
    saved = batch_storage().save(home_path(batch.client, folder, name), File(reader, name=name))
    if reader.lost:
        batch_storage().delete(saved)  # the run that took over keeps its own copy
        raise LeaseLost
    _write_under_lease(run, archived_path=saved)


def _inbox_holds(storage, run: IngestRun) -> bool:
    """Whether the batch's inbox path still holds the batch's bytes."""
    batch = run.batch
    try:
        if storage.size(batch.inbox_path) != batch.size_bytes:
            return False
        digest, _ = _read_through(storage, batch.inbox_path, run)
    except FileNotFoundError:
        return False
    return digest == batch.sha256


def _close(run: IngestRun, status: BatchStatus, **changes) -> IngestResult:
    """End the run: the batch gets its final `status` and the lease is released."""
    batch = run.batch
    now = timezone.now()
    updated = Batch.objects.filter(pk=batch.pk, lease_token=run.token).update(
        status=status,
        finished_at=now,
        lease_token="",
        lease_expires_at=None,
        updated_at=now,
        **changes,
    )
    if not updated:
        raise LeaseLost
    batch.status = status
    logger.info(
        "Batch %s %s: %s read, %s accepted, %s rejected",
        batch.pk,
        status,
        batch.lines_read,
        batch.lines_accepted,
        batch.lines_rejected,
    )
    return IngestResult(status)


def batch_reprocess(*, batch: Batch) -> ReprocessResult:
    """Run a FAILED batch again from its kept original (after its password was corrected, say).

    NAME_IN_USE while a newer upload of the same name is being ingested (try again once
    it is done).
    """
    try:
        with transaction.atomic():
            updated = Batch.objects.filter(pk=batch.pk, status=BatchStatus.FAILED).update(
                status=BatchStatus.RECEIVED,
                failure_code="",
                failure_message="",
                finished_at=None,
                encryption=batch.client.batch_encryption,
                runs_since_progress=0,
                updated_at=timezone.now(),
            )
    except IntegrityError:
        return ReprocessResult.NAME_IN_USE
    if not updated:
        return ReprocessResult.NOT_FAILED
    transaction.on_commit(lambda: queue_ingest(batch.pk))
    return ReprocessResult.QUEUED


def copy_into_inbox(client, local_path: Path) -> str:
    """Put a local file into the client's inbox (for the ingest_batch command); returns its name."""
    storage = batch_storage()
    with local_path.open("rb") as content:
        saved = storage.save(home_path(client, "inbox", local_path.name), File(content))
    return saved.rsplit("/", 1)[-1]
