"""One purge of personal data past its periods, over every app (README "Personal data").

The daily "purge personal data" schedule (kokatto_site/tasks.py) and
`manage.py purge_personal_data` call `personal_data_purge`. Each part works in short
chunks and records its progress in the run's RetentionRun row after each chunk, so a
killed run says what it did, and the next run takes up where it stopped.
"""

import logging
from collections import Counter
from datetime import datetime, timedelta

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from batches.retention import batch_files_purge, gateway_logs_purge
from notifications.models import RetentionRun
from notifications.retention import (
    Counts,
    access_records_purge,
    notifications_purge,
    rows_delete_in_chunks,
)

logger = logging.getLogger(__name__)

SIGN_IN_LOGS = {
    "sign-in attempts": AccessAttempt,
    "sign-in failures": AccessFailureLog,
    "sign-in log": AccessLog,
}


def personal_data_purge(*, dry_run: bool = False, now: datetime | None = None) -> Counts:
    """Purge (or with `dry_run` count) what is past its period; returns the counts per kind.

    A real run is recorded as a RetentionRun, its counts updated after each chunk.
    """
    now = now or timezone.now()
    if dry_run:
        return {kind: n for part in PARTS for kind, n in part(now=now, dry_run=True).items()}
    run = RetentionRun.objects.create(started_at=now)
    counts: Counter[str] = Counter()

    def record(chunk: Counts) -> None:
        counts.update(chunk)
        RetentionRun.objects.filter(pk=run.pk).update(counts=dict(counts))

    for part in PARTS:
        try:
            part(now=now, on_chunk=record)
        except DatabaseError:
            # One part's failure (a lock timeout, say) must not keep the others from their
            # day's work: its finished chunks stay done, the rest waits for the next run.
            logger.exception("Retention: %s stopped", part.__name__)
            record({"parts stopped by an error": 1})
    RetentionRun.objects.filter(pk=run.pk).update(counts=dict(counts), finished_at=timezone.now())
    return dict(counts)


def sign_in_logs_purge(*, now: datetime, dry_run: bool = False, on_chunk=lambda c: None) -> Counts:
    """Delete django-axes' attempts and logs older than SIGN_IN_LOG_RETENTION_DAYS.

    Far past the lock-out time (AXES_COOLOFF_TIME), so no lock-out is lifted early.
    """
    cutoff = now - timedelta(days=settings.SIGN_IN_LOG_RETENTION_DAYS)
    total = {}
    for kind, model in SIGN_IN_LOGS.items():
        old = model.objects.filter(attempt_time__lt=cutoff)
        total[kind] = (
            old.count()
            if dry_run
            else rows_delete_in_chunks(old, on_chunk=lambda n, kind=kind: on_chunk({kind: n}))
        )
    return total


# The parts of a run, in order; each works in chunks of its own.
PARTS = (
    notifications_purge,
    batch_files_purge,
    gateway_logs_purge,
    sign_in_logs_purge,
    access_records_purge,
)
