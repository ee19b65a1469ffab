"""Batch files and gateway logs kept only as long as allowed (UU PDP; see
notifications/retention.py for the notifications themselves).

A finished batch's original (its copy in archive/, or failed/) is deleted from the
batch storage BATCH_ARCHIVE_RETENTION_DAYS after it finished, its result file in the
client's outbox BATCH_RESULT_RETENTION_DAYS after; the row forgets the path first, so
a file is deleted once and a batch being reprocessed keeps its copy. The messages of its
rejected lines, which quote the values refused, go with the result file. The gateway's
events go after GATEWAY_EVENT_RETENTION_DAYS, its failed logins after its defence's
own GATEWAY_DEFENDER_KEEP_SECONDS.
"""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q

from batches.file_storage import batch_storage
from batches.gateway.defender import gateway_defender_prune
from batches.models import UNFINISHED, Batch, GatewayEvent, GatewayLoginFailure, RejectedLine
from notifications.retention import Counts, rows_delete_in_chunks

logger = logging.getLogger(__name__)

# (the Batch field holding the path, its setting, the kind counted)
BATCH_FILES = [
    ("archived_path", "BATCH_ARCHIVE_RETENTION_DAYS", "batch originals"),
    ("result_path", "BATCH_RESULT_RETENTION_DAYS", "batch result files"),
]


def batch_files_purge(
    *, now: datetime, dry_run: bool = False, on_chunk: Callable[[Counts], None] = lambda c: None
) -> Counts:
    """Delete the batch originals and result files past their periods; returns the counts."""
    total: Counts = {}
    for field, setting, kind in BATCH_FILES:
        cutoff = now - timedelta(days=getattr(settings, setting))
        due = (
            Batch.objects.exclude(**{field: ""})
            .exclude(status__in=UNFINISHED)
            .filter(Q(finished_at__lt=cutoff) | Q(finished_at__isnull=True, created_at__lt=cutoff))
        )
        total[kind] = due.count() if dry_run else _files_delete(due, field, kind, on_chunk)
    total["rejected line messages"] = _rejected_messages_purge(
        now - timedelta(days=settings.BATCH_RESULT_RETENTION_DAYS), dry_run, on_chunk
    )
    return total


def _rejected_messages_purge(cutoff: datetime, dry_run: bool, on_chunk) -> int:
    """Blank the messages of rejected lines (they quote the values refused, as the result
    file does) of batches finished before `cutoff`; the line, reference and code stay."""
    batches = (
        Batch.objects.exclude(status__in=UNFINISHED)
        .filter(Q(finished_at__lt=cutoff) | Q(finished_at__isnull=True, created_at__lt=cutoff))
        .filter(lines_rejected__gt=0)
    )
    lines = RejectedLine.objects.filter(batch__in=batches).exclude(message="")
    if dry_run:
        return lines.count()
    blanked = 0
    while ids := list(lines.order_by("pk").values_list("pk", flat=True)[: _chunk_size()]):
        count = RejectedLine.objects.filter(pk__in=ids).update(message="")
        blanked += count
        on_chunk({"rejected line messages": count})
    return blanked


def _files_delete(due, field: str, kind: str, on_chunk: Callable[[Counts], None]) -> int:
    storage = batch_storage()
    deleted, after = 0, 0
    while chunk := list(
        due.filter(pk__gt=after).order_by("pk").values_list("pk", field)[: _chunk_size()]
    ):
        count = 0
        for pk, path in chunk:
            # Forget the path first (only while the batch is still finished), then delete.
            forgotten = (
                Batch.objects.filter(pk=pk, **{field: path})
                .exclude(status__in=UNFINISHED)
                .update(**{field: ""})
            )
            if not forgotten:
                continue
            try:
                storage.delete(path)
            except FileNotFoundError:
                pass
            except OSError:
                # The path is forgotten, the file maybe not: logged for an operator.
                logger.exception("Batch %s: could not delete %s", pk, path)
                continue
            count += 1
        deleted += count
        after = chunk[-1][0]
        on_chunk({kind: count})
    return deleted


def gateway_logs_purge(
    *, now: datetime, dry_run: bool = False, on_chunk: Callable[[Counts], None] = lambda c: None
) -> Counts:
    """Delete gateway events older than GATEWAY_EVENT_RETENTION_DAYS, and the failed logins
    and scores the brute-force defence no longer needs (GATEWAY_DEFENDER_KEEP_SECONDS: its
    own prune, otherwise run only every PRUNE_EVERY failures, so never on a quiet gateway).
    """
    events = GatewayEvent.objects.filter(
        at__lt=now - timedelta(days=settings.GATEWAY_EVENT_RETENTION_DAYS)
    )
    older_than = now - timedelta(seconds=settings.GATEWAY_DEFENDER_KEEP_SECONDS)
    if dry_run:
        failures = GatewayLoginFailure.objects.filter(created_at__lt=older_than)
        return {"gateway events": events.count(), "gateway failed logins": failures.count()}
    deleted = rows_delete_in_chunks(events, on_chunk=lambda n: on_chunk({"gateway events": n}))
    pruned = gateway_defender_prune(older_than=older_than)
    on_chunk({"gateway defender rows": pruned})
    return {"gateway events": deleted, "gateway defender rows": pruned}


def _chunk_size() -> int:
    return settings.RETENTION_CHUNK_SIZE
