"""An accepted notification is handed to the delivery pipeline once it is committed."""

import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

from notifications.dispatch_queue import dispatch_started, enqueue_dispatch
from tests.api.conftest import NotifApi, demo_fields
from tests.factories import ApplicationFactory, ClientFactory, issue_key


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_created_notification_queues_a_dispatch_after_commit(broker):
    client = ClientFactory(client_id="8002")
    ApplicationFactory(client=client, code="ABC")
    _, secret = issue_key(client)
    api = NotifApi("8002", secret)

    created = api.create(**demo_fields())
    retry = api.create(**demo_fields())
    invalid = api.create(**demo_fields(reference="R-2", balance="x"))

    assert (created.status_code, retry.status_code, invalid.status_code) == (201, 200, 400)
    assert broker.queue_size() == 1


@pytest.mark.skipif(
    not isinstance(caches["default"], RedisCache), reason="the cache is Redis with REDIS_URL"
)
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_with_redis_accepts_queue_one_dispatch_until_a_run_starts(broker):
    client = ClientFactory(client_id="8002")
    ApplicationFactory(client=client, code="ABC")
    _, secret = issue_key(client)
    api = NotifApi("8002", secret)

    first = api.create(**demo_fields(reference="R-1"))
    second = api.create(**demo_fields(reference="R-2"))
    queued_before_a_run = broker.queue_size()
    dispatch_started()  # what a dispatch run does first
    third = api.create(**demo_fields(reference="R-3"))

    assert (first.status_code, second.status_code, third.status_code) == (201, 201, 201)
    assert queued_before_a_run == 1
    assert broker.queue_size() == 2


@pytest.mark.skipif(
    isinstance(caches["default"], RedisCache), reason="without Redis: a per-process cache"
)
def test_without_redis_each_enqueue_queues_a_dispatch(db, broker):
    enqueue_dispatch()
    enqueue_dispatch()

    assert broker.queue_size() == 2
