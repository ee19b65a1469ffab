"""Support's exact reference search is index probes, not a scan of every notification
(PostgreSQL).

There is no index on the reference alone: the search names every client, so that the
unique (client, reference) index answers it with one probe a client.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications.models import Delivery, Notification
from tests.factories import ApplicationFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL plan"),
]

ROWS_A_CLIENT = 3000


@pytest.fixture
def many_notifications(db):
    """Three clients' notifications and deliveries, with the planner's statistics."""
    for _ in range(3):
        application = ApplicationFactory()
        notifications = Notification.objects.bulk_create(
            Notification(
                client_id=application.client_id,
                application=application,
                reference=f"INV-{n:06d}",
                params={},
                source="api",
            )
            for n in range(ROWS_A_CLIENT)
        )
        Delivery.objects.bulk_create(
            Delivery(notification=notification, medium="sms", recipient="+6281234567890")
            for notification in notifications
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE notifications_notification")
        cursor.execute("ANALYZE notifications_delivery")


@pytest.mark.parametrize(
    "model_url", ["notifications/notification", "notifications/delivery"], ids=["n", "d"]
)
def test_the_reference_search_probes_the_unique_index(
    support_client, many_notifications, model_url
):
    with CaptureQueriesContext(connection) as queries:
        response = support_client.get(f"/admin/{model_url}/", {"q": "INV-001234"})
    assert len(response.context["cl"].result_list) == 3  # one a client

    [search] = [
        query["sql"]
        for query in queries.captured_queries
        if "'INV-001234'" in query["sql"] and "ORDER BY" in query["sql"]
    ]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + search)
        [plan] = cursor.fetchone()[0]

    reads = [
        (node["Node Type"], node.get("Index Name"))
        for node in walk(plan["Plan"])
        if node.get("Relation Name") == "notifications_notification"
    ]
    assert reads == [("Index Scan", "unique_reference_per_client")], plan


def walk(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from walk(child)
