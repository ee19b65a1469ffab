"""django-q2 tasks: thin wrappers over batches.inbox and batches.ingest, safe to run twice."""

from batches.inbox import inboxes_poll, poll_interval_sync
from batches.ingest import batch_ingest


def poll_inboxes() -> int:
    """The "poll batch inboxes" schedule: take new files, queue stalled batches again."""
    poll_interval_sync()
    return len(inboxes_poll())


def ingest_batch(batch_id: int) -> str | None:
    return batch_ingest(batch_id=batch_id)
