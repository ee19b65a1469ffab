"""Twenty simultaneous creates of one reference make exactly one notification (PostgreSQL)."""

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
from django.db import connection, connections

from notifications.models import Delivery, Notification
from tests.api.conftest import NotifApi, demo_fields
from tests.factories import ApplicationFactory, ClientFactory, issue_key

THREADS = 20

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="SQLite serialises writers; PG shows the race"
    ),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def _concurrent_creates(fields_per_thread):
    client = ClientFactory(client_id="8002")
    ApplicationFactory(client=client, code="ABC")
    _, secret = issue_key(client)
    barrier = Barrier(THREADS)

    def create(fields):
        api = NotifApi("8002", secret)
        parameters = api.signed(operation="create", **fields)
        barrier.wait()
        try:
            answer = api.call(parameters)
            return answer.status_code, answer.code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(create, fields_per_thread))


def test_identical_concurrent_creates_make_one_notification_and_retries():
    answers = _concurrent_creates([demo_fields()] * THREADS)

    assert sorted(answers).count((201, "OK")) == 1
    assert sorted(answers).count((200, "OK")) == THREADS - 1
    assert Notification.objects.count() == 1
    assert Delivery.objects.count() == 1


def test_conflicting_concurrent_creates_make_one_notification_and_duplicates():
    answers = _concurrent_creates([demo_fields(balance=str(1000 + n)) for n in range(THREADS)])

    assert answers.count((201, "OK")) == 1
    assert answers.count((409, "DUPLICATE_REFERENCE")) == THREADS - 1
    assert Notification.objects.count() == 1
