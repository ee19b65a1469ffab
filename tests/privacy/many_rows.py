"""Many notifications, each with an SMS delivery, inserted by the database itself in one
statement per table (INSERT … SELECT over a generated series): 200,000 in seconds."""

import json

from django.db import connection
from django.db.models import JSONField
from django.utils import timezone

from notifications.models import Delivery, Notification


def notifications_insert(*, application, count: int) -> None:
    """`count` DELIVERED notifications of `application` (references BULK-0000001, …), each
    with a DELIVERED SMS delivery to a distinct number, created over the last days."""
    now = timezone.now()
    postgresql = connection.vendor == "postgresql"
    jsonb = "CAST(%s AS jsonb)" if postgresql else "%s"
    number = "lpad(seq.n::text, 7, '0')" if postgresql else "substr('0000000' || seq.n, -7, 7)"
    _insert(
        Notification,
        count,
        {
            "reference": (f"'BULK-' || {number}", []),
            "params": (jsonb, [json.dumps({"customerName": "John Doe", "balance": 1230000})]),
        },
        {
            "client_id": application.client_id,
            "application_id": application.pk,
            "source": "api",
            "status": "DELIVERED",
        },
        now,
    )
    _insert_deliveries(application, now)


def _insert_deliveries(application, now) -> None:
    columns, selected, parameters = _columns(
        Delivery,
        {
            "notification_id": ("n.id", []),
            "recipient": ("'+62812' || (10000000 + n.id)", []),
        },
        {"medium": "sms", "status": "DELIVERED", "attempts": 1},
        now,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Delivery._meta.db_table} ({columns}) SELECT {selected} "  # noqa: S608
            f"FROM {Notification._meta.db_table} n WHERE n.application_id = %s",
            [*parameters, application.pk],
        )


def _insert(model, count: int, expressions: dict, constants: dict, now) -> None:
    columns, selected, parameters = _columns(model, expressions, constants, now)
    series = (
        "generate_series(1, %s) AS seq(n)"
        if connection.vendor == "postgresql"
        else "(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < %s) "
        "SELECT n FROM s) AS seq"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {model._meta.db_table} ({columns}) SELECT {selected} FROM {series}",  # noqa: S608
            [*parameters, count],
        )


def _columns(model, expressions: dict, constants: dict, now) -> tuple[str, str, list]:
    """Every column but the key: an SQL expression, a constant, or the field's default."""
    quote = connection.ops.quote_name
    columns, selected, parameters = [], [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(quote(field.column))
        if field.attname in expressions:
            sql, values = expressions[field.attname]
            selected.append(sql)
            parameters += values
            continue
        if field.attname in constants:
            value = constants[field.attname]
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            value = now
        else:
            value = field.get_default()
        if isinstance(field, JSONField):
            raise ValueError(f"{field.name}: give a JSON column an expression")
        selected.append("%s")
        parameters.append(field.get_db_prep_save(value, connection))
    return ", ".join(columns), ", ".join(selected), parameters
