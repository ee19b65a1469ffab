"""The gateway's audit trail: every login, upload, download, rename and delete, stored.

Called by batches/gateway/accounts.py (logins) and batches/gateway/home.py (files), next
to their log lines, which stay. Events are deleted after GATEWAY_EVENT_RETENTION_DAYS
(batches/retention.py).
"""

from batches.metrics import gateway_event_count
from batches.models import GatewayAccount, GatewayEvent, GatewayOutcome
from clients.models import Client


def gateway_event_record(
    *,
    action: str,
    protocol: str,
    address: str,
    username: str,
    account: GatewayAccount | None = None,
    client: Client | None = None,
    file_name: str = "",
    size: int | None = None,
    sha256: str | None = None,
    duration: float | None = None,
    outcome: str = GatewayOutcome.OK,
    reason: str = "",
) -> GatewayEvent:
    """Store one event, and count it (batches/metrics.py); text longer than its column (a
    client chooses it) is cut to fit."""
    values = {
        "username": username,
        "address": address,
        "file_name": file_name,
        "reason": str(reason),
    }
    event = GatewayEvent.objects.create(
        client=client or (account.client if account else None),
        account=account,
        protocol=protocol,
        action=action,
        size_bytes=size,
        sha256=sha256,
        duration_seconds=duration,
        outcome=outcome,
        **{name: _fit(name, value) for name, value in values.items()},
    )
    gateway_event_count(protocol=protocol, action=action, outcome=outcome)
    return event


def _fit(field: str, value: str) -> str:
    return value[: GatewayEvent._meta.get_field(field).max_length]
