"""The shared cache's Redis client, for the few hot counters and flags that need one
round trip where Django's cache API takes two, or builds a client object each call."""

import os

import redis
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache


def redis_client() -> redis.Redis | None:
    """A Redis client of the default cache's server, kept on the cache object; None when
    the cache is not Redis (a per-process cache: nothing is shared between processes).

    It holds one connection of the cache's pool for good (a command then costs half
    the CPU of taking one from the pool and giving it back, as Django's does): a
    client is thread-safe (it locks its connection per command) and a process forked
    after it was made makes its own.
    """
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    kept = getattr(backend, "_kokatto_client", None)
    if kept is None or kept[0] != os.getpid():
        pool = backend._cache._get_connection_pool(write=True)
        kept = (os.getpid(), redis.Redis(connection_pool=pool, single_connection_client=True))
        backend._kokatto_client = kept
    return kept[1]


def redis_key(key: str) -> str:
    """`key` as the default cache names it in Redis (its prefix and version)."""
    return caches["default"].make_and_validate_key(key)
