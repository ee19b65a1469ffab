"""Support's searches are index probes, never a scan of every notification or delivery, and
the list pages never count a large table row by row (PostgreSQL).

There is no index on the reference alone: the search names every client, so that the
unique (client, reference) index answers it with one probe a client. A recipient is
found through delivery_recipient_idx, on lower(recipient).
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clients.admin_scoping import EstimatedCountPaginator
from notifications.models import Delivery, Notification
from tests.factories import ApplicationFactory, UserFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL plan"),
]

ROWS_A_CLIENT = 3000
BIG_TABLES = {"notifications_notification", "notifications_delivery"}


@pytest.fixture
def many_notifications(db):
    """Three clients' notifications, each to its own customer, with the planner's statistics."""
    applications = []
    for client_number in range(3):
        application = ApplicationFactory()
        applications.append(application)
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
            Delivery(
                notification=notification,
                medium=medium,
                recipient=(
                    f"+62812{client_number}{n:07d}"
                    if medium == "sms"
                    else f"Customer.{client_number}.{n}@Example.co.id"
                ),
            )
            for n, notification in enumerate(notifications)
            for medium in ("sms", "email")
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE notifications_notification")
        cursor.execute("ANALYZE notifications_delivery")
    return applications


def plans_of(queries) -> list[list[tuple[str, str | None, str]]]:
    """For each captured SELECT reading a big table: (node type, index, relation) of its reads."""
    plans = []
    for query in queries.captured_queries:
        sql = query["sql"]
        if not sql.startswith("SELECT") or not any(table in sql for table in BIG_TABLES):
            continue
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
            [plan] = cursor.fetchone()[0]
        plans.append(
            [
                (node["Node Type"], node.get("Index Name"), node["Relation Name"])
                for node in walk(plan["Plan"])
                if node.get("Relation Name") in BIG_TABLES
            ]
        )
    return plans


def walk(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from walk(child)


def indexes_used(plans) -> set[str]:
    return {index for plan in plans for _, index, _ in plan if index}


def scans(plans) -> list:
    return [read for plan in plans for read in plan if read[0] == "Seq Scan"]


@pytest.mark.parametrize(
    "model_url", ["notifications/notification", "notifications/delivery"], ids=["n", "d"]
)
def test_the_reference_search_probes_the_unique_index(
    support_client, many_notifications, model_url
):
    with CaptureQueriesContext(connection) as queries:
        response = support_client.get(f"/admin/{model_url}/", {"q": "INV-001234"})
    assert len(response.context["cl"].result_list) == (3 if model_url.endswith("n") else 6)

    plans = plans_of(queries)
    assert "unique_reference_per_client" in indexes_used(plans)
    assert scans(plans) == []


@pytest.mark.parametrize("term", ["0812-1000-1234", "CUSTOMER.1.1234@example.CO.ID"])
@pytest.mark.parametrize(
    "model_url", ["notifications/notification", "notifications/delivery"], ids=["n", "d"]
)
def test_the_recipient_search_reads_the_recipient_index(
    support_client, many_notifications, model_url, term
):
    with CaptureQueriesContext(connection) as queries:
        response = support_client.get(f"/admin/{model_url}/", {"q": term})
    assert len(response.context["cl"].result_list) == 1

    plans = plans_of(queries)
    assert "delivery_recipient_idx" in indexes_used(plans)
    assert scans(plans) == []


def count_queries(queries) -> list[int]:
    return [
        index
        for index, query in enumerate(queries.captured_queries)
        if "COUNT(" in query["sql"].upper()
    ]


@pytest.mark.parametrize("role", ["support", "client_staff"])
@pytest.mark.parametrize(
    "params",
    [{}, {"status": "ACCEPTED"}, {"medium": "sms"}, {"q": "0812-1000-1234"}],
    ids=["all", "status", "medium", "search"],
)
@pytest.mark.parametrize(
    "model_url", ["notifications/notification", "notifications/delivery"], ids=["n", "d"]
)
def test_every_count_of_a_list_page_is_capped_in_time(
    client, many_notifications, model_url, params, role, monkeypatch
):
    monkeypatch.setattr(EstimatedCountPaginator, "ESTIMATE_ABOVE", 1000)
    own = [many_notifications[1].client] if role == "client_staff" else []
    client.force_login(UserFactory(role=role, clients=own))
    if model_url.endswith("delivery") and "medium" in params:
        params = {"medium": "sms"}

    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/admin/{model_url}/", params)

    assert response.status_code == 200
    sql = [query["sql"] for query in queries.captured_queries]
    for index in count_queries(queries):
        assert "statement_timeout" in sql[index - 1], sql[index]


def test_a_count_past_its_time_shows_the_planners_estimate(many_notifications, settings):
    settings.ADMIN_COUNT_TIMEOUT_MS = 20
    slow = Notification.objects.extra(where=["pg_sleep(0.01)::text = ''"])

    with CaptureQueriesContext(connection) as queries:
        count = EstimatedCountPaginator(slow.order_by("pk"), 100).count

    assert 1 <= count <= 3 * ROWS_A_CLIENT
    assert any(query["sql"].startswith("EXPLAIN") for query in queries.captured_queries)
    with connection.cursor() as cursor:  # the timeout is not left behind
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "0"
