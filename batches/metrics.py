"""Batch ingestion's and the file-transfer gateway's Prometheus metrics, counted where each
event happens (batches/ingest.py, batches/gateway/audit.py).

Labels stay few: a client's clientId, a rejection code, a gateway protocol, action and
outcome; never a file name, a reference or an address. /metrics exposes them.
"""

from django.db import transaction
from prometheus_client import Counter

BATCH_LINES_READ = Counter(
    "kokatto_batch_lines_read",
    "Batch lines read and stored (accepted or rejected), by client (clientId).",
    ["client"],
)
BATCH_LINES_REJECTED = Counter(
    "kokatto_batch_lines_rejected",
    "Batch lines rejected, by client (clientId) and rejection code.",
    ["client", "code"],
)
GATEWAY_EVENTS = Counter(
    "kokatto_gateway_events",
    "File-transfer gateway events (LOGIN, LOGIN_REFUSED, UPLOAD, DOWNLOAD, RENAME, DELETE), "
    "by protocol, action and outcome (ok, refused, failed).",
    ["protocol", "action", "outcome"],
)


def batch_lines_count(*, client_id: str, read: int, rejected_codes: list[str]) -> None:
    """Count a chunk's lines read and rejected, once its transaction commits."""
    by_code: dict[str, int] = {}
    for code in rejected_codes:
        by_code[code] = by_code.get(code, 0) + 1

    def count() -> None:
        BATCH_LINES_READ.labels(client_id).inc(read)
        for code, number in by_code.items():
            BATCH_LINES_REJECTED.labels(client_id, code).inc(number)

    transaction.on_commit(count)


def gateway_event_count(*, protocol: str, action: str, outcome: str) -> None:
    """Count one gateway event, once the transaction storing it commits."""
    counter = GATEWAY_EVENTS.labels(protocol, action, outcome)
    transaction.on_commit(counter.inc)
