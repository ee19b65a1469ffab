"""Admin lists stay fast on large tables: no full COUNT(*), no query per row."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clients.admin_scoping import EstimatedCountPaginator
from tests.factories import (
    ApplicationFactory,
    BatchFactory,
    ClientFactory,
    ContentTemplateFactory,
    DeliveryFactory,
    NotificationFactory,
    issue_key,
)

LIST_URL = "/admin/notifications/notification/"


def count_queries(queries):
    return [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]


def test_the_list_runs_one_count_and_no_query_per_row(operator_client, app_8002):
    for _ in range(30):
        DeliveryFactory(notification=NotificationFactory(application=app_8002))

    with CaptureQueriesContext(connection) as ten_rows:
        response = operator_client.get(LIST_URL)
    assert response.status_code == 200
    NotificationFactory.create_batch(20, application=app_8002)
    with CaptureQueriesContext(connection) as more_rows:
        operator_client.get(LIST_URL)

    assert len(more_rows.captured_queries) == len(ten_rows.captured_queries)
    # show_full_result_count = False: the paginator's count is the only one.
    assert len(count_queries(ten_rows.captured_queries)) == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="uses PostgreSQL's statistics")
def test_an_unfiltered_large_list_reads_the_planners_estimate(
    operator_client, app_8002, monkeypatch
):
    NotificationFactory.create_batch(5, application=app_8002)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE notifications_notification")
    # Five rows stand in for a large table: lower the threshold, not the table size.
    monkeypatch.setattr(EstimatedCountPaginator, "ESTIMATE_ABOVE", 0)

    with CaptureQueriesContext(connection) as queries:
        response = operator_client.get(LIST_URL)

    assert response.status_code == 200
    assert count_queries(queries.captured_queries) == []
    assert any("reltuples" in q["sql"] for q in queries.captured_queries)

    # Filtered, the planner's estimate of the matching rows stands in for the count too.
    with CaptureQueriesContext(connection) as filtered:
        operator_client.get(LIST_URL, {"status": "ACCEPTED"})
    assert count_queries(filtered.captured_queries) == []
    assert any(q["sql"].startswith("EXPLAIN") for q in filtered.captured_queries)


def _delivery(app):
    return DeliveryFactory(notification=NotificationFactory(application=app))


def _template(app):
    other = ApplicationFactory(client=app.client)
    return ContentTemplateFactory(application=other)


def _key(app):
    return issue_key(ClientFactory())


@pytest.mark.parametrize(
    ("url", "make_row"),
    [
        ("/admin/notifications/delivery/", _delivery),
        ("/admin/templates_app/contenttemplate/", _template),
        ("/admin/clients/application/", lambda app: ApplicationFactory(client=app.client)),
        ("/admin/batches/batch/", lambda app: BatchFactory(client=app.client)),
        ("/admin/clients/client/", lambda app: ClientFactory()),
        ("/admin/clients/secretkey/", _key),
    ],
)
def test_every_list_page_costs_the_same_queries_whatever_its_length(
    operator_client, app_8002, url, make_row
):
    make_row(app_8002)
    with CaptureQueriesContext(connection) as few:
        assert operator_client.get(url).status_code == 200
    for _ in range(5):
        make_row(app_8002)
    with CaptureQueriesContext(connection) as more:
        operator_client.get(url)

    assert len(more.captured_queries) == len(few.captured_queries)
