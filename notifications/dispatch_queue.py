"""Asking the workers to send: queue a dispatch run after notifications are accepted.

The task is named by its dotted path, so the modules that accept notifications
(notifications/intake.py) and the admin need not import the tasks module.

A run queued and not yet started will send whatever is committed before it starts,
so with a shared cache (Redis) a second one is not queued meanwhile: a flag in Redis
says a run is waiting (set with SET NX, one round trip, by whoever queues it) and
each run clears it as it starts, before it claims anything (dispatch_started). Under
load the API then queues one run per run the workers start, not one per accepted
notification. The flag lives DISPATCH_QUEUED_SECONDS at most: a queued run that is
lost (its worker killed before it starts) holds the next ones back no longer than
that, and the every-minute sweep sends meanwhile. With a per-process cache (no
Redis) every call queues a run, as the worker could not clear the flag.
"""

from functools import lru_cache

from django_q.brokers import get_broker
from django_q.tasks import async_task

from notifications.shared_cache import redis_client, redis_key

DISPATCH_TASK = "notifications.tasks.dispatch_deliveries"
DISPATCH_QUEUED_KEY = "kokatto:dispatch-queued"
DISPATCH_QUEUED_SECONDS = 60  # the sweep's period


def enqueue_dispatch() -> None:
    """Queue a dispatch run, unless one is queued already and has not started."""
    client = redis_client()
    flag = redis_key(DISPATCH_QUEUED_KEY) if client is not None else None
    if flag and not client.set(flag, 1, nx=True, ex=DISPATCH_QUEUED_SECONDS):
        return
    try:
        async_task(DISPATCH_TASK, broker=_broker())
    except Exception:
        if flag:
            client.delete(flag)  # nothing is queued: the next call tries again
        raise


def dispatch_started() -> None:
    """A dispatch run starts: what is accepted from now on queues another."""
    client = redis_client()
    if client is not None:
        client.delete(redis_key(DISPATCH_QUEUED_KEY))


@lru_cache(maxsize=1)
def _broker():
    # One broker per process: get_broker() would open a new Redis connection pool
    # on every enqueue, which is an enqueue per accepted notification.
    return get_broker()
