"""Many notifications, each with an SMS delivery, inserted by the database itself in one
statement per table (INSERT … SELECT over a generated series): 200,000 in seconds."""

from django.db import connection
from django.utils import timezone

from notifications.bulk_insert import _insert_select
from notifications.models import Delivery, Notification

PARAMS = '{"customerName": "John Doe", "balance": 1230000}'


def notifications_insert(*, application, count: int) -> None:
    """`count` DELIVERED notifications of `application` (references BULK-0000001, …), each
    with a DELIVERED SMS delivery to a distinct number, all created now."""
    now = timezone.now()
    postgresql = connection.vendor == "postgresql"
    number = "lpad(seq.n::text, 7, '0')" if postgresql else "substr('0000000' || seq.n, -7, 7)"
    series = (
        "generate_series(1, %s) AS seq(n)"
        if postgresql
        else "(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < %s) "
        "SELECT n FROM s) AS seq"
    )
    # Every column the models have (the others take their defaults, as batch inserts do).
    notifications, parameters = _insert_select(
        Notification,
        {
            "reference": f"'BULK-' || {number}",
            "params": f"CAST('{PARAMS}' AS jsonb)" if postgresql else f"'{PARAMS}'",
        },
        {
            "client_id": application.client_id,
            "application_id": application.pk,
            "source": "api",
            "status": "DELIVERED",
        },
        _adapted(now),
    )
    deliveries, delivery_parameters = _insert_select(
        Delivery,
        {"notification_id": "n.id", "recipient": "'+62812' || (10000000 + n.id)"},
        {"medium": "sms", "status": "DELIVERED", "attempts": 1},
        _adapted(now),
    )
    with connection.cursor() as cursor:
        cursor.execute(f"{notifications} FROM {series}", [*parameters, count])
        cursor.execute(
            f"{deliveries} FROM {Notification._meta.db_table} n WHERE n.application_id = %s",
            [*delivery_parameters, application.pk],
        )


def _adapted(now):
    return connection.ops.adapt_datetimefield_value(now) if connection.vendor == "sqlite" else now
