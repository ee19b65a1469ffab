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

import logging
from contextlib import suppress
from functools import lru_cache

from django_q.brokers import get_broker
from django_q.tasks import async_task
from redis.exceptions import RedisError

from notifications.shared_cache import redis_key, shared_redis

logger = logging.getLogger(__name__)

DISPATCH_TASK = "notifications.tasks.dispatch_deliveries"
DISPATCH_QUEUED_KEY = "kokatto:dispatch-queued"
DISPATCH_QUEUED_SECONDS = 60  # the sweep's period


def enqueue_dispatch() -> None:
    """Queue a dispatch run, unless one is queued already and has not started.

    A Redis that cannot answer about the flag never stops the run from being queued.
    """
    shared = shared_redis()
    flag = redis_key(DISPATCH_QUEUED_KEY) if shared is not None else None
    if flag:
        try:
            if shared.command("SET", flag, 1, "NX", "EX", DISPATCH_QUEUED_SECONDS) is None:
                return  # already set: a run is queued
        except RedisError:
            logger.warning("The dispatch-queued flag could not be set; queueing a run anyway")
            flag = None
    try:
        async_task(DISPATCH_TASK, broker=_broker())
    except Exception:
        if flag:
            with suppress(RedisError):
                shared.command("DEL", flag)  # nothing is queued: the next call tries again
        raise


def dispatch_started() -> None:
    """A dispatch run starts: what is accepted from now on queues another.

    Best effort: a flag that could not be cleared only holds runs back until it
    expires (the sweep sends meanwhile); the run itself goes on.
    """
    shared = shared_redis()
    if shared is None:
        return
    try:
        shared.command("DEL", redis_key(DISPATCH_QUEUED_KEY))
    except RedisError:
        logger.warning("The dispatch-queued flag could not be cleared", exc_info=True)


@lru_cache(maxsize=1)
def _broker():
    # One broker per process: get_broker() would open a new Redis connection pool
    # on every enqueue, which is an enqueue per accepted notification.
    return get_broker()
