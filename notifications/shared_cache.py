"""The shared cache's Redis client, for the few hot counters and flags that need one
round trip where Django's cache API takes two, or builds a client object each call."""

import os

import redis
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache


def redis_client() -> redis.Redis | None:
    """A Redis client of the default cache's server, kept on the cache object; None when
    the cache is not Redis (a per-process cache: nothing is shared between processes).

    It takes a connection from the cache's pool for each command, as Django's does:
    the pool checks a connection before it hands it out, so one the server closed (a
    restart, an idle timeout) is replaced, not failed on. (A client holding one
    connection for good cost half the CPU a command, and failed after any disconnect.)
    A process forked after it was made makes its own.
    """
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    kept = getattr(backend, "_kokatto_client", None)
    if kept is None or kept[0] != os.getpid():
        pool = backend._cache._get_connection_pool(write=True)
        kept = (os.getpid(), redis.Redis(connection_pool=pool))
        backend._kokatto_client = kept
    return kept[1]


def redis_key(key: str) -> str:
    """`key` as the default cache names it in Redis (its prefix and version)."""
    return caches["default"].make_and_validate_key(key)
