"""Storing many new notifications at once: what a batch chunk does, a few thousand lines at a time.

A batch file stores up to a million notifications, each with its deliveries,
and each reference must be new for its client.

- PostgreSQL: one statement, one round trip. The chunk travels as a single
  JSON parameter; the statement inserts the notifications whose reference is
  not taken (`NOT EXISTS` against the client's unique references) and their
  deliveries, and returns the lines it stored. No id crosses the wire.
  Measured against it, per 2,000 lines: `ON CONFLICT DO NOTHING` instead of
  `NOT EXISTS` cost 30-40 ms more (speculative insertion), and a COPY into a
  temporary table first three more round trips and a table a chunk.
- SQLite: a look-up of the references already used, then `executemany`; ids
  are taken after the largest id ever handed out, which is safe because a
  SQLite write transaction excludes every other writer.

Django's bulk_create is not used: it spends most of its time preparing each
value in Python (7 of the 12 seconds of a 10,000-line ingest under a profiler)
and cannot skip a taken reference and say which.
"""

import functools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson
import psycopg
from django.conf import settings
from django.db import NotSupportedError, ProgrammingError, connection
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from django.db.models import DateTimeField, JSONField

from notifications.models import Delivery, DeliveryStatus, Notification

logger = logging.getLogger(__name__)


@dataclass
class EncodedNotifications:
    """New notifications encoded once for storing: a JSON array, one object a notification,
    and their references by line.

    Encoded where they are checked (a batch's line-checking process), the
    process that stores them only has to send them on.
    """

    rows: str
    references: dict[int, str]


def encode_new_notifications(items: Sequence[dict]) -> EncodedNotifications:
    """Encode notifications of distinct references for insert_new_notifications.

    Each item: line (its key), application_id, reference, params, send_at and
    expires_at (aware datetimes or None, replaced in the items by their ISO
    text), recipients ({medium: address}).
    """
    for item in items:
        for key in ("send_at", "expires_at"):
            item[key] = item[key] and item[key].isoformat()
    references = {item["line"]: item["reference"] for item in items}
    # orjson: json.dumps took 4 µs a line, a sixth of all the checking of a batch line.
    return EncodedNotifications(orjson.dumps(items).decode(), references)


def encoded_halves(
    encoded: EncodedNotifications,
) -> tuple[EncodedNotifications, EncodedNotifications]:
    """The notifications in two halves, in order, each encoded for insert_new_notifications:
    to find the lines of a chunk whose values the database refuses."""
    items = orjson.loads(encoded.rows)
    middle = len(items) // 2
    return tuple(
        EncodedNotifications(
            orjson.dumps(part).decode(), {item["line"]: item["reference"] for item in part}
        )
        for part in (items[:middle], items[middle:])
    )


def insert_new_notifications(
    encoded: EncodedNotifications, *, common: dict, now: datetime
) -> set[int]:
    """Store the notifications whose reference is new for the client, each with one
    PENDING delivery per recipient; return the lines stored.

    `common`: the notification columns shared by every item (client_id, source,
    batch_id). Must run inside a transaction. Raises IntegrityError when a
    reference is taken meanwhile (by the API, between look and insert): the
    caller runs it again.
    """
    if not encoded.references:
        return set()
    if not connection.in_atomic_block:
        raise RuntimeError("insert_new_notifications: call it inside transaction.atomic()")
    if connection.vendor == "postgresql":
        return _insert_new_postgresql(encoded.rows, common, now)
    return _insert_new_sqlite(orjson.loads(encoded.rows), common, now)


# --- PostgreSQL -----------------------------------------------------------------------

# The items, as the one JSON parameter of the statement, read back by jsonb_to_recordset:
# 12 ms for 2,000 items here, against 35 ms for json_to_recordset (which parses each
# params object a second time to make it jsonb) and about 20 ms for a COPY into a
# temporary table. The planner takes the function for 100 rows whatever it holds,
# which keeps the statement's estimated cost far below JIT's threshold.
#
# OFFSET 0 keeps NOT EXISTS a look-up of each line's reference in the unique index.
# Without it the planner may turn it into a hash anti-join that reads every notification
# of the client: it did so here whenever the table had grown since its last ANALYZE
# (64 ms a chunk at 50,000 notifications, and growing with them).
_ITEM_COLUMNS = (
    "line integer, application_id bigint, reference text, params jsonb,"
    " send_at timestamptz, expires_at timestamptz, recipients jsonb"
)


def _insert_new_postgresql(rows: str, common: dict, now: datetime) -> set[int]:
    sql, parameters = _insert_items_sql(common, now)
    # Bound on the server: the chunk's half a megabyte of JSON travels as a parameter of
    # its own. Django's cursor binds on the client, quoting it into the statement's text,
    # which cost 3 µs a line here and the server as much again to read back. A cursor of
    # Django's own connection, in the caller's transaction; errors come out as Django's
    # (IntegrityError), but connection.queries and execute_wrapper do not see it.
    connection.validate_no_broken_transaction()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        # Never prepared: parsing it is nothing beside the chunk's work, and its plan is
        # kept chosen for each chunk (the comment above the columns).
        cursor.execute(sql, [rows, *parameters], prepare=False)
        return {row[0] for row in cursor.fetchall()}


def _insert_items_sql(common: dict, now: datetime) -> tuple[str, list]:
    """One statement: the new notifications and their deliveries; returns their lines."""
    notification, parameters = _insert_select(
        Notification,
        {
            "application_id": "s.application_id",
            "reference": "s.reference",
            "params": "s.params",
            "batch_line": "s.line",
            "send_at": "s.send_at",
            "expires_at": "s.expires_at",
        },
        constants={**common, "created_at": now, "updated_at": now},
        now=now,
    )
    delivery, delivery_parameters = _insert_select(
        Delivery,
        {
            "notification_id": "n.id",
            "medium": "r.key",
            "recipient": "r.value",
            "next_attempt_at": "COALESCE(n.send_at, n.created_at)",
        },
        constants={"status": DeliveryStatus.PENDING, "created_at": now, "updated_at": now},
        now=now,
    )
    quote = connection.ops.quote_name
    sql = f"""
        WITH s AS MATERIALIZED (
            SELECT * FROM jsonb_to_recordset(%s::jsonb) AS s({_ITEM_COLUMNS})
        ), n AS (
            {notification} FROM s
            WHERE NOT EXISTS (
                SELECT FROM {quote(Notification._meta.db_table)} taken
                WHERE taken.client_id = %s AND taken.reference = s.reference
                OFFSET 0
            )
            RETURNING id, batch_line, send_at, created_at
        ), d AS (
            {delivery} FROM n JOIN s ON s.line = n.batch_line, jsonb_each_text(s.recipients) r
        )
        SELECT batch_line FROM n
    """  # noqa: S608 (every name comes from the models' metadata, quoted)
    return sql, [*parameters, common["client_id"], *delivery_parameters]


def _insert_select(model, expressions: dict[str, str], constants: dict, now) -> tuple[str, list]:
    """`INSERT INTO table (every column) SELECT …`: the given SQL expressions, the constants,
    and each other field's default, as parameters (in that order)."""
    quote = connection.ops.quote_name
    columns, selected, parameters = [], [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(quote(field.column))
        if field.attname in expressions:
            selected.append(expressions[field.attname])
            continue
        value = constants[field.attname] if field.attname in constants else _default(field, now)
        selected.append("%s")
        parameters.append(json.dumps(value) if isinstance(field, JSONField) else value)
    table = quote(model._meta.db_table)
    return f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(selected)}", parameters


def _default(field, now):
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return now
    return field.get_default()


# --- SQLite ---------------------------------------------------------------------------


def _insert_new_sqlite(items: list[dict], common: dict, now: datetime) -> set[int]:
    taken = _taken_references(common["client_id"], [item["reference"] for item in items])
    new = [item for item in items if item["reference"] not in taken]
    for item in new:
        for key in ("send_at", "expires_at"):
            item[key] = item[key] and datetime.fromisoformat(item[key])
    notification_ids = _insert_rows(
        Notification,
        [
            {
                **common,
                "application_id": item["application_id"],
                "reference": item["reference"],
                "params": item["params"],
                "batch_line": item["line"],
                "send_at": item["send_at"],
                "expires_at": item["expires_at"],
            }
            for item in new
        ],
        now,
    )
    _insert_rows(
        Delivery,
        [
            {
                "notification_id": notification_id,
                "medium": medium,
                "recipient": recipient,
                "next_attempt_at": item["send_at"] or now,
            }
            for notification_id, item in zip(notification_ids, new, strict=True)
            for medium, recipient in item["recipients"].items()
        ],
        now,
    )
    return {item["line"] for item in new}


def _taken_references(client_id: int, references: list[str]) -> set[str]:
    return set(
        Notification.objects.filter(client_id=client_id, reference__in=references).values_list(
            "reference", flat=True
        )
    )


def _insert_rows(model, rows: list[dict], now: datetime) -> list[int]:
    """INSERT `rows` (dicts by field attname; the pk left out); return their new ids, in order.

    Fields left out of a row take their default (auto_now fields: now).
    """
    if not rows:
        return []
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    names = [f.attname for f in fields]
    defaults = [_default(f, now) for f in fields]
    adapters = [_sqlite_adapter(f) for f in fields]
    start = _next_sqlite_id(model)
    ids = list(range(start, start + len(rows)))
    values = [
        [
            pk,
            *[
                adapt(row.get(name, default)) if adapt else row.get(name, default)
                for name, default, adapt in zip(names, defaults, adapters, strict=True)
            ],
        ]
        for pk, row in zip(ids, rows, strict=True)
    ]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in (model._meta.pk, *fields))
    placeholders = ", ".join(["%s"] * (len(fields) + 1))
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({placeholders})",  # noqa: S608
            values,
        )
    return ids


def _sqlite_adapter(field):
    """How a value of `field` must be turned into what the driver takes, if at all."""
    if isinstance(field, JSONField):
        return json.dumps
    if isinstance(field, DateTimeField):
        adapt = connection.ops.adapt_datetimefield_value
        return lambda value: None if value is None else adapt(value)
    return None


def _next_sqlite_id(model) -> int:
    """Past the largest id ever handed out: AUTOINCREMENT never reuses one."""
    table = model._meta.db_table
    column = model._meta.pk.column
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = %s), 0), "  # noqa: S608
            f"COALESCE((SELECT MAX({quote(column)}) FROM {quote(table)}), 0))",
            [table],
        )
        return cursor.fetchone()[0] + 1


# --- One notification (the API's create) ------------------------------------------------


def insert_one_notification_postgresql(
    *, notification: dict, recipients: dict[str, str], next_attempt_at: datetime, now: datetime
) -> tuple[int, dict[str, int]] | None:
    """PostgreSQL: store one notification and one PENDING delivery per recipient in a
    single statement; return its id and its deliveries' ids by medium, or None when its
    client's reference is taken (nothing is stored).

    `notification`: its columns by attname (client_id, application_id, reference,
    params, source, send_at, expires_at); the others take their defaults. One
    statement is atomic by itself, so outside a transaction it needs no BEGIN or
    COMMIT: one round trip where the ORM took four (BEGIN, two INSERTs, COMMIT).
    A reference being inserted by a transaction not yet committed makes it wait
    for that transaction: once it commits, nothing is stored here and None tells
    the caller to read what the other stored.

    The parameters are bound on the server and the statement, the same text every
    time, is prepared on its first use on each connection (DATABASE_PREPARED_STATEMENTS;
    a few times in fact: psycopg keeps one for each set of parameter types, e.g. with
    and without a sendAt): the server then no longer parses and plans the two INSERTs
    for every notification (250 µs of its CPU a create here, of 600). Bound on the
    client, as Django's cursor does, the thirty values were quoted into the text one
    Python call each, and the text was new to the server every time.
    """
    statement = _insert_one_statement()
    delivery = {
        "status": DeliveryStatus.PENDING,
        "next_attempt_at": next_attempt_at,
        "created_at": now,
        "updated_at": now,
    }
    parameters = [
        *statement.notification.values(notification, now),
        *statement.delivery.values(delivery, now),
        json.dumps(recipients),
    ]
    try:
        rows = _run_prepared(statement.sql, parameters)
    except (NotSupportedError, ProgrammingError) as error:
        # The connection's prepared statement can no longer run: a migration changed the
        # type of a column it returns, or the server forgot it (DISCARD ALL, a pooler).
        # It would fail every create on this connection until it is closed. Nothing was
        # stored (one statement); outside a transaction, close the connection, its
        # prepared statements with it, and run it once more.
        if not _prepared_statement_lost(error) or not _outside_any_transaction():
            raise
        logger.warning("The prepared create statement could not run (%s); reconnecting", error)
        connection.close()
        rows = _run_prepared(statement.sql, parameters)
    if not rows:
        return None
    return rows[0][0], {medium: delivery_id for _, delivery_id, medium in rows if delivery_id}


def _prepared_statement_lost(error: Exception) -> bool:
    """Told by the server's codes, which do not depend on its language (lc_messages)."""
    cause = error.__cause__
    sqlstate = getattr(cause, "sqlstate", None)
    if sqlstate == "26000":  # invalid_sql_statement_name: no such prepared statement
        return True
    # feature_not_supported, raised where a cached plan is checked: "cached plan must not
    # change result type".
    return sqlstate == "0A000" and cause.diag.source_function == "RevalidateCachedQuery"


def _outside_any_transaction() -> bool:
    return connection.get_autocommit() and not connection.in_atomic_block


def _run_prepared(sql: str, parameters: list) -> list[tuple]:
    """Run `sql` bound on the server, prepared on the connection unless
    DATABASE_PREPARED_STATEMENTS is off (a pooler that keeps none) or connections are not
    kept (CONN_MAX_AGE 0: preparing would only add a round trip); return its rows.

    Prepared by asking for it, this statement only: the connection's own threshold stays
    as Django sets it (never). With a threshold psycopg would count every statement the
    connection runs, keeping the text of the last hundred, which for Django's cursor is
    the whole statement with its values quoted in (a group's rendered messages).
    """
    with connection.cursor() as checked:  # Django's checks: open, healthy, its own thread
        wrapper = _LoggedAsWritten if isinstance(checked, CursorDebugWrapper) else type(checked)
        raw = connection.connection
        threshold = raw.prepare_threshold
        raw.prepare_threshold = 0 if _preparing() else None
        try:
            with wrapper(psycopg.Cursor(raw), connection) as cursor:
                cursor.execute(sql, parameters)
                return cursor.fetchall()
        finally:
            raw.prepare_threshold = threshold


def _preparing() -> bool:
    kept = connection.settings_dict.get("CONN_MAX_AGE", 0) != 0
    return settings.DATABASE_PREPARED_STATEMENTS and kept


class _LoggedAsWritten(CursorDebugWrapper):
    """Django's wrapper when queries are logged (DEBUG, tests), which logs the statement as
    written: it would ask psycopg for the text it sent, which a prepared statement has
    none of. django-prometheus does not count these statements."""

    def execute(self, sql, params=None):
        with self.debug_sql(sql, params):
            return CursorWrapper.execute(self, sql, params)


@dataclass(frozen=True)
class _Columns:
    """A model's columns given as parameters: each field, and its default where constant."""

    fields: tuple
    constant_defaults: dict  # attname -> default, for fields whose default is no callable

    @classmethod
    def of(cls, fields: list) -> "_Columns":
        constant = {
            field.attname: field.get_default()
            for field in fields
            if not (field.has_default() and callable(field.default))
            and not getattr(field, "auto_now", False)
            and not getattr(field, "auto_now_add", False)
        }
        return cls(fields=tuple(fields), constant_defaults=constant)

    def values(self, given: dict, now: datetime) -> list:
        """Each field's value from `given` (by attname), else its default; JSON encoded."""
        constant = self.constant_defaults
        values = []
        for field in self.fields:
            name = field.attname
            if name in given:
                value = given[name]
            elif name in constant:
                value = constant[name]
            else:
                value = _default(field, now)
            values.append(json.dumps(value) if isinstance(field, JSONField) else value)
        return values


@dataclass(frozen=True)
class _InsertOne:
    sql: str
    notification: _Columns  # the notification's fields in its VALUES, in order
    delivery: _Columns  # the delivery's fields given as parameters, in order


@functools.cache
def _insert_one_statement() -> _InsertOne:
    """The statement, made once: it depends on the models alone.

    Each parameter is cast to its column's type: bound on the server, a parameter in a
    SELECT list has no type of its own (PostgreSQL would take it as text). Text goes
    as text, never as varchar(n): a cast to varchar(n) cuts a value that is too long,
    where storing text in the column refuses it.
    """
    quote = connection.ops.quote_name
    notification_fields = [f for f in Notification._meta.concrete_fields if not f.primary_key]
    from_select = {"notification_id": "n.id", "medium": "r.key", "recipient": "r.value"}
    delivery_columns, selected, delivery_fields = [], [], []
    for field in Delivery._meta.concrete_fields:
        if field.primary_key:
            continue
        delivery_columns.append(quote(field.column))
        if field.attname in from_select:
            selected.append(from_select[field.attname])
        else:
            selected.append(_typed_parameter(field))
            delivery_fields.append(field)
    sql = f"""
        WITH n AS (
            INSERT INTO {quote(Notification._meta.db_table)}
                ({", ".join(quote(f.column) for f in notification_fields)})
            VALUES ({", ".join(_typed_parameter(f) for f in notification_fields)})
            ON CONFLICT ({quote("client_id")}, {quote("reference")}) DO NOTHING
            RETURNING id
        ), d AS (
            INSERT INTO {quote(Delivery._meta.db_table)} ({", ".join(delivery_columns)})
            SELECT {", ".join(selected)} FROM n, jsonb_each_text(%s::jsonb) r
            RETURNING id, medium
        )
        SELECT n.id, d.id, d.medium FROM n LEFT JOIN d ON TRUE
    """  # noqa: S608 (every name comes from the models' metadata, quoted)
    return _InsertOne(
        sql=sql,
        notification=_Columns.of(notification_fields),
        delivery=_Columns.of(delivery_fields),
    )


def _typed_parameter(field) -> str:
    column_type = field.db_type(connection)
    if column_type.startswith("varchar"):
        column_type = "text"
    return f"%s::{column_type}"
