"""One purge of personal data past its periods, over every app (README "Personal data").

The daily "purge personal data" schedule (kokatto_site/tasks.py) and
`manage.py purge_personal_data` call `personal_data_purge`. Each part works in short
chunks and records its progress in the run's RetentionRun row after each chunk, so a
killed run says what it did, and the next run takes up where it stopped.
"""

from collections import Counter
from datetime import datetime, timedelta

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.utils import timezone

from batches.retention import batch_files_purge, gateway_logs_purge
from notifications.models import RetentionRun
from notifications.retention import (
    Counts,
    access_records_purge,
    notifications_purge,
    rows_delete_in_chunks,
)

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
        return {
            **notifications_purge(now=now, dry_run=True),
            **batch_files_purge(now=now, dry_run=True),
            **gateway_logs_purge(now=now, dry_run=True),
            **sign_in_logs_purge(now=now, dry_run=True),
            **access_records_purge(now=now, dry_run=True),
        }
    run = RetentionRun.objects.create(started_at=now)
    counts: Counter[str] = Counter()

    def record(chunk: Counts) -> None:
        counts.update(chunk)
        RetentionRun.objects.filter(pk=run.pk).update(counts=dict(counts))

    notifications_purge(now=now, on_chunk=record)
    batch_files_purge(now=now, on_chunk=record)
    gateway_logs_purge(now=now, on_chunk=record)
    sign_in_logs_purge(now=now, on_chunk=record)
    access_records_purge(now=now, on_chunk=record)
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
