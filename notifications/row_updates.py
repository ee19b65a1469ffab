"""Update many rows, each with its own values and its own guard, in one statement.

The dispatcher records a group of outcomes at a time, and each row may be
written only if it is still the caller's to write (its claim number has not
moved on). Django's `bulk_update` cannot make a row's update conditional, and
it builds a CASE WHEN per field and row, which costs more Python time than the
sends it records. This writes

    WITH v (v_id, v_claims, v_status, ...) AS (VALUES (...), (...))
    UPDATE table SET status = v.v_status, ... FROM v
    WHERE table.id = v.v_id AND table.claims = v.v_claims AND <guard>
    RETURNING id

which SQLite (3.35 and newer) runs; on PostgreSQL the values come as one JSON
parameter, turned into v by json_to_recordset instead of a VALUES list.
"""

from datetime import datetime

import orjson
from django.db import connection
from django.utils import timezone


def rows_update(
    model,
    rows: list[dict],
    *,
    match: list[str],
    assign: list[str],
    guard: dict | None = None,
) -> list[int]:
    """UPDATE `model`'s rows matching each row's `match` fields, setting its `assign` fields.

    `rows` are dicts keyed by field name (foreign keys by their field name, with
    the id as value). `guard` adds conditions on the table's own columns, every
    row alike: {"status": "SENDING", "lease_expires_at__gt": now}.
    Returns the primary keys of the rows updated.
    """
    if not rows:
        return []
    statement = _Statement(model, match, assign, guard or {})
    if connection.vendor == "postgresql":
        sql, params = statement.from_json(rows)
    else:
        sql, params = statement.from_values(rows)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


class _Statement:
    """The UPDATE's clauses, the same whichever way the rows' values are passed in v.

    Every name in it comes from the model's metadata, quoted; values are parameters.
    """

    def __init__(self, model, match: list[str], assign: list[str], guard: dict) -> None:
        meta = model._meta
        quote = connection.ops.quote_name
        self.fields = [meta.get_field(name) for name in (*match, *assign)]
        self.table = quote(meta.db_table)
        self.aliases = [quote(f"v_{field.column}") for field in self.fields]
        self.pairs = pairs = list(zip(self.fields, self.aliases, strict=True))
        self.assignments = ", ".join(
            f"{quote(field.column)} = v.{alias}" for field, alias in pairs[len(match) :]
        )
        conditions = [
            f"{self.table}.{quote(field.column)} = v.{alias}"
            for field, alias in pairs[: len(match)]
        ]
        guard_sql, self.guard_params = _guard(model, guard)
        self.where = " AND ".join(conditions + guard_sql)
        self.returning = f"RETURNING {self.table}.{quote(meta.pk.column)}"

    def from_values(self, rows: list[dict]) -> tuple[str, list]:
        """SQLite: WITH v (...) AS (VALUES (...), (...)) UPDATE ... FROM v."""
        row_sql = "(" + ", ".join(["%s"] * len(self.fields)) + ")"
        sql = (
            f"WITH v ({', '.join(self.aliases)}) AS (VALUES {', '.join([row_sql] * len(rows))}) "  # noqa: S608
            f"UPDATE {self.table} SET {self.assignments} FROM v WHERE {self.where} "
            f"{self.returning}"
        )
        params = [
            field.get_db_prep_value(row[field.name], connection)
            for row in rows
            for field in self.fields
        ]
        return sql, [*params, *self.guard_params]

    def from_json(self, rows: list[dict]) -> tuple[str, list]:
        """PostgreSQL: the rows as one JSON parameter, turned into v by the server,

            UPDATE table SET status = v.v_status, ...
            FROM json_to_recordset(%s) AS v (v_id bigint, v_status varchar(20), ...)

        One parameter whatever the number of rows and columns: psycopg quotes one
        string (in C) where typed arrays cost a Python call per value, and the
        statement's text is the same for any number of rows. The values go in as
        they are (ints, strings, None, aware datetimes): PostgreSQL casts each to its
        column's type, so Django's per-value conversions are not needed.
        """
        types = ", ".join(f"{alias} {f.cast_db_type(connection)}" for f, alias in self.pairs)
        sql = (
            f"UPDATE {self.table} SET {self.assignments} "  # noqa: S608
            f"FROM json_to_recordset(CAST(%s AS json)) AS v ({types}) "
            f"WHERE {self.where} {self.returning}"
        )
        keys = [(alias.strip('"'), field.name) for field, alias in self.pairs]
        values = [{alias: row[name] for alias, name in keys} for row in rows]
        return sql, [json_rows(values), *self.guard_params]


def json_rows(rows: list[dict]) -> str:
    """Rows for json_to_recordset: datetimes as ISO 8601 with their offset, which
    PostgreSQL reads back exactly (to the microsecond). orjson: a fifth of json's time."""
    try:
        return orjson.dumps(
            rows, default=_json_value, option=orjson.OPT_PASSTHROUGH_DATETIME
        ).decode()
    except orjson.JSONEncodeError as exc:
        # orjson wraps what _json_value raises: the refusal itself says what is wrong.
        raise exc.__cause__ or exc from None


def _json_value(value):
    if isinstance(value, datetime):
        if timezone.is_naive(value):
            # Without an offset the server would read it in its own time zone.
            raise ValueError(f"naive datetime {value} in a row update")
        return value.isoformat()
    # A date too would be read as midnight in the server's zone: no caller passes one.
    raise TypeError(f"{type(value).__name__} has no JSON form here")


GUARD_OPERATORS = {"exact": "=", "gt": ">", "lt": "<"}


def _guard(model, guard: dict) -> tuple[list[str], list]:
    conditions, params = [], []
    for key, value in guard.items():
        name, _, lookup = key.partition("__")
        field = model._meta.get_field(name)
        operator = GUARD_OPERATORS[lookup or "exact"]
        conditions.append(
            f"{connection.ops.quote_name(model._meta.db_table)}."
            f"{connection.ops.quote_name(field.column)} {operator} %s"
        )
        params.append(field.get_db_prep_value(value, connection))
    return conditions, params


def ids_in(column: str, ids: list[int]) -> tuple[str, list]:
    """The condition `column` IN `ids`, and its parameters: on PostgreSQL one array
    parameter (= ANY(%s)), whose statement text stays the same for any number of ids."""
    quoted = connection.ops.quote_name(column)
    if connection.vendor == "postgresql":
        return f"{quoted} = ANY(%s)", [list(ids)]
    return f"{quoted} IN ({', '.join(['%s'] * len(ids))})", list(ids)
