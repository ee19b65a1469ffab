"""Real `manage.py qcluster` processes: a cluster killed mid-chunk, two clusters side by side.

The clusters are separate processes pointed at the test database (committed
data: transaction=True) and at a Twilio stand-in on loopback (`sms_sink`),
which deduplicates by the I-Twilio-Idempotency-Token header as Twilio does.
An in-memory SQLite test database can't be opened by another process, so
these tests run on PostgreSQL only (CI); on SQLite they skip.
"""

import time
from collections import Counter

import pytest
from django.db import connection
from django.db.models import Count
from django_q.brokers import get_broker
from django_q.tasks import async_task

from notifications.models import Delivery, DeliveryEvent, DeliveryStatus
from tests.delivery.peers import SmsSink
from tests.delivery.workers import QCLUSTER_TEST_MARKS, logs, running, wait_until
from tests.factories import (
    ApplicationFactory,
    ClientFactory,
    ContentTemplateFactory,
    accept_notification,
    demo_values,
)

DISPATCH = "notifications.tasks.dispatch_deliveries"
CHUNK = 50  # DELIVERY_CHUNK_SIZE the clusters run with (workers.cluster_env)

pytestmark = QCLUSTER_TEST_MARKS


def accept_notifications(count: int, prefix: str) -> list[int]:
    """`count` accepted SMS notifications for client 8002's ABC; their delivery ids.

    Intake queues a dispatch task after each one; the queue is emptied afterwards,
    so that the test decides when work starts.
    """
    client = ClientFactory(client_id="8002")
    application = ApplicationFactory(client=client, code="ABC")
    ContentTemplateFactory(application=application, medium="sms", body="Bank Demo [customerName]")
    for n in range(count):
        accept_notification(
            client, f"{prefix}-{n:04d}", values=demo_values(customerName=f"Customer {n}")
        )
    get_broker().purge_queue()
    return list(Delivery.objects.order_by("id").values_list("id", flat=True))


def key_of(delivery_id: int) -> str:
    return f"kokatto-delivery-{delivery_id}"


def statuses() -> Counter:
    return Counter(Delivery.objects.values_list("status", flat=True))


def all_sent() -> bool:
    return not Delivery.objects.exclude(status=DeliveryStatus.SENT).exists()


def assert_sent_exactly_once(delivery_ids: list[int], accepted: dict[str, str]) -> None:
    """Every delivery SENT once in our database, with the sid the provider gave its token."""
    assert statuses() == Counter({DeliveryStatus.SENT: len(delivery_ids)})
    sent_events = Counter(
        dict(
            DeliveryEvent.objects.filter(new_status=DeliveryStatus.SENT)
            .values_list("delivery")
            .annotate(n=Count("id"))
        )
    )
    assert sent_events == Counter(dict.fromkeys(delivery_ids, 1))
    recorded = dict(Delivery.objects.values_list("id", "provider_message_id"))
    assert recorded == {pk: accepted[key_of(pk)] for pk in delivery_ids}


def test_a_worker_killed_mid_chunk_loses_nothing_and_sends_nothing_twice(
    sms_sink, broker, start_cluster
):
    delivery_ids = accept_notifications(300, "CRASH")
    # The provider takes its time: it accepts each message and answers 30 ms later,
    # so a kill right after an acceptance lands while the worker awaits the answer.
    sms_sink.slow_seconds = 0.03
    sms_sink.misbehave("slow", times=2 * CHUNK)
    kill_at = CHUNK + CHUNK // 2  # halfway through the second chunk
    began = time.monotonic()

    first = start_cluster(sms_sink, Q_WORKERS=1)
    async_task(DISPATCH)
    reached = wait_until(
        lambda: len(sms_sink.messages) >= kill_at or not first.alive, timeout=30, interval=0.002
    )
    first.kill()
    killed_after = time.monotonic() - began
    assert reached, f"the sink accepted {len(sms_sink.messages)} in 30 s\n{logs(first)}"
    assert first.process.returncode == -9, f"the cluster ended by itself\n{logs(first)}"

    at_kill = statuses()
    requests_at_kill = len(sms_sink.requests)
    accepted_at_kill = {message.idempotency_key for message in sms_sink.messages}
    sending_at_kill = set(
        Delivery.objects.filter(status=DeliveryStatus.SENDING).values_list("id", flat=True)
    )
    sent_at_kill = set(
        Delivery.objects.filter(status=DeliveryStatus.SENT).values_list("id", flat=True)
    )
    # The provider has these, our database doesn't know: the crash's dangerous window.
    unrecorded = {pk for pk in delivery_ids if key_of(pk) in accepted_at_kill} - sent_at_kill
    print(
        f"\n[{type(broker).__name__} broker] killed after {killed_after:.1f}s: "
        f"sink accepted {len(accepted_at_kill)} ({requests_at_kill} requests); "
        f"database {dict(at_kill)}; "
        f"accepted by the provider but not recorded: {len(unrecorded)}"
    )
    assert sending_at_kill, f"the kill did not land mid-chunk: {dict(at_kill)}"
    assert unrecorded <= sending_at_kill

    second = start_cluster(sms_sink, Q_WORKERS=1)
    done = wait_until(
        lambda: all_sent() or not second.alive,
        timeout=90,
        interval=0.2,
        every=(1.5, lambda: async_task(DISPATCH)),
    )
    elapsed = time.monotonic() - began
    stuck = Delivery.objects.filter(status=DeliveryStatus.SENDING)
    assert done and second.alive, (
        f"after {elapsed:.0f}s: {dict(statuses())}, still SENDING (id, attempts, lease): "
        f"{list(stuck.values_list('id', 'attempts', 'lease_expires_at'))}\n{logs(first, second)}"
    )

    requests_per_key = Counter(request.idempotency_key for request in sms_sink.requests)
    accepted = {message.idempotency_key: message.sid for message in sms_sink.messages}
    resent = {key for key, n in requests_per_key.items() if n > 1}
    print(
        f"all {len(delivery_ids)} SENT after {elapsed:.1f}s: sink requests {len(sms_sink.requests)}"
        f" raw vs {len(sms_sink.messages)} distinct; {len(resent)} token(s) sent again after the"
        f" crash and deduplicated by the provider; {len(sms_sink.requests) - requests_at_kill}"
        f" requests after the kill"
    )

    # The provider has each delivery exactly once: one accepted message per token.
    assert len(sms_sink.messages) == len(delivery_ids)
    assert Counter(m.idempotency_key for m in sms_sink.messages) == Counter(
        dict.fromkeys(map(key_of, delivery_ids), 1)
    )
    # A send in flight when the worker died can reach the provider cut short (the
    # headers without the whole body): the provider refuses it, and makes no message.
    refused = [r for r in sms_sink.requests if r.status != 201]
    assert all(
        r.status == 400 and len(r.body) < int(r.header("Content-Length")) for r in refused
    ), [(r.status, r.body) for r in refused]
    # Only deliveries the dead worker had leased went out again, each once more at most.
    assert resent <= set(map(key_of, sending_at_kill))
    assert max(requests_per_key.values()) <= 2
    # Those the provider already had were sent again with their token and deduplicated:
    # our database holds the sid of the provider's first (and only) message.
    assert set(map(key_of, unrecorded)) <= resent
    assert_sent_exactly_once(delivery_ids, accepted)
    # A delivery's attempts are the requests the provider saw for it, except that
    # an attempt begun by the dead worker (its group's leases renewed) may never
    # have reached the provider: those count one more.
    attempts = dict(Delivery.objects.values_list("id", "attempts"))
    seen = {pk: requests_per_key[key_of(pk)] for pk in delivery_ids}
    assert {pk: attempts[pk] for pk in delivery_ids if pk not in sending_at_kill} == {
        pk: seen[pk] for pk in delivery_ids if pk not in sending_at_kill
    }
    assert all(attempts[pk] - seen[pk] in (0, 1) for pk in sending_at_kill)
    assert set(attempts.values()) <= {1, 2}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SKIP LOCKED is PostgreSQL's")
def test_two_workers_on_postgresql_never_send_a_delivery_twice(sms_sink, broker, start_cluster):
    delivery_ids = accept_notifications(400, "SHARED")
    # Each cluster sends to its own sink, so the sinks tell which cluster sent what.
    # A lease far longer than a chunk: no claim here may expire while its worker lives.
    other_sink = SmsSink().start()
    try:
        began = time.monotonic()
        clusters = [
            start_cluster(sink, Q_WORKERS=2, DELIVERY_LEASE_SECONDS=60)
            for sink in (sms_sink, other_sink)
        ]
        assert wait_until(lambda: running(*clusters), timeout=30, interval=0.1), logs(*clusters)
        for _ in range(len(delivery_ids) // CHUNK):
            async_task(DISPATCH)
        done = wait_until(
            lambda: all_sent() or not all(c.alive for c in clusters),
            timeout=45,
            interval=0.2,
            every=(2, lambda: async_task(DISPATCH)),
        )
        elapsed = time.monotonic() - began
        assert done and all(c.alive for c in clusters), (
            f"after {elapsed:.0f}s: {dict(statuses())}\n{logs(*clusters)}"
        )

        sinks = (sms_sink, other_sink)
        requests = [request for sink in sinks for request in sink.requests]
        messages = [message for sink in sinks for message in sink.messages]
        print(
            f"\n{len(delivery_ids)} SENT in {elapsed:.1f}s by two clusters: "
            + ", ".join(
                f"{len(s.requests)} requests / {len(s.messages)} messages on "
                f"{s.connections} connection(s)"
                for s in sinks
            )
        )
        # Not one delivery was even attempted twice, by either cluster.
        assert len(requests) == len(messages) == len(delivery_ids)
        assert Counter(r.idempotency_key for r in requests) == Counter(
            dict.fromkeys(map(key_of, delivery_ids), 1)
        )
        assert all(sink.requests for sink in sinks), "one cluster did all the work"
        assert_sent_exactly_once(delivery_ids, {m.idempotency_key: m.sid for m in messages})
        assert set(Delivery.objects.values_list("attempts", flat=True)) == {1}
    finally:
        other_sink.stop()
