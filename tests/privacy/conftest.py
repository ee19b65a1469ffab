"""Two clients' notifications with deliveries, and the users who read them."""

from dataclasses import dataclass

import pytest

from notifications.models import Notification
from tests.batches import conftest as batch_fixtures
from tests.factories import DeliveryFactory, NotificationFactory, UserFactory

# The batch tests' fixture: a fresh local batch storage.
batch_home = batch_fixtures.batch_home


@dataclass
class TwoClients:
    own: Notification  # client 8002's
    other: Notification  # client 8003's


@pytest.fixture
def two_clients(app_8002, app_8003) -> TwoClients:
    own = NotificationFactory(application=app_8002, reference="REF-OWN-1", status="DELIVERED")
    DeliveryFactory(notification=own, medium="sms", recipient="+6281234567890", status="DELIVERED")
    DeliveryFactory(notification=own, medium="email", recipient="budi@example.co.id", status="SENT")
    other = NotificationFactory(application=app_8003, reference="REF-OTHER-1", status="SENT")
    DeliveryFactory(notification=other, medium="sms", recipient="+6281399990000", status="SENT")
    return TwoClients(own=own, other=other)


@pytest.fixture
def staff_8003_client(client, client_8003):
    client.force_login(
        UserFactory(username="staff8003", role="client_staff", clients=[client_8003])
    )
    return client
