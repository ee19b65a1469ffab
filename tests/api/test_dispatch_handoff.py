"""An accepted notification is handed to the delivery pipeline once it is committed."""

import pytest

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
