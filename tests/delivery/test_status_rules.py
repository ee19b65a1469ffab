"""A notification's status follows its deliveries (the rules the README states)."""

import pytest

from notifications.status import notification_status_for


@pytest.mark.parametrize(
    ("deliveries", "notification"),
    [
        ([], "ACCEPTED"),
        (["PENDING"], "ACCEPTED"),
        (["PENDING", "PENDING"], "ACCEPTED"),
        (["SENDING", "PENDING"], "PROCESSING"),
        (["SENT", "PENDING"], "PROCESSING"),
        (["FAILED", "SENDING"], "PROCESSING"),
        (["SENT"], "SENT"),
        (["SENT", "DELIVERED"], "SENT"),
        (["SENT", "FAILED"], "SENT"),
        (["DELIVERED", "UNDELIVERED"], "SENT"),
        (["DELIVERED", "DELIVERED"], "DELIVERED"),
        (["FAILED"], "FAILED"),
        (["FAILED", "EXPIRED"], "FAILED"),
        (["UNDELIVERED", "CANCELLED"], "FAILED"),
        (["CANCELLED", "CANCELLED"], "CANCELLED"),
    ],
)
def test_the_notification_status_follows_its_deliveries(deliveries, notification):
    assert notification_status_for(deliveries) == notification


def test_pending_deliveries_that_were_tried_make_a_processing_notification():
    assert notification_status_for(["PENDING", "PENDING"], tried=True) == "PROCESSING"
