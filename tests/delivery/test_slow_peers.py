"""Exactly once, also when the provider is slow: two real qcluster processes, one SMTP server.

An SMTP server that takes half a second over each message makes a group of
emails outlast its lease several times over. The worker sending them keeps
their leases renewed and sends each only while its lease runs, so the other
cluster, asking for work every half second, never finds one to claim again:
the server receives each email exactly once.

Runs on PostgreSQL only: the clusters are other processes, and the SQLite test
database is in memory.
"""

import time
from collections import Counter

import pytest
from django_q.tasks import async_task

from notifications.models import Delivery, DeliveryStatus
from tests.delivery.workers import QCLUSTER_TEST_MARKS, logs, running, wait_until
from tests.factories import (
    ApplicationFactory,
    ClientFactory,
    ContentTemplateFactory,
    accept_notification,
    demo_values,
)

DISPATCH = "notifications.tasks.dispatch_deliveries"

pytestmark = QCLUSTER_TEST_MARKS


def accept_emails(count: int) -> list[int]:
    client = ClientFactory(client_id="8002")
    application = ApplicationFactory(client=client, code="ABC")
    ContentTemplateFactory(
        application=application,
        medium="email",
        subject="Tagihan [customerName]",
        body="Yth. [customerName], tagihan Anda Rp [balance|rupiah].",
    )
    for n in range(count):
        email_only = demo_values(
            customerName=f"Customer {n}", msisdn="", email=f"customer{n}@example.co.id"
        )
        accept_notification(client, f"SLOW-{n:03d}", values=email_only)
    return list(Delivery.objects.order_by("id").values_list("id", flat=True))


@pytest.mark.parametrize(
    ("connections", "emails"),
    [
        (1, 20),  # 20 emails one at a time: 10 s for a group, the lease is 3 s
        (4, 40),  # 40 emails, four at a time over pooled connections: 5 s
    ],
)
def test_a_slow_smtp_server_gets_each_email_once_from_two_workers(
    smtp_server, sms_sink, broker, start_cluster, connections, emails
):
    delivery_ids = accept_emails(emails)
    broker.purge_queue()
    smtp_server.slow_down(0.5)
    email = {
        "EMAIL_MAX_CONNECTIONS": str(connections),
        "EMAIL_URL": f"smtp://{smtp_server.host}:{smtp_server.port}",
        "EMAIL_TIMEOUT": "1",
        "DELIVERY_LEASE_SECONDS": "3",
        "DELIVERY_SEND_TIMEOUT_SECONDS": "1",
    }
    clusters = [start_cluster(sms_sink, **email), start_cluster(sms_sink, **email)]
    assert wait_until(lambda: running(*clusters), timeout=30, interval=0.1), logs(*clusters)
    began = time.monotonic()

    async_task(DISPATCH)
    done = wait_until(
        lambda: not Delivery.objects.exclude(status=DeliveryStatus.SENT).exists(),
        timeout=60,
        interval=0.2,
        every=(0.5, lambda: async_task(DISPATCH)),
    )

    elapsed = time.monotonic() - began
    statuses = Counter(Delivery.objects.values_list("status", flat=True))
    assert done, f"after {elapsed:.0f}s: {dict(statuses)}\n{logs(*clusters)}"
    received = Counter(to for message in smtp_server.messages for to in message.rcpt_tos)
    expected = Counter(f"customer{n}@example.co.id" for n in range(len(delivery_ids)))
    assert received == expected, f"received more than once: {received - expected}"
    # The worker that took the group sent all of it, over its pooled connections.
    assert smtp_server.connections <= connections
    assert set(Delivery.objects.values_list("attempts", flat=True)) == {1}
    print(f"\n{len(delivery_ids)} emails, each received once, in {elapsed:.1f}s")
