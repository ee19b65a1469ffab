"""A short-lived, bounded, per-process cache of client configuration read on every API request.

Each /notif request needs the client's keys and its application's fields and
media. They change rarely, so each worker process keeps them for
settings.API_CONFIG_CACHE_SECONDS (default 10 s): a deactivated key or an
edited field schema takes effect within that time on every worker. Zero (or
API_CONFIG_CACHE_MAX_ENTRIES zero) turns the cache off.

The cache is filled from what requests name (a clientId, an appType) before the
signature is checked, so what it holds must not be for a stranger to choose: a
load that finds nothing (None or an empty collection: an unknown client, an
unknown appType) is not kept, and at most settings.API_CONFIG_CACHE_MAX_ENTRIES
entries are, the least recently used leaving first.
"""

import threading
from collections.abc import Callable, Collection
from typing import TypeVar

from cachetools import TTLCache
from django.conf import settings

T = TypeVar("T")
_MISSING = object()
_lock = threading.Lock()  # cachetools' caches are not thread-safe (runserver is threaded)
_entries: TTLCache = TTLCache(maxsize=1, ttl=1)


def cached(key: tuple, load: Callable[[], T]) -> T:
    """The value cached under `key`, or `load()`'s result, kept for the configured time.

    A result that is None or empty is returned but not kept.
    """
    seconds, max_entries = settings.API_CONFIG_CACHE_SECONDS, settings.API_CONFIG_CACHE_MAX_ENTRIES
    if seconds <= 0 or max_entries <= 0:
        return load()
    with _lock:
        entries = _entries_sized(seconds, max_entries)
        value = entries.get(key, _MISSING)
    if value is not _MISSING:
        return value
    value = load()
    if not _is_nothing(value):
        with _lock:
            entries[key] = value
    return value


def clear() -> None:
    with _lock:
        _entries.clear()


def _entries_sized(seconds: int, max_entries: int) -> TTLCache:
    """The cache, made anew when its settings changed (tests change them)."""
    global _entries
    if (_entries.ttl, _entries.maxsize) != (seconds, max_entries):
        _entries = TTLCache(maxsize=max_entries, ttl=seconds)
    return _entries


def _is_nothing(value: object) -> bool:
    return value is None or (isinstance(value, Collection) and len(value) == 0)
