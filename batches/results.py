"""The result file a client downloads from its outbox when a batch is finished.

`<name>.result.csv` (or `<name>.result.7z`, encrypted like the input, with the
same password; or `<name>.result.csv.pgp`, `.asc` when the upload was armoured,
encrypted to the client's OpenPGP key and signed by the platform's), where <name>
is the uploaded name without its .7z, .pgp, .gpg, .asc and then .csv endings.
A header row, then one row per non-blank line of the input, in order:

    "line","clientNotifRefId","status","code","message"
    1,"UNIQ-1","ACCEPTED","",""
    2,"UNIQ-2","REJECTED","VALIDATION_ERROR","balance: Enter a whole number."

A file that could not be read at all (wrong password, damaged archive, a
duplicate of an earlier file) gets one row with line 0 saying why. A batch that
failed after storing some of its lines (INGEST_ERROR) gets that row, then the
rows of the lines stored.

Every text cell is quoted and written spreadsheet_safe (clients/spreadsheet_safe.py):
a value that a spreadsheet would run as a formula gets a `'` in front.

A run writes the rows as it stores each chunk (ResultRows), so the file is ready
when the last chunk is: reading a million rows back from the database at the
end took 3 of the 4-5 seconds a million-line batch spent after its last chunk.
"""

import heapq
import logging
from collections.abc import Iterable
from pathlib import Path

from django.core.files import File

from batches.client_credentials import ClientCredentials
from batches.decryption import BatchFileError, CredentialUnavailable, get_decryption
from batches.file_storage import batch_storage, fitting_name, home_path
from batches.models import Batch, RejectedLine
from clients.spreadsheet_safe import spreadsheet_writer

logger = logging.getLogger(__name__)

HEADER = ["line", "clientNotifRefId", "status", "code", "message"]
ACCEPTED, REJECTED = "ACCEPTED", "REJECTED"


def result_write(
    batch: Batch, scratch: Path, *, rows: Path | None = None, upload: Path | None = None
) -> str:
    """Write the batch's result file to the client's outbox; returns its storage path.

    `rows`: the CSV a run wrote as it stored the lines (ResultRows); without it,
    the batch failed as a whole (or duplicates another) and its result is the one
    row saying why. `upload`: the run's copy of the client's file, when it was fetched
    (an OpenPGP result is armoured when it was). Returns "" (no file, logged) when what
    encrypts the file cannot be had: the client's batch password or OpenPGP key opened
    by no FIELD_ENCRYPTION_KEY, or an openpgp client's public key missing (a result in
    the clear would break the promise that the outbox holds only encrypted files).
    """
    plain = rows or _write_failure(batch, scratch / "result.csv")
    method = _wrapping(batch)
    base = result_base_name(batch.file_name)
    upload_head = _head(upload)
    wrapped = scratch / "result.out"
    try:
        with wrapped.open("wb") as destination:
            method.wrap_result(
                plain,
                fitting_name(base, ".result.csv"),  # a name the client's disk can extract
                credentials=ClientCredentials(batch.client),
                destination=destination,
                upload_head=upload_head,
            )
    except CredentialUnavailable as exc:
        logger.error("Batch %s: no result file: %s", batch.pk, exc.detail)
        return ""
    return _save(batch, wrapped, base, f".result{method.result_ending(upload_head)}")


def _head(upload: Path | None) -> bytes:
    if upload is None:
        return b""
    with upload.open("rb") as file:
        return file.read(64)


class ResultRows:
    """The result CSV of a run, written a chunk at a time as the chunks are stored.

    A resumed run starts the file with the rows of the lines stored before its
    checkpoint, read from the database. A run that dies leaves its file in its
    scratch directory, which the next run removes.
    """

    def __init__(self, batch: Batch, path: Path):
        self.path = path
        self._file = path.open("w", newline="", encoding="utf-8")
        self._writer = spreadsheet_writer(self._file)
        self._writer.writerow(HEADER)
        if batch.checkpoint_line:
            self._writer.writerows(_stored_rows(batch, batch.checkpoint_line))

    def add(self, accepted: dict[int, str], rejected: Iterable[RejectedLine]) -> None:
        """The rows of a stored chunk: its accepted lines (line -> reference) and rejections."""
        rows = [(line, reference, ACCEPTED, "", "") for line, reference in accepted.items()]
        rows += [(r.line, r.reference, REJECTED, r.code, r.message) for r in rejected]
        rows.sort(key=_line_of)
        self._writer.writerows(rows)

    def close(self) -> None:
        self._file.close()


def _write_failure(batch: Batch, plain: Path) -> Path:
    failure = [0, "", REJECTED, batch.failure_code, batch.failure_message]
    with plain.open("w", newline="", encoding="utf-8") as out:
        writer = spreadsheet_writer(out)
        writer.writerows([HEADER, failure])
        if batch.checkpoint_line:
            writer.writerows(_stored_rows(batch, batch.checkpoint_line))
    return plain


def _stored_rows(batch: Batch, through_line: int):
    """The rows of the batch's lines stored up to `through_line`, in line order."""
    accepted = (
        (line, reference, ACCEPTED, "", "")
        for line, reference in batch.notifications.filter(batch_line__lte=through_line)
        .order_by("batch_line")
        .values_list("batch_line", "reference")
        .iterator(chunk_size=10_000)
    )
    rejected = (
        (line, reference, REJECTED, code, message)
        for line, reference, code, message in batch.rejected_lines.filter(line__lte=through_line)
        .order_by("line")
        .values_list("line", "reference", "code", "message")
        .iterator(chunk_size=10_000)
    )
    return heapq.merge(accepted, rejected, key=_line_of)


def _line_of(row) -> int:
    return row[0]


def _wrapping(batch: Batch):
    try:
        return get_decryption(batch.encryption)
    except BatchFileError:
        return get_decryption("none")


def result_base_name(file_name: str) -> str:
    base = file_name
    for ending in (".7z", ".pgp", ".gpg", ".asc", ".csv"):
        if base.lower().endswith(ending):
            base = base[: -len(ending)]
    return base or "batch"


def _save(batch: Batch, local: Path, base: str, ending: str) -> str:
    """Save into the outbox; never over another batch's result of the same name."""
    storage = batch_storage()
    path = home_path(batch.client, "outbox", fitting_name(base, ending))
    if storage.exists(path):
        # Taken (by an earlier batch of this name, or an earlier run of this one):
        # a name of this batch's own, never another batch's file.
        name = fitting_name(base, f".batch-{batch.pk}{ending}")
        path = home_path(batch.client, "outbox", name)
        if storage.exists(path):
            storage.delete(path)
    with local.open("rb") as content:
        return storage.save(path, File(content))
