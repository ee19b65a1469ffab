"""What the database itself guarantees of a notification (PostgreSQL's constraints)."""

import pytest
from django.db import IntegrityError, connection, transaction

from notifications.models import Notification
from tests.factories import ApplicationFactory, ClientFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the composite foreign key is PostgreSQL's"
    ),
]


def store(**fields) -> None:
    """Create a notification, its deferred constraints checked at once."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        Notification.objects.create(reference="R-1", params={}, source="api", **fields)


def test_a_notification_under_another_clients_application_is_refused():
    mine = ApplicationFactory(client=ClientFactory(client_id="8002"))
    theirs = ClientFactory(client_id="8003")

    with pytest.raises(IntegrityError, match="notification_application_of_its_client"):
        store(client=theirs, application=mine)

    assert not Notification.objects.exists()


def test_a_notification_of_an_application_that_does_not_exist_is_refused():
    client = ClientFactory(client_id="8002")

    with pytest.raises(IntegrityError, match="notification_application_of_its_client"):
        store(client=client, application_id=999_999)


def test_a_notification_under_its_own_clients_application_is_stored():
    application = ApplicationFactory(client=ClientFactory(client_id="8002"))

    store(client=application.client, application=application)

    assert Notification.objects.get().application == application
