"""Database constraints of notifications and deliveries."""

import pytest
from django.db import IntegrityError, transaction

from notifications.models import Notification
from tests.factories import ApplicationFactory, BatchFactory, DeliveryFactory, NotificationFactory


def test_a_reference_is_unique_per_client_in_the_database(app_8002):
    NotificationFactory(application=app_8002, reference="UNIQ-REFERENCE-ID")

    with pytest.raises(IntegrityError), transaction.atomic():
        NotificationFactory(application=app_8002, reference="UNIQ-REFERENCE-ID")
    assert Notification.objects.filter(reference="UNIQ-REFERENCE-ID").count() == 1


def test_the_same_reference_under_two_clients_is_allowed(app_8002, app_8003):
    NotificationFactory(application=app_8002, reference="UNIQ-REFERENCE-ID")
    NotificationFactory(application=app_8003, reference="UNIQ-REFERENCE-ID")

    assert Notification.objects.filter(reference="UNIQ-REFERENCE-ID").count() == 2


def test_a_reference_is_unique_across_applications_of_one_client(client_8002):
    first = ApplicationFactory(client=client_8002, code="ABC")
    second = ApplicationFactory(client=client_8002, code="DEF")
    NotificationFactory(application=first, reference="R-1")

    with pytest.raises(IntegrityError), transaction.atomic():
        NotificationFactory(application=second, reference="R-1")


def test_one_delivery_per_medium_per_notification(app_8002):
    notification = NotificationFactory(application=app_8002)
    DeliveryFactory(notification=notification, medium="sms")

    with pytest.raises(IntegrityError), transaction.atomic():
        DeliveryFactory(notification=notification, medium="sms")


def test_a_batch_notification_must_name_its_batch(app_8002):
    with pytest.raises(IntegrityError), transaction.atomic():
        NotificationFactory(application=app_8002, source="batch", batch=None)

    batch = BatchFactory(client=app_8002.client)
    assert NotificationFactory(application=app_8002, source="batch", batch=batch).batch == batch
