"""Client callbacks in a real qcluster: one client's slow server never takes every worker.

Runs on PostgreSQL only, like the other qcluster tests (the SQLite test database is in
memory, out of the cluster's reach).
"""

from django_q.tasks import async_task

from notifications.models import ClientCallback, Delivery
from tests.delivery.slow_http import Answer, slow_http_server
from tests.delivery.workers import (
    LOOPBACK_CALLBACKS_ENV,
    QCLUSTER_TEST_MARKS,
    cluster_starter,
    wait_until,
)
from tests.factories import (
    ApplicationFactory,
    ClientFactory,
    ContentTemplateFactory,
    NotificationFactory,
    accept_notification,
    issue_key,
)

pytestmark = QCLUSTER_TEST_MARKS

SWEEP = "notifications.tasks.send_client_callbacks"


def subscribed_client(client_id: str, url: str):
    client = ClientFactory(client_id=client_id, callback_url=url)
    issue_key(client)
    return client


def test_slow_callbacks_of_one_client_hold_up_no_other_clients_work(sms_sink, broker, tmp_path):
    with (
        slow_http_server(Answer(hang=True)) as slow,
        slow_http_server() as prompt,
        cluster_starter(tmp_path) as start_cluster,
    ):
        # Client 8002's server never answers, and 8002 has a backlog of callbacks; many
        # status changes have each queued a sweep.
        slow_client = subscribed_client("8002", slow.url)
        application = ApplicationFactory(client=slow_client)
        for number in range(120):
            ClientCallback.objects.create(
                notification=NotificationFactory(application=application),
                url=slow.url,
                payload={"requestId": f"A-{number}", "status": "SENT", "deliveries": []},
            )
        other = subscribed_client("8003", prompt.url)
        ContentTemplateFactory(
            application=ApplicationFactory(client=other, code="XYZ"),
            medium="sms",
            body="Bank Demo [customerName]",
        )
        cluster = start_cluster(
            sms_sink, Q_WORKERS=2, CLIENT_CALLBACK_TIMEOUT_SECONDS=5, **LOOPBACK_CALLBACKS_ENV
        )
        for _ in range(4):
            async_task(SWEEP)
        assert wait_until(lambda: len(slow.exchanges) >= 2, timeout=60), cluster.log_tail()

        # Client 8003 sends a notification: its delivery and then its callback go out
        # while 8002's callbacks are still hanging.
        accept_notification(other, "B-1", application_code="XYZ")
        arrived = wait_until(lambda: prompt.exchanges, timeout=30)

        assert arrived, cluster.log_tail()
        assert len(sms_sink.messages) == 1
        assert Delivery.objects.get(notification__client=other).status == "SENT"
