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

which PostgreSQL and SQLite (3.35 and newer) both run. On PostgreSQL each value
is cast to its column's type, since a VALUES list of NULLs has no type of its own.
"""

from django.db import connection


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
    if connection.vendor == "postgresql":
        return _rows_update_unnest(model, rows, match=match, assign=assign, guard=guard)
    meta = model._meta
    fields = [meta.get_field(name) for name in (*match, *assign)]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    aliases = [quote(f"v_{field.column}") for field in fields]
    placeholders = ", ".join(_placeholder(field) for field in fields)
    values = ", ".join([f"({placeholders})"] * len(rows))
    assignments = ", ".join(
        f"{quote(field.column)} = v.{alias}"
        for field, alias in zip(fields[len(match) :], aliases[len(match) :], strict=True)
    )
    conditions = [
        f"{table}.{quote(field.column)} = v.{alias}"
        for field, alias in zip(fields[: len(match)], aliases[: len(match)], strict=True)
    ]
    guard_sql, guard_params = _guard(model, guard or {})
    conditions += guard_sql
    # Every name in it comes from the model's metadata, quoted; values are parameters.
    sql = (
        f"WITH v ({', '.join(aliases)}) AS (VALUES {values}) "  # noqa: S608
        f"UPDATE {table} SET {assignments} FROM v WHERE {' AND '.join(conditions)} "
        f"RETURNING {table}.{quote(meta.pk.column)}"
    )
    params = [
        field.get_db_prep_value(row[field.name], connection) for row in rows for field in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *guard_params])
        return [row[0] for row in cursor.fetchall()]


def _rows_update_unnest(
    model, rows: list[dict], *, match: list[str], assign: list[str], guard: dict | None
) -> list[int]:
    """PostgreSQL: the rows' values as one array a column, unnested into v,

        UPDATE table SET status = v.v_status, ... FROM unnest(%s, %s, ...) AS v (v_id, ...)

    A statement with one parameter a column instead of one a value: its text is
    the same for any number of rows, which psycopg converts once and caches, where
    a VALUES list of hundreds of parameters is parsed again for each group.
    """
    meta = model._meta
    fields = [meta.get_field(name) for name in (*match, *assign)]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    aliases = [quote(f"v_{field.column}") for field in fields]
    arrays = ", ".join(f"CAST(%s AS {field.cast_db_type(connection)}[])" for field in fields)
    assignments = ", ".join(
        f"{quote(field.column)} = v.{alias}"
        for field, alias in zip(fields[len(match) :], aliases[len(match) :], strict=True)
    )
    conditions = [
        f"{table}.{quote(field.column)} = v.{alias}"
        for field, alias in zip(fields[: len(match)], aliases[: len(match)], strict=True)
    ]
    guard_sql, guard_params = _guard(model, guard or {})
    conditions += guard_sql
    # Every name in it comes from the model's metadata, quoted; values are parameters.
    sql = (
        f"UPDATE {table} SET {assignments} "  # noqa: S608
        f"FROM unnest({arrays}) AS v ({', '.join(aliases)}) "
        f"WHERE {' AND '.join(conditions)} RETURNING {table}.{quote(meta.pk.column)}"
    )
    columns = [
        [field.get_db_prep_value(row[field.name], connection) for row in rows] for field in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*columns, *guard_params])
        return [row[0] for row in cursor.fetchall()]


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


def _placeholder(field) -> str:
    if connection.vendor == "postgresql":
        return f"CAST(%s AS {field.cast_db_type(connection)})"
    return "%s"


def ids_in(column: str, ids: list[int]) -> tuple[str, list]:
    """The condition `column` IN `ids`, and its parameters: on PostgreSQL one array
    parameter (= ANY(%s)), whose statement text stays the same for any number of ids."""
    quoted = connection.ops.quote_name(column)
    if connection.vendor == "postgresql":
        return f"{quoted} = ANY(%s)", [list(ids)]
    return f"{quoted} IN ({', '.join(['%s'] * len(ids))})", list(ids)
