"""Many rows updated in one statement (notifications/row_updates.py), as outcomes are recorded."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import connection

from notifications.events import events_insert
from notifications.models import DeliveryEvent, DeliveryStatus
from notifications.row_updates import rows_update
from tests.factories import DeliveryFactory

pytestmark = pytest.mark.django_db

AWKWARD_TEXT = 'Dear O\'Brien, "Rp" 1.230.000\\n\n\ttab {json: [1]} 😀 ñ'
JAKARTA = timezone(timedelta(hours=7))


def claimed_delivery(claims=1):
    return DeliveryFactory(status=DeliveryStatus.SENDING, claims=claims)


def test_each_row_gets_its_own_text_and_time_back_exactly():
    first, second = claimed_delivery(), claimed_delivery()
    lease = datetime(2026, 12, 1, 23, 59, 59, 123456, tzinfo=JAKARTA)

    updated = rows_update(
        type(first),
        [
            {"id": first.pk, "claims": 1, "body": AWKWARD_TEXT, "lease_expires_at": lease},
            {"id": second.pk, "claims": 1, "body": "plain", "lease_expires_at": None},
        ],
        match=["id", "claims"],
        assign=["body", "lease_expires_at"],
    )

    assert sorted(updated) == sorted([first.pk, second.pk])
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.body == AWKWARD_TEXT
    assert first.lease_expires_at == lease.astimezone(UTC)
    assert second.body == "plain"
    assert second.lease_expires_at is None


def test_a_row_whose_claim_moved_on_is_left_alone_and_not_returned():
    ours, reclaimed = claimed_delivery(claims=1), claimed_delivery(claims=2)

    updated = rows_update(
        type(ours),
        [
            {"id": ours.pk, "claims": 1, "status": DeliveryStatus.SENT},
            {"id": reclaimed.pk, "claims": 1, "status": DeliveryStatus.SENT},
        ],
        match=["id", "claims"],
        assign=["status"],
        guard={"status": DeliveryStatus.SENDING},
    )

    assert updated == [ours.pk]
    reclaimed.refresh_from_db()
    assert reclaimed.status == DeliveryStatus.SENDING


def test_events_keep_their_detail_exactly():
    delivery = claimed_delivery()

    events_insert([(delivery.pk, DeliveryStatus.SENDING, DeliveryStatus.SENT, AWKWARD_TEXT)])

    event = DeliveryEvent.objects.get(delivery=delivery, new_status=DeliveryStatus.SENT)
    assert (event.old_status, event.detail) == (DeliveryStatus.SENDING, AWKWARD_TEXT)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the JSON rows are PostgreSQL's")
def test_a_time_without_an_offset_is_refused_rather_than_read_in_the_servers_zone():
    delivery = claimed_delivery()

    with pytest.raises(ValueError, match="naive datetime"):
        rows_update(
            type(delivery),
            [{"id": delivery.pk, "claims": 1, "lease_expires_at": datetime(2026, 12, 1, 9)}],
            match=["id", "claims"],
            assign=["lease_expires_at"],
        )
