"""Workers on several machines never take the same delivery (PostgreSQL, SKIP LOCKED)."""

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
from django.db import connection, connections

from notifications.dispatch import deliveries_claim
from notifications.models import Delivery
from tests.factories import ApplicationFactory, ClientFactory, accept_notification, demo_values

WORKERS = 4
DELIVERIES = 200


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks are PostgreSQL's")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_claims_take_disjoint_deliveries():
    client = ClientFactory(client_id="8002")
    ApplicationFactory(client=client, code="ABC")
    for n in range(DELIVERIES):
        accept_notification(client, f"R-{n}")
    barrier = Barrier(WORKERS)

    def worker(_):
        claimed = []
        barrier.wait()
        try:
            while batch := deliveries_claim(limit=7):
                claimed += [claim.delivery_id for claim in batch]
        finally:
            connections.close_all()
        return claimed

    with ThreadPoolExecutor(WORKERS) as pool:
        claims = list(pool.map(worker, range(WORKERS)))

    every_claim = [pk for claimed in claims for pk in claimed]
    assert len(every_claim) == len(set(every_claim)) == DELIVERIES
    assert sum(1 for claimed in claims if claimed) > 1  # the work was really shared
    assert set(Delivery.objects.values_list("claims", flat=True)) == {1}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks are PostgreSQL's")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_media_of_one_notification_sent_at_once_leave_it_sent():
    from notifications.dispatch import delivery_send
    from notifications.models import Notification
    from tests.factories import ContentTemplateFactory

    client = ClientFactory(client_id="8002")
    application = ApplicationFactory(client=client, code="ABC")
    ContentTemplateFactory(application=application, medium="sms", body="Bank Demo [balance]")
    ContentTemplateFactory(application=application, medium="email", subject="S", body="B")
    for n in range(40):
        accept_notification(client, f"R-{n}", values=demo_values(email="a@example.co.id"))
    claims = deliveries_claim(limit=1000)
    medium = dict(Delivery.objects.values_list("id", "medium"))
    barrier = Barrier(2)

    def send_all(wanted):
        barrier.wait()
        try:
            for claim in claims:
                if medium[claim.delivery_id] == wanted:
                    delivery_send(delivery_id=claim.delivery_id, claim=claim.claim)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(send_all, ["sms", "email"]))

    assert set(Delivery.objects.values_list("status", flat=True)) == {"SENT"}
    assert set(Notification.objects.values_list("status", flat=True)) == {"SENT"}
