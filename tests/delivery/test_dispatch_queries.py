"""What a chunk costs the database: the same statements whatever its size (no query a delivery)."""

import re
from collections import Counter

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications.dispatch import dispatch_due
from notifications.models import Delivery
from tests.factories import (
    ApplicationFactory,
    ClientFactory,
    ContentTemplateFactory,
    accept_notification,
    demo_values,
)


@pytest.fixture
def config_cache_on(settings):
    """As in production: each worker keeps the templates it renders with for a while."""
    settings.API_CONFIG_CACHE_SECONDS = 60


def queries_to_send(client, first: int, count: int) -> int:
    for number in range(first, first + count):
        accept_notification(
            client,
            f"R-{number}",
            values=demo_values(email=f"c{number}@example.co.id"),
        )
    with CaptureQueriesContext(connection) as queries:
        assert dispatch_due(limit=2 * count) == 2 * count  # an SMS and an email each
    return len(queries)


@pytest.mark.usefixtures("config_cache_on")
def test_a_group_of_forty_costs_the_queries_of_a_group_of_four(
    client_8002, app_8002, sms_template, mailoutbox, capsys
):
    ContentTemplateFactory(
        application=app_8002, medium="email", subject="Tagihan", body="Dear [customerName]"
    )
    queries_to_send(client_8002, 0, 2)  # warm: the template cache

    small = queries_to_send(client_8002, 100, 2)
    large = queries_to_send(client_8002, 200, 20)  # 40 deliveries: one send group (50)

    assert large == small
    assert set(Delivery.objects.values_list("status", flat=True)) == {"SENT"}
    assert len(mailoutbox) == 2 + 2 + 20


@pytest.mark.parametrize("cache_seconds", [0, 60], ids=["cache off", "cache cold"])
def test_a_chunk_of_ten_clients_reads_their_clients_and_applications_once(
    db, settings, cache_seconds, capsys
):
    settings.API_CONFIG_CACHE_SECONDS = cache_seconds
    for number in range(10):
        client = ClientFactory(client_id=f"90{number:02d}")
        application = ApplicationFactory(client=client, code="ABC")
        ContentTemplateFactory(application=application, medium="sms", body="[customerName]")
        accept_notification(client, f"R-{number}")

    with CaptureQueriesContext(connection) as queries:
        assert dispatch_due(limit=50) == 10

    tables = Counter(
        table
        for query in queries.captured_queries
        for table in ("clients_client", "clients_application")
        if re.search(rf'FROM "{table}"', query["sql"])
    )
    assert tables == {"clients_client": 1, "clients_application": 1}
