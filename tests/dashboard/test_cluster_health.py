"""The dashboard's task-queue figures with a real `manage.py qcluster` running."""

import types

import pytest
from django.conf import settings
from django.utils import timezone

from kokatto_site.dashboard import cluster_health
from tests.delivery.workers import QCLUSTER_TEST_MARKS, cluster_starter, wait_until

pytestmark = [
    *QCLUSTER_TEST_MARKS,
    pytest.mark.skipif(
        not settings.REDIS_URL,
        reason="with the ORM broker clusters report through a per-process cache here",
    ),
]

# No SMS is sent: the cluster only has to run.
NO_SINK = types.SimpleNamespace(url="http://127.0.0.1:9", account_sid="AC0", auth_token="x")


def test_a_running_cluster_is_alive_with_its_workers_and_a_recent_heartbeat(broker, tmp_path):
    with cluster_starter(tmp_path) as start:
        cluster = start(NO_SINK, Q_WORKERS="2")

        def alive_with_its_workers():
            # A starting cluster reports itself before its workers are up.
            health = cluster_health(now=timezone.now())
            return health["alive"] == 1 and health["workers"] == 2

        assert wait_until(alive_with_its_workers, timeout=60, interval=0.5), cluster.log_tail()
        health = cluster_health(now=timezone.now())
        [reported] = health["clusters"]
        assert health["workers"] == reported["workers"] == 2
        assert reported["heartbeat_age_seconds"] < 30
        cluster.stop()

    assert wait_until(lambda: cluster_health(now=timezone.now())["alive"] == 0, timeout=30)
