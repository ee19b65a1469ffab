"""Re-encrypting every stored secret with the first FIELD_ENCRYPTION_KEY, so the others
can be dropped (`manage.py rotate_encryption_keys`).

Each encrypted column (clients.encryption.encrypted_columns) is read in batches of
rows in primary-key order, each batch re-encrypted in one transaction, so a run
that dies loses at most its current batch, and the next run finds the rows done
before as already current. A value is written back only if it is still the one
read (a conditional update): a secret replaced meanwhile (a new batch password,
written with the first key) is never overwritten with the old one.
"""

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db import transaction

from clients.encryption import (
    EncryptedColumn,
    TokenState,
    encrypted_columns,
    reencrypt_text,
    token_state,
)

logger = logging.getLogger(__name__)

# Values the deploy check examines per column: a bound on its cost (see clients/checks.py).
CHECK_SCAN_LIMIT = 10_000


@dataclass(frozen=True)
class UnreadableValue:
    pk: int
    client_id: str


@dataclass
class ColumnCounts:
    """What a run found in one encrypted column."""

    label: str
    reencrypted: int = 0  # under another key: re-encrypted (in a dry run or survey: to be)
    current: int = 0
    changed_meanwhile: int = 0  # rewritten by another process between reading and writing
    unreadable: list[UnreadableValue] = field(default_factory=list)


def encryption_keys_rotate(*, batch_size: int = 500, dry_run: bool = False) -> list[ColumnCounts]:
    """Re-encrypt every stored value that is under a non-first key; returns counts per column.

    `dry_run`: only count. A value no configured key opens is logged and counted,
    and the run goes on.
    """
    return [_column_rotate(column, batch_size, dry_run) for column in encrypted_columns()]


def encryption_keys_survey(*, limit: int = CHECK_SCAN_LIMIT) -> list[ColumnCounts]:
    """Counts of the first `limit` values of each column, read without writing anything."""
    surveys = []
    for column in encrypted_columns():
        counts = ColumnCounts(column.label)
        for pk, token, client_id in _rows(column, after=None, limit=limit):
            state = token_state(token)
            if state is TokenState.CURRENT:
                counts.current += 1
            elif state is TokenState.OLD_KEY:
                counts.reencrypted += 1
            else:
                counts.unreadable.append(UnreadableValue(pk, client_id))
        surveys.append(counts)
    return surveys


def _column_rotate(column: EncryptedColumn, batch_size: int, dry_run: bool) -> ColumnCounts:
    counts = ColumnCounts(column.label)
    last_pk = None
    while rows := list(_rows(column, after=last_pk, limit=batch_size)):
        with transaction.atomic():
            for pk, token, client_id in rows:
                _value_rotate(column, counts, pk, token, client_id, dry_run)
        last_pk = rows[-1][0]
    return counts


def _value_rotate(column, counts: ColumnCounts, pk, token: str, client_id, dry_run) -> None:
    state = token_state(token)
    if state is TokenState.CURRENT:
        counts.current += 1
    elif state is TokenState.UNREADABLE:
        logger.error(
            "%s of row %s (client %s) is opened by no FIELD_ENCRYPTION_KEY: not re-encrypted",
            column.label,
            pk,
            client_id,
        )
        counts.unreadable.append(UnreadableValue(pk, client_id))
    elif dry_run or _write_if_unchanged(column, pk, token):
        counts.reencrypted += 1
    else:
        counts.changed_meanwhile += 1


def _write_if_unchanged(column: EncryptedColumn, pk, token: str) -> bool:
    name = column.field.name
    rows = column.model._base_manager.filter(pk=pk, **{name: token})
    return rows.update(**{name: reencrypt_text(token)}) == 1


def _rows(column: EncryptedColumn, *, after, limit: int) -> Iterator[tuple]:
    """(pk, token, clientId) of the column's non-empty values after pk `after`, in pk order."""
    name = column.field.name
    rows = column.model._base_manager.exclude(**{name: ""}).order_by("pk")
    if after is not None:
        rows = rows.filter(pk__gt=after)
    return iter(rows.values_list("pk", name, column.field.client_lookup)[:limit])
