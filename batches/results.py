"""The result file a client downloads from its outbox when a batch is finished.

`<name>.result.csv` (or `<name>.result.7z`, encrypted like the input, with the
same password), where <name> is the uploaded name without its .7z and .csv
endings. A header row, then one row per non-blank line of the input, in order:

    line,clientNotifRefId,status,code,message
    1,UNIQ-1,ACCEPTED,,
    2,UNIQ-2,REJECTED,VALIDATION_ERROR,balance: Enter a whole number.

A file that could not be read at all (wrong password, damaged archive, a
duplicate of an earlier file) gets one row with line 0 saying why.
"""

import csv
import heapq
from pathlib import Path

from django.core.files import File

from batches.decryption import BatchFileError, get_decryption
from batches.inbox import batch_storage, fitting_name, home_path
from batches.models import Batch

HEADER = ["line", "clientNotifRefId", "status", "code", "message"]
ACCEPTED, REJECTED = "ACCEPTED", "REJECTED"


def result_write(batch: Batch, scratch: Path) -> str:
    """Write the batch's result file to the client's outbox; returns its storage path."""
    plain = scratch / "result.csv"
    with plain.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(_rows(batch))
    method = _wrapping(batch)
    base = result_base_name(batch.file_name)
    wrapped = scratch / "result.out"
    with wrapped.open("wb") as destination:
        method.wrap_result(
            plain,
            f"{base}.result.csv",
            password=batch.client.batch_password(),
            destination=destination,
        )
    return _save(batch, wrapped, base, f".result{method.result_suffix or '.csv'}")


def _rows(batch: Batch):
    if batch.failure_code:
        return [[0, "", REJECTED, batch.failure_code, batch.failure_message]]
    accepted = (
        (line, reference, ACCEPTED, "", "")
        for line, reference in batch.notifications.order_by("batch_line")
        .values_list("batch_line", "reference")
        .iterator(chunk_size=10_000)
    )
    rejected = (
        (line, reference, REJECTED, code, message)
        for line, reference, code, message in batch.rejected_lines.order_by("line")
        .values_list("line", "reference", "code", "message")
        .iterator(chunk_size=10_000)
    )
    return heapq.merge(accepted, rejected, key=lambda row: row[0])


def _wrapping(batch: Batch):
    try:
        return get_decryption(batch.encryption)
    except BatchFileError:
        return get_decryption("none")


def result_base_name(file_name: str) -> str:
    base = file_name
    for ending in (".7z", ".csv"):
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
