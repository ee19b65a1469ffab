"""Asking the workers to send: queue a dispatch run after notifications are accepted.

The task is named by its dotted path, so the modules that accept notifications
(notifications/intake.py) and the admin need not import the tasks module.
"""

from functools import lru_cache

from django_q.brokers import get_broker
from django_q.tasks import async_task

DISPATCH_TASK = "notifications.tasks.dispatch_deliveries"


def enqueue_dispatch() -> None:
    async_task(DISPATCH_TASK, broker=_broker())


@lru_cache(maxsize=1)
def _broker():
    # One broker per process: get_broker() would open a new Redis connection pool
    # on every enqueue, which is an enqueue per accepted notification.
    return get_broker()
