"""The shared cache's Redis, for the few hot counters and flags that need one round trip
where Django's cache API takes two, or builds a client object each call."""

import os
import threading

import redis
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from redis.connection import AbstractConnection


class SharedRedis:
    """One connection to the default cache's Redis server, made by the cache's pool (its
    settings) and kept, checked before each command as the pool checks the connections
    it hands out.

    redis-py's client costs twice the CPU a command (the pool's checkout and return, the
    retry object, its metrics, the reply callbacks); a kept connection without the
    check failed after any disconnect. Here one the server closed (a restart, an idle
    timeout) is replaced before it is used, and one that fails (closed between the
    check and the command) is replaced and the command sent once more. A timeout is
    not retried: the command may have run.
    """

    def __init__(self, connection: AbstractConnection):
        self._connection = connection
        self._lock = threading.Lock()  # a connection carries one command at a time

    def command(self, *args):
        """Redis's reply as it comes (bytes, int or None); ResponseError for an error reply."""
        with self._lock:
            connection = self._connection
            _make_ready(connection)
            try:
                return _send(connection, args)
            except redis.ConnectionError:
                return _send(connection, args)


def shared_redis() -> SharedRedis | None:
    """The default cache's Redis connection of this thread (Django keeps a cache object per
    thread), kept on the cache object; None when the cache is not Redis (a per-process
    cache: nothing is shared between processes). A process forked after it was made
    makes its own.
    """
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    kept = getattr(backend, "_kokatto_redis", None)
    if kept is None or kept[0] != os.getpid():
        pool = backend._cache._get_connection_pool(write=True)
        kept = (os.getpid(), SharedRedis(pool.make_connection()))
        backend._kokatto_redis = kept
    return kept[1]


def redis_key(key: str) -> str:
    """`key` as the default cache names it in Redis (its prefix and version).

    Not validated as Django's cache methods do (a warning for keys memcached would
    refuse, a loop over every character): the platform's own keys are fine for Redis.
    """
    return caches["default"].make_key(key)


def _make_ready(connection: AbstractConnection) -> None:
    """Connected, with nothing waiting to be read: what the pool checks before it hands a
    connection out (a socket the server closed reads as ready: end of file)."""
    try:
        if connection.can_read():
            raise redis.ConnectionError("The connection has data, or was closed")
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        connection.disconnect()
        connection.connect()


def _send(connection: AbstractConnection, args: tuple):
    connection.send_command(*args)
    return connection.read_response()
