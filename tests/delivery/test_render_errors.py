"""A delivery whose values cannot be rendered fails alone: never its worker, never its group.

The values are the client's data, checked against the field schema when they
were accepted; but a field's type can change afterwards, and a value that was
fine as text (`NaN`) is one that `[balance|rupiah]` cannot format.
"""

import pytest

from notifications.dispatch import dispatch_due
from notifications.models import Delivery, DeliveryEvent
from tests.factories import (
    ApplicationFactory,
    ClientFactory,
    ContentTemplateFactory,
    DeliveryFactory,
    NotificationFactory,
    demo_params,
)

pytestmark = pytest.mark.django_db


def sms_delivery(client_id: str, **params):
    application = ApplicationFactory(client=ClientFactory(client_id=client_id))
    ContentTemplateFactory(
        application=application, medium="sms", body="Bank Demo: Rp [balance|rupiah] due."
    )
    notification = NotificationFactory(application=application, params=demo_params(**params))
    return DeliveryFactory(notification=notification)


@pytest.mark.parametrize("balance", ["NaN", "Infinity", "-Infinity", "1e100"])
def test_a_value_the_template_cannot_format_fails_that_delivery_alone(balance):
    poisoned = sms_delivery("8002", balance=balance)
    other_clients = [sms_delivery("8003"), sms_delivery("8004")]

    assert dispatch_due() == 3

    poisoned.refresh_from_db()
    assert poisoned.status == "FAILED"
    assert poisoned.last_error.startswith("RENDER_ERROR: ")
    assert poisoned.attempts == 0  # nothing was sent: no attempt made
    [event] = DeliveryEvent.objects.filter(delivery=poisoned, new_status="FAILED")
    assert event.detail.startswith("failed: RENDER_ERROR: ")
    assert poisoned.notification.status == "FAILED"
    for delivery in other_clients:
        delivery.refresh_from_db()
        assert delivery.status == "SENT"
        assert delivery.body == "Bank Demo: Rp 1.230.000 due."


def test_a_failed_render_is_not_claimed_again():
    sms_delivery("8002", balance="NaN")
    dispatch_due()

    assert dispatch_due() == 0
    assert Delivery.objects.get().status == "FAILED"


def test_a_subject_too_long_for_its_column_fails_that_delivery_alone():
    application = ApplicationFactory(client=ClientFactory(client_id="8002"))
    ContentTemplateFactory(
        application=application,
        medium="email",
        subject="Tagihan [customerName]",
        body="Dear [customerName]",
    )
    long_name = NotificationFactory(
        application=application,
        params=demo_params(customerName="N" * 300, email="a@example.co.id"),
    )
    short_name = NotificationFactory(
        application=application, params=demo_params(email="b@example.co.id")
    )
    too_long = DeliveryFactory(notification=long_name, medium="email", recipient="a@example.co.id")
    fine = DeliveryFactory(notification=short_name, medium="email", recipient="b@example.co.id")

    assert dispatch_due() == 2

    too_long.refresh_from_db()
    fine.refresh_from_db()
    assert too_long.status == "FAILED"
    assert "at most 255 fit" in too_long.last_error
    assert (fine.status, fine.subject) == ("SENT", "Tagihan John Doe")
