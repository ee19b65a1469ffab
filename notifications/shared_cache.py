"""The shared cache's Redis client, for the few hot counters and flags that need one
round trip where Django's cache API takes two, or builds a client object each call."""

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache


def redis_client():
    """The default cache's Redis client, kept on the cache object; None when the cache is
    not Redis (a per-process cache: nothing is shared between processes).

    redis-py clients are thread-safe, and their connection pool starts anew in a
    forked process.
    """
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    client = getattr(backend, "_kokatto_client", None)
    if client is None:
        client = backend._cache.get_client(write=True)
        backend._kokatto_client = client
    return client


def redis_key(key: str) -> str:
    """`key` as the default cache names it in Redis (its prefix and version)."""
    return caches["default"].make_and_validate_key(key)
