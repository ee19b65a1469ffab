"""The batch insert's reference check stays a probe of the unique index (PostgreSQL).

Without statistics (a table grown since its last ANALYZE) the planner once chose a
hash anti-join reading every notification of the client for every chunk.
"""

import json

import pytest
from django.db import connection, transaction
from django.utils import timezone

from notifications.bulk_insert import _insert_items_sql
from tests.factories import ApplicationFactory, NotificationFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL plan"),
]


def test_the_reference_check_probes_the_unique_index_even_without_statistics():
    application = ApplicationFactory()
    NotificationFactory.create_batch(300, application=application)
    rows = json.dumps(
        [
            {
                "line": n,
                "application_id": application.pk,
                "reference": f"NEW-{n}",
                "params": {},
                "send_at": None,
                "expires_at": None,
                "recipients": {"sms": "+6281234567890"},
            }
            for n in range(1, 201)
        ]
    )
    sql, parameters = _insert_items_sql(
        {"client_id": application.client_id, "source": "api", "batch_id": None},
        timezone.now(),
    )

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, [rows, *parameters])
        [plan] = cursor.fetchone()[0]
        transaction.set_rollback(True)

    nodes = list(walk(plan["Plan"]))
    [check] = [node for node in nodes if node.get("Parent Relationship") == "SubPlan"]
    assert check["Relation Name"] == "notifications_notification"
    assert check["Node Type"] in ("Index Scan", "Index Only Scan")
    assert check["Actual Loops"] == 200  # one probe a line
    assert not [node for node in nodes if "Anti" in node.get("Join Type", "")]


def walk(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from walk(child)
